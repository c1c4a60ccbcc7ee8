import json

import numpy as np
import pandas as pd
import pytest

from alliance.lenses.base import Lens
from alliance.pipeline import PARTIAL_DIR, analyze, build_lenses, plan_chunks, run_analysis
from tests.helpers import TableEncoder, make_corpus


class WordsLens(Lens):
    """Counts words and reads the turn embeddings, so tests see what was encoded."""

    name = "words"
    version = "1"
    needs_encoder = True

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on

    def score(self, corpus, ctx):
        if self.fail_on is not None and (corpus.turns["session_id"] == self.fail_on).any():
            raise KeyboardInterrupt("simulated interruption")
        emb = ctx.embeddings()
        return pd.DataFrame({"words_n": corpus.turns["text"].str.split().str.len().astype(float),
                             "words_dim0": emb[:, 0]}, index=corpus.turns.index)

    def summarize(self, corpus, turn_scores, ctx):
        g = pd.concat([corpus.turns[["course_id", "session_id"]], turn_scores], axis=1)
        return g.groupby(["course_id", "session_id"], sort=False)[["words_n"]].sum().add_suffix("_total")


class NeedsWords(Lens):
    name = "after"
    requires = ("words",)

    def score(self, corpus, ctx):
        return pd.DataFrame({"after_twice": ctx.turn_scores["words_n"] * 2}, index=corpus.turns.index)


def corpus_of(n_courses=6, sessions=2, turns=4):
    spec, course_of = {}, {}
    for c in range(n_courses):
        for s in range(sessions):
            sid = f"c{c}s{s}"
            spec[sid] = [("client" if i % 2 == 0 else "counsellor", f"turn {i} of {sid} " + "w " * i)
                         for i in range(turns)]
            course_of[sid] = f"c{c}"
    return make_corpus(spec, course_of)


def test_chunks_hold_whole_courses():
    corpus = corpus_of()
    chunks = plan_chunks(corpus, max_turns=10)
    assert [len(ch) for ch in chunks] == [2] * 6  # one course (8 turns) per chunk
    flat = [k for ch in chunks for k in ch]
    assert flat == corpus.session_keys()


def test_requirements_run_first_and_missing_ones_are_named():
    order = [lens.name for lens in build_lenses([NeedsWords(), WordsLens()])]
    assert order == ["words", "after"]
    with pytest.raises(ValueError, match="needs lens 'words'"):
        build_lenses([NeedsWords()])


def test_analyze_in_memory_adds_columns_and_session_summaries():
    corpus = corpus_of(2, 1, 3)
    res = analyze(corpus, [WordsLens(), NeedsWords()], encoder=TableEncoder({"x": [1, 0]}))
    assert list(res.turns["after_twice"]) == list(res.turns["words_n"] * 2)
    assert list(res.sessions["words_n_total"]) == [4 + 5 + 6] * 2  # "turn i of sid" plus i filler words
    assert list(res.sessions["n_client_turns"]) == [2, 2]


def test_interrupted_run_resumes_without_losing_or_duplicating(tmp_path):
    corpus = corpus_of()
    enc = TableEncoder({"x": [1.0, 0.0]})
    with pytest.raises(KeyboardInterrupt):
        run_analysis(corpus, tmp_path, lenses=[WordsLens(fail_on="c3s0")], encoder=enc, chunk_turns=10,
                     write_report=False)
    done = sorted(p.name for p in (tmp_path / PARTIAL_DIR).glob("turns-*.parquet"))
    assert done == ["turns-00000.parquet", "turns-00001.parquet", "turns-00002.parquet"]
    before = enc.texts_encoded
    res = run_analysis(corpus, tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10, write_report=False)
    assert enc.texts_encoded - before == 3 * 8  # only the three unfinished courses were encoded again
    out = pd.read_parquet(tmp_path / "turns.parquet")
    assert len(out) == len(corpus.turns)
    assert not out.duplicated(["course_id", "session_id", "turn_index"]).any()
    assert list(out["text"]) == list(corpus.turns["text"])
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["counts"]["chunks_resumed"] == 3 and run["counts"]["chunks"] == 6
    assert not (tmp_path / PARTIAL_DIR).exists()
    assert res.run["encoder"]["model_id"] == "table-encoder"


def test_changed_settings_do_not_reuse_stale_chunks(tmp_path):
    corpus = corpus_of(3)
    with pytest.raises(KeyboardInterrupt):
        run_analysis(corpus, tmp_path, lenses=[WordsLens(fail_on="c2s0")], encoder=TableEncoder({"x": [1, 0]}),
                     chunk_turns=10, write_report=False)
    other = TableEncoder({"x": [0, 1]}, fallback=[0, 1], model_id="other-model")
    res = run_analysis(corpus, tmp_path, lenses=[WordsLens()], encoder=other, chunk_turns=10, write_report=False)
    assert res.run["counts"]["chunks_resumed"] == 0
    assert np.allclose(pd.read_parquet(tmp_path / "turns.parquet")["words_dim0"], 0.0)


def test_run_record_has_versions_seed_and_lenses(tmp_path):
    res = run_analysis(corpus_of(1, 1, 2), tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}),
                       seed=7, inputs={"in.jsonl": "sha256:abc"}, write_report=False)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seed"] == 7 and run["inputs"] == {"in.jsonl": "sha256:abc"}
    assert run["alliance_version"] and run["packages"]["pandas"] == pd.__version__
    assert run["lenses"][0]["name"] == "words"
    assert res.run["fingerprint"] == run["fingerprint"]


def test_run_records_the_calibration_model_with_the_trajectory_lens(tmp_path):
    from alliance.calibration import CalibratedAlliance

    res = run_analysis(corpus_of(2, 1, 6), tmp_path, lenses=["markers", "trajectory"], write_report=False)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["calibration"]["model_version"] == CalibratedAlliance.load().card_["model_version"]
    assert run["calibration"]["encoder_features_used"] is True  # no encoder ran: nothing to mismatch
    assert "calibrated_overall" in res.sessions.columns
