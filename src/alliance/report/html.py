"""What every report page shares (style, the lazy chart loader, the inlined Vega runtime, number formatting), and
the single-page layout that the site replaced, kept as the baseline of benchmarks/report_load.py.

The Vega runtime is vl-convert's bundle (no CDN); each chart is a small JSON spec rendered when it scrolls into view.
"""

from __future__ import annotations

import html
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#0b3d5c;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.9;font-size:13px}main{padding:12px 28px 40px;max-width:1200px}
.note{background:#fff8e1;border-left:4px solid #E69F00;padding:10px 14px;margin:14px 0;font-size:14px}
section.session{background:#fff;border:1px solid #ddd;border-radius:6px;margin:18px 0;padding:12px 18px}
section.session h2{font-size:17px;margin:4px 0 8px}.meta{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
details{margin:8px 0}summary{cursor:pointer;color:#0072B2}.client{background:#f3f8fc}.counsellor{background:#fdf8ef}
.tag{display:inline-block;padding:1px 6px;border-radius:8px;font-size:11px;background:#eee;margin-left:4px}
nav a{margin-right:10px;font-size:13px}
"""

LAZY_JS = """
(() => {  // a block of its own: the Vega bundle declares top-level names (e.g. io) that must not clash
const specs = JSON.parse(document.getElementById('alliance-specs').textContent);
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    const el = e.target; seen.unobserve(el);
    vegaEmbed(el, specs[el.dataset.spec], {actions: {export: true, source: false, compiled: false, editor: false}});
  }
}, {rootMargin: '400px'});
document.querySelectorAll('[data-spec]').forEach(el => seen.observe(el));
})();
"""


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """The Vega, Vega-Lite and vega-embed runtime every report carries (vl-convert's bundle, about 0.9 MB).

    Bundling it costs about 2 s of CPU each time (a tenth of a warm re-analysis of 30 sessions), and it depends only
    on the vl-convert version, so it is kept in the cache folder (``$ALLIANCE_CACHE/report``) per version."""
    import vl_convert as vlc

    from alliance.encoders.cache import default_cache_dir
    from alliance.owner_only import owner_only, private_dir

    version = str(getattr(vlc, "__version__", "") or "")
    path = default_cache_dir() / "report" / f"vega-bundle-vl-convert-{version}.js" if version else None
    if path is not None and path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    bundle = vlc.javascript_bundle()
    if path is not None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # several runs may write it at once
        try:
            private_dir(path.parent)
            with owner_only():
                tmp.write_text(bundle, encoding="utf-8")
            tmp.replace(path)
        except OSError:  # a read-only cache only costs the time
            tmp.unlink(missing_ok=True)
    return bundle


def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.2f}"
    return html.escape(str(v))


def _validation_notes() -> list[dict[str, Any]]:
    """Validation figures written by the benchmark scripts (never typed in by hand)."""
    notes = []
    folder = resources.files("alliance.data").joinpath("validation")
    if folder.is_dir():
        for f in sorted(folder.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".json"):
                notes.append(json.loads(f.read_text(encoding="utf-8")))
    return notes


def _lens_classes(run: dict[str, Any]) -> list[type]:
    from alliance.registry import RegistryError, lenses

    out = []
    for desc in run.get("lenses", []):
        try:
            out.append(lenses.get(desc["name"]))
        except RegistryError:  # a lens from a plug-in that is not installed here: its columns stay in the tables
            continue
    return out


def render_html(turns: pd.DataFrame, sessions: pd.DataFrame, run: dict[str, Any]) -> str:
    """Every session in one page (the layout before the site; kept as the baseline of benchmarks/report_load.py)."""
    from alliance.report.specs import fast_charts, mark_downsampled

    with fast_charts():
        return _render_html(turns, sessions, run, mark_downsampled)


def _render_html(turns: pd.DataFrame, sessions: pd.DataFrame, run: dict[str, Any], mark: Any) -> str:
    from alliance.report.session import transcript

    specs: dict[str, Any] = {}
    parts: list[str] = []
    nav = []
    by_session = dict(iter(turns.groupby(SESSION_KEY, sort=False)))
    lens_classes = _lens_classes(run)
    for i, row in sessions.iterrows():
        key = (row["course_id"], row["session_id"])
        sid = f"s{i}"
        t = by_session.get(key)
        if t is None:
            continue
        meta = row.get("meta")
        meta = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        shown = {k: v for k, v in meta.items() if not isinstance(v, (dict, list))}
        meta_html = " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in list(shown.items())[:12])
        lens_html = ""
        for lens_cls in lens_classes:
            section = lens_cls.report_section(t, row, f"{sid}-{lens_cls.name}")
            if section is None:
                continue
            specs.update({k: mark(v) for k, v in section.specs.items()})
            lens_html += f"<h3>{html.escape(section.title)}</h3>{section.html}"
        nav.append(f"<a href='#{sid}'>{html.escape(str(key[1]))}</a>")
        parts.append(
            f"<section class=session id={sid}><h2>{html.escape(str(key[0]))} / {html.escape(str(key[1]))}</h2>"
            f"<div class=meta>{len(t)} turns ({int(row.get('n_client_turns', 0))} client, "
            f"{int(row.get('n_counsellor_turns', 0))} counsellor){' · ' + meta_html if meta_html else ''}</div>"
            f"{lens_html}<details><summary>transcript with per-turn scores</summary>{transcript(t, row)}</details>"
            "</section>")
    notes = _validation_notes()
    valid_html = ""
    for n in notes:
        items = "".join(f"<li>{html.escape(str(x))}</li>" for x in n.get("lines", []))
        valid_html += (f"<p><b>{html.escape(str(n.get('title', '')))}</b> "
                       f"(<code>{html.escape(str(n.get('command', '')))}</code>)</p><ul>{items}</ul>")
    enc = run.get("encoder") or {}
    probe = next((lens.get("probe_set") for lens in run.get("lenses", []) if lens.get("probe_set")), {}) or {}
    counts = run.get("counts", {})
    spec_json = json.dumps(specs, default=str).replace("</", "<\\/")
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1"><title>alliance report</title>
<style>{CSS}</style><script>{vega_bundle()}</script></head><body>
<header><h1>alliance report</h1>
<p>{counts.get('sessions', len(sessions))} sessions · {counts.get('turns', len(turns))} turns ·
rejected records: {counts.get('rejected_records', 0)}</p>
<p>alliance {html.escape(str(run.get('alliance_version', '')))} · encoder {html.escape(str(enc.get('model_id', '–')))} ·
probes {html.escape(str(probe.get('name', '–')))} {html.escape(str(probe.get('version', '')))} · seed {run.get('seed', '–')}
· {html.escape(str(run.get('created', '')))}</p></header><main>
<div class=note><b>Read these scores as what they are.</b> Goal, task and bond here are each side's
<i>similarity to alliance probe statements</i>, calibrated against ordinary conversation (z units): a
zero-shot proxy, not the client's rating of the alliance. Positive = closer to alliance-building statements
than to rupture-like ones. How well they track what clients actually said:
{valid_html or '<p>(no validation figures recorded in this installation; run benchmarks/validate_alliance.py)</p>'}</div>
<nav>{''.join(nav[:200])}</nav>
{''.join(parts)}
<script type="application/json" id="alliance-specs">{spec_json}</script>
<script>{LAZY_JS}</script></main></body></html>"""


def write_html_report(analysis: Any, path: str | Path, *, pages: str = "auto", workers: int | None = None,
                      progress: Any = None) -> Path:
    """Write the report for an :class:`~alliance.pipeline.Analysis`: ``path`` is the corpus overview, and one page
    per session and course goes into ``report_files/`` beside it (see :func:`alliance.report.site.write_site` for
    ``pages``, ``workers`` and ``progress``)."""
    from alliance.report.site import write_site

    path = Path(path)
    turns, session_turns = report_turns(analysis, pages)
    write_site(turns, analysis.sessions, analysis.run, path.parent, getattr(analysis, "courses", None), pages=pages,
               workers=workers, progress=progress, session_turns=session_turns)
    written = path.parent / "report.html"
    if written != path:
        written.replace(path)
    return path


#: Rows of turns.parquet read at a time by a large run's report.
REPORT_BATCH = 8192


def report_turns(analysis: Any, pages: str = "auto") -> tuple[pd.DataFrame, Any]:
    """The turns a report reads, and how its session pages get theirs.

    When every session gets a page: all turns, and None (pages take theirs from the table). Else, from the run's
    turns.parquet in batches, so the report's memory does not grow with the corpus: the overview's turns (client
    turns with a risk disclosure, and the turns of sessions with a raised safety flag, which its triage list quotes)
    and a function yielding ``(key, turns)`` of the sessions asked for, one at a time, in file order."""
    from alliance.report.overview import _flag_columns
    from alliance.report.site import AUTO_ALL_MAX
    from alliance.report.terms import TRIAGE_LEVELS, risk_labels

    path = getattr(analysis, "turns_path", None)
    n = len(analysis.sessions)
    if getattr(analysis, "_turns", None) is not None or path is None or pages == "all" or (
            pages == "auto" and n <= AUTO_ALL_MAX):
        return analysis.turns, None
    import pyarrow.parquet as pq

    risky = "safety_risk_level" in pq.read_schema(path).names

    def batches(columns: list[str] | None = None):
        for b in pq.ParquetFile(path).iter_batches(batch_size=REPORT_BATCH, columns=columns):
            df = b.to_pandas()
            yield df, (risk_labels(df["safety_risk_level"]).isin(TRIAGE_LEVELS).to_numpy() if risky
                       else np.zeros(len(df), bool))

    sessions = analysis.sessions
    flags = _flag_columns(sessions)
    flagged = sessions[flags].fillna(False).astype(bool).any(axis=1) if flags else pd.Series(False, sessions.index)
    quoted = pd.MultiIndex.from_frame(sessions.loc[flagged.to_numpy(), SESSION_KEY])
    parts = [df[m | pd.MultiIndex.from_frame(df[SESSION_KEY]).isin(quoted)] for df, m in batches()]
    parts = [p for p in parts if len(p)]
    overview = pd.concat(parts, ignore_index=True) if parts else pq.read_schema(path).empty_table().to_pandas()

    def session_turns(keys: set[tuple[str, str]]):
        """A session's turns are consecutive rows of turns.parquet (chunks are written whole, in order)."""
        carry: pd.DataFrame | None = None
        for df, _ in batches():
            k = pd.MultiIndex.from_frame(df[SESSION_KEY].astype(str))
            df = df[k.isin(list(keys))] if keys else df.iloc[:0]
            if carry is not None:
                df = pd.concat([carry, df], ignore_index=True)
                carry = None
            if not len(df):
                continue
            groups = list(df.groupby(SESSION_KEY, sort=False).indices.items())
            last = groups[-1]
            for key, pos in groups[:-1]:
                yield (str(key[0]), str(key[1])), df.iloc[pos].reset_index(drop=True)
            carry = df.iloc[last[1]]  # may continue in the next batch
        if carry is not None and len(carry):
            key = carry[SESSION_KEY].iloc[0]
            yield (str(key.iloc[0]), str(key.iloc[1])), carry.reset_index(drop=True)

    return overview, session_turns
