"""`alliance formats`, `alliance lenses` and `alliance version`: what the installation offers.

These read the registries only; they must stay fast (no model is loaded).
"""

from __future__ import annotations

from alliance.cli.app import app
from alliance.cli.common import out_console


@app.command()
def formats() -> None:
    """List the input formats that `--format` accepts."""
    from rich.table import Table

    from alliance.registry import readers

    table = Table("format", "description")
    for name in readers.names():
        table.add_row(name, readers.get(name).description)
    out_console.print(table)


@app.command(name="lenses")
def list_lenses() -> None:
    """List the measures (lenses) and their scientific basis."""
    from rich.table import Table

    from alliance.pipeline import DEFAULT_LENSES
    from alliance.registry import lenses as registry

    table = Table("lens", "default", "version", "basis")
    for name in registry.names():
        cls = registry.get(name)
        table.add_row(name, "yes" if name in DEFAULT_LENSES else "", cls.version, cls.citation)
    out_console.print(table)


@app.command()
def version() -> None:
    """Print the version of alliance."""
    from alliance import __version__

    out_console.print(__version__)
