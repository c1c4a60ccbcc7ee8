"""The corpus overview: one page of aggregates and capped top-N lists that stays fast at any corpus size, with a
safety triage list (each entry quoting its evidence turn, most severe first) and the worst-declining sessions.

Evidence: the session table's lens columns (distributions pre-binned here, so no chart carries one row per session)
and the safety lens's per-turn levels and quoted words.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY
from alliance.report.html import _validation_notes, fmt
from alliance.report.terms import TRIAGE_LEVELS, risk_label, risk_labels, risk_rank, worst_declining

#: Session columns shown in the overview's table, one headline per axis (never one composite without its parts).
OVERVIEW_COLUMNS = {
    "alliance_client_bond_mean": "client bond", "alliance_client_task_mean": "client task",
    "alliance_client_goal_mean": "client goal", "alliance_counsellor_bond_mean": "counsellor bond",
    "alliance_gap_bond_mean": "bond gap", "empathy_total_mean": "empathy (total)",
    "trajectory_client_bond_class": "bond change", "trajectory_client_words_class": "client words change",
    "trajectory_n_ruptures": "ruptures", "trajectory_n_repaired": "repaired", "safety_max_risk_level": "max risk",
    "calibrated_goal": "calibrated goal", "calibrated_task": "calibrated task", "calibrated_bond": "calibrated bond",
    "calibrated_overall": "calibrated overall",
    "calibrated_out_of_domain": "calibrated: out of domain", "early_warning": "early warning (first half)",
}
#: Caps that keep the overview one fast page whatever the corpus size (the full tables are the run's parquet files).
TABLE_MAX = 500
LIST_MAX = 200
WORST_MAX = 20
QUOTE_CHARS = 280
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
CHANGE_COLOURS = {"declining": PALETTE[5], "stable": "#bbbbbb", "improving": PALETTE[0], "unknown": "#eeeeee"}


def _flag_columns(sessions: pd.DataFrame) -> list[str]:
    return [c for c in sessions.columns if c.startswith("safety_flag_") and not c.endswith(("_turns", "_why"))]


def _quote(text: Any) -> str:
    s = str(text)
    return html.escape(s if len(s) <= QUOTE_CHARS else s[: QUOTE_CHARS - 1] + "…")


def safety_triage(turns: pd.DataFrame, sessions: pd.DataFrame, n: int = LIST_MAX) -> pd.DataFrame:
    """Sessions with a client risk disclosure (low, high or imminent) or a raised safety flag, most severe first
    (level, then the highest calibrated probability, then the number of flags), each with its evidence turn: the
    most severe disclosure, or the first evidence turn of a flag when nothing was disclosed. Empty when the safety
    lens did not run. Columns: ``i`` (row of ``sessions``), ``level``, ``category``, ``p``, ``turn``, ``text``,
    ``why``, ``flags`` (list of (name, why, turns))."""
    cols = ["i", "level", "category", "p", "turn", "text", "why", "flags", "n_total", "n_urgent"]
    flag_cols = _flag_columns(sessions)
    if "safety_max_risk_level" not in sessions and not flag_cols and "safety_risk_level" not in turns:
        return pd.DataFrame(columns=cols)
    s = sessions.reset_index(drop=True)
    key = pd.MultiIndex.from_frame(s[SESSION_KEY])
    # the session's worst disclosure, from the turns (the session column may hold the old numeric convention)
    best = pd.DataFrame(columns=["rank", "p", "turn_index", "text", "why", "category"])
    if "safety_risk_level" in turns:
        lv = risk_labels(turns["safety_risk_level"])
        hit = lv.isin(TRIAGE_LEVELS)
        if hit.any():
            t = turns.loc[hit, [*SESSION_KEY, "turn_index", "text"]].copy()
            t["rank"] = lv[hit].map(risk_rank)
            t["p"] = pd.to_numeric(turns.loc[hit, "safety_risk_p"], errors="coerce") if "safety_risk_p" in turns \
                else np.nan
            t["why"] = turns.loc[hit, "safety_risk_why"] if "safety_risk_why" in turns else ""
            t["category"] = turns.loc[hit, "safety_risk_category"] if "safety_risk_category" in turns else ""
            t = t.sort_values(["rank", "p", "turn_index"], ascending=[False, False, True], na_position="last")
            best = t.drop_duplicates(SESSION_KEY).set_index(SESSION_KEY)
    best = best.reindex(key)
    level = s["safety_max_risk_level"].map(risk_label) if "safety_max_risk_level" in s else pd.Series("", index=s.index)
    rank = np.maximum(level.map(risk_rank).to_numpy(), best["rank"].fillna(-1).to_numpy())
    flagged = s[flag_cols].fillna(False).astype(bool) if flag_cols else pd.DataFrame(index=s.index)
    n_flags = flagged.sum(axis=1).to_numpy() if flag_cols else np.zeros(len(s), int)
    on = (rank >= 1) | (n_flags > 0)
    if not on.any():
        return pd.DataFrame(columns=cols)
    order = pd.DataFrame({"rank": rank, "p": best["p"].to_numpy(dtype=float), "flags": n_flags})[on]
    order = order.sort_values(["rank", "p", "flags"], ascending=False, na_position="last", kind="stable")
    total = len(order)
    # urgent: a high or imminent disclosure, or a raised flag; low-level disclosures alone (hopelessness, a plan that
    # warrants a question) are listed apart, since a low threshold fires on a share of ordinary turns
    n_urgent = int(((order["rank"] >= 2) | (order["flags"] > 0)).sum())
    text_of = None
    rows = []
    for i in order.index[:n]:
        r, b = s.loc[i], best.iloc[i]
        flags = [(c.removeprefix("safety_flag_").replace("_", " "), str(r.get(f"{c}_why") or ""),
                  str(r.get(f"{c}_turns") or "")) for c in flag_cols if bool(flagged.at[i, c])]
        turn, text, why = b["turn_index"], b["text"], b["why"]
        if pd.isna(turn) and flags:  # no disclosure: quote the first evidence turn of the first flag
            first = next((int(x) for _, _, ts in flags for x in ts.replace(";", ",").split(",")
                          if x.strip().lstrip("-").isdigit()), None)
            if first is not None:
                if text_of is None:
                    text_of = turns.set_index([*SESSION_KEY, "turn_index"])["text"]
                turn, text, why = first, text_of.get((r["course_id"], r["session_id"], first), ""), flags[0][1]
        lvl = next((k for k, v in {"low": 1, "high": 2, "imminent": 3}.items() if v == order.at[i, "rank"]), "")
        rows.append({"i": int(i), "level": lvl, "category": b["category"] if isinstance(b["category"], str) else "",
                     "p": b["p"], "turn": turn, "text": text, "why": why if isinstance(why, str) else "",
                     "flags": flags, "n_total": total, "n_urgent": n_urgent})
    return pd.DataFrame(rows, columns=cols)


def triage_html(triage: pd.DataFrame, sessions: pd.DataFrame, link: Callable[[int, str], str], present: bool) -> str:
    """The triage list as HTML (``link(i, anchor)`` gives a session's page link or '' when it has no page)."""
    if not present:
        return "<p>The safety lens was not part of this run (add <code>--lens safety</code>).</p>"
    if triage.empty:
        return "<p>No client turn was rated at risk and no safety flag was raised.</p>"
    items, lows = [], []
    for r in triage.itertuples():
        s = sessions.iloc[r.i]
        name = html.escape(f"{s['course_id']} / {s['session_id']}")
        anchor = f"#t{int(r.turn)}" if pd.notna(r.turn) else ""
        href = link(r.i, anchor)
        head = f"<a href='{href}'>{name}</a>" if href else name
        level = (f"<span class='tag {'bad' if r.level in ('high', 'imminent') else 'warn'}'>{html.escape(r.level)}"
                 + (f" · {html.escape(r.category)}" if r.category else "")
                 + (f" · p={r.p:.2f}" if pd.notna(r.p) else "") + "</span>") if r.level else ""
        quote = (f"<br>turn {int(r.turn)}: <q>{_quote(r.text)}</q>" if pd.notna(r.turn) else "") + (
            f" <span class=meta>(why: {_quote(r.why)})</span>" if r.why else "")
        flags = "".join(f"<br><span class='tag warn'>{html.escape(f)}</span> {_quote(w)}"
                        + (f" <span class=meta>(turns {html.escape(t)})</span>" if t else "") for f, w, t in r.flags)
        (items if r.level in ("high", "imminent") or r.flags else lows).append(f"<li>{head} {level}{quote}{flags}</li>")
    total = int(triage["n_total"].iloc[0])
    n_low = total - int(triage["n_urgent"].iloc[0])
    more = (f"<p>{total - len(triage)} more sessions on the list are in sessions.parquet "
            "(safety_max_risk_level, safety_flag_*).</p>") if total > len(triage) else ""
    urgent = f"<ol>{''.join(items)}</ol>" if items else "<p>No high or imminent disclosure and no safety flag.</p>"
    low = (f"<details class=low-risk><summary>{n_low} more session(s) with only low-level disclosures (hopelessness, "
           "or a plan that warrants a direct question; the low threshold also fires on a share of ordinary turns)"
           f"</summary><ol>{''.join(lows)}</ol></details>") if lows else ""
    return f"{urgent}{low}{more}"


def _histogram(values: pd.Series, bins: int = 30) -> list[dict[str, float]]:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return []
    try:
        counts, edges = np.histogram(v, bins=bins if v.min() < v.max() else 1)
    except ValueError:  # a range too narrow for finite-sized bins (values equal up to rounding)
        counts, edges = np.histogram(v, bins=1)
    return [{"lo": float(a), "hi": float(b), "sessions": int(c)} for a, b, c in zip(edges[:-1], edges[1:], counts,
                                                                                    strict=True)]


def overview_specs(sessions: pd.DataFrame) -> dict[str, Any]:
    """Distributions of each axis's session means (binned here: the spec's size does not grow with the corpus) and
    the share of sessions per change class and measure; plain Vega-Lite dicts, no schema validation."""
    specs: dict[str, Any] = {}
    cols = [c for c in OVERVIEW_COLUMNS if c in sessions and pd.api.types.is_numeric_dtype(sessions[c])
            and not pd.api.types.is_bool_dtype(sessions[c]) and c not in ("trajectory_n_ruptures",
                                                                         "trajectory_n_repaired")]
    charts = []
    for c in cols:
        hist = _histogram(sessions[c])
        if hist:
            charts.append({"data": {"values": hist}, "mark": {"type": "bar", "color": PALETTE[0]},
                           "encoding": {"x": {"field": "lo", "type": "quantitative", "bin": {"binned": True},
                                              "title": OVERVIEW_COLUMNS[c]},
                                        "x2": {"field": "hi"},
                                        "y": {"field": "sessions", "type": "quantitative", "title": "sessions"},
                                        "tooltip": [{"field": "lo", "format": ".2f"}, {"field": "hi", "format": ".2f"},
                                                    {"field": "sessions"}]},
                           "width": 200, "height": 110})
    if charts:
        specs["ov-dist"] = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "concat": charts,
                            "columns": 4}
    cls = [c for c in sessions.columns if c.startswith("trajectory_") and c.endswith("_class")]
    if cls:
        rows = []
        for c in cls:
            counts = sessions[c].fillna("unknown").astype(str).value_counts()
            measure = c.removeprefix("trajectory_").removesuffix("_class")
            rows += [{"measure": measure, "change": k, "sessions": int(v)} for k, v in counts.items()]
        specs["ov-change"] = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": rows}, "mark": "bar",
            "encoding": {"y": {"field": "measure", "type": "nominal", "title": None},
                         "x": {"field": "sessions", "type": "quantitative", "stack": "normalize",
                               "title": "share of sessions"},
                         "color": {"field": "change", "type": "nominal",
                                   "scale": {"domain": list(CHANGE_COLOURS), "range": list(CHANGE_COLOURS.values())}},
                         "tooltip": [{"field": "measure"}, {"field": "change"}, {"field": "sessions"}]},
            "width": 420, "height": 22 * len(cls)}
    return specs


