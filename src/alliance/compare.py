"""Compare two runs (two bots, two versions of one bot, two services) axis by axis, never as one number.

Per axis: each side's mean, the difference B - A and a 95% bootstrap interval, paired by session key (e.g. persona
and session in simulated runs) where both runs hold the same sessions, unpaired otherwise (Efron & Tibshirani 1993).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The axes compared, in the order shown: (label, session column, kind); "rate" columns are flags (share of sessions).
AXES: tuple[tuple[str, str, str], ...] = (
    ("client goal (probe z)", "alliance_client_goal_mean", "mean"),
    ("client task (probe z)", "alliance_client_task_mean", "mean"),
    ("client bond (probe z)", "alliance_client_bond_mean", "mean"),
    ("bond gap client - counsellor", "alliance_gap_bond_mean", "mean"),
    ("per-reply empathy (0-6)", "empathy_total_mean", "mean"),
    ("calibrated overall (0-100)", "calibrated_overall", "mean"),
    ("reflection-to-question ratio", "behaviour_reflection_question_ratio", "mean"),
    ("share of complex reflections", "behaviour_complex_reflection_share", "mean"),
    ("risk not addressed (share of sessions)", "safety_flag_risk_not_addressed", "rate"),
    ("bond high while a safety concern (share)", "safety_flag_bond_high_while_concern", "rate"),
    ("ruptures per session", "trajectory_n_ruptures", "mean"),
)


@dataclass(frozen=True)
class AxisComparison:
    axis: str
    column: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    paired: bool


def _values(df: pd.DataFrame, col: str, kind: str) -> pd.Series:
    v = df[col]
    if kind == "rate" or v.dtype == bool or str(v.dtype) == "boolean":
        return v.astype("Float64").astype(float)
    return pd.to_numeric(v, errors="coerce").astype(float)


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, *, pair_on: Sequence[str] | None = None, n_boot: int = 2000,
                 seed: int = 0, axes: Sequence[tuple[str, str, str]] = AXES) -> list[AxisComparison]:
    """Compare session tables ``a`` and ``b`` on every axis both hold.

    ``pair_on``: session columns identifying the same case in both runs; pairs are used when at least half of
    each run's sessions find their partner, otherwise the comparison is unpaired.
    """
    rng = np.random.default_rng(seed)
    out: list[AxisComparison] = []
    keys = list(pair_on or [])
    for label, col, kind in axes:
        if col not in a or col not in b:
            continue
        va, vb = _values(a, col, kind), _values(b, col, kind)
        paired = False
        if keys and all(k in a and k in b for k in keys):
            ka = a[keys].astype(str).agg("|".join, axis=1)
            kb = b[keys].astype(str).agg("|".join, axis=1)
            ma = pd.Series(va.to_numpy(), index=ka).groupby(level=0).mean()
            mb = pd.Series(vb.to_numpy(), index=kb).groupby(level=0).mean()
            both = pd.concat([ma, mb], axis=1, join="inner").dropna()
            if len(both) >= 2 and len(both) >= 0.5 * max(len(ma), len(mb)):
                paired = True
                d = (both.iloc[:, 1] - both.iloc[:, 0]).to_numpy()
                idx = rng.integers(0, len(d), size=(n_boot, len(d)))
                boots = d[idx].mean(axis=1)
                out.append(AxisComparison(label, col, len(both), len(both), float(both.iloc[:, 0].mean()),
                                          float(both.iloc[:, 1].mean()), float(d.mean()),
                                          *map(float, np.percentile(boots, [2.5, 97.5])), True))
                continue
        xa, xb = va.dropna().to_numpy(), vb.dropna().to_numpy()
        if len(xa) == 0 or len(xb) == 0:
            continue
        ba = xa[rng.integers(0, len(xa), size=(n_boot, len(xa)))].mean(axis=1)
        bb = xb[rng.integers(0, len(xb), size=(n_boot, len(xb)))].mean(axis=1)
        low, high = np.percentile(bb - ba, [2.5, 97.5])
        out.append(AxisComparison(label, col, len(xa), len(xb), float(xa.mean()), float(xb.mean()),
                                  float(xb.mean() - xa.mean()), float(low), float(high), paired))
    return out


def comparison_frame(rows: Sequence[AxisComparison]) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in rows])
