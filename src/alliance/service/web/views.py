"""What the dashboard shows from stored scores: flags with evidence, axes kept apart, per-turn marks, charts.

Plain functions of stored JSON, so the pages stay thin; charts reuse the report's Vega-Lite builders.
"""

from __future__ import annotations

import math
from typing import Any

from alliance.report.terms import risk_label

#: session columns shown as "axes, kept apart" on the review page, in order
AXES = (("client goal", "alliance_client_goal_mean"), ("client task", "alliance_client_task_mean"),
        ("client bond", "alliance_client_bond_mean"), ("counsellor bond", "alliance_counsellor_bond_mean"),
        ("bond gap (client - counsellor)", "alliance_gap_bond_mean"), ("per-reply empathy", "empathy_total_mean"),
        ("reflection-to-question ratio", "behaviour_reflection_question_ratio"),
        ("share of complex reflections", "behaviour_complex_reflection_share"),
        ("highest risk level", "safety_max_risk_level"), ("ruptures (repaired)", "trajectory_n_ruptures"))
#: trend axes: (label, column, MITI fair, MITI good)
TREND_AXES = (("client bond (probe z)", "alliance_client_bond_mean", None, None),
              ("client goal (probe z)", "alliance_client_goal_mean", None, None),
              ("client task (probe z)", "alliance_client_task_mean", None, None),
              ("per-reply empathy (0-6)", "empathy_total_mean", None, None),
              ("risk not addressed (share of sessions)", "safety_flag_risk_not_addressed", None, None),
              ("reflection-to-question ratio", "behaviour_reflection_question_ratio", 1.0, 2.0),
              ("share of complex reflections", "behaviour_complex_reflection_share", 0.4, 0.5))


def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def flags(scores: dict[str, Any] | None) -> list[str]:
    return sorted(k[len("safety_flag_"):].replace("_", " ") if k.startswith("safety_flag_") else
                  k[len("trajectory_flag_"):].replace("_", " ")
                  for k, v in (scores or {}).items()
                  if v is True and k.startswith(("safety_flag_", "trajectory_flag_")))


def flag_rows(scores: dict[str, Any] | None) -> list[dict[str, str]]:
    out = []
    for k, v in sorted((scores or {}).items()):
        if v is True and k.startswith(("safety_flag_", "trajectory_flag_")) and not k.endswith(("_turns", "_why")):
            out.append({"name": k.split("_flag_", 1)[1].replace("_", " "), "turns": str(scores.get(f"{k}_turns") or ""),
                        "why": str(scores.get(f"{k}_why") or "")})
    return out


def calibrated_rows(scores: dict[str, Any] | None) -> list[tuple[str, Any]]:
    s = scores or {}
    names = (("overall (0-100)", "calibrated_overall"), ("goal (0-5)", "calibrated_goal"),
             ("task (0-5)", "calibrated_task"), ("bond (0-5)", "calibrated_bond"))
    return [(label, s.get(col)) for label, col in names if s.get(col) is not None]


def axes_rows(scores: dict[str, Any] | None) -> list[tuple[str, Any]]:
    s = scores or {}
    return [(label, s.get(col)) for label, col in AXES if col in s]



def turn_rows(turns: list, alerts: list | None = None) -> list[dict[str, Any]]:
    """Each turn with its scores and, where the safety lens marked it or an alert cites it, a short safety label."""
    cited: dict[int, list[str]] = {}
    for a in alerts or []:
        for ev in (a.evidence or {}).get("turns", []):
            cited.setdefault(int(ev["turn_index"]), []).append(f"alert: {a.kind.replace('_', ' ')} ({a.status})")
    rows = []
    for t in turns:
        s = t.scores or {}
        level = risk_label(s.get("safety_risk_level"))
        marks = list(dict.fromkeys(cited.get(t.turn_index, [])))
        if t.speaker == "client" and level in ("low", "high", "imminent"):
            cat = s.get("safety_risk_category") or "risk"
            marks.append(f"{level} {str(cat).replace('_', ' ')}")
            if s.get("safety_risk_addressed") is False:
                marks.append("not addressed")
        if t.speaker == "counsellor" and s.get("safety_concerns"):
            marks.append(str(s.get("safety_concerns")).replace("_", " "))
        rows.append({"turn_index": t.turn_index, "speaker": t.speaker, "text": t.text, "s": s,
                     "safety": "; ".join(marks), "safety_level": level})
    return rows


def session_specs(turns: list) -> dict[str, Any]:
    """The alliance timeline (the report's chart) and per-reply empathy over the session."""
    import pandas as pd

    rows = [{"turn_index": t.turn_index, "speaker": t.speaker, **(t.scores or {})} for t in turns if t.scores]
    if not rows:
        return {}
    df = pd.DataFrame(rows)
    specs: dict[str, Any] = {}
    if {"alliance_goal", "alliance_task", "alliance_bond"} & set(df.columns):
        from alliance.report.charts import alliance_timeline

        specs["timeline"] = alliance_timeline(df)
    if "empathy_total" in df:
        import altair as alt

        e = df[df["speaker"] == "counsellor"][["turn_index", "empathy_total"]].dropna()
        if len(e):
            specs["empathy"] = alt.Chart(e).mark_line(point=True, color="#CC79A7").encode(
                x=alt.X("turn_index:Q", title="turn"), y=alt.Y("empathy_total:Q", title="per-reply empathy (0-6)",
                                                              scale=alt.Scale(domain=[0, 6])),
            ).properties(width=330, height=170).to_dict()
    return specs


def trend_specs(df, by: str) -> dict[str, Any]:
    """One chart per axis: weekly means per group, with MITI fair/good bands where the field has them."""
    import altair as alt
    import pandas as pd

    d = df.copy()
    d["week"] = pd.to_datetime(d["created_at"], utc=True).dt.tz_localize(None).dt.to_period("W").dt.start_time
    d[by] = d[by].fillna("(none)").astype(str)
    specs: dict[str, Any] = {}
    for i, (label, col, fair, good) in enumerate(TREND_AXES):
        if col not in d:
            continue
        v = d[[by, "week", col]].copy()
        v[col] = pd.to_numeric(v[col].astype("object").map(lambda x: float(x) if x is not None else None),
                               errors="coerce")
        g = v.dropna().groupby([by, "week"], as_index=False).agg(value=(col, "mean"), sessions=(col, "size"))
        if g.empty:
            continue
        line = alt.Chart(g).mark_line(point=True).encode(
            x=alt.X("week:T", title="week"), y=alt.Y("value:Q", title=label),
            color=alt.Color(f"{by}:N", title=by.replace("_", " ")),
            tooltip=[by, "week:T", alt.Tooltip("value:Q", format=".2f"), "sessions"])
        layers = [line]
        if fair is not None:
            bands = pd.DataFrame([{"from": fair, "to": good, "band": "MITI fair"},
                                  {"from": good, "to": good * 1.5, "band": "MITI good"}])
            layers.insert(0, alt.Chart(bands).mark_rect(opacity=0.12).encode(
                y="from:Q", y2="to:Q", color=alt.Color("band:N", scale=alt.Scale(range=["#E69F00", "#009E73"]),
                                                        legend=alt.Legend(title="benchmark"))))
        specs[f"trend{i}"] = alt.layer(*layers).resolve_scale(color="independent").properties(
            width=420, height=180, title=label).to_dict()
    return specs
