"""The full HTML report as a small offline site: a corpus overview page linking to one page per session and course,
written in parallel processes, for every session or (on large corpora) the flagged and worst-declining ones.

Why a site and not one page: a corpus of 1,000 sessions as one page means megabytes of DOM before anything shows;
here the overview holds only aggregates and capped lists, each session page holds every axis side by side (each lens's
own section) and its transcript, and the Vega runtime is one shared file.
"""

from __future__ import annotations

import html
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY
from alliance.report.html import CSS, LAZY_JS, _lens_classes, fmt, vega_bundle
from alliance.report.overview import (  # noqa: F401  (export_figures, overview_specs: the public API, re-exported)
    OVERVIEW_COLUMNS,
    _flag_columns,
    export_figures,
    overview_body,
    overview_specs,
)
from alliance.report.session import SAFETY_CSS, session_page
from alliance.report.specs import fast_charts
from alliance.report.terms import risk_label, risk_labels, worst_declining

SITE_DIR = "report_files"
Pages = Literal["auto", "all", "flagged", "none"]
PAGES: tuple[str, ...] = ("auto", "all", "flagged", "none")
#: With ``pages='auto'`` a corpus of up to this many sessions gets every session page; a larger one gets the flagged
#: and worst-declining sessions' pages only (2,000 pages take about a minute on one core; 100,000 take an hour).
AUTO_ALL_MAX = 2000
#: Under ``pages='flagged'``: how many of the most severely declining sessions get a page besides the flagged ones.
WORST_PAGES = 200
#: Fewer pages than this are written in this process: starting worker processes would cost more than it saves.
PARALLEL_MIN = 64
#: Sessions handed to a worker at a time (large enough to amortise the hand-over, small enough to show progress).
BATCH = 24

#: Risk levels that give a session a page under ``pages='flagged'`` (with any raised safety flag).
PAGE_LEVELS = ("high", "imminent")

Progress = Callable[[int, int], None]
SessionTurns = Callable[[set[tuple[str, str]]], Iterator[tuple[tuple[str, str], pd.DataFrame]]]


def _page(title: str, body: str, specs: dict[str, Any], depth: int) -> str:
    """One page; the overview (depth 0) carries the Vega runtime inline so it opens on its own, the session and
    course pages share report_files/vega.js (loaded once, then cached by the browser)."""
    up = "../" * depth
    spec_json = json.dumps(specs, default=str).replace("</", "<\\/")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title><style>{CSS}"
            ".improving{background:#cde9f6}.declining{background:#f9d9c4}.widening{background:#f9d9c4}"
            f"{SAFETY_CSS}</style>"
            + (f"<script>{vega_bundle()}</script>" if depth == 0 else f"<script src='{up}{SITE_DIR}/vega.js'></script>")
            + f"</head><body>{body}"
            f"<script type='application/json' id='alliance-specs'>{spec_json}</script>"
            f"<script>{LAZY_JS}</script></body></html>")


def _session_file(i: int) -> str:
    return f"{SITE_DIR}/sessions/s{i:05d}.html"


def _course_file(i: int) -> str:
    return f"{SITE_DIR}/courses/c{i:05d}.html"


def _safety_mask(turns: pd.DataFrame, sessions: pd.DataFrame) -> np.ndarray:
    """Sessions that need a reader for safety: a client turn at high or imminent risk, or a raised safety flag. Low
    risk alone puts a session on the overview's triage list (after these) but does not ask for its page."""
    mask = np.zeros(len(sessions), bool)
    if "safety_max_risk_level" in sessions:
        mask |= sessions["safety_max_risk_level"].map(risk_label).isin(PAGE_LEVELS).to_numpy()
    flags = _flag_columns(sessions)
    if flags:
        mask |= sessions[flags].fillna(False).astype(bool).any(axis=1).to_numpy()
    if "safety_risk_level" in turns:
        hit = turns.loc[risk_labels(turns["safety_risk_level"]).isin(PAGE_LEVELS), SESSION_KEY].drop_duplicates()
        mask |= pd.MultiIndex.from_frame(sessions[SESSION_KEY]).isin(pd.MultiIndex.from_frame(hit))
    return mask


