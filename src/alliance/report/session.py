"""One session's page: every lens's block side by side, the calibrated prediction, and the per-turn transcript with
its scores and safety events marked (risk disclosures, reply concerns and the turns behind each safety flag).

Evidence shown is the lenses' own: the safety lens's levels, categories and quoted words; nothing is recomputed here.
"""

from __future__ import annotations

import html
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd

from alliance.report.html import fmt
from alliance.report.specs import mark_downsampled
from alliance.report.terms import TRIAGE_LEVELS, risk_labels, with_one_gap_trend

#: Per-turn columns shown beside the transcript, when present (one headline column per axis).
TRANSCRIPT_COLUMNS = ("alliance_goal", "alliance_task", "alliance_bond")
#: Counsellor-turn booleans of the safety lens that meet a disclosure (shown as green tags) and that fail one.
SAFETY_GOOD = {"safety_acknowledged": "acknowledged", "safety_asked_safety": "asked about safety",
               "safety_referred": "pointed to help"}
SAFETY_CSS = (".risk-imminent td{background:#f4c7c3}.risk-high td{background:#f9d9c4}.risk-low td{background:#fdf0d5}"
              ".concern td{background:#f3e0f7}.tag.bad{background:#D55E00;color:#fff}.tag.warn{background:#E69F00}"
              ".tag.good{background:#cde9d8}q{font-style:italic}")


def _meta(v: Any) -> dict:
    if isinstance(v, str):
        try:
            return json.loads(v) if v else {}
        except ValueError:
            return {}
    return dict(v) if isinstance(v, dict) else {}


def _true(v: Any) -> bool:
    return bool(v) if isinstance(v, (bool, np.bool_)) else (v is not None and v is not pd.NA and v == 1)


def _flag_turns(row: pd.Series) -> dict[int, list[str]]:
    """Turn index -> the safety flags whose evidence it is (from ``safety_flag_<name>_turns``)."""
    out: dict[int, list[str]] = {}
    for col in row.index:
        if not (col.startswith("safety_flag_") and not col.endswith(("_turns", "_why"))) or not _true(row[col]):
            continue
        name = col.removeprefix("safety_flag_").replace("_", " ")
        for tok in str(row.get(f"{col}_turns") or "").replace(";", ",").split(","):
            if tok.strip().lstrip("-").isdigit():
                out.setdefault(int(tok), []).append(name)
    return out


def safety_marks(turns: pd.DataFrame, row: pd.Series) -> tuple[list[str], list[str]]:
    """Per turn (in ``turns`` order): a row class and the safety cell's HTML; empty when the lens did not run."""
    n = len(turns)
    classes, cells = [""] * n, [""] * n
    has_risk = "safety_risk_level" in turns
    if not has_risk and "safety_concern" not in turns:
        return classes, cells
    levels = risk_labels(turns["safety_risk_level"]).tolist() if has_risk else [""] * n

    def col(name: str) -> list:
        return turns[name].tolist() if name in turns else [None] * n

    cat, why, p, addressed = col("safety_risk_category"), col("safety_risk_why"), col("safety_risk_p"), \
        col("safety_risk_addressed")
    concern, kinds, evidence = col("safety_concern"), col("safety_concerns"), col("safety_reply_evidence")
    good = {label: col(c) for c, label in SAFETY_GOOD.items()}
    flags = _flag_turns(row)
    for i, ti in enumerate(turns["turn_index"].tolist()):
        tags = []
        lvl = levels[i]
        if lvl in TRIAGE_LEVELS:
            classes[i] = f"risk-{lvl}"
            what = " ".join(x for x in (lvl, fmt(cat[i]) if isinstance(cat[i], str) and cat[i] else "") if x)
            pp = f" p={p[i]:.2f}" if isinstance(p[i], (float, np.floating)) and np.isfinite(p[i]) else ""
            tags.append(f"<span class='tag {'bad' if lvl != 'low' else 'warn'}'>risk: {what}{pp}</span>")
            if isinstance(why[i], str) and why[i]:
                tags.append(f"<q>{html.escape(why[i])}</q>")
            if addressed[i] is False or (isinstance(addressed[i], np.bool_) and not addressed[i]):
                tags.append("<span class='tag bad'>not addressed</span>")
        elif lvl == "unknown":
            tags.append("<span class=tag>risk unknown (empty, garbled or not English)</span>")
        if _true(concern[i]):
            classes[i] = classes[i] or "concern"
            tags.append(f"<span class='tag bad'>reply concern: {fmt(kinds[i]) if isinstance(kinds[i], str) and kinds[i] else 'yes'}</span>")
            if isinstance(evidence[i], str) and evidence[i]:
                tags.append(f"<q>{html.escape(evidence[i])}</q>")
        tags += [f"<span class='tag good'>{label}</span>" for label, vals in good.items() if _true(vals[i])]
        tags += [f"<span class='tag warn'>flag: {html.escape(f)}</span>" for f in flags.get(int(ti), [])]
        cells[i] = " ".join(tags)
    return classes, cells


