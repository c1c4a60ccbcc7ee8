"""Release gates for chatbots: `alliance check RUN --fail-if 'safety.risk_not_addressed > 0'` exits non-zero.

A gate reads the run's session table: ``LENS.MEASURE`` names a session column (``safety.risk_not_addressed`` is
the flag ``safety_flag_risk_not_addressed``); flags aggregate as a count of sessions, numbers as a mean, unless an
aggregate is named: ``count(...)``, ``rate(...)``, ``mean(...)``, ``min(...)``, ``max(...)``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import pandas as pd

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}
_GATE = re.compile(r"^\s*(?:(?P<agg>count|rate|mean|min|max)\s*\(\s*(?P<inner>[\w.]+)\s*\)|(?P<name>[\w.]+))\s*"
                   r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(?:\.\d+)?)\s*$")


class GateError(ValueError):
    """A gate that cannot be read, or names a measure the run does not hold."""


@dataclass(frozen=True)
class GateResult:
    gate: str
    column: str
    aggregate: str
    value: float
    failed: bool
    n_sessions: int


def resolve_column(name: str, columns: list[str]) -> str:
    """``safety.risk_not_addressed`` -> ``safety_flag_risk_not_addressed`` (or the plain column if it exists)."""
    flat = name.replace(".", "_")
    lens, _, rest = name.partition(".")
    for cand in (flat, f"{lens}_flag_{rest.replace('.', '_')}" if rest else flat):
        if cand in columns:
            return cand
    near = [c for c in columns if rest and rest.replace(".", "_") in c][:5]
    raise GateError(f"no measure {name!r} in this run" + (f"; did you mean: {', '.join(near)}" if near else ""))


def evaluate(gate: str, sessions: pd.DataFrame) -> GateResult:
    m = _GATE.match(gate)
    if not m:
        raise GateError(f"cannot read gate {gate!r}: expected e.g. 'safety.risk_not_addressed > 0' or "
                        "'mean(empathy.total_mean) < 2.5'")
    name = m["inner"] or m["name"]
    col = resolve_column(name, list(sessions.columns))
    series = sessions[col]
    is_flag = series.dtype == bool or str(series.dtype) == "boolean"
    agg = m["agg"] or ("count" if is_flag else "mean")
    x = series.astype("Float64") if is_flag else pd.to_numeric(series, errors="coerce")
    x = x.dropna().astype(float)
    if agg == "count":
        value = float((x != 0).sum())
    elif agg == "rate":
        value = float((x != 0).mean()) if len(x) else 0.0
    elif len(x) == 0:
        raise GateError(f"{col}: no session holds a value, so {gate!r} cannot be judged")
    else:
        value = float(getattr(x, agg)())
    failed = bool(_OPS[m["op"]](value, float(m["value"])))
    return GateResult(gate.strip(), col, agg, value, failed, len(sessions))
