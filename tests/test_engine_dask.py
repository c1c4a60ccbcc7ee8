"""The Dask engine on a small in-process LocalCluster: the same tables as the local engine, a failed chunk named
and resumed, a clear error for an unreachable scheduler, and dask imported only when asked for."""

import json
import pickle
import subprocess
import sys

import pandas as pd
import pytest

from alliance.engines import EngineError, make_engine
from alliance.engines.dask import DaskEngine
from alliance.lenses.base import Lens
from alliance.pipeline import PARTIAL_DIR, run_analysis
from tests.helpers import TableEncoder, make_corpus


class CountLens(Lens):
    """Word counts and the first embedding coordinate; raises on one session when told to."""

    name = "count"
    version = "1"
    needs_encoder = True

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on

    def score(self, corpus, ctx):
        if self.fail_on is not None and (corpus.turns["session_id"] == self.fail_on).any():
            raise RuntimeError(f"simulated failure on {self.fail_on}")
        emb = ctx.embeddings()
        return pd.DataFrame({"count_words": corpus.turns["text"].str.split().str.len().astype(float),
                             "count_dim0": emb[:, 0]}, index=corpus.turns.index)

    def summarize(self, corpus, turn_scores, ctx):
        g = pd.concat([corpus.turns[["course_id", "session_id"]], turn_scores], axis=1)
        return g.groupby(["course_id", "session_id"], sort=False)[["count_words"]].sum().add_suffix("_total")


def corpus_of(n_courses=6, sessions=2, turns=4):
    spec, course_of = {}, {}
    for c in range(n_courses):
        for s in range(sessions):
            sid = f"c{c}s{s}"
            spec[sid] = [("client" if i % 2 == 0 else "counsellor",
                          f"turn {i} of {sid}: I feel stuck, thank you " + "w " * i) for i in range(turns)]
            course_of[sid] = f"c{c}"
    return make_corpus(spec, course_of)


ENC = {"I": [1.0, 0.0, 0.0]}  # every text falls back to the same vector but the table encoder still counts


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # threads in this process (fast to start), on tcp so the CLI can be pointed at the scheduler's address
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster, set_as_default=False) as c:
        yield c


def tables(folder):
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in ("turns", "sessions", "courses")}


def test_dask_writes_the_same_tables_as_the_local_engine(tmp_path, client):
    corpus = corpus_of(4)
    lenses = [CountLens(), "markers", "trajectory"]
    local = run_analysis(corpus, tmp_path / "local", lenses=lenses, encoder=TableEncoder(ENC), chunk_turns=16,
                         write_report=False)
    seen = []
    dask = run_analysis(corpus, tmp_path / "dask", lenses=lenses, encoder=TableEncoder(ENC), chunk_turns=16,
                        write_report=False, engine=DaskEngine(client=client),
                        progress=lambda done, total: seen.append((done, total)))
    a, b = tables(tmp_path / "local"), tables(tmp_path / "dask")
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    assert len(a["turns"]) == 32 and "count_dim0" in a["turns"]
    assert any(c.startswith("markers_") for c in a["turns"]) and len(a["courses"]) == 4
    assert dask.run["engine"]["name"] == "dask" and dask.run["engine"]["workers"] == 2
    assert local.run["engine"] == {"name": "local"}
    assert dask.run["counts"]["chunks"] == 2 and dask.run["fingerprint"] == local.run["fingerprint"]
    # progress after each finished chunk (two courses, 16 turns each, in whatever order), ending at the total
    assert seen == [(16, 32), (32, 32)]


