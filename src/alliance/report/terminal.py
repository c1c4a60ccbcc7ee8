"""A short terminal summary of a run: per session, each side's goal, task and bond and the gap between them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table


def _f(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:+.2f}"


def print_summary(analysis: Any, console: Console) -> None:
    s = analysis.sessions
    table = Table(title="alliance probe similarity per session (calibrated z; a proxy, not client ratings)")
    table.add_column("session")
    table.add_column("labels")
    for side in ("client", "counsellor"):
        for sub in ("goal", "task", "bond"):
            table.add_column(f"{side[:3]} {sub}", justify="right")
    table.add_column("bond gap first→last")
    for _, r in s.iterrows():
        meta = r.get("meta")
        if isinstance(meta, str):
            import json

            meta = json.loads(meta) if meta else {}
        labels = ", ".join(f"{k}={meta[k]}" for k in ("mi_quality", "score") if k in (meta or {}))
        cells = [_f(r.get(f"alliance_{side}_{sub}_mean")) for side in ("client", "counsellor")
                 for sub in ("goal", "task", "bond")]
        gap = f"{_f(r.get('alliance_gap_bond_first'))}→{_f(r.get('alliance_gap_bond_last'))} ({r.get('alliance_gap_bond_trend', '')})"
        table.add_row(str(r["session_id"]), labels, *cells, gap)
    console.print(table)
