"""Chart specifications for the report as plain Vega-Lite dicts, in a colour-blind-safe palette (Okabe & Ito 2008).

Built without Altair: a plain dict needs no schema validation or encoding inference, and per-turn series longer
than :data:`alliance.report.specs.MAX_POINTS` are averaged over bins of turns, which the chart then says.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alliance.report.specs import BIN_COLUMN, downsample, mark_downsampled

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
SUBSCALE_COLOURS = {"goal": "#0072B2", "task": "#E69F00", "bond": "#009E73"}
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def values(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe records (NaN and NA become null, numpy scalars plain numbers)."""
    out = df.astype(object).where(df.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in out.to_dict("records")]


def _tooltip(*fields: str, binned: bool = False) -> list[dict[str, Any]]:
    tips = [{"field": f, "type": "quantitative", "format": ".2f"} if f in ("score", "value", "gap")
            else {"field": f} for f in fields]
    return tips + ([{"field": BIN_COLUMN, "title": "turns per point"}] if binned else [])


def alliance_timeline(turns: pd.DataFrame) -> dict[str, Any]:
    """Goal, task and bond probe similarity over the turns of one session, one panel per side."""
    cols = [c for c in ("alliance_goal", "alliance_task", "alliance_bond") if c in turns]
    long = turns[["turn_index", "speaker", *cols]].melt(id_vars=["turn_index", "speaker"], value_vars=cols,
                                                        var_name="subscale", value_name="score")
    long["subscale"] = long["subscale"].str.replace("alliance_", "", regex=False)
    long = long.dropna(subset=["score"]).sort_values("turn_index", kind="stable")
    # rolling mean per side and subscale: single turns are noisy, the trend is what a reader needs
    long["smoothed"] = long.groupby(["speaker", "subscale"])["score"].transform(
        lambda s: s.rolling(3, min_periods=1).mean())
    long = downsample(long)
    binned = BIN_COLUMN in long
    colour = {"field": "subscale", "type": "nominal",
              "scale": {"domain": list(SUBSCALE_COLOURS), "range": list(SUBSCALE_COLOURS.values())}}
    x = {"field": "turn_index", "type": "quantitative", "title": "turn"}
    spec = {"$schema": SCHEMA, "data": {"values": values(long)},
            "facet": {"column": {"field": "speaker", "type": "nominal", "title": None,
                                 "sort": ["client", "counsellor"]}},
            "spec": {"width": 330, "height": 170, "layer": [
                {"mark": {"type": "circle", "size": 22, "opacity": 0.35},
                 "encoding": {"x": x, "color": colour, "tooltip": _tooltip("turn_index", "subscale", "score",
                                                                           binned=binned),
                              "y": {"field": "score", "type": "quantitative",
                                    "title": "probe similarity (z, calibrated)"}}},
                {"mark": {"type": "line", "strokeWidth": 2},
                 "encoding": {"x": x, "color": colour, "y": {"field": "smoothed", "type": "quantitative"}}}]}}
    return mark_downsampled(spec)


def gap_bars(session_row: pd.Series) -> dict[str, Any]:
    """Client-minus-counsellor gap per subscale, first third vs last third of the session."""
    rows = []
    for sub in ("goal", "task", "bond"):
        for part, label in (("first", "first third"), ("last", "last third")):
            v = session_row.get(f"alliance_gap_{sub}_{part}")
            if v is not None and pd.notna(v):
                rows.append({"subscale": sub, "part": label, "gap": float(v)})
    rows = rows or [{"subscale": "goal", "part": "first third", "gap": 0.0}]
    return {"$schema": SCHEMA, "data": {"values": rows}, "mark": "bar", "width": 260, "height": 36,
            "encoding": {"x": {"field": "gap", "type": "quantitative", "title": "client - counsellor"},
                         "y": {"field": "part", "type": "nominal", "title": None,
                               "sort": ["first third", "last third"]},
                         "color": {"field": "part", "type": "nominal", "legend": None,
                                   "scale": {"range": [PALETTE[4], PALETTE[0]]}},
                         "row": {"field": "subscale", "type": "nominal", "title": None,
                                 "sort": ["goal", "task", "bond"]},
                         "tooltip": _tooltip("subscale", "part", "gap")}}


def rupture_timeline(turns: pd.DataFrame) -> dict[str, Any]:
    """The client's words per turn (log) and, when present, client bond; ruptures as red rules, repairs as green
    rules, so where the relationship broke and where it came back are read off one axis of turns."""
    keep = [c for c in ("turn_index", "speaker", "text", "alliance_bond", "trajectory_rupture",
                        "trajectory_rupture_kind", "trajectory_repaired_at") if c in turns]
    t = turns.loc[turns["speaker"] == "client", keep].copy()
    t["log_words"] = np.log1p(t["text"].astype(str).str.split().str.len())
    value_cols = ["log_words"] + (["alliance_bond"] if "alliance_bond" in t and t["alliance_bond"].notna().any()
                                  else [])
    long = t.melt(id_vars=["turn_index"], value_vars=value_cols, var_name="series", value_name="value").dropna()
    long["series"] = long["series"].map({"log_words": "client words (log)", "alliance_bond": "client bond (z)"})
    long = downsample(long)
    binned = BIN_COLUMN in long
    lines = {"data": {"values": values(long)}, "mark": {"type": "line", "point": {"size": 14}},
             "encoding": {"x": {"field": "turn_index", "type": "quantitative", "title": "turn"},
                          "y": {"field": "value", "type": "quantitative", "title": None},
                          "color": {"field": "series", "type": "nominal", "title": None,
                                    "scale": {"range": [PALETTE[0], PALETTE[2]]}},
                          "tooltip": _tooltip("turn_index", "series", "value", binned=binned)}}
    layers: list[dict[str, Any]] = [lines]
    if "trajectory_rupture" in t:
        rup = t[t["trajectory_rupture"].fillna(False).astype(bool)]
        kinds = rup["trajectory_rupture_kind"].tolist() if "trajectory_rupture_kind" in rup else [""] * len(rup)
        repaired = rup["trajectory_repaired_at"].tolist() if "trajectory_repaired_at" in rup else [np.nan] * len(rup)
        events = [{"turn_index": int(ti), "event": f"rupture: {k}", "kind": "rupture"}
                  for ti, k in zip(rup["turn_index"].tolist(), kinds, strict=True)]
        events += [{"turn_index": int(r), "event": "repair", "kind": "repair"} for r in repaired
                   if r is not None and np.isfinite(float(r))]
        if events:
            layers.append({"data": {"values": events}, "mark": {"type": "rule", "strokeWidth": 2, "strokeDash": [4, 2]},
                           "encoding": {"x": {"field": "turn_index", "type": "quantitative"},
                                        "color": {"field": "kind", "type": "nominal", "title": None,
                                                  "scale": {"domain": ["rupture", "repair"],
                                                            "range": [PALETTE[5], PALETTE[2]]}},
                                        "tooltip": _tooltip("turn_index", "event")}})
    spec = {"$schema": SCHEMA, "layer": layers, "resolve": {"scale": {"color": "independent"}}, "width": 620,
            "height": 160}
    return mark_downsampled(spec)
