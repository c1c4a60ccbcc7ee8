"""Lazy input (alliance.io.lazy): chunks of whole courses read from JSONL and Parquet equal an eager read, bad
records are located and skipped, one chunk is read at a time, and a run over a lazy input resumes."""

import json

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import TURN_KEY, Corpus
from alliance.io import InputError, read
from alliance.io.lazy import LazyInput, lazy_files
from alliance.pipeline import PARTIAL_DIR, run_analysis
from tests.helpers import TableEncoder
from tests.test_pipeline import WordsLens


def _turn_lines(n_courses=5, sessions=2, turns=4, interleave=False):
    """One turn per line; with ``interleave`` the sessions' lines are dealt round-robin (courses scattered)."""
    per_session = []
    for c in range(n_courses):
        for s in range(sessions):
            per_session.append([{"course_id": f"k{c}", "session_id": f"k{c}s{s}", "session_index": s,
                                 "turn_index": t, "speaker": "client" if t % 2 == 0 else "counsellor",
                                 "text": f"turn {t} of k{c}s{s}", "mood": c * 10 + t} for t in range(turns)])
    if not interleave:
        return [line for lines in per_session for line in lines]
    return [lines[t] for t in range(turns) for lines in per_session]


def _write_jsonl(path, records, bad_at=None):
    lines = [json.dumps(r) for r in records]
    if bad_at is not None:
        lines.insert(bad_at, "{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _frame(corpus: Corpus) -> pd.DataFrame:
    t = corpus.turns.sort_values(TURN_KEY).reset_index(drop=True).copy()
    t["meta"] = [json.dumps(m, sort_keys=True) for m in t["meta"]]
    return t


def _sessions(corpus: Corpus) -> pd.DataFrame:
    s = corpus.sessions.sort_values(["course_id", "session_id"]).reset_index(drop=True).copy()
    s["meta"] = [json.dumps(m, sort_keys=True) for m in s["meta"]]
    return s


def _lazy_corpus(source: LazyInput) -> tuple[Corpus, list]:
    parts, rejected = [], []
    for read_chunk in source.chunks():
        corpus, rej = read_chunk()
        parts.append(corpus)
        rejected.extend(rej)
    turns = pd.concat([p.turns for p in parts], ignore_index=True)
    sessions = pd.concat([p.sessions for p in parts], ignore_index=True)
    return Corpus(turns, sessions), rejected


@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("chunk_turns", [1, 10, 1000])
def test_lazy_jsonl_equals_eager(tmp_path, interleave, chunk_turns):
    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(interleave=interleave))
    eager = read(src).corpus
    source = LazyInput(src, chunk_turns=chunk_turns)
    lazy, rejected = _lazy_corpus(source)
    assert not rejected
    pd.testing.assert_frame_equal(_frame(lazy), _frame(eager))
    pd.testing.assert_frame_equal(_sessions(lazy), _sessions(eager))
    assert source.n_turns == 40 and source.n_courses == 5
    assert source.n_chunks == (1 if chunk_turns == 1000 else 5)  # 8 turns a course, never split


def test_chunks_hold_whole_courses_even_when_scattered(tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(interleave=True))
    source = LazyInput(src, chunk_turns=10)
    assert source.n_chunks == 5  # 8 turns a course: one course per chunk
    for read_chunk in source.chunks():
        corpus, _ = read_chunk()
        assert corpus.turns["course_id"].nunique() == 1 and len(corpus.turns) == 8


def test_lazy_session_lines_equal_eager(tmp_path):
    from alliance.io.jsonl import write_jsonl

    eager = read(_write_jsonl(tmp_path / "turns.jsonl", _turn_lines())).corpus
    write_jsonl(eager, tmp_path / "sessions.jsonl")  # one session per line, with its labels
    lazy, _ = _lazy_corpus(LazyInput(tmp_path / "sessions.jsonl", chunk_turns=8))
    pd.testing.assert_frame_equal(_frame(lazy), _frame(read(tmp_path / "sessions.jsonl").corpus))


def test_lazy_parquet_file_and_dataset_equal_eager(tmp_path):
    df = pd.DataFrame(_turn_lines(n_courses=6))
    df.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=7)
    eager = read(tmp_path / "t.parquet").corpus
    lazy, _ = _lazy_corpus(LazyInput(tmp_path / "t.parquet", chunk_turns=16))
    pd.testing.assert_frame_equal(_frame(lazy), _frame(eager))
    folder = tmp_path / "ds"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):  # split inside courses: a course spans files
        df.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    assert [f for f, fmt in lazy_files([folder])] == sorted(folder.glob("*.parquet"))
    eager_ds = read(folder).corpus
    lazy_ds, _ = _lazy_corpus(LazyInput(folder, chunk_turns=16))
    pd.testing.assert_frame_equal(_frame(lazy_ds), _frame(eager_ds))
    pd.testing.assert_frame_equal(_frame(lazy_ds), _frame(eager))


