"""The full HTML report as a small offline site: a corpus overview page linking to one page per session and course.

Why a site and not one page: a corpus of 1,000 sessions as one page means megabytes of DOM before anything shows;
here the overview holds only the distributions and the lists that point somewhere, each session page holds every
axis side by side (each lens's own section) and its transcript, and the Vega runtime is one shared file.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY
from alliance.report.html import CSS, LAZY_JS, _lens_classes, _transcript, _validation_notes, fmt, vega_bundle

SITE_DIR = "report_files"
#: Session columns shown in the overview's table, one headline per axis (never one composite without its parts).
OVERVIEW_COLUMNS = {
    "alliance_client_bond_mean": "client bond", "alliance_client_task_mean": "client task",
    "alliance_client_goal_mean": "client goal", "alliance_counsellor_bond_mean": "counsellor bond",
    "alliance_gap_bond_mean": "bond gap", "empathy_total_mean": "empathy (total)", "trajectory_client_bond_class": "bond change",
    "trajectory_client_words_class": "client words change", "trajectory_n_ruptures": "ruptures",
    "trajectory_n_repaired": "repaired", "calibrated_goal": "calibrated goal", "calibrated_task": "calibrated task",
    "calibrated_bond": "calibrated bond", "calibrated_overall": "calibrated overall",
    "calibrated_out_of_domain": "calibrated: out of domain", "early_warning": "early warning (first half)",
}


def _page(title: str, body: str, specs: dict[str, Any], depth: int) -> str:
    """One page; the overview (depth 0) carries the Vega runtime inline so it opens on its own, the session and
    course pages share report_files/vega.js (loaded once, then cached by the browser)."""
    up = "../" * depth
    spec_json = json.dumps(specs, default=str).replace("</", "<\\/")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title><style>{CSS}"
            ".improving{background:#cde9f6}.declining{background:#f9d9c4}.widening{background:#f9d9c4}"
            "</style>"
            + (f"<script>{vega_bundle()}</script>" if depth == 0 else f"<script src='{up}{SITE_DIR}/vega.js'></script>")
            + f"</head><body>{body}"
            f"<script type='application/json' id='alliance-specs'>{spec_json}</script>"
            f"<script>{LAZY_JS}</script></body></html>")


def _session_file(i: int) -> str:
    return f"{SITE_DIR}/sessions/s{i:05d}.html"


def _course_file(i: int) -> str:
    return f"{SITE_DIR}/courses/c{i:05d}.html"


def _meta(v: Any) -> dict:
    if isinstance(v, str):
        return json.loads(v) if v else {}
    return dict(v) if isinstance(v, dict) else {}


def session_page(turns: pd.DataFrame, row: pd.Series, lens_classes: list[type], title: str, back: str) -> tuple[str, dict]:
    specs: dict[str, Any] = {}
    blocks = []
    for lens_cls in lens_classes:
        section = lens_cls.report_section(turns, row, f"x-{lens_cls.name}")
        if section is None:
            continue
        specs.update(section.specs)
        blocks.append(f"<section class=session><h2>{html.escape(section.title)}</h2>{section.html}</section>")
    calibrated = _calibrated_block(row)
    if calibrated:
        blocks.append(calibrated)
    shown = {k: v for k, v in _meta(row.get("meta")).items() if not isinstance(v, (dict, list))}
    meta_html = " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in list(shown.items())[:30])
    body = (f"<header><h1>{html.escape(title)}</h1><p>{len(turns)} turns · {meta_html}</p>"
            f"<p><a style='color:#fff' href='{back}'>← corpus overview</a></p></header><main>"
            + "".join(blocks)
            + f"<section class=session><details open><summary>transcript with per-turn scores</summary>"
              f"{_transcript(turns)}</details></section></main>")
    return body, specs


def _calibrated_block(row: pd.Series) -> str:
    """The calibrated model's prediction of the client's rating, every part beside the overall (docs/calibration.md)."""
    from alliance.report.html import fmt

    if pd.isna(row.get("calibrated_overall", np.nan)):
        return ""
    axes = " · ".join(f"{a} {fmt(row.get(f'calibrated_{a}'))}" for a in ("goal", "task", "bond"))
    spec = " · ".join(f"{a} {row.get(f'calibrated_{a}_specific'):+.2f}" for a in ("goal", "task", "bond")
                      if pd.notna(row.get(f"calibrated_{a}_specific", np.nan)))
    seen = row.get("calibration_in_training")
    # guard rails beside the number (docs/calibration.md): extrapolation, bounding, and the early warning
    ood = row.get("calibrated_out_of_domain")
    caveat = (f" <b>(out of domain: {html.escape(str(row.get('calibrated_out_of_domain_features') or ''))} lie "
              "outside the training data's range; read it with caution)</b>"
              if isinstance(ood, (bool, np.bool_)) and ood else "")
    bounded = row.get("calibrated_bounded")
    caveat += " (cut back to the scale)" if isinstance(bounded, (bool, np.bool_)) and bounded else ""
    early = ""
    if pd.notna(row.get("early_overall", np.nan)):
        warn = row.get("early_warning")
        early = (f"<p>from the first {fmt(100 * row.get('early_share', np.nan))}% of the session alone: overall "
                 f"{fmt(row.get('early_overall'))}, risk of a poor outcome {fmt(row.get('early_risk'))}"
                 + (" · <b>heading for a rupture or dropout</b>" if isinstance(warn, (bool, np.bool_)) and warn
                    else "") + "</p>")
    return ("<section class=session><h2>Predicted client rating (calibrated model)</h2>"
            f"<p>overall {fmt(row.get('calibrated_overall'))} (0-100) · {axes} (items 0-5){caveat}</p>" + early
            + (f"<p>each axis above (+) or below (−) the predicted overall, in SD: {spec}</p>" if spec else "")
            + ("<p><b>This session's rating trained the model</b>: agreement here is no test of it.</p>"
               if isinstance(seen, (bool, np.bool_)) and seen else "")
            + "<p class=note>A prediction of what the client would say, not their rating; see docs/calibration.md "
              "for how well it tracks what clients said.</p></section>")


def overview_specs(sessions: pd.DataFrame) -> dict[str, Any]:
    """Distributions of each axis's session means across the corpus, and change classes per measure."""
    import altair as alt

    from alliance.report.charts import PALETTE

    specs: dict[str, Any] = {}
    cols = [c for c in OVERVIEW_COLUMNS if c in sessions and pd.api.types.is_numeric_dtype(sessions[c])
            and c not in ("trajectory_n_ruptures", "trajectory_n_repaired")]
    if cols:
        # one small histogram per axis, each binned on its own range (axes have different units)
        charts = [alt.Chart(sessions[[c]].dropna().rename(columns={c: "value"})).mark_bar(color=PALETTE[0]).encode(
            x=alt.X("value:Q", bin=alt.Bin(maxbins=30), title=OVERVIEW_COLUMNS[c]),
            y=alt.Y("count():Q", title="sessions")).properties(width=200, height=110) for c in cols]
        specs["ov-dist"] = alt.concat(*charts, columns=4).to_dict()
    cls = [c for c in sessions.columns if c.startswith("trajectory_") and c.endswith("_class")]
    if cls:
        long = sessions[cls].melt(var_name="measure", value_name="change")
        long["measure"] = long["measure"].str.removeprefix("trajectory_").str.removesuffix("_class")
        specs["ov-change"] = alt.Chart(long).mark_bar().encode(
            y=alt.Y("measure:N", title=None), x=alt.X("count():Q", stack="normalize", title="share of sessions"),
            color=alt.Color("change:N", scale=alt.Scale(domain=["declining", "stable", "improving", "unknown"],
                                                        range=[PALETTE[5], "#bbbbbb", PALETTE[0], "#eeeeee"])),
        ).properties(width=420, height=22 * len(cls)).to_dict()
    return specs


