"""The ``alliance`` console script: `alliance lenses`, `formats` and `version` answered at once, the rest by Typer.

Evidence: issue #15 measured `alliance lenses` at 0.47 s; loading the command line (Typer, and the pydantic it
imports to convert options) costs more than the 0.2 s target by itself, so these three option-less commands print
the same output (the same tables and console settings) without it. Anything else on the line goes to
:data:`alliance.cli.app`, including `alliance lenses --help`.
"""

from __future__ import annotations

import sys
from typing import Any


def _print(renderable: Any) -> None:
    from rich.console import Console

    Console().print(renderable)  # as alliance.cli.common.out_console prints


def app(args: list[str] | None = None) -> Any:
    """Run ``alliance`` with ``args`` (default: the command line)."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv == ["lenses"] or argv == ["formats"]:
        from alliance.catalogue import formats_table, lenses_table

        _print(lenses_table() if argv == ["lenses"] else formats_table())
        return 0
    if argv == ["version"]:
        from alliance import __version__

        _print(__version__)
        return 0
    from alliance.cli import app as typer_app

    return typer_app(argv)
