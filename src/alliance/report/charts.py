"""Chart specifications (Vega-Lite via Altair) for the report, in a colour-blind-safe palette.

Charts are plain specs; the page inlines the Vega runtime once, so a report works offline and stays small.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
SUBSCALE_COLOURS = {"goal": "#0072B2", "task": "#E69F00", "bond": "#009E73"}


def alliance_timeline(turns: pd.DataFrame) -> dict[str, Any]:
    """Goal, task and bond probe similarity over the turns of one session, one panel per side."""
    import altair as alt

    cols = [c for c in ("alliance_goal", "alliance_task", "alliance_bond") if c in turns]
    long = turns.melt(id_vars=["turn_index", "speaker"], value_vars=cols, var_name="subscale", value_name="score")
    long["subscale"] = long["subscale"].str.replace("alliance_", "", regex=False)
    long = long.dropna(subset=["score"])
    # rolling mean per side and subscale: single turns are noisy, the trend is what a reader needs
    long = long.sort_values("turn_index")
    long["smoothed"] = long.groupby(["speaker", "subscale"])["score"].transform(
        lambda s: s.rolling(3, min_periods=1).mean())
    colour = alt.Color("subscale:N", scale=alt.Scale(domain=list(SUBSCALE_COLOURS), range=list(SUBSCALE_COLOURS.values())))
    base = alt.Chart(long).encode(x=alt.X("turn_index:Q", title="turn"), color=colour)
    points = base.mark_circle(size=22, opacity=0.35).encode(
        y=alt.Y("score:Q", title="probe similarity (z, calibrated)"),
        tooltip=["turn_index", "subscale", alt.Tooltip("score:Q", format=".2f")])
    lines = base.mark_line(strokeWidth=2).encode(y="smoothed:Q")
    chart = (points + lines).properties(width=330, height=170).facet(
        column=alt.Column("speaker:N", title=None, sort=["client", "counsellor"]))
    return chart.to_dict()


def gap_bars(session_row: pd.Series) -> dict[str, Any]:
    """Client-minus-counsellor gap per subscale, first third vs last third of the session."""
    import altair as alt

    rows = []
    for sub in ("goal", "task", "bond"):
        for part, label in (("first", "first third"), ("last", "last third")):
            v = session_row.get(f"alliance_gap_{sub}_{part}")
            if v is not None and pd.notna(v):
                rows.append({"subscale": sub, "part": label, "gap": float(v)})
    df = pd.DataFrame(rows or [{"subscale": "goal", "part": "first third", "gap": 0.0}])
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("gap:Q", title="client - counsellor"),
        y=alt.Y("part:N", title=None, sort=["first third", "last third"]),
        color=alt.Color("part:N", scale=alt.Scale(range=[PALETTE[4], PALETTE[0]]), legend=None),
        row=alt.Row("subscale:N", title=None, sort=["goal", "task", "bond"]),
        tooltip=["subscale", "part", alt.Tooltip("gap:Q", format=".2f")],
    ).properties(width=260, height=36)
    return chart.to_dict()


def rupture_timeline(turns: pd.DataFrame) -> dict[str, Any]:
    """The client's words per turn (log) and, when present, client bond; ruptures as red rules, repairs as green
    rules, so where the relationship broke and where it came back are read off one axis of turns."""
    import altair as alt
    import numpy as np

    t = turns[turns["speaker"] == "client"].copy()
    t["log_words"] = np.log1p(t["text"].astype(str).str.split().str.len())
    value_cols = ["log_words"] + (["alliance_bond"] if "alliance_bond" in t and t["alliance_bond"].notna().any()
                                  else [])
    long = t.melt(id_vars=["turn_index"], value_vars=value_cols, var_name="series", value_name="value").dropna()
    long["series"] = long["series"].map({"log_words": "client words (log)", "alliance_bond": "client bond (z)"})
    lines = alt.Chart(long).mark_line(point=alt.OverlayMarkDef(size=14)).encode(
        x=alt.X("turn_index:Q", title="turn"), y=alt.Y("value:Q", title=None),
        color=alt.Color("series:N", scale=alt.Scale(range=[PALETTE[0], PALETTE[2]]), title=None),
        tooltip=["turn_index", "series", alt.Tooltip("value:Q", format=".2f")])
    rup = t[t.get("trajectory_rupture", pd.Series(False, index=t.index)).astype(bool)]
    events = [{"turn_index": int(r.turn_index), "event": f"rupture: {r.trajectory_rupture_kind}"}
              for r in rup.itertuples()]
    events += [{"turn_index": int(r.trajectory_repaired_at), "event": "repair"}
               for r in rup.itertuples() if np.isfinite(r.trajectory_repaired_at)]
    layers = [lines]
    if events:
        ev = pd.DataFrame(events)
        ev["kind"] = np.where(ev["event"] == "repair", "repair", "rupture")
        layers.append(alt.Chart(ev).mark_rule(strokeWidth=2, strokeDash=[4, 2]).encode(
            x="turn_index:Q", color=alt.Color("kind:N", scale=alt.Scale(domain=["rupture", "repair"],
                                                                       range=[PALETTE[5], PALETTE[2]]), title=None),
            tooltip=["turn_index", "event"]))
    return alt.layer(*layers).resolve_scale(color="independent").properties(width=620, height=160).to_dict()
