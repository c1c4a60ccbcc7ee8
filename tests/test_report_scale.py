"""The report at any size: long sessions, page selection, parallel and deterministic pages, stale pages removed,
one definition per term, the safety triage list and safety marks in the transcript (invented data, no encoder)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.pipeline import run_analysis
from alliance.report import site as site_mod
from alliance.report.specs import BIN_COLUMN, MAX_POINTS, downsample
from alliance.report.terms import change_direction, gap_trend, risk_label, risk_labels, worst_declining


def _corpus(n_sessions: int, n_turns: int) -> Corpus:
    rows = []
    for s in range(n_sessions):
        for i in range(n_turns):
            client = i % 2 == 1
            rows.append({"course_id": f"c{s // 2}", "session_id": f"s{s}", "session_index": s % 2, "turn_index": i,
                         "speaker": "client" if client else "counsellor",
                         "text": ("ok" if client and i % 7 == 0 else "I keep worrying about my exams and my family.")
                         if client else "What feels most important to you today?"})
    return Corpus(pd.DataFrame(rows))


def test_downsample_bins_long_series_per_series_and_keeps_short_ones():
    n = 20_000
    df = pd.DataFrame({"turn_index": np.arange(n), "speaker": np.where(np.arange(n) % 2, "client", "counsellor"),
                       "score": np.arange(n, dtype=float), "text": ["x"] * n})
    out = downsample(df)
    assert len(out) <= MAX_POINTS and out[BIN_COLUMN].iloc[0] == 14  # ceil(20000 / 1500) turns per point
    assert set(out["speaker"]) == {"client", "counsellor"}  # series are binned apart, never mixed
    first = out[out["speaker"] == "client"].iloc[0]
    assert first["score"] == pytest.approx(np.mean([1, 3, 5, 7, 9, 11, 13]))
    short = df.head(100)
    assert downsample(short) is short


def test_a_session_longer_than_altairs_row_limit_gets_its_page_and_says_its_chart_is_binned(tmp_path):
    # 6,000 turns: the markers lens's per-turn chart (Altair) and the trajectory lens's timeline (plain dict) both
    # exceed Altair's 5,000-row limit, which crashed the report before
    a = run_analysis(_corpus(1, 6000), tmp_path, lenses=["markers", "trajectory"], write_report=False)
    out = site_mod.write_site(a.turns, a.sessions, a.run, tmp_path / "site", a.courses, workers=1)
    page = (tmp_path / "site" / "report_files" / "sessions" / "s00000.html").read_text()
    assert "long session: each point is the mean of" in page
    assert out.exists() and "id=t5999" in page  # the transcript keeps every turn


def _scored(tmp_path, n=8):
    a = run_analysis(_corpus(n, 16), tmp_path / "run", lenses=["trajectory"], write_report=False)
    return a.turns, a.sessions, a.run, a.courses


def _links(overview: str) -> set[str]:
    return set(re.findall(r"href='(report_files/sessions/[^'#]+)", overview))


def test_pages_all_flagged_none_and_stale_pages_are_removed(tmp_path):
    turns, sessions, run, courses = _scored(tmp_path)
    out = tmp_path / "site"
    site_mod.write_site(turns, sessions, run, out, courses, pages="all", workers=1)
    folder = out / "report_files" / "sessions"
    assert len(list(folder.glob("*.html"))) == 8
    # a smaller corpus into the same folder: the old corpus's extra pages (health data) must go
    keep = sessions["session_id"].isin(["s0", "s1", "s2"])
    small_t = turns[turns["session_id"].isin(["s0", "s1", "s2"])]
    site_mod.write_site(small_t, sessions[keep], run, out, courses, pages="all", workers=1)
    assert sorted(p.name for p in folder.glob("*.html")) == ["s00000.html", "s00001.html", "s00002.html"]
    # flagged: only sessions with a flag or a reliable decline, and the overview links only to pages that exist
    s = sessions.copy()
    s["trajectory_flags"] = ["client replies shrinking" if i == 3 else "" for i in range(len(s))]
    for c in [c for c in s if c.endswith("_class")]:
        s[c] = "stable"
    s.loc[5, "trajectory_client_bond_class"], s.loc[5, "trajectory_client_bond_rci"] = "declining", -2.5
    s.loc[6, "trajectory_client_bond_class"], s.loc[6, "trajectory_client_bond_rci"] = "improving", 3.0
    site_mod.write_site(turns, s, run, out, courses, pages="flagged", workers=1)
    assert sorted(p.name for p in folder.glob("*.html")) == ["s00003.html", "s00005.html"]
    overview = (out / "report.html").read_text()
    assert _links(overview) == {"report_files/sessions/s00003.html", "report_files/sessions/s00005.html"}
    assert "Pages were written for the 2 of 8 sessions" in overview
    site_mod.write_site(turns, s, run, out, courses, pages="none", workers=1)
    assert not list(folder.glob("*.html")) and not _links((out / "report.html").read_text())
    with pytest.raises(ValueError, match="pages must be one of auto, all, flagged, none"):
        site_mod.write_site(turns, s, run, out, courses, pages="some")


def test_auto_pages_switch_to_flagged_beyond_the_documented_size(tmp_path, monkeypatch):
    turns, sessions, _run, _courses = _scored(tmp_path)
    monkeypatch.setattr(site_mod, "AUTO_ALL_MAX", 4)
    chosen, note = site_mod.select_pages(turns, sessions, "auto")
    assert "more than 4" in note and len(chosen) < len(sessions)
    monkeypatch.setattr(site_mod, "AUTO_ALL_MAX", 8)
    chosen, note = site_mod.select_pages(turns, sessions, "auto")
    assert len(chosen) == 8 and "at most 8" in note


def test_parallel_pages_equal_serial_pages_and_progress_reaches_the_total(tmp_path, monkeypatch):
    turns, sessions, run, courses = _scored(tmp_path, n=6)
    monkeypatch.setattr(site_mod, "PARALLEL_MIN", 1)
    monkeypatch.setattr(site_mod, "BATCH", 2)
    seen: list[tuple[int, int]] = []
    site_mod.write_site(turns, sessions, run, tmp_path / "serial", courses, workers=1)
    site_mod.write_site(turns, sessions, run, tmp_path / "parallel", courses, workers=2,
                        progress=lambda d, n: seen.append((d, n)))
    assert seen[-1] == (6, 6) and len(seen) == 3
    for p in sorted((tmp_path / "serial" / "report_files" / "sessions").glob("*.html")):
        assert p.read_bytes() == (tmp_path / "parallel" / "report_files" / "sessions" / p.name).read_bytes()


def test_overview_stays_bounded_at_any_corpus_size(tmp_path, monkeypatch):
    from alliance.report import overview

    turns, sessions, run, _courses = _scored(tmp_path, n=8)
    big = pd.concat([sessions] * 500, ignore_index=True)  # 4,000 session rows
    big["session_id"] = [f"s{i}" for i in range(len(big))]
    big["trajectory_flags"] = "client replies shrinking"
    specs = overview.overview_specs(big)
    assert all(len(c["data"]["values"]) <= 30 for c in specs["ov-dist"]["concat"]) if "ov-dist" in specs else True
    body = overview.overview_body(turns, big, run, None, lambda i, a="": "", lambda c: "", "")
    assert body.count("<tr>") <= overview.TABLE_MAX + 1
    assert f"{len(big) - overview.LIST_MAX} more in sessions.parquet" in body


def test_one_definition_of_a_gap_trend_on_every_block_of_a_page():
    from alliance.registry import lenses
    from alliance.report.session import session_page

    row = pd.Series({"course_id": "c", "session_id": "s", "alliance_gap_bond_trend": "narrowing",
                     "trajectory_gap_bond_trend": "stable", "alliance_gap_bond_first": -1.0,
                     "alliance_gap_bond_last": -0.5, "trajectory_gap_bond_first": -1.0, "trajectory_gap_bond_last": -0.5,
                     "trajectory_client_bond_class": "stable", "trajectory_client_bond_level": 0.1})
    assert gap_trend(row, "bond") == "stable"
    assert gap_trend(row.drop("trajectory_gap_bond_trend"), "bond") == "narrowing"  # the only rule there is
    turns = pd.DataFrame({"turn_index": [0, 1], "speaker": ["counsellor", "client"], "text": ["Hi.", "Hello."],
                          "alliance_goal": [0.1, 0.2], "alliance_task": [0.1, 0.2], "alliance_bond": [0.1, 0.2],
                          "trajectory_rupture": [False, False], "trajectory_rupture_kind": ["", ""],
                          "trajectory_repaired_at": [np.nan, np.nan]})
    body, _ = session_page(turns, row, [lenses.get("alliance"), lenses.get("trajectory")], "s", "../")
    assert "narrowing" not in body.replace("Gap trends (narrowing", "")
    assert body.count(">stable</span>") >= 2  # the alliance block and the trajectory block say the same word


def test_worst_declining_never_lists_an_improving_or_mixed_session():
    s = pd.DataFrame({
        "session_id": ["down", "up", "mixed", "flat", "worse"],
        "trajectory_client_bond_class": ["declining", "improving", "declining", "stable", "declining"],
        "trajectory_client_bond_rci": [-2.1, 3.0, -4.0, 0.2, -3.5],
        "trajectory_client_words_class": ["stable", "stable", "improving", "stable", "declining"],
        "trajectory_client_words_rci": [0.0, 0.1, 2.5, 0.0, -2.0]})
    w = worst_declining(s)
    assert w["session_id"].tolist() == ["worse", "down"]
    assert change_direction(s.iloc[1])[0] == "improving" and change_direction(s.iloc[2])[0] == "mixed"
    assert "client bond (RCI -3.5), client words (RCI -2.0)" in w["declining"].iloc[0]


def test_risk_levels_read_in_the_old_numeric_and_the_new_string_convention():
    assert [risk_label(v) for v in (0, 1, 2, 3, None, "High", "unknown", np.nan)] == \
        ["none", "low", "high", "imminent", "", "high", "unknown", ""]
    old = pd.Series([pd.NA, 2, 0], dtype="Int64")
    assert risk_labels(old).tolist() == ["", "high", "none"]
    assert risk_labels(pd.Series(["imminent", None, "low"])).tolist() == ["imminent", "", "low"]


def _safety_tables(numeric: bool):
    text = ["How are you?", "I have the pills ready for tonight.", "Let's talk about your weekend instead.",
            "Fine.", "What brings you here?", "I sometimes think it would be easier not to wake up.",
            "That sounds painful. Are you safe right now?", "I'm ok.", "Hello.", "Work is busy."]
    levels = [None, "imminent", None, "none", None, "low", None, "none", None, "none"]
    nums = {None: pd.NA, "none": 0, "low": 1, "high": 2, "imminent": 3}
    turns = pd.DataFrame({
        "course_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 2, "session_id": ["s1"] * 4 + ["s2"] * 4 + ["s3"] * 2,
        "turn_index": [0, 1, 2, 3, 0, 1, 2, 3, 0, 1], "speaker": ["counsellor", "client"] * 5, "text": text,
        "safety_risk_level": pd.array([nums[v] for v in levels], dtype="Int64") if numeric else levels,
        "safety_risk_category": ["", "suicide", "", "", "", "suicide", "", "", "", ""],
        "safety_risk_p": [np.nan, 0.97, np.nan, 0.01, np.nan, 0.4, np.nan, 0.02, np.nan, 0.0],
        "safety_risk_why": ["", "pills ready for tonight", "", "", "", "easier not to wake up", "", "", "", ""],
        "safety_concern": [False, False, True, False, False, False, False, False, False, False],
        "safety_concerns": ["", "", "quieting", "", "", "", "", "", "", ""],
        "safety_reply_evidence": ["", "", "talk about your weekend instead", "", "", "", "", "", "", ""],
        "safety_asked_safety": [False] * 6 + [True] + [False] * 3})
    sessions = pd.DataFrame({
        "course_id": ["a", "b", "c"], "session_id": ["s1", "s2", "s3"],
        "safety_max_risk_level": ["imminent", "low", "none"],
        "safety_flag_risk_not_addressed": [True, False, False],
        "safety_flag_risk_not_addressed_turns": ["1", "", ""],
        "safety_flag_risk_not_addressed_why": ["client turn 1 disclosed risk; the reply changed the subject", "", ""]})
    # listed in reverse severity order so the triage must sort them
    return turns, sessions.iloc[::-1].reset_index(drop=True)


@pytest.mark.parametrize("numeric", [False, True])
def test_safety_triage_orders_by_risk_and_quotes_the_evidence_turn(tmp_path, numeric):
    turns, sessions = _safety_tables(numeric)
    run = {"lenses": [], "counts": {"sessions": 3}}
    site_mod.write_site(turns, sessions, run, tmp_path, pages="all", workers=1)
    overview = (tmp_path / "report.html").read_text()
    triage = overview.split("Safety triage (1)")[1].split("<h2>")[0]
    first, second = triage.split("<li>")[1:3]
    # the low-level disclosure comes after the urgent one, folded apart
    assert triage.index("<details class=low-risk>") < triage.index(second) and "1 more session(s)" in triage
    assert "a / s1" in first and "imminent" in first and "I have the pills ready for tonight." in first
    assert "#t1'" in first and "risk not addressed" in first and "the reply changed the subject" in first
    assert "b / s2" in second and "low" in second and "easier not to wake up" in second
    assert "c / s3" not in triage
    # the session page marks the events in its transcript
    page = next(p for p in (tmp_path / "report_files" / "sessions").glob("*.html") if "a / s1" in p.read_text())
    html = page.read_text()
    row = re.search(r"<tr id=t1 class='client risk-imminent'>.*?</tr>", html).group(0)
    assert "risk: imminent suicide p=0.97" in row and "pills ready for tonight" in row and "flag: risk not" in row
    reply = re.search(r"<tr id=t2 class='counsellor concern'>.*?</tr>", html).group(0)
    assert "reply concern: quieting" in reply and "talk about your weekend instead" in reply


def test_overview_without_the_safety_lens_says_so(tmp_path):
    turns, sessions, run, courses = _scored(tmp_path, n=2)
    site_mod.write_site(turns, sessions, run, tmp_path / "site", courses, workers=1)
    assert "The safety lens was not part of this run" in (tmp_path / "site" / "report.html").read_text()


def test_a_failing_lens_block_costs_only_that_block(tmp_path):
    from alliance.lenses.base import Lens
    from alliance.report.session import session_page

    class Broken(Lens):
        name = "broken"

        @classmethod
        def report_section(cls, turns, session, prefix):
            raise KeyError("missing_column")

    turns, sessions, _, _ = _scored(tmp_path, n=1)
    from alliance.registry import lenses

    with pytest.warns(RuntimeWarning, match="the broken block failed: KeyError"):
        body, _ = session_page(turns, sessions.iloc[0], [Broken, lenses.get("trajectory")], "s", "../")
    assert "could not be drawn (KeyError" in body and "Trajectory: reliable change" in body


def test_worst_declining_agrees_with_the_one_row_definition_on_random_tables():
    rng = np.random.default_rng(1)
    n = 400
    s = pd.DataFrame({f"trajectory_{m}_{k}": (rng.choice(["declining", "improving", "stable", "unknown", None], n)
                                               if k == "class" else rng.normal(0, 3, n))
                      for m in ("client_bond", "client_goal", "client_words", "empathy") for k in ("class", "rci")})
    w = worst_declining(s, n=n)
    expected = [i for i in range(n) if change_direction(s.iloc[i])[0] == "declining"]
    assert sorted(w.index) == expected
    for i, r in w.iterrows():
        assert r["severity"] == pytest.approx(change_direction(s.loc[i])[1])
    assert w["severity"].is_monotonic_decreasing


def test_fast_charts_bins_altair_data_and_restores_altairs_settings():
    import altair as alt

    from alliance.report.specs import fast_charts, mark_downsampled

    df = pd.DataFrame({"turn": np.arange(12_000), "words": np.ones(12_000), "speaker": ["client", "counsellor"] * 6000})
    chart = alt.Chart(df).mark_bar().encode(x="turn:Q", y="words:Q", color="speaker:N")
    with pytest.raises(alt.MaxRowsError):
        chart.to_dict()
    with fast_charts():
        spec = mark_downsampled(chart.to_dict())
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) <= MAX_POINTS and rows[0][BIN_COLUMN] == 8
    assert "each point is the mean of 8 consecutive turns" in spec["title"]["text"]
    assert alt.data_transformers.active == "default" and alt.Chart.to_dict.__defaults__ == (True,)
    with pytest.raises(alt.MaxRowsError):  # nothing leaks out of the block
        chart.to_dict()


def test_flagged_pages_follow_high_risk_and_safety_flags_not_low_risk_alone():
    turns, sessions = _safety_tables(numeric=False)
    chosen, _ = site_mod.select_pages(turns, sessions, "flagged")
    assert sessions.loc[chosen, "session_id"].tolist() == ["s1"]  # s2 (low) stays on the triage list only


def test_the_calibrated_block_shows_its_guard_rails():
    from alliance.report.session import calibrated_block

    row = pd.Series({"calibrated_overall": 61.0, "calibrated_goal": 3.1, "calibrated_task": 3.0,
                     "calibrated_bond": 3.4, "calibrated_out_of_domain": True,
                     "calibrated_out_of_domain_features": "struct_log_client_turns", "calibrated_bounded": False,
                     "early_overall": 48.0, "early_share": 0.5, "early_risk": 0.7, "early_warning": True})
    html = calibrated_block(row)
    assert "out of domain: struct_log_client_turns" in html and "cut back" not in html
    assert "from the first 50.00% of the session alone" in html and "heading for a rupture or dropout" in html