def test_a_failed_chunk_is_named_and_the_rerun_resumes_the_rest(tmp_path, client):
    corpus = corpus_of()
    engine = DaskEngine(client=client)
    with pytest.raises(EngineError, match=r"chunk 3 \(sessions c3/c3s0, c3/c3s1\): RuntimeError: simulated failure"):
        run_analysis(corpus, tmp_path, lenses=[CountLens(fail_on="c3s0")], encoder=TableEncoder(ENC),
                     chunk_turns=10, write_report=False, engine=engine)
    kept = sorted(p.name for p in (tmp_path / PARTIAL_DIR).glob("turns-*.parquet"))
    assert kept == [f"turns-{i:05d}.parquet" for i in (0, 1, 2, 4, 5)]
    res = run_analysis(corpus, tmp_path, lenses=[CountLens()], encoder=TableEncoder(ENC), chunk_turns=10,
                       write_report=False, engine=engine)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["counts"]["chunks_resumed"] == 5 and run["engine"]["name"] == "dask"
    out = pd.read_parquet(tmp_path / "turns.parquet")
    assert list(out["text"]) == list(corpus.turns["text"])  # none lost, none duplicated, corpus order
    fresh = run_analysis(corpus, tmp_path / "local", lenses=[CountLens()], encoder=TableEncoder(ENC),
                         chunk_turns=10, write_report=False)
    pd.testing.assert_frame_equal(res.sessions, fresh.sessions)


def test_a_chunk_whose_workers_died_says_so():
    from distributed.scheduler import KilledWorker

    from alliance.engines.dask import _why

    msg = _why(KilledWorker("alliance-chunk-00003", "tcp://10.0.0.5:4000", 3))
    assert msg.startswith("the workers running it died 4 times (out of memory, or killed; the last was tcp://10.0")


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path):
    engine = DaskEngine(scheduler="tcp://127.0.0.1:9", timeout=1)
    with pytest.raises(EngineError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 1 s"):
        run_analysis(corpus_of(1), tmp_path, lenses=[CountLens()], encoder=TableEncoder(ENC), write_report=False,
                     engine=engine)
    with pytest.raises(EngineError, match=r"'http://localhost:1' .*unknown address scheme 'http'"):
        DaskEngine(scheduler="http://localhost:1", timeout=1).run([], None, None)
    with pytest.raises(EngineError, match="needs the dask engine"):
        make_engine("local", workers=2)
    with pytest.raises(EngineError, match="not several"):
        DaskEngine(scheduler="tcp://x:1", workers=2)


def test_the_cli_runs_on_a_scheduler_and_matches_local(tmp_path, client):
    from typer.testing import CliRunner

    from alliance.cli import app
    from alliance.io import read

    sample = tmp_path / "in.jsonl"
    with sample.open("w") as fh:
        for r in corpus_of(3).turns.itertuples(index=False):
            fh.write(json.dumps({"course_id": r.course_id, "session_id": r.session_id,
                                 "turn_index": int(r.turn_index), "speaker": r.speaker, "text": r.text}) + "\n")
    common = ["analyze", str(sample), "--format", "jsonl", "--lens", "markers", "--cache-dir", str(tmp_path / "c")]
    runner = CliRunner()
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "d"), "--engine", "dask",
                              "--scheduler", client.scheduler.address])
    assert res.exit_code == 0, res.output
    local = run_analysis(read(sample, format="jsonl").corpus, tmp_path / "l", lenses=["markers"], write_report=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "d" / "turns.parquet"), local.turns)
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["engine"]["scheduler"] == client.scheduler.address
    bad = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), "--workers", "2"])
    assert bad.exit_code == 2 and "needs the dask engine" in bad.output


def test_encoders_travel_as_recipes(tmp_path):
    from alliance.cli.progress import ProgressEncoder
    from alliance.encoders import load_encoder

    enc = load_encoder(cache_dir=tmp_path)
    enc.encode([])  # nothing to encode: no model
    enc._conn()  # an open SQLite connection cannot be pickled; the recipe leaves it behind
    back = pickle.loads(pickle.dumps(ProgressEncoder(enc, lambda done, total: None)))
    assert type(back) is type(enc) and back.model_id == enc.model_id and back.cache_dir == tmp_path
    assert back._db is None and not back.encoder.loaded


def test_nothing_imports_dask_unless_asked():
    code = ("import sys, alliance.pipeline, alliance.cli.analyze, alliance.engines; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
