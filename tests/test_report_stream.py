"""The report of a large run reads only the turns it shows (alliance.report.html.report_turns): the same report as
from the whole turn table, with the whole table never loaded (invented data, no encoder)."""

from __future__ import annotations

import pandas as pd

from alliance.corpus import Corpus
from alliance.pipeline import run_analysis
from alliance.report import html as html_mod
from alliance.report import site as site_mod
from alliance.report.html import report_turns


def _corpus(n_sessions: int = 12, n_turns: int = 8) -> Corpus:
    rows = [{"course_id": f"c{s // 2}", "session_id": f"s{s}", "session_index": s % 2, "turn_index": i,
             "speaker": "client" if i % 2 else "counsellor",
             "text": (f"I feel hopeless and stuck {s}" if s % 3 == 0 else f"things are fine {s} {i}") if i % 2
             else "What would help most today?"} for s in range(n_sessions) for i in range(n_turns)]
    return Corpus(pd.DataFrame(rows))


def test_report_turns_are_the_shown_sessions_and_the_disclosures(tmp_path, monkeypatch):
    res = run_analysis(_corpus(), tmp_path / "run", lenses=["markers", "trajectory"], write_report=False)
    path = tmp_path / "run" / "turns.parquet"
    full = pd.read_parquet(path)
    # as the safety lens marks them: a low-level disclosure (session s1) and a high one (session s6)
    full["safety_risk_level"] = pd.Series([None] * len(full), dtype=object)
    full.loc[9, "safety_risk_level"], full.loc[49, "safety_risk_level"] = "low", "high"
    full.to_parquet(path, index=False)
    full = pd.read_parquet(path)
    # small corpus: every session has a page, so every turn is read
    turns, pages_from = report_turns(res)
    assert len(turns) == len(full) and pages_from is None
    res.turns = None  # as a run returns it: the turns on disk only
    monkeypatch.setattr(site_mod, "AUTO_ALL_MAX", 3)  # "large": only the flagged and worst-declining get pages
    monkeypatch.setattr(html_mod, "REPORT_BATCH", 5)  # sessions of 8 turns cross batch edges
    overview, session_turns = report_turns(res)
    assert res._turns is None  # the run's whole table was never loaded
    # the overview reads the disclosures only (no session has a raised safety flag here)
    pd.testing.assert_frame_equal(overview, full.iloc[[9, 49]].reset_index(drop=True))
    # pages read their sessions' turns one session at a time, across batch edges
    got = list(session_turns({("c3", "s6"), ("c0", "s1")}))
    assert [k for k, _ in got] == [("c0", "s1"), ("c3", "s6")]
    for (_, sid), t in got:
        pd.testing.assert_frame_equal(t, full[full["session_id"] == sid].reset_index(drop=True))
    # and the report written from it is the report written from the whole table
    site_mod.write_site(full, res.sessions, res.run, tmp_path / "a", res.courses, workers=1)
    from alliance.report.html import write_html_report

    write_html_report(res, tmp_path / "b" / "report.html", workers=1)
    assert (tmp_path / "a" / "report.html").read_text() == (tmp_path / "b" / "report.html").read_text()
    pages = sorted(p.name for p in (tmp_path / "a" / "report_files" / "sessions").glob("*.html"))
    assert pages == sorted(p.name for p in (tmp_path / "b" / "report_files" / "sessions").glob("*.html"))
    for name in pages:
        a = (tmp_path / "a" / "report_files" / "sessions" / name).read_text()
        assert a == (tmp_path / "b" / "report_files" / "sessions" / name).read_text()
    assert pages == ["s00006.html"]  # the high disclosure's session
