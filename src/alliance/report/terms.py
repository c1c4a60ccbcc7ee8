"""The report's words, each defined once: a gap's trend, a session's or course's direction of change, risk levels.

Evidence: the trajectory lens's reliable-change classes (Jacobson & Truax 1991, |RCI| >= 1.96) and the safety lens's
C-SSRS-style levels; every block of every page reads these functions, so no two blocks can disagree on a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SUBSCALES = ("goal", "task", "bond")
#: The measures whose reliable change says whether a session (or course) is getting better or worse for the client:
#: the client's own goal, task and bond, how much the client says, and the counsellor's per-reply empathy. The same
#: measures raise the trajectory lens's "declining" flags.
DIRECTION_MEASURES: tuple[str, ...] = ("client_bond", "client_task", "client_goal", "client_words", "empathy")
#: Risk levels from least to most severe; "unknown" (empty, garbled or non-English text) says nothing of risk and
#: ranks with "none". Until the safety lens's string labels are merged, its old integer levels map onto LEVELS.
LEVELS: tuple[str, ...] = ("none", "low", "high", "imminent")
RISK_RANK: dict[str, int] = {"": -1, "none": 0, "unknown": 0, "low": 1, "high": 2, "imminent": 3}
#: Levels that put a session on the overview's safety triage list.
TRIAGE_LEVELS: tuple[str, ...] = ("low", "high", "imminent")


def _get(row: Mapping[str, Any] | pd.Series, key: str) -> Any:
    v = row.get(key) if hasattr(row, "get") else None
    return None if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)) else v


def gap_trend(row: Mapping[str, Any] | pd.Series, subscale: str) -> str:
    """'narrowing', 'widening', 'stable' or 'unknown' for the client-minus-counsellor gap on one subscale.

    One definition: the change in |gap| from the first to the last third counts only when it exceeds what the two
    sides' measurement error allows (the trajectory lens's reliable change on a difference score). Where the
    trajectory lens did not run, the alliance lens's margin rule is the only one there is, and is used instead."""
    for col in (f"trajectory_gap_{subscale}_trend", f"alliance_gap_{subscale}_trend"):
        v = _get(row, col)
        if isinstance(v, str) and v in ("narrowing", "widening", "stable"):
            return v
    return "unknown"


def with_one_gap_trend(row: pd.Series) -> pd.Series:
    """A copy of a session row whose every gap-trend column holds :func:`gap_trend`, so each block of a page that
    shows a trend shows the same word (the tables on disk are not touched)."""
    row = row.copy()
    for s in SUBSCALES:
        trend = gap_trend(row, s)
        for col in (f"trajectory_gap_{s}_trend", f"alliance_gap_{s}_trend"):
            if col in row.index:
                row[col] = trend
    return row


def change_direction(row: Mapping[str, Any] | pd.Series, prefix: str = "trajectory_") -> tuple[str, float]:
    """A session's (``prefix='trajectory_'``) or course's (``prefix=''``) direction of change and its severity.

    'declining' when at least one of :data:`DIRECTION_MEASURES` reliably declined and none reliably improved;
    'improving' the reverse; 'mixed' when both happened; 'stable' when every known measure is stable; 'unknown' when
    none is known. Severity: the largest |RCI| among the declining measures (0 unless declining)."""
    classes = {m: _get(row, f"{prefix}{m}_class") for m in DIRECTION_MEASURES}
    known = {m: c for m, c in classes.items() if c in ("declining", "improving", "stable")}
    down = [m for m, c in known.items() if c == "declining"]
    up = [m for m, c in known.items() if c == "improving"]
    if not known:
        return "unknown", 0.0
    if down and up:
        return "mixed", 0.0
    if up:
        return "improving", 0.0
    if not down:
        return "stable", 0.0
    rcis = [abs(float(r)) for m in down if (r := _get(row, f"{prefix}{m}_rci")) is not None and np.isfinite(float(r))]
    return "declining", max(rcis, default=0.0)


def worst_declining(frame: pd.DataFrame, n: int = 20, prefix: str = "trajectory_") -> pd.DataFrame:
    """The ``n`` most severely declining rows of a session (or course) table, most severe first; never a row whose
    :func:`change_direction` is anything but 'declining'. Adds ``direction``, ``severity`` and ``declining`` (the
    measures that declined, with their RCI)."""
    if frame.empty:
        return frame.assign(direction=pd.Series(dtype=str), severity=pd.Series(dtype=float),
                            declining=pd.Series(dtype=str))
    # vectorised (a session table can be 100k rows): the same rule as change_direction, column by column
    down = np.zeros(len(frame), bool)
    up = np.zeros(len(frame), bool)
    severity = np.zeros(len(frame))
    for m in DIRECTION_MEASURES:
        if f"{prefix}{m}_class" not in frame:
            continue
        cls = frame[f"{prefix}{m}_class"].astype(object).to_numpy()
        d, u = cls == "declining", cls == "improving"
        down |= d
        up |= u
        if f"{prefix}{m}_rci" in frame:
            rci = np.abs(pd.to_numeric(frame[f"{prefix}{m}_rci"], errors="coerce").to_numpy(dtype=float))
            severity = np.where(d & np.isfinite(rci), np.maximum(severity, rci), severity)
    declining = down & ~up
    sev = pd.Series(severity[declining], index=frame.index[declining])
    keep = sev.sort_values(ascending=False, kind="stable").head(n).index
    out = frame.loc[keep].assign(direction="declining", severity=sev[keep])
    out["declining"] = [", ".join(
        f"{m.replace('_', ' ')} (RCI {float(r[f'{prefix}{m}_rci']):+.1f})" for m in DIRECTION_MEASURES
        if r.get(f"{prefix}{m}_class") == "declining") for r in out.to_dict("records")]
    return out


def risk_label(v: Any) -> str:
    """The safety lens's risk level as a label: strings are kept (lower-cased), the old integer levels 0-3 map onto
    none/low/high/imminent, and a missing value (a counsellor turn, or no safety lens) is ''."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, str):
        return v.strip().lower()
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return ""
    i = int(f)
    return LEVELS[i] if 0 <= i < len(LEVELS) else str(v)


def risk_labels(values: pd.Series) -> pd.Series:
    """:func:`risk_label` for a whole column (old integer or new string levels)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = pd.to_numeric(values, errors="coerce")
        out = pd.Series("", index=values.index, dtype=object)
        ok = num.notna() & (num >= 0) & (num < len(LEVELS))
        out[ok] = [LEVELS[int(x)] for x in num[ok]]
        return out
    return values.map(risk_label)


def risk_rank(label: str) -> int:
    """Order of severity of a risk label (higher = more severe); unrecognised labels rank lowest."""
    return RISK_RANK.get(label, -1)
