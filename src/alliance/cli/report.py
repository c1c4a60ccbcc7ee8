"""`alliance report`: rebuild the HTML report of a run folder and export its overview figures.

Reads the run's tables only; no model is loaded. Session pages are written in parallel processes, with progress.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, fail, read_run

#: Kept in step with alliance.report.overview.EXPORT_FORMATS (not imported: that module imports pandas).
EXPORT_FORMATS = ("png", "svg", "pdf")


class PagesChoice(str, Enum):
    auto = "auto"
    all = "all"
    flagged = "flagged"
    none = "none"


def export_formats(value: str) -> tuple[str, ...]:
    """``'png,svg'`` -> ``('png', 'svg')``; an unknown format is one line naming it and the valid ones."""
    formats = tuple(x.strip().lower() for x in value.split(",") if x.strip())
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:
        console.print(f"[red]error:[/red] --export {bad[0]!r}: not a figure format; choose "
                      f"{', '.join(EXPORT_FORMATS[:-1])} or {EXPORT_FORMATS[-1]} (comma-separated for several)")
        raise typer.Exit(2)
    return formats


def page_progress() -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callback for session pages and a function that closes it: a bar with an ETA on a terminal, a
    line every tenth of the way when output goes to a log file (a bar would print nothing there)."""
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]writing session pages"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=console)
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                bar.start()
                task = bar.add_task("pages", total=total)
            bar.update(task, completed=done)

        return update, bar.stop
    step = {"next": 0}

    def log(done: int, total: int) -> None:
        if done >= step["next"] or done == total:
            console.print(f"session pages: {done}/{total}")
            step["next"] = done + max(1, total // 10)

    return log, lambda: None


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    export: Annotated[str, typer.Option(help="Also write the overview's figures: png, svg, pdf, or several "
                                             "comma-separated (e.g. 'png,svg').")] = "",
    pages: Annotated[PagesChoice, typer.Option(
        help="Session pages to write: all; flagged (trajectory or safety flags, high or imminent risk, and the "
             "200 worst-declining); none (the overview only); auto = all up to 2,000 sessions, flagged beyond.")
    ] = PagesChoice.auto,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes writing session pages (default: the CPU "
                                                            "count, at most 8); the pages are the same either way.")
                       ] = None,
) -> None:
    """Rewrite the HTML report of a run (report.html + report_files/), optionally exporting figures. Pages an
    earlier report left in report_files/ that this one does not write are removed."""
    formats = export_formats(export) if export else ()  # checked before anything is written
    import json

    import pandas as pd

    from alliance.report.site import export_figures, write_site
    from alliance.runfolder import RunFolderError, locked, owner_only, remove_report

    turns, sessions = read_run(run)
    run_rec = json.loads((run / "run.json").read_text())
    courses = pd.read_parquet(run / "courses.parquet") if (run / "courses.parquet").exists() else None
    update, close = page_progress()
    try:
        with owner_only(), locked(run):  # not while an analyze writes the folder; pages are health data
            remove_report(run)  # pages of sessions no longer in the run must not survive a rebuild
            path = write_site(turns, sessions, run_rec, run, courses, pages=pages.value, workers=workers,
                              progress=update)
    except RunFolderError as e:
        fail(str(e))
    finally:
        close()
    console.print(f"[green]report[/green]: {path}")
    for p in export_figures(sessions, run / "figures", formats) if formats else []:
        console.print(f"figure: {p}")
