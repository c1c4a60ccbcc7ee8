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


# the run folder: one consistent run ---------------------------------------------------------------------------
def _with_label(corpus, sid, value):
    from alliance.corpus import Corpus

    sessions = corpus.sessions.copy()
    sessions["meta"] = [{**(m or {}), "client_score": value} if s == sid else m
                        for s, m in zip(sessions["session_id"], sessions["meta"], strict=True)]
    return Corpus(corpus.turns.copy(), sessions)


def test_resume_notices_a_changed_label_not_only_changed_texts(tmp_path):
    corpus = _with_label(corpus_of(3), "c0s0", 50)
    with pytest.raises(KeyboardInterrupt):
        run_analysis(corpus, tmp_path, lenses=[WordsLens(fail_on="c2s0")], encoder=TableEncoder({"x": [1, 0]}),
                     chunk_turns=10, write_report=False)
    changed = _with_label(corpus, "c0s0", 99)  # same texts, new rating
    res = run_analysis(changed, tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}),
                       chunk_turns=10, write_report=False)
    assert res.run["counts"]["chunks_resumed"] == 0
    s = pd.read_parquet(tmp_path / "sessions.parquet")
    assert json.loads(s.loc[s["session_id"] == "c0s0", "meta"].iloc[0])["client_score"] == 99


def test_resume_notices_changed_timestamps(tmp_path):
    from alliance.corpus import Corpus
    from alliance.pipeline import _fingerprint

    corpus = corpus_of(1)
    lenses, enc = build_lenses([WordsLens()]), TableEncoder({"x": [1, 0]})
    turns = corpus.turns.copy()
    turns["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC")
    later = turns.copy()
    later["timestamp"] = pd.Timestamp("2024-01-02", tz="UTC")
    a, b = Corpus(turns, corpus.sessions.copy()), Corpus(later, corpus.sessions.copy())
    assert _fingerprint(a, lenses, enc, 0, [[]]) != _fingerprint(b, lenses, enc, 0, [[]])
    assert _fingerprint(a, lenses, enc, 0, [[]]) == _fingerprint(Corpus(turns.copy(), corpus.sessions.copy()),
                                                                 lenses, enc, 0, [[]])


def test_a_second_run_into_a_locked_folder_names_the_holder(tmp_path):
    import os
    import subprocess
    import sys

    from alliance.runfolder import RunFolderLocked

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, 'src'); from pathlib import Path; "
        "from alliance.runfolder import locked\n"
        f"with locked(Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderLocked, match=f"in use by process {holder.pid} on .*, started "):
            run_analysis(corpus_of(1), tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}),
                         write_report=False)
        assert not (tmp_path / "turns.parquet").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without cleaning up: its lock file stays, and the next run takes it over
    assert (tmp_path / ".lock").exists()
    run_analysis(corpus_of(1), tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}),
                 write_report=False)
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_readers_refuse_an_interrupted_or_mixed_run_folder(tmp_path):
    from alliance.runfolder import IncompleteRun, open_run, run_record

    enc = TableEncoder({"x": [1, 0]})
    run_analysis(corpus_of(2), tmp_path / "a", lenses=[WordsLens()], encoder=enc, write_report=False)
    run_analysis(corpus_of(3), tmp_path / "b", lenses=[WordsLens()], encoder=enc, write_report=False)
    turns, _, run, _ = open_run(tmp_path / "a")
    assert run["status"] == "complete" and run["outputs"]["turns.parquet"]["rows"] == len(turns) == 16
    (tmp_path / "b" / "turns.parquet").replace(tmp_path / "a" / "turns.parquet")  # tables of two corpora
    with pytest.raises(IncompleteRun, match=r"holds 24 rows but run\.json records 16: the folder mixes two runs"):
        run_record(tmp_path / "a")
    (tmp_path / "a" / "run.json").unlink()  # killed between the tables and run.json
    with pytest.raises(IncompleteRun, match=r"incomplete run \(no run\.json"):
        open_run(tmp_path / "a")


