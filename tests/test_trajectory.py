"""Trajectories: reliability, reliable change, ruptures and repairs, course tables (invented sessions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.lenses.trajectory import TrajectoryLens, estimate_reliability
from alliance.pipeline import analyze
from alliance.trajectory import change_class, course_table, reliable_change, slope_with_se, split_half_reliability


def _session(course: str, sid: str, client_words: list[int], sidx: int = 0) -> list[dict]:
    rows = []
    for i, n in enumerate(client_words):
        rows.append({"course_id": course, "session_id": sid, "session_index": sidx, "turn_index": 2 * i,
                     "speaker": "counsellor", "text": "How has that been for you this week?"})
        rows.append({"course_id": course, "session_id": sid, "session_index": sidx, "turn_index": 2 * i + 1,
                     "speaker": "client", "text": " ".join(["word"] * n)})
    return rows


def test_split_half_reliability_separates_stable_traits_from_noise():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(200), 10)
    trait = rng.normal(size=200)[groups]
    stable = split_half_reliability(pd.Series(trait + 0.3 * rng.normal(size=len(groups))), groups)
    noise = split_half_reliability(pd.Series(rng.normal(size=len(groups))), groups)
    assert stable["reliability"] > 0.9
    assert abs(noise["reliability"]) < 0.3
    assert stable["n_groups"] == 200


def test_reliable_change_classes_follow_jacobson_truax():
    # SE of a difference = sqrt(2) * sd * sqrt(1 - r) = sqrt(2) * 1 * sqrt(0.5) = 1
    rci = reliable_change(np.array([2.5, -2.5, 1.0, np.nan]), sd=1.0, reliability=0.5)
    assert np.allclose(rci[:3], [2.5, -2.5, 1.0])
    assert list(change_class(rci)) == ["improving", "declining", "stable", "unknown"]


def test_slope_interval_covers_the_true_slope():
    x = np.arange(20, dtype=float)
    y = 0.5 * x + np.random.default_rng(1).normal(scale=0.5, size=20)
    b, se = slope_with_se(x, y)
    assert b - 1.96 * se < 0.5 < b + 1.96 * se
    assert np.isnan(slope_with_se(x[:2], y[:2])[0])


def test_withdrawal_rupture_and_its_repair_are_marked_on_their_turns():
    engaged, rows = 15, []
    # client writes 15 words, then one-word replies twice (turns 11, 13), then is back (turn 15)
    rows += _session("c1", "repaired", [engaged] * 5 + [1, 1] + [engaged] * 3)
    # withdraws at turn 11 and never comes back
    rows += _session("c2", "unrepaired", [engaged] * 5 + [1] * 5)
    corpus = Corpus(pd.DataFrame(rows))
    a = analyze(corpus, lenses=["trajectory"])
    t = a.turns.set_index(["session_id", "turn_index"])
    assert bool(t.loc[("repaired", 11), "trajectory_rupture"])
    assert t.loc[("repaired", 11), "trajectory_rupture_kind"] == "minimal reply"
    assert t.loc[("repaired", 11), "trajectory_repaired_at"] == 15
    assert not t.loc[("repaired", 9), "trajectory_rupture"]
    s = a.sessions.set_index("session_id")
    assert s.loc["unrepaired", "trajectory_unrepaired_turns"].startswith("11")
    assert "unrepaired rupture" in s.loc["unrepaired", "trajectory_flags"]
    assert s.loc["repaired", "trajectory_n_repaired"] >= 1
    # shrinking replies are a reliable decline of the client's words under the shipped reliability
    assert s.loc["unrepaired", "trajectory_client_words_class"] == "declining"


def test_course_table_reads_change_across_sessions():
    rows = []
    for k, n in enumerate([2, 4, 8, 16, 32]):
        rows += _session("course", f"s{k}", [n] * 6, sidx=k)
    a = analyze(Corpus(pd.DataFrame(rows)), lenses=["trajectory"])
    c = course_table(a.sessions)
    assert len(c) == 1 and c.loc[0, "n_sessions"] == 5
    assert c.loc[0, "client_words_slope"] > 0
    assert c.loc[0, "client_words_slope_lo"] > 0
    assert c.loc[0, "client_words_class"] == "improving"


def test_estimate_reliability_writes_every_measure_present():
    rng = np.random.default_rng(2)
    rows = []
    for k in range(30):
        rows += _session(f"c{k}", "s", list(rng.integers(1, 30, size=12)))
    doc = estimate_reliability(Corpus(pd.DataFrame(rows)).turns, "invented")
    assert set(doc["measures"]) == {"client_words"}
    assert doc["measures"]["client_words"]["n_sessions"] == 30


def test_bad_reliability_file_names_the_problem(tmp_path):
    p = tmp_path / "rel.json"
    p.write_text('{"measures": 3}')
    with pytest.raises(ValueError, match="measures"):
        TrajectoryLens(reliability=p)
