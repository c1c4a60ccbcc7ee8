"""Early warning: prefixes never see later turns, a partial session can be scored after every turn, round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.calibration import KOKOROCHAT_ITEM_MAP, review_targets
from alliance.corpus import Corpus
from alliance.early_warning import (
    EARLY_COLUMNS,
    add_early,
    early_scores,
    fit_early,
    load_early,
    prefix_turns,
    save_early,
)

WARM = ["that makes sense, I feel a bit lighter", "yes, I can see that now", "thank you for listening so closely"]
COLD = ["you don't get it", "whatever, this is not helping", "I already said that"]


def _corpus(n: int = 60, seed: int = 0, turns: int = 10) -> Corpus:
    """Invented sessions whose client signals, from the first turns on, how the session will be rated."""
    rng = np.random.default_rng(seed)
    rows, sessions = [], []
    for k in range(n):
        quality = rng.uniform()
        for i in range(turns):
            rows.append({"course_id": f"c{k}", "session_id": "s", "turn_index": 2 * i, "speaker": "counsellor",
                         "text": "How has your week been going?"})
            pool = WARM if rng.uniform() < quality else COLD
            rows.append({"course_id": f"c{k}", "session_id": "s", "turn_index": 2 * i + 1, "speaker": "client",
                         "text": pool[int(rng.integers(len(pool)))]})
        items = {i: float(np.clip(round(1 + 4 * quality), 0, 5)) for v in KOKOROCHAT_ITEM_MAP.values() for i in v}
        sessions.append({"course_id": f"c{k}", "session_id": "s",
                         "meta": {**items, "score": float(100 * quality), "client_id": k % 15,
                                  "unwilling_to_continue": True if quality < 0.08 else None}})
    return Corpus(pd.DataFrame(rows), pd.DataFrame(sessions))


def _fit(c: Corpus):
    Y = review_targets(c.sessions)
    dropout = np.array([bool(m.get("unwilling_to_continue")) for m in c.sessions["meta"]])
    groups = np.array([str(m["client_id"]) for m in c.sessions["meta"]])
    return fit_early(c.turns, Y, dropout, groups), Y


def test_prefixes_keep_only_the_first_turns_of_each_session():
    c = _corpus(3, turns=5)  # 10 turns a session
    p = prefix_turns(c.turns, 0.4)
    assert p.groupby("course_id").size().tolist() == [4, 4, 4]
    assert (p.groupby("course_id")["turn_index"].max() == 3).all()
    assert len(prefix_turns(c.turns, 0.01).groupby("course_id").size()) == 3  # at least one turn each
    with pytest.raises(ValueError, match="share"):
        prefix_turns(c.turns, 0.0)


def test_early_model_predicts_from_the_first_half_and_never_reads_later_turns(tmp_path):
    from scipy.stats import spearmanr

    train, test = _corpus(60, seed=0), _corpus(30, seed=1)
    model, _ = _fit(train)
    assert model.early_["poor_score_at_or_below"] > 0
    first_half = add_early(test.turns, test.sessions, model, share=0.5)
    assert set(EARLY_COLUMNS) <= set(first_half.columns)
    assert (first_half["early_share"] == 0.5).all() and first_half["early_overall"].between(0, 100).all()
    rated = review_targets(test.sessions)["overall"].to_numpy()
    assert spearmanr(first_half["early_overall"], rated)[0] > 0.5
    # rewrite everything after the first half: the early columns do not move
    t = test.turns.copy()
    late = t.groupby("course_id").cumcount() >= 10
    t.loc[late, "text"] = "this was awful, I am never coming back"
    again = add_early(t, test.sessions, model, share=0.5)
    cols = ["early_overall", "early_risk", "early_warning"]
    pd.testing.assert_frame_equal(first_half[cols], again[cols])
    # a round trip keeps the settings and the numbers
    back = load_early(save_early(model, tmp_path / "early.json.gz"))
    assert back.early_ == model.early_
    assert np.allclose(add_early(test.turns, test.sessions, back)["early_overall"], first_half["early_overall"],
                       atol=1e-2)


def test_a_live_scorer_can_call_it_after_every_turn():
    model, _ = _fit(_corpus(60))
    live = _corpus(1, seed=5).turns
    seen = []
    for n in range(1, len(live) + 1):
        row = early_scores(live.iloc[:n], model, expected_turns=len(live)).iloc[0]
        assert row["early_turns_seen"] == n and row["early_share"] == pytest.approx(n / len(live))
        assert 0 <= row["early_risk"] <= 1 and isinstance(bool(row["early_warning"]), bool)
        seen.append(row["early_overall"])
    assert np.isfinite(seen).all()
    # without a known length the share is unknown, not guessed
    assert np.isnan(early_scores(live.iloc[:4], model)["early_share"].iloc[0])


def test_an_early_model_with_lenses_runs_them_on_the_turns_so_far_only(tmp_path):
    """early_v2: the markers and trajectory lenses' session columns, computed on the prefix, are inputs too; a live
    scorer gets them computed from the turns so far, and rewriting later turns changes nothing."""
    c = _corpus(40)
    Y = review_targets(c.sessions)
    dropout = np.array([bool(m.get("unwilling_to_continue")) for m in c.sessions["meta"]])
    groups = np.array([str(m["client_id"]) for m in c.sessions["meta"]])
    model = fit_early(c.turns, Y, dropout, groups, lenses=("markers", "trajectory"))
    assert model.early_["lenses"] == ["markers", "trajectory"]
    assert any(col.startswith("markers_") for col in model.numeric_columns_)
    assert any(col.startswith("trajectory_") for col in model.numeric_columns_)
    test = _corpus(4, seed=3)
    first = add_early(test.turns, test.sessions, model, share=0.5)
    t = test.turns.copy()
    t.loc[t.groupby("course_id").cumcount() >= 10, "text"] = "this was awful, I am never coming back"
    cols = ["early_overall", "early_risk", "early_warning"]
    pd.testing.assert_frame_equal(first[cols], add_early(t, test.sessions, model, share=0.5)[cols])
    live = test.turns[test.turns["course_id"] == "c0"]
    for n in (1, 2, 7):  # after each turn, from the first one on
        row = early_scores(live.iloc[:n], model).iloc[0]
        assert row["early_turns_seen"] == n and np.isfinite(row["early_overall"])
    back = load_early(save_early(model, tmp_path / "early.json.gz"))
    assert back.early_["lenses"] == ["markers", "trajectory"]
    assert np.allclose(add_early(test.turns, test.sessions, back)["early_overall"], first["early_overall"], atol=1e-2)