def write_site(turns: pd.DataFrame, sessions: pd.DataFrame, run: dict[str, Any], out_dir: str | Path,
               courses: pd.DataFrame | None = None) -> Path:
    """Write report.html (overview) and report_files/ (vega.js, one page per session and per course)."""
    out = Path(out_dir)
    site = out / SITE_DIR
    (site / "sessions").mkdir(parents=True, exist_ok=True)
    (site / "courses").mkdir(parents=True, exist_ok=True)
    vega = site / "vega.js"
    bundle = vega_bundle()
    if not vega.exists() or vega.stat().st_size != len(bundle.encode()):
        vega.write_text(bundle, encoding="utf-8")
    lens_classes = _lens_classes(run)
    sessions = sessions.reset_index(drop=True)
    by_session = dict(iter(turns.groupby(SESSION_KEY, sort=False)))
    course_no = {c: i for i, c in enumerate(pd.unique(sessions["course_id"]))}
    for i, row in sessions.iterrows():
        t = by_session.get((row["course_id"], row["session_id"]))
        if t is None:
            continue
        body, specs = session_page(t, row, lens_classes, f"{row['course_id']} / {row['session_id']}",
                                   "../../report.html")
        body = body.replace("</header>", f"<p><a style='color:#fff' href='../../{_course_file(course_no[row['course_id']])}'>"
                                         "course of care →</a></p></header>", 1)
        (out / _session_file(int(i))).write_text(_page(str(row["session_id"]), body, specs, 2), encoding="utf-8")
    if courses is not None and len(courses):
        for course, g in sessions.groupby("course_id", sort=False):
            crow = courses[courses["course_id"] == course]
            crow = crow.iloc[0] if len(crow) else pd.Series(dtype=object)
            links = "".join(f"<li><a href='../../{_session_file(int(i))}'>{html.escape(str(r['session_id']))}</a> "
                            f"{html.escape(str(r.get('trajectory_flags') or ''))}</li>" for i, r in g.iterrows())
            cells = "".join(f"<tr><td class=l>{html.escape(str(k))}</td><td>{fmt(v)}</td></tr>"
                            for k, v in crow.items() if k != "course_id")
            body = (f"<header><h1>course {html.escape(str(course))}</h1><p><a style='color:#fff' "
                    f"href='../../report.html'>← corpus overview</a></p></header><main><section class=session>"
                    f"<h2>Sessions</h2><ol>{links}</ol><h2>Across sessions: level, slope [95% CI], reliable change"
                    f"</h2><table>{cells}</table></section></main>")
            (out / _course_file(course_no[course])).write_text(_page(str(course), body, {}, 2), encoding="utf-8")
    (out / "report.html").write_text(_page("alliance report", overview_body(sessions, run, courses, course_no),
                                           overview_specs(sessions), 0), encoding="utf-8")
    return out / "report.html"


