"""`alliance formats`, `alliance lenses` and `alliance version`: what the installation offers.

The tables come from :mod:`alliance.catalogue` (read from source, nothing heavy imported); the console script
(:mod:`alliance.entry`) prints them without loading this command line at all.
"""

from __future__ import annotations

from alliance.catalogue import class_source, default_lens_names, formats_table, lenses_table, static_attributes
from alliance.cli.app import app
from alliance.cli.common import out_console

__all__ = ["class_source", "default_lens_names", "formats", "list_lenses", "static_attributes", "version"]


@app.command()
def formats() -> None:
    """List the input formats that `--format` accepts."""
    out_console.print(formats_table())


@app.command(name="lenses")
def list_lenses() -> None:
    """List the measures (lenses) and their scientific basis."""
    out_console.print(lenses_table())


@app.command()
def version() -> None:
    """Print the version of alliance."""
    from alliance import __version__

    out_console.print(__version__)