def test_a_bad_line_in_the_middle_is_located_and_the_rest_kept(tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(), bad_at=17)  # the file's line 18
    source = LazyInput(src, on_error="skip", chunk_turns=10)
    lazy, rejected = _lazy_corpus(source)
    assert len(lazy) == 40
    assert [(r.source, r.location) for r in rejected] == [(str(src), "line 18")]
    assert "invalid JSON" in rejected[0].problem
    with pytest.raises(InputError, match=r"in\.jsonl:line 18: invalid JSON"):
        _lazy_corpus(LazyInput(src, on_error="fail", chunk_turns=10))
    # a bad record of a known course (an unknown role) is rejected in its course's chunk, with its line
    records = _turn_lines()
    records[25]["speaker"] = "narrator"
    src2 = _write_jsonl(tmp_path / "role.jsonl", records)
    lazy2, rejected2 = _lazy_corpus(LazyInput(src2, on_error="skip", chunk_turns=10))
    assert len(lazy2) == 39 and [r.location for r in rejected2] == ["line 26"]


def test_the_reader_holds_one_chunk_not_the_input(tmp_path, monkeypatch):
    """Counting iterator: records parsed in the second pass are those of the chunk asked for, and each chunk is
    parsed only when its reader is called."""
    import alliance.io.jsonfile as jf

    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(n_courses=50))
    source = LazyInput(src, chunk_turns=16)  # the index pass does not use parse_json
    parsed = []
    real = jf.parse_json
    monkeypatch.setattr(jf, "parse_json", lambda text: parsed.append(1) or real(text))
    readers = source.chunks()
    assert not parsed  # making the generator reads nothing
    sizes = []
    for read_chunk in readers:
        before = len(parsed)
        corpus, _ = read_chunk()
        sizes.append(len(parsed) - before)
        assert sizes[-1] == len(corpus.turns) <= 16
    assert sum(sizes) == 400 and max(sizes) == 16 and source.n_chunks == 25


def test_limit_and_sample_pick_what_an_eager_read_picks(tmp_path):
    from alliance.cli.analyze import select

    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(n_courses=12, interleave=True))
    eager = read(src).corpus
    for kw in ({"limit": 3}, {"sample": 4}):
        sub, rec = select(eager, kw.get("limit"), kw.get("sample"), 5)
        source = LazyInput(src, chunk_turns=10)
        lrec = source.select(kw.get("limit"), kw.get("sample"), 5)
        lazy, _ = _lazy_corpus(source)
        assert sorted(set(lazy.turns["course_id"])) == sorted(set(sub.turns["course_id"]))
        assert lrec["courses"] == rec["courses"] and lrec["of_courses"] == rec["of_courses"]


def test_a_run_over_a_lazy_input_equals_the_eager_run_and_resumes(tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", _turn_lines(n_courses=6), bad_at=30)
    enc = TableEncoder({"x": [1.0, 0.0]})
    eager = read(src, on_error="skip").corpus
    run_analysis(eager, tmp_path / "eager", lenses=[WordsLens()], encoder=enc, chunk_turns=10, write_report=False)
    out = tmp_path / "lazy"
    with pytest.raises(KeyboardInterrupt):
        run_analysis(LazyInput(src, on_error="skip", chunk_turns=10), out, lenses=[WordsLens(fail_on="k3s0")],
                     encoder=enc, write_report=False)
    assert len(list((out / PARTIAL_DIR).glob("turns-*.parquet"))) == 3
    before = enc.texts_encoded
    res = run_analysis(LazyInput(src, on_error="skip", chunk_turns=10), out, lenses=[WordsLens()], encoder=enc,
                       write_report=False)
    assert enc.texts_encoded - before == 3 * 8  # only the unfinished courses were scored again
    assert res.run["counts"]["chunks_resumed"] == 3 and res.run["counts"]["turns"] == 48
    assert [r.location for r in res.rejected] == ["line 31"]  # read back from the finished chunk
    assert res.run["counts"]["rejected_records"] == 1
    for name in ("turns", "sessions"):
        a = pd.read_parquet(tmp_path / "eager" / f"{name}.parquet")
        b = pd.read_parquet(out / f"{name}.parquet")
        key = TURN_KEY if name == "turns" else ["course_id", "session_id"]
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                      b.sort_values(key).reset_index(drop=True))
    # a changed input is a new run: no stale chunk is reused
    src.write_text(src.read_text().replace("turn 1 of k0s0", "turn one of k0s0"))
    res = run_analysis(LazyInput(src, on_error="skip", chunk_turns=10), out, lenses=[WordsLens()], encoder=enc,
                       write_report=False)
    assert res.run["counts"]["chunks_resumed"] == 0


def test_cli_reads_a_parquet_dataset_folder_lazily_and_lists_its_bad_rows(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    df = pd.DataFrame(_turn_lines(n_courses=4))
    df.loc[13, "speaker"] = "narrator"  # row 14 of the first file
    folder = tmp_path / "ds"
    folder.mkdir()
    df.iloc[:16].to_parquet(folder / "part-0.parquet", index=False)
    df.iloc[16:].to_parquet(folder / "part-1.parquet", index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(folder), "--out", str(out), "--lens", "markers", "--on-error",
                                   "skip"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "read lazily" in res.output
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert [(r["source"], r["location"]) for r in rejected] == [(str(folder / "part-0.parquet"), "row 14")]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["turns"] == 31 and run["counts"]["rejected_records"] == 1
    assert run["counts"]["sessions"] == 8 and run["counts"]["courses"] == 4