def select_pages(turns: pd.DataFrame, sessions: pd.DataFrame, pages: str = "auto") -> tuple[np.ndarray, str]:
    """Which sessions (rows of ``sessions``, reset index) get a page, and a sentence saying which and why.

    ``all``: every session. ``none``: none (the overview only). ``flagged``: sessions with a trajectory flag, a safety
    flag or a high or imminent risk disclosure, or among the :data:`WORST_PAGES` worst-declining. ``auto``: ``all`` up to
    :data:`AUTO_ALL_MAX` sessions, ``flagged`` beyond. In the sentence, ``{n_pages}`` stands for the number of
    pages written (a session without turns gets none)."""
    if pages not in PAGES:
        raise ValueError(f"pages must be one of {', '.join(PAGES)}, not {pages!r}")
    n = len(sessions)
    if pages == "auto":
        pages = "all" if n <= AUTO_ALL_MAX else "flagged"
        why = f" (the default for a corpus of {'at most' if n <= AUTO_ALL_MAX else 'more than'} {AUTO_ALL_MAX} " \
              "sessions; `alliance report --pages all|flagged|none` chooses)"
    else:
        why = ""
    if pages == "all":
        return np.arange(n), f"Every session has a page{why}."
    if pages == "none":
        return np.arange(0), f"No session pages were written{why}; every score is in sessions.parquet."
    mask = _safety_mask(turns, sessions)
    if "trajectory_flags" in sessions:
        mask |= (sessions["trajectory_flags"].fillna("").astype(str) != "").to_numpy()
    worst = worst_declining(sessions, WORST_PAGES)
    mask[worst.index.to_numpy(dtype=int)] = True
    chosen = np.flatnonzero(mask)
    return chosen, (f"Pages were written for the {{n_pages}} of {n} sessions with a trajectory or safety "
                    f"flag, a high or imminent risk disclosure, or among the {WORST_PAGES} worst-declining{why}; every score is in "
                    "sessions.parquet.")


def _write_batch(job: tuple[str, dict[str, Any], list[tuple[int, pd.Series, pd.DataFrame, str]]]) -> list[str]:
    """Write one batch of session pages (run in a worker process, or in this one); returns their file names."""
    out, run, items = job
    lens_classes = _lens_classes(run)
    names = []
    with fast_charts():
        for i, row, t, course_href in items:
            course = (f" · <a style='color:#fff' href='../../{course_href}'>course of care →</a>"
                      if course_href else "")
            body, specs = session_page(t, row, lens_classes, f"{row['course_id']} / {row['session_id']}",
                                       "../../report.html", course)
            path = Path(out) / _session_file(i)
            path.write_text(_page(str(row["session_id"]), body, specs, 2), encoding="utf-8")
            names.append(path.name)
    return names


def _jobs(out: Path, run: dict[str, Any], turns: pd.DataFrame, sessions: pd.DataFrame, chosen: Sequence[int],
          course_href: Callable[[str], str], session_turns: SessionTurns | None = None
          ) -> tuple[int, Iterator[tuple[str, dict[str, Any], list]]]:
    """How many pages, and batches of (row number, session row, its turns, its course page) for the chosen sessions
    in corpus order, made as they are asked for, so only the batches in flight hold copies of turns.
    ``session_turns(keys)``, when given, yields ``(key, turns)`` of those sessions read as needed (from the run's
    turns.parquet, :func:`alliance.report.html.report_turns`) in place of ``turns``; every session it is asked for
    must have turns (the sessions of a run always do)."""
    if session_turns is not None:
        row_of = {(str(sessions.at[i, "course_id"]), str(sessions.at[i, "session_id"])): int(i) for i in chosen}

        def streamed() -> Iterator[tuple[str, dict[str, Any], list]]:
            items: list = []
            for key, t in session_turns(set(row_of)):
                i = row_of[key]
                items.append((i, sessions.iloc[i], t, course_href(sessions.at[i, "course_id"])))
                if len(items) == BATCH:
                    yield str(out), run, items
                    items = []
            if items:
                yield str(out), run, items

        return len(row_of), streamed()
    wanted = sessions.iloc[list(chosen)]
    keys = pd.MultiIndex.from_frame(turns[SESSION_KEY])
    sub = turns[keys.isin(pd.MultiIndex.from_frame(wanted[SESSION_KEY]))]
    positions = sub.groupby(SESSION_KEY, sort=False).indices if len(sub) else {}
    todo = [(int(i), pos) for i in chosen
            if (pos := positions.get((sessions.at[i, "course_id"], sessions.at[i, "session_id"]))) is not None]

    def batches() -> Iterator[tuple[str, dict[str, Any], list]]:
        for k in range(0, len(todo), BATCH):
            yield str(out), run, [(i, sessions.iloc[i], sub.iloc[pos], course_href(sessions.at[i, "course_id"]))
                                  for i, pos in todo[k: k + BATCH]]

    return len(todo), batches()


def _start_method() -> str:
    """fork on Linux: workers start in milliseconds and never re-run the caller's script (spawn re-imports
    ``__main__``, which re-runs a script that lacks an ``if __name__ == '__main__'`` guard). The workers use no
    torch or OpenMP, so the caller's threads are no hazard to them. spawn elsewhere (macOS, Windows)."""
    import multiprocessing as mp

    return "fork" if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() else "spawn"


def _run_jobs(jobs: Iterator[tuple], workers: int, progress: Progress | None, total: int) -> set[str]:
    written: set[str] = set()
    done = 0

    def write_here(job: tuple) -> None:
        nonlocal done
        written.update(_write_batch(job))
        done += len(job[2])
        if progress:
            progress(done, total)

    if workers <= 1 or total < PARALLEL_MIN:
        for job in jobs:
            write_here(job)
        return written
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    running: dict[Any, tuple] = {}
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(_start_method())) as pool:
            for job in jobs:  # at most two batches per worker in flight: memory stays bounded
                running[pool.submit(_write_batch, job)] = job
                while len(running) >= 2 * workers:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        job_done = running.pop(f)
                        written.update(f.result())
                        done += len(job_done[2])
                        if progress:
                            progress(done, total)
            for f in list(running):
                job_done = running.pop(f)
                written.update(f.result())
                done += len(job_done[2])
                if progress:
                    progress(done, total)
    except (BrokenProcessPool, OSError) as e:  # a worker died (memory, a signal): the rest are written here
        warnings.warn(f"report: worker processes failed ({e}); writing the remaining session pages in this process",
                      RuntimeWarning, stacklevel=2)
        for job in list(running.values()):  # rewriting a finished page is harmless: pages are deterministic
            write_here(job)
        for job in jobs:
            write_here(job)
    return written


