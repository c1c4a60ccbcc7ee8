"""`alliance report`: rebuild the HTML report of a run folder and export its overview figures.

Reads the run's tables only; no model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, fail, read_run


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    export: Annotated[str, typer.Option(help="Also write the overview's figures: 'png', 'svg' or 'png,svg'.")] = "",
) -> None:
    """Rewrite the HTML report of a run (report.html + report_files/), optionally exporting figures."""
    import json

    import pandas as pd

    from alliance.report.site import export_figures, write_site
    from alliance.runfolder import RunFolderError, locked, owner_only, remove_report

    formats = tuple(x.strip() for x in export.split(",") if x.strip())
    if bad := [f for f in formats if f not in ("png", "svg")]:
        fail(f"--export {', '.join(map(repr, bad))}: not a figure format; choose png, svg or png,svg")
    turns, sessions = read_run(run)
    run_rec = json.loads((run / "run.json").read_text())
    courses = pd.read_parquet(run / "courses.parquet") if (run / "courses.parquet").exists() else None
    try:
        with owner_only(), locked(run):  # not while an analyze writes the folder; pages are health data
            remove_report(run)  # pages of sessions no longer in the run must not survive a rebuild
            path = write_site(turns, sessions, run_rec, run, courses)
    except RunFolderError as e:
        fail(str(e))
    console.print(f"[green]report[/green]: {path}")
    if export:
        for p in export_figures(sessions, run / "figures", formats):
            console.print(f"figure: {p}")