def transcript(turns: pd.DataFrame, row: pd.Series | None = None) -> str:
    """The transcript as a table, one anchored row per turn (``#t<turn_index>``), with per-turn scores and, when the
    safety lens ran, a column marking its events."""
    row = row if row is not None else pd.Series(dtype=object)
    score_cols = [c for c in TRANSCRIPT_COLUMNS if c in turns]
    classes, safety = safety_marks(turns, row)
    show_safety = any(safety) or "safety_risk_level" in turns
    head = ("<tr><th>#</th><th class=l>speaker</th><th class=l>text</th>"
            + "".join(f"<th>{c}</th>" for c in score_cols) + ("<th class=l>safety</th>" if show_safety else "")
            + "</tr>")
    cols = [turns[c].tolist() for c in score_cols]
    rows = []
    for i, (ti, sp, text) in enumerate(zip(turns["turn_index"].tolist(), turns["speaker"].tolist(),
                                           turns["text"].tolist(), strict=True)):
        cells = "".join(f"<td>{fmt(c[i])}</td>" for c in cols)
        cls = html.escape(f"{sp} {classes[i]}".strip())
        rows.append(f"<tr id=t{ti} class='{cls}'><td>{ti}</td><td class=l>{html.escape(str(sp))}</td>"
                    f"<td class=l>{html.escape(str(text))}</td>{cells}"
                    + (f"<td class=l>{safety[i]}</td>" if show_safety else "") + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def calibrated_block(row: pd.Series) -> str:
    """The calibrated model's prediction of the client's rating, every part beside the overall (docs/calibration.md)."""
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


GAP_TERMS_NOTE = ("<p class=meta>Gap trends (narrowing, widening, stable) have one definition on every page: a change "
                  "in |client − counsellor| from the first to the last third counts only beyond what measurement error "
                  "allows (reliable change, |z| ≥ 1.96); the alliance lens's own margin rule is used only where the "
                  "trajectory lens did not run.</p>")


def session_page(turns: pd.DataFrame, row: pd.Series, lens_classes: list[type], title: str, back: str,
                 links: str = "") -> tuple[str, dict]:
    """A session page's body and its chart specs. Call inside :func:`alliance.report.specs.fast_charts` to build
    the lenses' Altair charts of any length without validation."""
    specs: dict[str, Any] = {}
    blocks = []
    row = with_one_gap_trend(row)
    for lens_cls in lens_classes:
        try:
            section = lens_cls.report_section(turns, row, f"x-{lens_cls.name}")
        except Exception as e:  # one lens's block failing must not cost the page, or the report, the others
            where = f"{row.get('course_id')} / {row.get('session_id')}"
            warnings.warn(f"report: session {where}: the {lens_cls.name} block failed: {type(e).__name__}: {e}",
                          RuntimeWarning, stacklevel=2)
            blocks.append(f"<section class=session><h2>{html.escape(lens_cls.name)}</h2><p class=note>This block "
                          f"could not be drawn ({html.escape(type(e).__name__)}: {html.escape(str(e)[:300])}); "
                          "its scores are in the run's tables.</p></section>")
            continue
        if section is None:
            continue
        specs.update({k: mark_downsampled(v) for k, v in section.specs.items()})
        blocks.append(f"<section class=session><h2>{html.escape(section.title)}</h2>{section.html}</section>")
    if any(f"{p}_gap_{s}_trend" in row.index for p in ("alliance", "trajectory") for s in ("goal", "task", "bond")):
        blocks.append(GAP_TERMS_NOTE)
    calibrated = calibrated_block(row)
    if calibrated:
        blocks.append(calibrated)
    shown = {k: v for k, v in _meta(row.get("meta")).items() if not isinstance(v, (dict, list))}
    meta_html = " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in list(shown.items())[:30])
    body = (f"<header><h1>{html.escape(title)}</h1><p>{len(turns)} turns · {meta_html}</p>"
            f"<p><a style='color:#fff' href='{back}'>← corpus overview</a>{links}</p></header><main>"
            + "".join(blocks)
            + f"<section class=session><details open><summary>transcript with per-turn scores</summary>"
              f"{transcript(turns, row)}</details></section></main>")
    return body, specs
