"""The safety lens's session flags (risk not addressed, bond high while a concern stands, empathy high while goal and
task stay flat), each with its evidence turns and reason, and the lens's block in the session report.

Evidence: the safety columns of the turns; the empathy and goal/task thresholds are set from the corpora's own
distributions (docs/safety.md gives the percentiles and how often each flag fires per corpus).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: turn level labels, lowest first ('unknown' is separate: text the lens could not read)
LEVELS: tuple[str, ...] = ("none", "low", "high", "imminent")
#: a session's mean bond (alliance lens, calibrated z, both sides) at or above this counts as "bond high": about the
#: upper quartile of AnnoMI's 133 sessions (median 0.08, 75th percentile 0.18 with the shipped probes)
BOND_HIGH_Z = 0.2
#: a session's mean counsellor ``empathy_total`` (0-6) at or above this counts as "empathy high": the upper quartile
#: (1.85) of 70 sampled whole sessions of AnnoMI, ESConv and KokoroChat (quartiles 1.59, 1.70, 1.85; 90% 2.07); the
#: old 3.0 was above every session tried (`validate_safety.py --only flags`, docs/safety.md)
EMPATHY_HIGH = 1.85
#: goal and task are "flat" when the client's slope over the session (z per session) is below this in size: about the
#: median |slope| of the same sessions (goal 0.32, task 0.25)
FLAT_SLOPE = 0.3
FLAG_NAMES = {
    "risk_not_addressed": "risk disclosed and not addressed",
    "bond_high_while_concern": "bond high while safety concern",
    "empathy_high_goal_task_flat": "empathy high while goal and task flat",
}


def level_rank(values: pd.Series) -> pd.Series:
    """0-3 for none/low/high/imminent from either convention (the old numeric levels or the new labels); NA for
    counsellor turns and 'unknown'."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("Float64")
    return values.astype("string").map(lambda v: LEVELS.index(v) if isinstance(v, str) and v in LEVELS
                                       else np.nan).astype("Float64")


def _turns(s: pd.DataFrame, mask: pd.Series) -> list[int]:
    return [int(x) for x in s.loc[mask.fillna(False).astype(bool), "turn_index"]]


def _empathy_col(s: pd.DataFrame, preferred: str | None) -> str | None:
    if preferred:
        return preferred if preferred in s else None
    for c in ("empathy_total", "empathy_score", "empathy_overall", "empathy"):
        if c in s and pd.api.types.is_numeric_dtype(s[c]):
            return c
    return None


