"""The ``alliance`` command line: one module per command group, all registered on one Typer app.

Heavy libraries (pandas, torch, sentence-transformers) are imported inside commands, so ``--help`` is instant.
"""

from __future__ import annotations

from alliance.cli import analyze, compare, gap, info, redact, report, serve, simulate, train  # noqa: F401  (registers the commands)
from alliance.cli.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()
