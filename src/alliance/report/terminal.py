"""A short terminal summary of a run: per session and side, goal, task and bond, and the gap between sides.

Scores are calibrated probe similarity (z units), a zero-shot proxy; the summary says so in its title.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from alliance.report.terms import gap_trend

SUBSCALES = ("goal", "task", "bond")


def _f(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:+.2f}"


def _labels(meta: Any) -> str:
    if isinstance(meta, str):
        meta = json.loads(meta) if meta else {}
    meta = meta or {}
    return ", ".join(f"{k}={meta[k]}" for k in ("mi_quality", "score", "topic") if k in meta)


def print_summary(analysis: Any, console: Console) -> None:
    table = Table(title="Alliance probe similarity per session (calibrated z; a proxy, not client ratings)",
                  show_lines=True)
    table.add_column("session", overflow="fold")
    table.add_column("side")
    for sub in SUBSCALES:
        table.add_column(f"{sub}\nmean (first→last)", justify="right")
    for _, r in analysis.sessions.iterrows():
        name = f"{r['session_id']}\n{_labels(r.get('meta'))}"
        for side in ("client", "counsellor"):
            cells = [f"{_f(r.get(f'alliance_{side}_{s}_mean'))} ({_f(r.get(f'alliance_{side}_{s}_first'))}→"
                     f"{_f(r.get(f'alliance_{side}_{s}_last'))})" for s in SUBSCALES]
            table.add_row(name if side == "client" else "", side, *cells)
        gaps = [f"{_f(r.get(f'alliance_gap_{s}_mean'))} {gap_trend(r, s)}" for s in SUBSCALES]  # the report's word
        table.add_row("", "gap", *gaps)
    console.print(table)