def _remove_stale(folder: Path, keep: set[str]) -> int:
    """Delete pages of an earlier run (health data) that this report did not write; returns how many."""
    n = 0
    for p in folder.glob("*.html"):
        if p.name not in keep:
            p.unlink()
            n += 1
    return n


def _course_page(course: str, crow: pd.Series, rows: pd.DataFrame, has_page: Callable[[int], bool]) -> str:
    links = "".join(
        (f"<li><a href='../../{_session_file(int(i))}'>{html.escape(str(r['session_id']))}</a> " if has_page(int(i))
         else f"<li>{html.escape(str(r['session_id']))} ")
        + f"{html.escape(str(r.get('trajectory_flags') or ''))}</li>" for i, r in rows.iterrows())
    cells = "".join(f"<tr><td class=l>{html.escape(str(k))}</td><td>{fmt(v)}</td></tr>"
                    for k, v in crow.items() if k != "course_id")
    body = (f"<header><h1>course {html.escape(str(course))}</h1><p><a style='color:#fff' "
            f"href='../../report.html'>← corpus overview</a></p></header><main><section class=session>"
            f"<h2>Sessions</h2><ol>{links}</ol><h2>Across sessions: level, slope [95% CI], reliable change"
            f"</h2><table>{cells}</table></section></main>")
    return _page(str(course), body, {}, 2)


def write_site(turns: pd.DataFrame, sessions: pd.DataFrame, run: dict[str, Any], out_dir: str | Path,
               courses: pd.DataFrame | None = None, *, pages: Pages | str = "auto", workers: int | None = None,
               progress: Progress | None = None, session_turns: SessionTurns | None = None) -> Path:
    """Write report.html (the overview) and report_files/ (vega.js, session and course pages) under ``out_dir``.

    ``pages``: which sessions get a page (:func:`select_pages`; 'auto' = all up to :data:`AUTO_ALL_MAX` sessions,
    else the flagged and worst-declining). ``workers``: processes writing pages (default: the CPU count, at most 8;
    1 = this process); the pages are the same whatever the number. ``progress(done, total)`` is called as session
    pages are written. Pages left in ``report_files/`` by an earlier run that this one did not write are removed.
    Returns the overview's path."""
    out = Path(out_dir)
    site = out / SITE_DIR
    (site / "sessions").mkdir(parents=True, exist_ok=True)
    (site / "courses").mkdir(parents=True, exist_ok=True)
    vega = site / "vega.js"
    bundle = vega_bundle()
    if not vega.exists() or vega.stat().st_size != len(bundle.encode()):
        vega.write_text(bundle, encoding="utf-8")
    sessions = sessions.reset_index(drop=True)
    chosen, pages_note = select_pages(turns, sessions, pages)
    course_no = {c: i for i, c in enumerate(pd.unique(sessions["course_id"]))}
    course_pages: set[str] = set()
    if courses is not None and len(courses) and len(chosen):
        course_pages = set(sessions.loc[list(chosen), "course_id"]) if pages != "all" else set(course_no)
        course_pages |= set(worst_declining(courses, 20, prefix="")["course_id"]) & set(course_no)

    def course_href(c: str) -> str:
        return _course_file(course_no[c]) if c in course_pages else ""

    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    total, jobs = _jobs(out, run, turns, sessions, chosen, course_href, session_turns)
    written = _run_jobs(jobs, workers, progress, total)
    _remove_stale(site / "sessions", written)
    with_page = {int(i) for i in chosen if Path(_session_file(int(i))).name in written}
    written_courses: set[str] = set()
    if course_pages:
        crows = courses.set_index("course_id")
        for course, g in sessions.groupby("course_id", sort=False):
            if course not in course_pages:
                continue
            crow = crows.loc[course] if course in crows.index else pd.Series(dtype=object)
            crow = crow.iloc[0] if isinstance(crow, pd.DataFrame) else crow
            path = out / _course_file(course_no[course])
            path.write_text(_course_page(course, crow, g, lambda i: i in with_page), encoding="utf-8")
            written_courses.add(path.name)
    _remove_stale(site / "courses", written_courses)

    def session_link(i: int, anchor: str = "") -> str:
        return f"{_session_file(i)}{anchor}" if i in with_page else ""

    pages_note = pages_note.replace("{n_pages}", str(len(with_page)))
    body = overview_body(turns, sessions, run, courses, session_link, course_href, pages_note)
    (out / "report.html").write_text(_page("alliance report", body, overview_specs(sessions), 0), encoding="utf-8")
    return out / "report.html"