def session_flags(s: pd.DataFrame, bond_high: float = BOND_HIGH_Z, empathy_high: float = EMPATHY_HIGH,
                  flat_slope: float = FLAT_SLOPE, empathy_column: str | None = None,
                  flag_threshold: float | None = None) -> dict[str, Any]:
    """The three session flags, each with its evidence turns and a one-line reason; plus plain counts. A high
    disclosure raises ``risk_not_addressed`` only when its ``safety_risk_p`` reaches ``flag_threshold`` (when given);
    an imminent one always does."""
    from alliance.trajectory import slope

    res: dict[str, Any] = {}
    rank = level_rank(s["safety_risk_level"])
    client = s["speaker"] == "client"
    disclosed = rank >= 1
    unknown = client & rank.isna()
    concern = s["safety_concern"].fillna(False).astype(bool) if "safety_concern" in s else pd.Series(False, s.index)
    addressed = s["safety_risk_addressed"] if "safety_risk_addressed" in s else pd.Series(pd.NA, index=s.index)
    not_met = disclosed & (addressed == False)  # noqa: E712 - NA stays NA (unanswered)
    high_not_met = not_met & (rank >= 2)
    if flag_threshold is not None and "safety_risk_p" in s:
        firm = (s["safety_risk_p"].astype("Float64") >= flag_threshold).fillna(False) | (rank >= 3).fillna(False)
        high_not_met = high_not_met & firm
    if rank.notna().any():
        res["safety_max_risk_level"] = LEVELS[int(rank.max())]
    else:
        res["safety_max_risk_level"] = "unknown" if bool(unknown.any()) else "none"
    res["safety_n_disclosures"] = int(disclosed.fillna(False).sum())
    res["safety_n_high_or_imminent"] = int((rank >= 2).fillna(False).sum())
    res["safety_n_unknown"] = int(unknown.sum())
    for k in ("means_info", "collusion", "dependence", "quieting", "sycophancy"):
        res[f"safety_n_{k}"] = int(s[f"safety_{k}"].fillna(False).sum()) if f"safety_{k}" in s else 0

    # a concern: a reply that failed (means, collusion, ...) or a firm high disclosure left unmet (a low one left
    # unacknowledged is shown in the transcript but is not enough to raise a session flag)
    concern_turns = sorted(set(_turns(s, concern) + _turns(s, high_not_met)))
    res["safety_concern_turns"] = ", ".join(map(str, concern_turns))

    # 1. high or imminent risk disclosed and not met; or any disclosure met with means or collusion
    harmful = pd.Series(False, index=s.index)
    for c in ("safety_means_info", "safety_collusion"):
        if c in s:
            harmful = harmful | s[c].fillna(False).astype(bool)
    harmful_reply = concern & harmful
    ev = sorted(set(_turns(s, high_not_met) + _turns(s, harmful_reply)))
    res["safety_flag_risk_not_addressed"] = bool(ev)
    res["safety_flag_risk_not_addressed_turns"] = ", ".join(map(str, ev))
    why = []
    if _turns(s, high_not_met):
        why.append(f"client turn(s) {', '.join(map(str, _turns(s, high_not_met)))} disclosed high or imminent risk "
                   "and the next counsellor turns neither asked about safety nor pointed to help"
                   + (f" (p >= {flag_threshold:.3f} or imminent)" if flag_threshold is not None else ""))
    if _turns(s, harmful_reply):
        why.append(f"counsellor turn(s) {', '.join(map(str, _turns(s, harmful_reply)))} gave means or colluded")
    res["safety_flag_risk_not_addressed_why"] = "; ".join(why)

    # 2. bond high while a safety concern stands
    if "alliance_bond" in s:
        bond = s["alliance_bond"].astype(float)
        bond_mean = float(bond.mean()) if bond.notna().any() else float("nan")
        flag = bool(np.isfinite(bond_mean) and bond_mean >= bond_high) and bool(concern_turns)
        res["safety_bond_mean"] = bond_mean
        res["safety_flag_bond_high_while_concern"] = flag
        res["safety_flag_bond_high_while_concern_turns"] = ", ".join(map(str, concern_turns)) if flag else ""
        res["safety_flag_bond_high_while_concern_why"] = (
            f"mean bond {bond_mean:.2f} >= {bond_high} while safety concerns stand at turns "
            f"{', '.join(map(str, concern_turns))}" if flag else "")

    # 3. empathy high while goal and task stay flat (only when an empathy lens ran)
    ecol = _empathy_col(s, empathy_column)
    if ecol is not None and "alliance_goal" in s and "alliance_task" in s:
        emp = s[ecol].astype(float).where(s["speaker"] == "counsellor")
        emp_mean = float(emp.mean()) if emp.notna().any() else float("nan")
        pos = s["turn_index"].astype(float)
        pos = (pos - pos.min()) / max(float(pos.max() - pos.min()), 1.0)
        slopes = {}
        for sub in ("goal", "task"):
            y = s[f"alliance_{sub}"].astype(float).where(client)
            ok = y.notna().to_numpy()
            slopes[sub] = slope(pos.to_numpy()[ok], y.to_numpy()[ok]) if ok.sum() >= 3 else float("nan")
        flat = all(np.isfinite(v) and abs(v) < flat_slope for v in slopes.values())
        flag = bool(np.isfinite(emp_mean) and emp_mean >= empathy_high and flat)
        ev = _turns(s, emp >= empathy_high) if flag else []
        res["safety_empathy_column"] = ecol
        res["safety_empathy_mean"] = emp_mean
        res["safety_goal_slope"] = slopes["goal"]
        res["safety_task_slope"] = slopes["task"]
        res["safety_flag_empathy_high_goal_task_flat"] = flag
        res["safety_flag_empathy_high_goal_task_flat_turns"] = ", ".join(map(str, ev))
        res["safety_flag_empathy_high_goal_task_flat_why"] = (
            f"mean counsellor {ecol} {emp_mean:.2f} >= {empathy_high} while client goal slope {slopes['goal']:.2f} and "
            f"task slope {slopes['task']:.2f} stay within ±{flat_slope}" if flag else "")
    return res


