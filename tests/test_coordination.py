"""Coordination lens: style matching and Word Mover's Distance on hand-made turns with known distances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.lenses.base import LensContext
from alliance.lenses.coordination import (
    FUNCTION_WORDS,
    CoordinationLens,
    category_counts,
    course_slope,
    lsm,
    relaxed_wmd,
    wmd,
)

# Unit 2-D word vectors: distances are easy to work out by hand.
VECTORS = {"apple": (1.0, 0.0), "pear": (0.0, 1.0), "plum": (0.8, 0.6), "tea": (0.6, 0.8)}


def corpus_of(rows: list[tuple[str, str]], sessions: int = 1) -> Corpus:
    frames = []
    for s in range(sessions):
        frames.append(pd.DataFrame({"course_id": "c1", "session_id": f"s{s}", "session_index": s,
                                    "turn_index": range(len(rows)), "speaker": [a for a, _ in rows],
                                    "text": [b for _, b in rows]}))
    return Corpus(pd.concat(frames, ignore_index=True))


def test_wmd_of_identical_texts_is_zero():
    vecs = np.array([VECTORS["apple"], VECTORS["pear"]])
    cost = np.linalg.norm(vecs[:, None, :] - vecs[None, :, :], axis=2)
    w = np.array([0.5, 0.5])
    assert wmd(w, w, cost) == pytest.approx(0.0, abs=1e-12)
    assert relaxed_wmd(w, w, cost) == pytest.approx(0.0, abs=1e-12)


def test_wmd_hand_computed_and_relaxed_is_a_lower_bound():
    # doc A = {apple, plum}, doc B = {plum, pear}, half weight each. Moving apple->pear and plum->plum costs
    # 0.5 * sqrt(2); the alternative (apple->plum, plum->pear) costs 0.5 * (0.632 + 0.894), which is more.
    a = np.array([VECTORS["apple"], VECTORS["plum"]])
    b = np.array([VECTORS["plum"], VECTORS["pear"]])
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    w = np.array([0.5, 0.5])
    exact = wmd(w, w, cost)
    assert exact == pytest.approx(0.5 * math.sqrt(2))
    # relaxed: A's words go to their nearest in B (apple->plum 0.632, plum->plum 0) = 0.316; B's to A: plum 0,
    # pear->plum 0.894 -> 0.447; the bound is the larger of the two
    relaxed = relaxed_wmd(w, w, cost)
    assert relaxed == pytest.approx(0.5 * math.sqrt(0.8))
    assert relaxed <= exact


def test_relaxed_never_exceeds_exact_on_random_bags():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = rng.normal(size=(rng.integers(1, 6), 4)), rng.normal(size=(rng.integers(1, 6), 4))
        wa, wb = rng.random(len(x)), rng.random(len(y))
        wa, wb = wa / wa.sum(), wb / wb.sum()
        cost = np.linalg.norm(x[:, None] - y[None], axis=2)
        assert relaxed_wmd(wa, wb, cost) <= wmd(wa, wb, cost) + 1e-9


def test_lsm_identical_profiles_is_one_and_disjoint_is_zero():
    p = np.array([[0.1, 0.0, 0.3]])
    assert lsm(p, p).tolist() == [[1.0, 1.0, 1.0]]
    assert lsm(np.array([[0.2]]), np.array([[0.0]]))[0, 0] == pytest.approx(1 - 0.2 / 0.2001)


def test_function_word_counts():
    counts = category_counts(pd.Series(["I'm not sure it's the thing, don't you think?"])).iloc[0]
    assert counts["words"] == 9
    assert counts["articles"] == 1
    assert counts["negations"] == 2  # not, n't
    assert counts["personal_pronouns"] == 2  # I('m), you
    assert counts["auxiliary_verbs"] == 3  # i'm, it's, don't
    assert counts["impersonal_pronouns"] == 1  # it('s)
    assert set(counts.index) == {*FUNCTION_WORDS, "words"}


def test_exchange_lsm_and_session_lsm_of_matching_styles():
    rows = [("client", "I went to the shop."), ("counsellor", "You went to the shop."),
            ("client", "Apple.")]
    corpus = corpus_of(rows)
    lens = CoordinationLens(word_vectors=VECTORS | {"went": (0.0, 1.0), "shop": (1.0, 0.0)})
    ctx = LensContext(corpus)
    turns = lens.score(corpus, ctx)
    # exchange 0 = turns 0-1: identical profiles (1 pronoun, 1 preposition, 1 article in 5 words each)
    assert turns["coordination_lsm"].iloc[1] == pytest.approx(1.0)
    assert np.isnan(turns["coordination_lsm"].iloc[0])
    assert np.isnan(turns["coordination_lsm"].iloc[2])  # client block without an answer


def test_wmd_coordination_ratio_end_to_end():
    # client "apple", counsellor echoes "apple", client moves to "pear" (k = 3)
    corpus = corpus_of([("client", "apple"), ("counsellor", "apple"), ("client", "pear")])
    lens = CoordinationLens(word_vectors=VECTORS)
    ctx = LensContext(corpus)
    turns = lens.score(corpus, ctx)
    assert turns["coordination_wmd_other"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    assert turns["coordination_wmd_self"].iloc[0] == pytest.approx(math.sqrt(2))
    assert turns["coordination_wmd_other"].iloc[1] == pytest.approx(math.sqrt(2))
    assert np.isnan(turns["coordination_wmd_self"].iloc[1])  # no later counsellor turn
    sess = lens.summarize(corpus, turns, ctx).iloc[0]
    assert sess["coordination_wmd_counsellor_to_client"] == pytest.approx(0.0, abs=1e-9)
    relaxed = CoordinationLens(word_vectors=VECTORS, method="relaxed").score(corpus, LensContext(corpus))
    assert (relaxed["coordination_wmd_other"].fillna(0) <= turns["coordination_wmd_other"].fillna(0) + 1e-9).all()


def test_nearest_of_k_takes_the_closest_later_turn():
    rows = [("client", "plum"), ("counsellor", "pear"), ("counsellor", "plum"), ("counsellor", "apple")]
    corpus = corpus_of(rows)
    turns = CoordinationLens(word_vectors=VECTORS, k=3).score(corpus, LensContext(corpus))
    assert turns["coordination_wmd_other"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    turns1 = CoordinationLens(word_vectors=VECTORS, k=1).score(corpus, LensContext(corpus))
    assert turns1["coordination_wmd_other"].iloc[0] == pytest.approx(math.sqrt(0.8))  # plum -> pear only


def test_function_word_only_turns_have_no_wmd():
    corpus = corpus_of([("client", "Yeah, I know."), ("counsellor", "apple")])
    turns = CoordinationLens(word_vectors=VECTORS).score(corpus, LensContext(corpus))
    assert turns["coordination_wmd_other"].isna().all()


def test_course_slope():
    sessions = pd.DataFrame({"course_id": ["c", "c", "c", "d"], "session_id": ["1", "2", "3", "1"],
                             "session_index": [0, 1, 2, 0]})
    vals = pd.Series([1.0, 0.8, 0.6, 0.5], index=pd.MultiIndex.from_frame(sessions[["course_id", "session_id"]]))
    slopes = course_slope(sessions, vals)
    assert slopes[:3] == pytest.approx([-0.2] * 3)
    assert np.isnan(slopes[3])


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="method"):
        CoordinationLens(method="fast")
    with pytest.raises(ValueError, match="k must be"):
        CoordinationLens(k=0)


def test_both_lenses_run_in_the_pipeline_and_render_report_sections():
    from alliance.lenses.markers import MarkersLens
    from alliance.pipeline import analyze

    rows = [("client", "apple pear"), ("counsellor", "What about the apple?"), ("client", "Um, the pear."),
            ("counsellor", "plum tea"), ("client", "tea")]
    corpus = corpus_of(rows, sessions=3)
    result = analyze(corpus, [MarkersLens(), CoordinationLens(word_vectors=VECTORS)])
    sess = result.sessions
    assert {"markers_client_nonfluency_rate", "coordination_lsm", "coordination_wmd_course_slope"} <= set(sess)
    assert len(sess) == 3 and sess["coordination_wmd_course_slope"].nunique(dropna=False) == 1
    one = result.turns[result.turns["session_id"] == "s0"]
    section = CoordinationLens.report_section(one, sess.iloc[0], "s0-coordination")
    assert section is not None and "s0-coordination-wmd" in section.specs


def test_shipped_word_vectors_load_without_building_anything(tmp_path, monkeypatch):
    """The static model ships in the package: a fresh cache stays empty and the vectors carry meaning."""
    from alliance.lenses.word_vectors import SHIPPED_ID, WordVectors, shipped_model_path

    monkeypatch.setenv("ALLIANCE_CACHE", str(tmp_path / "cache"))
    assert (shipped_model_path() / "vectors.npz").stat().st_size < 3_000_000  # small files only in the package
    wv = WordVectors()
    assert wv.id == SHIPPED_ID
    v = wv(["sad", "unhappy", "table"])
    assert v.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert not (tmp_path / "cache").exists()


def test_other_sizes_need_the_explicit_setup_step(tmp_path, monkeypatch):
    from alliance.lenses.word_vectors import WordVectors

    monkeypatch.setenv("ALLIANCE_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="distill_static_model"):
        WordVectors(pca_dims=64)(["sad"])
