"""What every command shares: the consoles, the on-error choice, progress bars and run-folder reading.

Kept free of heavy imports: pandas is imported inside the functions that need it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

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
    import pandas as pd

    for f in ("turns.parquet", "sessions.parquet"):
        if not (folder / f).exists():
            console.print(f"[red]error:[/red] {folder / f}: missing; run `alliance analyze ... --out {folder}` first")
            raise typer.Exit(2)
    return pd.read_parquet(folder / "turns.parquet"), pd.read_parquet(folder / "sessions.parquet")
