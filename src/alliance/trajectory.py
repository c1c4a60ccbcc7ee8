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


# reliability and reliable change ----------------------------------------------------------------------------
#: Jacobson & Truax (1991): a change is reliable when |RCI| exceeds this (two-sided 5%).
RCI_CRITICAL = 1.96


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """Reliability of a measure ``factor`` times as long as one with reliability ``r`` (Spearman 1910; Brown 1910)."""
    if not np.isfinite(r):
        return float("nan")
    r = float(np.clip(r, -0.999, 0.999))
    return float(factor * r / (1 + (factor - 1) * r))


def split_half_reliability(values: pd.Series, groups: pd.Series | np.ndarray, min_per_half: int = 2) -> dict[str, float]:
    """Split-half reliability of a per-group mean: odd vs even observations within each group (session or
    session part), correlated across groups and corrected to full length with Spearman-Brown.

    Returns ``reliability``, ``sd`` (between-group SD of the group means) and ``n_groups``.
    """
    df = pd.DataFrame({"v": np.asarray(values, dtype=float), "g": np.asarray(groups)}).dropna(subset=["v"])
    if df.empty:
        return {"reliability": float("nan"), "sd": float("nan"), "n_groups": 0}
    df["k"] = df.groupby("g", sort=False).cumcount() % 2
    counts = df.groupby(["g", "k"], sort=False)["v"].size().unstack()
    halves = df.groupby(["g", "k"], sort=False)["v"].mean().unstack()
    ok = (counts >= min_per_half).all(axis=1)
    halves = halves[ok]
    if len(halves) < 10:
        return {"reliability": float("nan"), "sd": float("nan"), "n_groups": len(halves)}
    r = float(np.corrcoef(halves[0], halves[1])[0, 1])
    means = df[df["g"].isin(halves.index)].groupby("g")["v"].mean()
    return {"reliability": spearman_brown(r), "sd": float(means.std(ddof=1)), "n_groups": len(halves)}


def reliable_change(diff: np.ndarray | float, sd: float, reliability: float) -> np.ndarray:
    """Jacobson & Truax (1991) reliable change index: diff / (sqrt(2) * sd * sqrt(1 - reliability))."""
    se_diff = np.sqrt(2.0) * sd * np.sqrt(max(1.0 - reliability, 1e-6)) if np.isfinite(sd) and np.isfinite(
        reliability) else np.nan
    return np.asarray(diff, dtype=float) / se_diff


def change_class(rci: np.ndarray | float, higher_is_better: bool = True) -> np.ndarray:
    """'improving', 'stable' or 'declining' from a reliable change index; 'unknown' where it is NaN."""
    rci = np.asarray(rci, dtype=float) * (1 if higher_is_better else -1)
    return np.select([~np.isfinite(rci), rci >= RCI_CRITICAL, rci <= -RCI_CRITICAL],
                     ["unknown", "improving", "declining"], default="stable")


def slope_with_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """OLS slope of y on x and its standard error (NaN when fewer than 3 finite points)."""
    m = np.isfinite(x) & np.isfinite(y)
    if m.sum() < 3:
        return float("nan"), float("nan")
    x, y = x[m], y[m]
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    if sxx <= 0:
        return float("nan"), float("nan")
    b = float((dx * (y - y.mean())).sum() / sxx)
    resid = y - y.mean() - b * dx
    se = float(np.sqrt((resid @ resid) / (len(x) - 2) / sxx)) if len(x) > 2 else float("nan")
    return b, se


def course_trajectories(sessions: pd.DataFrame, measures: dict[str, dict[str, float]],
                        columns: dict[str, str]) -> pd.DataFrame:
    """Across the sessions of each course: level (mean of session means), slope per session with a 95% interval,
    first-to-last change and its reliable-change class.

    ``columns`` maps a measure name to its per-session mean column in ``sessions``; ``measures`` holds each
    measure's stored ``session`` reliability and SD (see :func:`estimate_reliability`).
    """
    rows = []
    for course, g in sessions.sort_values(["course_id", "session_index", "session_id"]).groupby("course_id", sort=False):
        row: dict[str, object] = {"course_id": course, "n_sessions": len(g)}
        x = np.arange(len(g), dtype=float)
        for name, col in columns.items():
            if col not in g:
                continue
            y = g[col].to_numpy(dtype=float)
            ok = np.isfinite(y)
            b, se = slope_with_se(x, y)
            row[f"{name}_level"] = float(np.mean(y[ok])) if ok.any() else np.nan
            row[f"{name}_slope"], row[f"{name}_slope_lo"], row[f"{name}_slope_hi"] = b, b - 1.96 * se, b + 1.96 * se
            if ok.sum() >= 2:
                diff = float(y[ok][-1] - y[ok][0])
                m = measures.get(name, {})
                rci = float(reliable_change(diff, m.get("session_sd", np.nan), m.get("session_reliability", np.nan)))
            else:
                diff, rci = np.nan, np.nan
            row[f"{name}_change"], row[f"{name}_rci"] = diff, rci
            row[f"{name}_class"] = str(change_class(rci))
        rows.append(row)
    return pd.DataFrame(rows)


#: Course-level measures: name -> per-session column (from the trajectory lens's session summary).
COURSE_MEASURES = {n: f"trajectory_{n}_level" for n in (
    "client_goal", "client_task", "client_bond", "counsellor_goal", "counsellor_task", "counsellor_bond", "empathy",
    "client_words")}


def course_table(sessions: pd.DataFrame, reliability: dict | None = None) -> pd.DataFrame:
    """One row per course of care: each measure's level, slope across sessions with a 95% interval, and the
    first-to-last-session change classed by reliable change (session-mean reliability from the lens's file)."""
    if reliability is None:
        from alliance.lenses.trajectory import load_reliability

        reliability = load_reliability()
    measures = {k: v for k, v in reliability.get("measures", {}).items()}
    cols = {n: c for n, c in COURSE_MEASURES.items() if c in sessions}
    out = course_trajectories(sessions, measures, cols)
    if "calibrated_overall" in sessions:
        # numeric predictions only: the guard-rail columns (out-of-domain feature names, flags) are not averaged
        num = [c for c in sessions if c.startswith("calibrated_") and pd.api.types.is_numeric_dtype(sessions[c])
               and not pd.api.types.is_bool_dtype(sessions[c])]
        means = sessions.groupby("course_id", sort=False)[num].mean()
        out = out.merge(means.add_suffix("_mean").reset_index(), on="course_id", how="left")
    return out