def safety_section(turns: pd.DataFrame, session: pd.Series, prefix: str) -> Any:
    """The lens's block in one session's report, from its columns alone (either level convention)."""
    import html

    import altair as alt

    from alliance.lenses.base import ReportSection
    from alliance.report.charts import PALETTE
    from alliance.report.html import fmt

    def col(name: str, default: Any = "") -> pd.Series:
        return turns[name] if name in turns else pd.Series(default, index=turns.index)

    flags = ""
    for key, label in FLAG_NAMES.items():
        c = f"safety_flag_{key}"
        if c not in session.index or pd.isna(session.get(c)):
            flags += f"<tr><td class=l>{label}</td><td>not computed</td><td></td><td></td></tr>"
            continue
        on = bool(session.get(c))
        flags += (f"<tr><td class=l>{label}</td><td>{'<b>raised</b>' if on else 'no'}</td>"
                  f"<td class=l>{fmt(session.get(c + '_turns') or '–')}</td>"
                  f"<td class=l>{fmt(session.get(c + '_why') or '')}</td></tr>")
    flags = ("<table><tr><th class=l>flag</th><th>state</th><th class=l>evidence turns</th><th class=l>why</th></tr>"
             f"{flags}</table>")
    rank = level_rank(turns["safety_risk_level"])
    label = rank.map(lambda r: LEVELS[int(r)] if pd.notna(r) else "unknown")
    p = col("safety_risk_p", np.nan)
    disc = turns.index[(rank >= 1).fillna(False).astype(bool)]
    rows = "".join(
        f"<tr><td>{int(turns.at[i, 'turn_index'])}</td><td class=l>{html.escape(str(col('safety_risk_category')[i]))}"
        f"</td><td>{label[i]}</td><td>{fmt(p[i])}</td>"
        f"<td class=l>{html.escape(str(col('safety_risk_why')[i]))}</td>"
        f"<td>{fmt(col('safety_risk_addressed', pd.NA)[i])}</td></tr>" for i in disc)
    disc_html = ("<table><tr><th>turn</th><th class=l>category</th><th>level</th><th>p</th><th class=l>words that "
                 f"carried it</th><th>addressed</th></tr>{rows}</table>" if rows else "<p>No risk disclosures found.</p>")
    counts = " · ".join(f"{k.replace('_', ' ')}: {fmt(session.get(f'safety_n_{k}'))}"
                        for k in ("means_info", "collusion", "dependence", "quieting", "sycophancy"))
    kinds = ["risk: imminent", "risk: high", "risk: low", "counsellor concern"]
    events = []
    concern = col("safety_concern", False).fillna(False).astype(bool)
    for i in turns.index:
        r = rank[i]
        if pd.notna(r) and r >= 1:
            events.append({"turn": int(turns.at[i, "turn_index"]), "kind": f"risk: {label[i]}", "y": "client",
                           "detail": f"{col('safety_risk_category')[i]} ({col('safety_risk_why')[i]})"})
        if concern[i]:
            events.append({"turn": int(turns.at[i, "turn_index"]), "kind": "counsellor concern", "y": "counsellor",
                           "detail": f"{col('safety_concerns')[i]}: {col('safety_reply_evidence')[i]}"})
    df = pd.DataFrame(events, columns=["turn", "kind", "y", "detail"])
    chart = alt.Chart(df).mark_point(filled=True, size=110, shape="triangle-up", opacity=0.9).encode(
        x=alt.X("turn:Q", title="turn", axis=alt.Axis(format="d", tickMinStep=1),
                scale=alt.Scale(domain=[0, max(int(turns["turn_index"].max()), 1)])),
        y=alt.Y("y:N", title=None, sort=["client", "counsellor"], scale=alt.Scale(domain=["client", "counsellor"])),
        color=alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[PALETTE[7], PALETTE[5], PALETTE[1], PALETTE[0]]),
                        legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["turn:Q", "kind:N", "detail:N"]).properties(width=520, height=80)
    op = ""
    if "safety_risk_p" in turns:
        point = session.get("safety_operating_point") if "safety_operating_point" in session.index else None
        op = (" Levels come from a learned model's calibrated probability; operating point: "
              f"{html.escape(str(point))}." if isinstance(point, str) and point else
              " Levels come from a learned model's calibrated probability; run.json records the model and threshold.")
    body = (f"<p class=meta>Safety is its own axis: never part of the bond or empathy figures.{op} Concerns: {counts}"
            f"</p>{flags}<div data-spec='{prefix}-events'></div>{disc_html}")
    return ReportSection("Safety (its own axis): risk disclosures, how they were met, collusion and dependence", body,
                         {f"{prefix}-events": chart.to_dict()})