def _class_rank(sessions: pd.DataFrame) -> pd.Series:
    rci = [c for c in ("trajectory_client_bond_rci", "trajectory_client_words_rci") if c in sessions]
    return sessions[rci].min(axis=1) if rci else pd.Series(np.nan, index=sessions.index)


def overview_body(sessions: pd.DataFrame, run: dict[str, Any], courses: pd.DataFrame | None,
                  course_no: dict[str, int]) -> str:
    counts = run.get("counts", {})
    enc = run.get("encoder") or {}
    cols = [c for c in OVERVIEW_COLUMNS if c in sessions]
    head = "<tr><th class=l>session</th>" + "".join(f"<th>{OVERVIEW_COLUMNS[c]}</th>" for c in cols) + \
        "<th class=l>flags</th></tr>"
    rows = "".join(
        f"<tr><td class=l><a href='{_session_file(int(i))}'>{html.escape(str(r['session_id']))}</a></td>"
        + "".join(f"<td class='{html.escape(str(r[c]))}'>{fmt(r[c])}</td>" for c in cols)
        + f"<td class=l>{html.escape(str(r.get('trajectory_flags') or ''))}</td></tr>"
        for i, r in sessions.iterrows())
    flagged = sessions[sessions.get("trajectory_flags", pd.Series("", index=sessions.index)).fillna("") != ""]
    flag_list = "".join(f"<li><a href='{_session_file(int(i))}'>{html.escape(str(r['session_id']))}</a>: "
                        f"{html.escape(str(r['trajectory_flags']))}</li>" for i, r in flagged.head(200).iterrows())
    worst = ""
    if courses is not None and len(courses):
        slope_cols = [c for c in ("client_bond_rci", "client_words_rci") if c in courses]
        if slope_cols:
            c = courses.assign(worst_rci=courses[slope_cols].min(axis=1)).dropna(subset=["worst_rci"]).sort_values(
                "worst_rci").head(20)
            worst = "".join(f"<li><a href='{_course_file(course_no[r.course_id])}'>{html.escape(str(r.course_id))}</a>"
                            f" ({int(r.n_sessions)} sessions): reliable-change index {r.worst_rci:.2f}</li>"
                            for r in c.itertuples() if r.course_id in course_no)
    worst_sessions = sessions.assign(_r=_class_rank(sessions)).dropna(subset=["_r"]).sort_values("_r").head(20)
    worst_s = "".join(f"<li><a href='{_session_file(int(i))}'>{html.escape(str(r['session_id']))}</a>: "
                      f"RCI {r['_r']:.2f}</li>" for i, r in worst_sessions.iterrows())
    valid = "".join(f"<p><b>{html.escape(str(n.get('title', '')))}</b>: "
                    + "; ".join(html.escape(str(x)) for x in n.get("lines", [])) + "</p>" for n in _validation_notes())
    n_seen = int(sessions["calibration_in_training"].fillna(False).astype(bool).sum()) \
        if "calibration_in_training" in sessions else 0
    if n_seen:  # their client ratings trained the model: agreement there is no evidence for it
        valid += (f"<p><b>{n_seen} of these sessions trained the calibration model</b>: their 'calibrated' columns "
                  "agree with their clients' ratings by construction, so they are no test of it.</p>")
    return (f"<header><h1>alliance report: corpus overview</h1><p>{counts.get('sessions', len(sessions))} sessions · "
            f"{counts.get('turns', '–')} turns · {counts.get('courses', '–')} courses · rejected records: "
            f"{counts.get('rejected_records', 0)}</p><p>alliance {html.escape(str(run.get('alliance_version', '')))} "
            f"· encoder {html.escape(str(enc.get('model_id', '–')))} · seed {run.get('seed', '–')} · "
            f"{html.escape(str(run.get('created', '')))}</p></header><main>"
            "<div class=note><b>Read these scores as what they are.</b> Each axis is shown with its parts. Goal, "
            "task and bond from the alliance lens are each side's <i>similarity to alliance probe statements</i>, a "
            "zero-shot proxy, not the client's rating; 'calibrated' columns are predicted client ratings (see "
            "docs/calibration.md for how well they track what clients said). Change classes use the reliable-change index (|RCI| ≥ 1.96) "
            f"from each measure's stored reliability. Every chart exports as PNG or SVG from its … menu.{valid}</div>"
            "<h2>Distributions</h2><div data-spec='ov-dist'></div><h2>Change classes</h2>"
            "<div data-spec='ov-change'></div>"
            f"<h2>Worst-declining courses</h2><ol>{worst or '<li>none with enough sessions</li>'}</ol>"
            f"<h2>Worst-declining sessions</h2><ol>{worst_s or '<li>–</li>'}</ol>"
            f"<h2>Flagged sessions ({len(flagged)})</h2><ul>{flag_list or '<li>none</li>'}</ul>"
            f"<h2>All sessions</h2><table>{head}{rows}</table></main>")


def export_figures(sessions: pd.DataFrame, out_dir: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write the overview's figures as PNG and/or SVG files with vl-convert (no browser needed)."""
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
                raise ValueError(f"unknown figure format {f!r}; use png or svg")
            written.append(p)
    return written
