"""`alliance gap`: per-reply empathy beside the alliance's course, and the corpus-level gap analysis.

The analysis itself lives in alliance.gap (cross-validated, folds by client); this module only prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console, read_run


@app.command()
def gap(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    limit: Annotated[int, typer.Option(help="Show at most this many sessions.")] = 50,
    outcome: Annotated[str | None, typer.Option(
        help="A session label holding a rating (e.g. score, empathy, unwilling_to_continue): also print, across "
             "the corpus, how much of it per-reply empathy explains and what each other measure adds "
             "(cross-validated, no text).")] = None,
    group_key: Annotated[str, typer.Option(help="With --outcome: the session label naming the client, so no "
                                                "client is in two folds (shuffled folds when absent).")] = "client_id",
    seed: Annotated[int, typer.Option(help="With --outcome: seed of the shuffled folds.")] = 0,
) -> None:
    """The empathy-alliance gap per session: mean per-reply empathy beside the alliance trajectory and the
    client's own rating where known; with --outcome, the corpus-level analysis (docs/findings.md)."""
    import json

    import numpy as np
    from rich.table import Table

    t, s = read_run(run)

    def f(v):
        return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else (
            f"{v:+.2f}" if isinstance(v, float) else str(v))

    emp_col = next((c for c in ("empathy_total_mean", "trajectory_empathy_level") if c in s), None)
    table = Table(title="empathy per reply vs the alliance's course (probe z units; calibrated = predicted client "
                        "rating)")
    for c in ("session", "empathy", "client bond first→last", "bond change", "ruptures (repaired)",
              "cal. goal / task / bond", "cal. overall", "client's rating"):
        table.add_column(c, overflow="fold")
    for _, r in s.head(limit).iterrows():
        meta = r.get("meta")
        meta = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        rating = ", ".join(f"{k}={meta[k]}" for k in ("score", "empathy", "relevance", "mi_quality") if k in meta)
        seen = r.get("calibration_in_training")
        if rating and isinstance(seen, (bool, np.bool_)) and seen:
            rating += " (trained the calibration: no test of it)"
        table.add_row(
            str(r["session_id"]), f(r.get(emp_col)) if emp_col else "–",
            f"{f(r.get('trajectory_client_bond_first'))}→{f(r.get('trajectory_client_bond_last'))}",
            str(r.get("trajectory_client_bond_class", "–")),
            f"{r.get('trajectory_n_ruptures', '–')} ({r.get('trajectory_n_repaired', '–')})",
            " / ".join(f(r.get(f"calibrated_{a}")) for a in ("goal", "task", "bond")),
            f(r.get("calibrated_overall")), rating or "–")
    out_console.print(table)
    if emp_col is None:
        console.print("no per-reply empathy columns in this run (add --lens empathy)")
    if outcome:
        _gap_analysis(run, t, s, outcome, group_key, seed)


def _gap_analysis(run: Path, turns, sessions, outcome: str, group_key: str, seed: int) -> None:
    """Print the incremental, cross-validated gap analysis of one session label (alliance.gap)."""
    import json

    import numpy as np
    import pandas as pd
    from rich.table import Table

    from alliance.calibration import session_features
    from alliance.gap import GapError, incremental_gap, outcome_numbers

    metas = [json.loads(m) if isinstance(m, str) and m else (m or {}) for m in sessions["meta"]]
    if not any(outcome in m for m in metas):
        rated = sorted({k for m in metas for k, v in m.items() if isinstance(v, (int, float, bool))
                        or (isinstance(v, str) and np.isfinite(outcome_numbers([v])[0][0]))})
        console.print(f"[red]error:[/red] {run / 'sessions.parquet'}: no session has the label {outcome!r}; "
                      f"numeric labels here: {', '.join(rated) or 'none'}")
        raise typer.Exit(2)

    keys = list(zip(sessions["course_id"], sessions["session_id"], strict=True))
    X = session_features(turns, sessions)
    # raw values: alliance.gap reads numbers, true/false and numeric strings, and names text it cannot read
    y = pd.Series({k: m.get(outcome) for k, m in zip(keys, metas, strict=True)}, dtype=object).reindex(X.index)
    groups = pd.Series({k: m.get(group_key) for k, m in zip(keys, metas, strict=True)}).reindex(X.index)
    groups = groups.astype(str).to_numpy() if groups.notna().all() else None
    try:
        res = incremental_gap(X, y, groups=groups, seed=seed)
    except GapError as e:
        console.print(f"[red]error:[/red] {run}: --outcome {outcome}: {e}")
        raise typer.Exit(2) from None
    for w in res.attrs.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] --outcome {outcome}: {w}")
    metric = res["metric"].iloc[0]
    table = Table(title=f"what explains {outcome!r} ({res['n'].iloc[0]} rated sessions; out-of-fold "
                        f"{'AUC' if metric == 'auc' else 'Spearman rho'}, "
                        f"{'folds by ' + group_key if groups is not None else 'shuffled folds'}, no text)")
    for c in ("step: + measure", "columns", metric, "gain"):
        table.add_column(c)
    for r in res.itertuples():
        table.add_row(f"+ {r.added}" if r.Index else r.added, str(r.n_features), f"{r.value:.3f}",
                      "–" if not np.isfinite(r.gain) else f"{r.gain:+.3f}")
    out_console.print(table)
