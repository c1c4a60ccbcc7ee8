"""Peak memory, CPU time and throughput of `alliance analyze` as the corpus grows from 10k to 1M turns: is memory flat?

Each corpus is built from real turns (AnnoMI utterances under ../shared/data, or $ALLIANCE_DATA; seeded): courses of
2 sessions x 20 consecutive turns of a real AnnoMI session, written to a temporary folder as JSONL (one turn per
line) or a Parquet file, then analysed by the command line in a fresh process, as a user runs it, with the cheap
lenses (markers, trajectory) and the report. The child's peak resident memory (``wait4``'s ``ru_maxrss``) and CPU
time (user + system) are the figures; throughput is turns per CPU second (the machine is shared, so wall time says
little). Targets (issue #15): peak memory flat within 10% from 10k to 1M turns, under 1.5 GB at 1M, and CPU time
linear in size (CPU microseconds per turn, printed per size, flat). Peak RSS is the largest single process of the
run (the report's page workers are separate processes, each smaller than the run's main process).

    python benchmarks/scale.py [--sizes 10000 100000 1000000] [--input jsonl parquet] [--engines local]
                               [--code SRC] [--keep DIR]

``--engines``: ``--engine NAME`` is passed for any but ``local`` (e.g. ``--engines local dask``). ``--code``: another checkout's src/, e.g. to measure the code before a change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_SESSION, PER_COURSE = 20, 2


def data_root() -> Path:
    return Path(os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")


def real_sessions() -> list[list[tuple[str, str]]]:
    """AnnoMI's sessions as lists of (speaker, text), those with at least PER_SESSION turns."""
    from alliance.io import read

    corpus = read(data_root() / "annomi" / "AnnoMI-full.csv", format="annomi", on_error="skip").corpus
    out = []
    for _, grp in corpus.iter_sessions():
        turns = list(zip(grp["speaker"].astype(str), grp["text"].astype(str), strict=True))
        if len(turns) >= PER_SESSION:
            out.append(turns)
    return out


def synthetic_turns(n_turns: int, seed: int, sessions: list[list[tuple[str, str]]]):
    """Yield turn records: each session is PER_SESSION consecutive real turns from a session drawn with ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for s in range(n_turns // PER_SESSION):
        src = sessions[int(rng.integers(len(sessions)))]
        start = int(rng.integers(len(src) - PER_SESSION + 1))
        for i, (speaker, text) in enumerate(src[start:start + PER_SESSION]):
            yield {"course_id": f"c{s // PER_COURSE}", "session_id": f"s{s}", "session_index": s % PER_COURSE,
                   "turn_index": i, "speaker": speaker, "text": text}


def write_input(n_turns: int, kind: str, folder: Path, seed: int, sessions: list) -> Path:
    """The corpus as a file, written as it is generated (the benchmark holds one batch of rows)."""
    if kind == "jsonl":
        path = folder / f"corpus-{n_turns}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for rec in synthetic_turns(n_turns, seed, sessions):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"corpus-{n_turns}.parquet"
    schema = pa.schema([("course_id", pa.string()), ("session_id", pa.string()), ("session_index", pa.int64()),
                        ("turn_index", pa.int64()), ("speaker", pa.string()), ("text", pa.string())])
    batch: list[dict] = []
    with pq.ParquetWriter(path, schema) as writer:
        for rec in synthetic_turns(n_turns, seed, sessions):
            batch.append(rec)
            if len(batch) == 65536:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return path


def run_cli(path: Path, out: Path, code: Path, engine: str) -> dict:
    """`alliance analyze` in a child process; its own peak RSS and CPU time from wait4."""
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "alliance.cli", "analyze", str(path), "--out", str(out), "--lens", "markers",
           "--lens", "trajectory", "--no-resume"]
    if engine != "local":
        cmd += ["--engine", engine]
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{path.name}: the run failed ({proc.returncode}):\n"
                         f"{(out.parent / f'{out.name}.log').read_text()[-3000:]}")
    run = json.loads((out / "run.json").read_text())
    return {"turns": run["counts"]["turns"], "peak_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "chunks": run["counts"]["chunks"],
            "pages": len(list((out / "report_files" / "sessions").glob("*.html")))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--input", nargs="+", choices=["jsonl", "parquet"], default=["jsonl", "parquet"])
    ap.add_argument("--engines", nargs="+", default=["local"])
    ap.add_argument("--code", type=Path, default=ROOT / "src", help="the src/ folder to measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the corpora and runs here (default: a temporary folder)")
    a = ap.parse_args()
    if not (data_root() / "annomi" / "AnnoMI-full.csv").exists():
        raise SystemExit(f"AnnoMI not found under {data_root()} (set ALLIANCE_DATA)")
    sys.path.insert(0, str(a.code))
    sessions = real_sessions()
    print(f"code: {a.code}; turns from {len(sessions)} AnnoMI sessions of >= {PER_SESSION} turns (seed {a.seed}); "
          f"lenses markers, trajectory; report included; one process per run")
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in a.sizes:
            for kind in a.input:
                path = write_input(n, kind, folder, a.seed, sessions)
                for engine in a.engines:
                    r = run_cli(path, folder / f"run-{kind}-{engine}-{n}", a.code, engine)
                    r.update(kind=kind, engine=engine, input_mb=path.stat().st_size / 2**20)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                path.unlink()
    print(f"\n{'input':>7} {'engine':>6} {'turns':>9} {'input MB':>8} {'peak MB':>8} {'CPU s':>8} "
          f"{'turns/CPU s':>11} {'wall s':>7} {'chunks':>6} {'pages':>5}")
    for r in rows:
        print(f"{r['kind']:>7} {r['engine']:>6} {r['turns']:>9,} {r['input_mb']:>8.1f} {r['peak_mb']:>8.0f} "
              f"{r['cpu_s']:>8.1f} {r['turns'] / r['cpu_s']:>11,.0f} {r['wall_s']:>7.0f} {r['chunks']:>6} "
              f"{r['pages']:>5}")
    for kind in a.input:
        for engine in a.engines:
            mine = [r for r in rows if r["kind"] == kind and r["engine"] == engine]
            if len(mine) > 1:
                lo, hi = mine[0], mine[-1]
                per = [r["cpu_s"] / r["turns"] * 1e6 for r in mine]
                print(f"{kind}/{engine}: {hi['turns']:,} vs {lo['turns']:,} turns: peak memory ratio "
                      f"{hi['peak_mb'] / lo['peak_mb']:.2f}x (target <= 1.10), peak {hi['peak_mb']:.0f} MB "
                      f"(target < 1536); CPU us per turn {' / '.join(f'{p:.0f}' for p in per)} (linear: flat)")


if __name__ == "__main__":
    main()
