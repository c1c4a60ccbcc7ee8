"""Where a measure is going within a session and across the sessions of a course.

Level, slope (least squares over relative position, so sessions of different length compare), and the
first-versus-last-third contrast used throughout the alliance literature on within-session change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY


def relative_position(turn_index: pd.Series, groups: pd.Series | list) -> pd.Series:
    """Position of each turn within its group scaled to [0, 1] (0 = first turn, 1 = last)."""
    rank = turn_index.groupby(groups).rank(method="first") - 1
    n = turn_index.groupby(groups).transform("size") - 1
    return (rank / n.where(n > 0, 1)).astype(float)


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x, NaN when fewer than 3 finite points or no spread in x."""
    m = np.isfinite(x) & np.isfinite(y)
    if m.sum() < 3:
        return float("nan")
    x, y = x[m], y[m]
    dx = x - x.mean()
    den = float((dx * dx).sum())
    return float((dx * (y - y.mean())).sum() / den) if den > 0 else float("nan")


def summarise_series(values: pd.DataFrame, position: pd.Series, keys: pd.DataFrame) -> pd.DataFrame:
    """Per group in ``keys`` (course_id, session_id): mean, slope over position, first and last third mean.

    Returns columns ``<col>_mean``, ``<col>_slope``, ``<col>_first``, ``<col>_last`` for every column of
    ``values``; rows where a value is NaN are ignored for that column.
    """
    df = values.copy()
    df["_pos"] = position.to_numpy()
    for k in SESSION_KEY:
        df[k] = keys[k].to_numpy()
    out = {}
    for key, g in df.groupby(SESSION_KEY, sort=False):
        pos = g["_pos"].to_numpy(dtype=float)
        row = {}
        for c in values.columns:
            y = g[c].to_numpy(dtype=float)
            ok = np.isfinite(y)
            row[f"{c}_mean"] = float(np.mean(y[ok])) if ok.any() else np.nan
            row[f"{c}_slope"] = slope(pos, y)
            first, last = ok & (pos <= 1 / 3), ok & (pos >= 2 / 3)
            row[f"{c}_first"] = float(np.mean(y[first])) if first.any() else np.nan
            row[f"{c}_last"] = float(np.mean(y[last])) if last.any() else np.nan
        out[key] = row
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
    return res
