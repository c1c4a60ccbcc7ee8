"""What every command shares: the consoles, the on-error choice, progress bars and run-folder reading.

Kept free of heavy imports: pandas is imported inside the functions that need it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)
out_console = Console()


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


def progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]scoring turns"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["text=utterance", ...]`` -> ``{"text": "utterance"}``; a value without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def read_run(folder: Path):
    """``(turns, sessions)`` of a complete run folder; an incomplete, mixed or missing one ends the command with
    one line saying why (the check is :func:`alliance.runfolder.run_record`, shared by every reader)."""
    import pandas as pd

    from alliance.runfolder import RunFolderError, run_record

    try:
        run_record(folder)
    except RunFolderError as e:
        fail(str(e))
    return pd.read_parquet(folder / "turns.parquet"), pd.read_parquet(folder / "sessions.parquet")


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one red line on stderr (no traceback)."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
