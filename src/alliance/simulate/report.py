"""The simulation page: each persona's emotional trajectory beside alliance, safety and dependence, per bot.

Charts are Vega-Lite specs (Altair) in the project's colour-blind-safe palette, rendered offline like the report.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from alliance.report.charts import PALETTE
from alliance.report.html import CSS, LAZY_JS, fmt, vega_bundle


def _charts(table: pd.DataFrame, trajectory: pd.DataFrame) -> dict[str, Any]:
    import altair as alt

    bots = sorted(trajectory["bot"].unique())
    colour = alt.Color("bot:N", scale=alt.Scale(domain=bots, range=PALETTE[: len(bots)]))
    traj = alt.Chart(trajectory).mark_line(point=True).encode(
        x=alt.X("step:Q", title="exchange (across the course)"), y=alt.Y("state:Q", title="emotional state",
                                                                       scale=alt.Scale(domain=[0, 100])),
        color=colour, detail="session:N",
        tooltip=["bot", "persona_id", "session", "exchange", "state", "delta", "kind"],
    ).properties(width=220, height=120).facet(facet=alt.Facet("persona_id:N", title=None), columns=4)
    specs = {"sim-trajectory": traj.to_dict()}
    if "alliance_client_bond_mean" in table:
        long = table.melt(id_vars=["bot", "persona_id", "session"],
                          value_vars=[c for c in ("sim_state_change", "alliance_client_bond_mean") if c in table],
                          var_name="measure", value_name="value")
        specs["sim-beside"] = alt.Chart(long).mark_bar().encode(
            x=alt.X("session:O"), y=alt.Y("mean(value):Q", title=None), color=colour, xOffset="bot:N",
            tooltip=["bot", "session", "measure", alt.Tooltip("mean(value):Q", format=".2f")],
        ).properties(width=260, height=150).facet(
            column=alt.Column("measure:N", title=None)).resolve_scale(y="independent").to_dict()
    return specs


def write_simulation_html(table: pd.DataFrame, trajectory: pd.DataFrame, profiles: pd.DataFrame,
                          record: dict[str, Any], path: str | Path) -> Path:
    specs = _charts(table, trajectory)
    cols = [c for c in profiles.columns if c != "bot"]
    head = "<tr><th class=l>bot</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join("<tr><td class=l>" + html.escape(str(r["bot"])) + "</td>"
                   + "".join(f"<td>{fmt(r[c])}</td>" for c in cols) + "</tr>" for _, r in profiles.iterrows())
    beside = "<div data-spec='sim-beside'></div>" if "sim-beside" in specs else ""
    spec_json = json.dumps(specs, default=str).replace("</", "<\\/")
    text = f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>alliance simulation</title>
<style>{CSS}</style><script>{vega_bundle()}</script></head><body>
<header><h1>alliance simulation</h1><p>{len(profiles)} bot(s) · {table['persona_id'].nunique()} persona(s) ·
{len(table)} sessions · seed {html.escape(str(record.get('seed')))} · client {html.escape(str(record.get('client', {}).get('client')))}</p></header><main>
<div class=note><b>Simulated clients, not people.</b> The emotional state is the simulator's hidden variable
(0-100), moved by a documented heuristic or a language model; a rising state can come from colluding with a harmful
intention, so read it beside collusion, missed risk and dependence, never alone.</div>
<h2>Bot profiles</h2><table>{head}{body}</table>
<h2>Emotional trajectory per persona</h2><div data-spec='sim-trajectory'></div>
<h2>Change in emotional state beside client bond (alliance lens), per session</h2>{beside}
<details><summary>run record</summary><pre>{html.escape(json.dumps(record, indent=1, default=str))}</pre></details>
<script type="application/json" id="alliance-specs">{spec_json}</script><script>{LAZY_JS}</script></main></body></html>"""
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path