def overview_body(turns: pd.DataFrame, sessions: pd.DataFrame, run: dict[str, Any], courses: pd.DataFrame | None,
                  session_link: Callable[[int, str], str], course_link: Callable[[str], str], pages_note: str) -> str:
    """The overview's HTML body. ``session_link(i, anchor)`` / ``course_link(course_id)``: the page of a session
    (row ``i`` of ``sessions``) or course relative to the overview, '' when none was written."""
    counts = run.get("counts", {})
    enc = run.get("encoder") or {}

    def name(i: int, label: str, anchor: str = "") -> str:
        href = session_link(i, anchor)
        return f"<a href='{href}'>{html.escape(label)}</a>" if href else html.escape(label)

    cols = [c for c in OVERVIEW_COLUMNS if c in sessions]
    head = "<tr><th class=l>session</th>" + "".join(f"<th>{OVERVIEW_COLUMNS[c]}</th>" for c in cols) + \
        "<th class=l>flags</th></tr>"
    shown = sessions.head(TABLE_MAX)
    values = {c: (shown[c].map(risk_label) if c == "safety_max_risk_level" else shown[c]).tolist() for c in cols}
    flags_col = shown["trajectory_flags"].tolist() if "trajectory_flags" in shown else [""] * len(shown)
    rows = "".join(
        f"<tr><td class=l>{name(i, str(sid))}</td>"
        + "".join(f"<td class='{html.escape(str(values[c][k]))}'>{fmt(values[c][k])}</td>" for c in cols)
        + f"<td class=l>{html.escape(str(flags_col[k] or ''))}</td></tr>"
        for k, (i, sid) in enumerate(zip(range(len(shown)), shown["session_id"].tolist(), strict=True)))
    table_note = (f"<p>Showing the first {TABLE_MAX} of {len(sessions)} sessions; every session is in "
                  "sessions.parquet.</p>") if len(sessions) > TABLE_MAX else ""
    traj_flags = sessions["trajectory_flags"].fillna("").astype(str) if "trajectory_flags" in sessions \
        else pd.Series("", index=sessions.index)
    flagged = traj_flags[traj_flags != ""]
    flag_list = "".join(f"<li>{name(int(i), str(sessions.at[i, 'session_id']))}: {html.escape(f)}</li>"
                        for i, f in flagged.head(LIST_MAX).items())
    if len(flagged) > LIST_MAX:
        flag_list += f"<li>… {len(flagged) - LIST_MAX} more in sessions.parquet (trajectory_flags)</li>"
    worst = ""
    if courses is not None and len(courses):
        wc = worst_declining(courses, WORST_MAX, prefix="")
        worst = "".join(
            (f"<li><a href='{course_link(r['course_id'])}'>{html.escape(str(r['course_id']))}</a>"
             if course_link(r["course_id"]) else f"<li>{html.escape(str(r['course_id']))}")
            + f" ({int(r['n_sessions'])} sessions): {html.escape(r['declining'])}</li>"
            for r in wc.to_dict("records"))
    ws = worst_declining(sessions.reset_index(drop=True), WORST_MAX)
    worst_s = "".join(f"<li>{name(int(i), str(r['session_id']))}: {html.escape(r['declining'])}</li>"
                      for i, r in ws.iterrows())
    present = "safety_max_risk_level" in sessions or "safety_risk_level" in turns or bool(_flag_columns(sessions))
    triage = safety_triage(turns, sessions)
    valid = "".join(f"<p><b>{html.escape(str(n.get('title', '')))}</b>: "
                    + "; ".join(html.escape(str(x)) for x in n.get("lines", [])) + "</p>" for n in _validation_notes())
    n_seen = int(sessions["calibration_in_training"].fillna(False).astype(bool).sum()) \
        if "calibration_in_training" in sessions else 0
    if n_seen:  # their client ratings trained the model: agreement there is no evidence for it
        valid += (f"<p><b>{n_seen} of these sessions trained the calibration model</b>: their 'calibrated' columns "
                  "agree with their clients' ratings by construction, so they are no test of it.</p>")
    n_triage = int(triage["n_urgent"].iloc[0]) if len(triage) else 0
    return (f"<header><h1>alliance report: corpus overview</h1><p>{counts.get('sessions', len(sessions))} sessions · "
            f"{counts.get('turns', '–')} turns · {counts.get('courses', '–')} courses · rejected records: "
            f"{counts.get('rejected_records', 0)}</p><p>alliance {html.escape(str(run.get('alliance_version', '')))} "
            f"· encoder {html.escape(str(enc.get('model_id', '–')))} · seed {run.get('seed', '–')} · "
            f"{html.escape(str(run.get('created', '')))}</p></header><main>"
            "<div class=note><b>Read these scores as what they are.</b> Each axis is shown with its parts. Goal, "
            "task and bond from the alliance lens are each side's <i>similarity to alliance probe statements</i>, a "
            "zero-shot proxy, not the client's rating; 'calibrated' columns are predicted client ratings (see "
            "docs/calibration.md for how well they track what clients said). Change classes use the reliable-change "
            "index (|RCI| ≥ 1.96) from each measure's stored reliability. Every chart exports as PNG or SVG from its "
            f"… menu.{valid}</div><p class=meta>{html.escape(pages_note)}</p>"
            f"<h2>Safety triage ({n_triage})</h2><p class=meta>Sessions where a client turn was rated at high or "
            "imminent risk or a safety flag was raised, most severe first, each quoting its evidence turn; sessions "
            "with only low-level disclosures follow, folded. A screening aid for a person to read, not a clinical "
            "judgement.</p>"
            f"{triage_html(triage, sessions.reset_index(drop=True), session_link, present)}"
            "<h2>Distributions</h2><div data-spec='ov-dist'></div><h2>Change classes</h2>"
            "<div data-spec='ov-change'></div>"
            "<p class=meta>Declining: at least one of the client's goal, task and bond, the client's words and the "
            "counsellor's empathy reliably declined and none reliably improved (most severe |RCI| first).</p>"
            f"<h2>Worst-declining courses</h2><ol>{worst or '<li>none declining</li>'}</ol>"
            f"<h2>Worst-declining sessions</h2><ol>{worst_s or '<li>none declining</li>'}</ol>"
            f"<h2>Flagged sessions ({len(flagged)})</h2><ul>{flag_list or '<li>none</li>'}</ul>"
            f"<h2>All sessions</h2>{table_note}<table>{head}{rows}</table></main>")


#: Figure formats vl-convert writes without a browser.
EXPORT_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


def export_figures(sessions: pd.DataFrame, out_dir: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write the overview's figures as PNG, SVG and/or PDF files with vl-convert (no browser needed)."""
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:  # checked before anything is written
        raise ValueError(f"unknown figure format {bad[0]!r}; use one of {', '.join(EXPORT_FORMATS)}")
    import vl_convert as vlc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in overview_specs(sessions).items():
        for f in formats:
            p = out / f"{name}.{f}"
            if f == "png":
                p.write_bytes(vlc.vegalite_to_png(spec, scale=2))
            elif f == "svg":
                p.write_text(vlc.vegalite_to_svg(spec), encoding="utf-8")
            else:
                p.write_bytes(vlc.vegalite_to_pdf(spec))
            written.append(p)
    return written
