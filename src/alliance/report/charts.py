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