def test_a_killed_commit_leaves_an_incomplete_folder_and_the_rerun_finishes_it(tmp_path, monkeypatch):
    from alliance import runfolder
    from alliance.runfolder import IncompleteRun, run_record

    enc = TableEncoder({"x": [1, 0]})
    run_analysis(corpus_of(4), tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10, write_report=False)
    real = runfolder.write_text_atomic

    def killed(path, text):
        if path.name == "run.json":
            raise KeyboardInterrupt("killed during the final write")
        real(path, text)

    monkeypatch.setattr(runfolder, "write_text_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        run_analysis(corpus_of(2), tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10, write_report=False)
    with pytest.raises(IncompleteRun):  # new tables, old run.json gone: never accepted as a run
        run_record(tmp_path)
    monkeypatch.setattr(runfolder, "write_text_atomic", real)
    res = run_analysis(corpus_of(2), tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10,
                       write_report=False)
    assert res.run["counts"]["chunks_resumed"] == 2 and run_record(tmp_path)["counts"]["turns"] == 16


def test_disk_full_is_one_clear_error_and_the_rerun_resumes(tmp_path, monkeypatch):
    import errno

    from alliance import pipeline
    from alliance.runfolder import RunFolderError

    real, calls = pipeline._atomic_parquet, []

    def full(df, path):
        calls.append(path.name)
        if path.name == "turns-00002.parquet":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(df, path)

    monkeypatch.setattr(pipeline, "_atomic_parquet", full)
    enc = TableEncoder({"x": [1, 0]})
    with pytest.raises(RunFolderError, match=r"no space left on the device while writing the results .*rerun the "
                                             r"same command"):
        run_analysis(corpus_of(4), tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10, write_report=False)
    assert not list((tmp_path / PARTIAL_DIR).glob("*.tmp"))
    monkeypatch.setattr(pipeline, "_atomic_parquet", real)
    res = run_analysis(corpus_of(4), tmp_path, lenses=[WordsLens()], encoder=enc, chunk_turns=10,
                       write_report=False)
    assert res.run["counts"]["chunks_resumed"] == 2 and len(res.turns) == 32


def test_a_report_failure_keeps_the_committed_tables(tmp_path, monkeypatch):
    import alliance.report
    from alliance.runfolder import ReportFailed, run_record

    def broken(analysis, path):
        (path.parent / "report_files").mkdir(exist_ok=True)
        raise ValueError("chart too large")

    monkeypatch.setattr(alliance.report, "write_html_report", broken)
    with pytest.raises(ReportFailed, match=r"tables and run\.json are complete, but the report failed: ValueError: "
                                           r"chart too large\. Rebuild it with `alliance report"):
        run_analysis(corpus_of(2), tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}))
    assert run_record(tmp_path)["counts"]["turns"] == 16
    assert len(pd.read_parquet(tmp_path / "turns.parquet")) == 16
    assert not (tmp_path / "report_files").exists() and not (tmp_path / PARTIAL_DIR).exists()


def test_outputs_are_owner_only(tmp_path):
    out = tmp_path / "run"
    run_analysis(corpus_of(1), out, lenses=["trajectory"])
    assert out.stat().st_mode & 0o777 == 0o700
    for p in out.rglob("*"):
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p


def test_a_smaller_corpus_leaves_no_pages_of_the_old_one(tmp_path):
    run_analysis(corpus_of(3), tmp_path, lenses=["trajectory"])
    assert len(list((tmp_path / "report_files" / "sessions").glob("*.html"))) == 6
    run_analysis(corpus_of(1), tmp_path, lenses=["markers"])
    assert len(list((tmp_path / "report_files" / "sessions").glob("*.html"))) == 2
    assert not (tmp_path / "courses.parquet").exists()  # the old run's course table is gone too
    assert "c2s0" not in "".join(p.read_text() for p in (tmp_path / "report_files").rglob("*.html"))


def test_in_memory_analyze_has_the_same_columns_as_a_run(tmp_path):
    corpus = corpus_of(2, 2, 6)
    mem = analyze(corpus, ["markers", "trajectory"])
    run = run_analysis(corpus, tmp_path, lenses=["markers", "trajectory"], write_report=False)
    assert "calibrated_overall" in mem.sessions.columns
    assert list(mem.sessions.columns) == list(run.sessions.columns)
    assert list(mem.turns.columns) == list(run.turns.columns)
    assert list(mem.courses.columns) == list(run.courses.columns)
    assert np.allclose(mem.sessions["calibrated_overall"], run.sessions["calibrated_overall"])
    assert mem.run["calibration"] == run.run["calibration"]


def test_stream_tables_unifies_chunks_whose_columns_differ(tmp_path):
    from alliance.pipeline import stream_tables

    pd.DataFrame({"a": [1.5, 2.0], "b": [None, None]}).to_parquet(tmp_path / "0.parquet", index=False)
    pd.DataFrame({"a": [3.0], "b": ["x"], "c": [True]}).to_parquet(tmp_path / "1.parquet", index=False)
    assert stream_tables([tmp_path / "0.parquet", tmp_path / "1.parquet"], tmp_path / "all.parquet") == 3
    out = pd.read_parquet(tmp_path / "all.parquet")
    assert list(out.columns) == ["a", "b", "c"] and list(out["a"]) == [1.5, 2.0, 3.0]
    assert out["b"].tolist()[2] == "x" and out["b"].isna().sum() == 2 and out["c"].isna().sum() == 2


def test_run_turns_are_read_from_the_folder_only_when_asked(tmp_path):
    res = run_analysis(corpus_of(2), tmp_path, lenses=[WordsLens()], encoder=TableEncoder({"x": [1, 0]}),
                       write_report=False)
    assert res._turns is None
    assert len(res.turns) == 16 and res.turns_path == tmp_path / "turns.parquet"


def test_chunk_rows_match_subsetting_by_key():
    from alliance.corpus import Corpus
    from alliance.pipeline import chunk_rows

    corpus = corpus_of(5, 2, 3)
    chunks = plan_chunks(corpus, max_turns=7)
    for keys, (t, s) in zip(chunks, chunk_rows(corpus, chunks), strict=True):
        sub = corpus.subset_sessions(keys)
        mine = Corpus(corpus.turns.iloc[t].copy(), corpus.sessions.iloc[s].copy(), validate=False)
        pd.testing.assert_frame_equal(mine.turns, sub.turns)
        pd.testing.assert_frame_equal(mine.sessions, sub.sessions)
