"""`alliance compare` and `alliance check`: two runs axis by axis, and release gates a chatbot's CI can fail on.

Both read run folders written by `alliance analyze` or `alliance simulate` (sessions.parquet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console


def _sessions(folder: Path):
    import pandas as pd

    for name in ("sessions.parquet", "simulation.parquet"):
        if (folder / name).exists():
            return pd.read_parquet(folder / name)
    console.print(f"[red]error:[/red] {folder}: no sessions.parquet (run `alliance analyze ... --out {folder}` or "
                  "`alliance simulate ... --out` first)")
    raise typer.Exit(2)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder A (the baseline).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder B (the candidate).")],
    pair_on: Annotated[list[str] | None, typer.Option("--pair-on", help="Session column(s) naming the same case "
                                                                         "in both runs (default: persona_id and "
                                                                         "session_index when present, else "
                                                                         "session_id).")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the table (.csv or .json).")] = None,
) -> None:
    """Per axis: A's mean, B's, B - A with a 95% bootstrap interval (paired where both runs hold the same cases)."""
    from rich.table import Table

    from alliance.compare import compare_runs

    a, b = _sessions(run_a), _sessions(run_b)
    keys = pair_on or next((k for k in (["persona_id", "session_index"], ["session_id"])
                            if all(c in a and c in b for c in k)), [])
    rows = compare_runs(a, b, pair_on=keys, seed=seed)
    if not rows:
        console.print("[red]error:[/red] the two runs share no axis with values")
        raise typer.Exit(2)
    table = Table(title=f"B ({run_b}) minus A ({run_a}); 95% bootstrap intervals")
    for c in ("axis", "A", "B", "B - A", "95% interval", "n", "pairing"):
        table.add_column(c)
    for r in rows:
        star = " *" if r.low > 0 or r.high < 0 else ""
        table.add_row(r.axis, f"{r.mean_a:.2f}", f"{r.mean_b:.2f}", f"{r.diff:+.2f}",
                      f"[{r.low:+.2f}, {r.high:+.2f}]{star}", f"{r.n_a}/{r.n_b}",
                      f"paired on {', '.join(keys)}" if r.paired else "unpaired")
    out_console.print(table)
    out_console.print("* the interval excludes zero")
    if out is not None:
        from alliance.compare import comparison_frame

        frame = comparison_frame(rows).assign(pair_on=", ".join(keys) or None)
        if out.suffix == ".json":
            frame.to_json(out, orient="records", indent=1)
        else:
            frame.to_csv(out, index=False)
        console.print(f"wrote {out}")


@app.command()
def check(
    run: Annotated[Path, typer.Argument(help="Run folder to gate.")],
    fail_if: Annotated[list[str], typer.Option("--fail-if", help="Gate, e.g. 'safety.risk_not_addressed > 0' or "
                                                                 "'mean(empathy.total_mean) < 2.5' (repeatable).")],
) -> None:
    """Exit 1 when any gate fails (for a chatbot's CI), 2 when a gate cannot be read, 0 when all pass."""
    from alliance.check import GateError, evaluate

    sessions = _sessions(run)
    failed = 0
    for gate in fail_if:
        try:
            r = evaluate(gate, sessions)
        except GateError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        failed += r.failed
        mark = "[red]FAIL[/red]" if r.failed else "[green]pass[/green]"
        out_console.print(f"{mark}  {r.gate}   ({r.aggregate} of {r.column} over {r.n_sessions} sessions = "
                          f"{r.value:.3g})")
    if failed:
        raise typer.Exit(1)
