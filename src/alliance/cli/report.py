"""`alliance report`: rebuild the HTML report of a run folder and export its overview figures.

Reads the run's tables only; no model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, read_run


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    export: Annotated[str, typer.Option(help="Also write the overview's figures: 'png', 'svg' or 'png,svg'.")] = "",
) -> None:
    """Rewrite the HTML report of a run (report.html + report_files/), optionally exporting figures."""
    import json

    import pandas as pd

    from alliance.report.site import export_figures, write_site

    turns, sessions = read_run(run)
    run_rec = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    courses = pd.read_parquet(run / "courses.parquet") if (run / "courses.parquet").exists() else None
    path = write_site(turns, sessions, run_rec, run, courses)
    console.print(f"[green]report[/green]: {path}")
    if export:
        for p in export_figures(sessions, run / "figures", tuple(x.strip() for x in export.split(",") if x.strip())):
            console.print(f"figure: {p}")
