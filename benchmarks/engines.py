"""Throughput of the Dask engine against the local engine on one machine, real turns, measured in the same process.

One child process reads the first N KokoroChat sessions (or, without data, the bundled sample), warms the embedding
cache with one untimed local run (so both engines read vectors, not encode them: the comparison is of the engines,
not of the encoder), starts a local Dask cluster (its start-up timed on its own) and warms its workers with one
untimed run; then, alternating, runs `run_analysis` with the local engine and the Dask engine for each round (no
report, chunks of --chunk-turns turns). CPU time is the child's plus every worker process's (all threads), read
before and after each run. The tables of the last two runs are compared cell for cell. Done for the default lenses
and for the cheap lenses (markers, trajectory) on more sessions. Medians over rounds.

    python benchmarks/engines.py [--sessions 30] [--cheap-sessions 300] [--workers 2] [--rounds 3]

Target (issue #15): the Dask engine on one machine within 10% of the local engine's throughput, identical results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, statistics, sys, tempfile, time, warnings
from pathlib import Path
import pandas as pd
from alliance.io import read
from alliance.pipeline import run_analysis

n_sessions, lens_arg, workers, rounds, chunk_turns = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                                      int(sys.argv[4]), int(sys.argv[5]))
lenses = None if lens_arg == "defaults" else lens_arg.split(",")
folder = Path(os.environ["ALLIANCE_DATA"]) / "kokorochat_en" / "English"
if folder.is_dir():
    corpus = read(sorted(folder.glob("*.json"))[:n_sessions], format="kokorochat", on_error="skip").corpus
else:
    from importlib import resources
    corpus = read(Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl"))),
                  format="jsonl").corpus
from alliance.encoders import load_encoder
encoder = load_encoder()
tmp = Path(tempfile.mkdtemp())

def analyse(name, engine):
    return run_analysis(corpus, tmp / name, lenses=lenses, encoder=encoder, chunk_turns=chunk_turns,
                        write_report=False, resume=False, engine=engine)

analyse("warm-local", "local")  # untimed: fills the embedding cache, imports, first-call costs

from distributed import Client
from alliance.engines.dask import QUIET, DaskEngine, local_cluster
import dask
t0 = time.perf_counter()
cluster = local_cluster(workers)  # what `--engine dask --workers N` starts
with dask.config.set(QUIET):
    client = Client(cluster)
client.wait_for_workers(workers)
cluster_s = time.perf_counter() - t0
engine = DaskEngine(client=client)
analyse("warm-dask", engine)  # untimed: the workers' imports

def worker_cpu():
    return sum(client.run(time.process_time).values())

rows = {"local": [], "dask": []}
for r in range(rounds):
    for name, eng in (("local", "local"), ("dask", engine)):
        w0, c0, t0 = worker_cpu(), time.process_time(), time.perf_counter()
        analyse(f"{name}-{r}", eng)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0 + worker_cpu() - w0
        rows[name].append({"wall_s": wall, "cpu_s": cpu})
same = {}
for table in ("turns", "sessions", "courses"):
    a, b = tmp / f"local-{rounds - 1}" / f"{table}.parquet", tmp / f"dask-{rounds - 1}" / f"{table}.parquet"
    if a.exists() or b.exists():
        try:
            pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b), check_exact=True)
            same[table] = True
        except AssertionError:
            same[table] = False
client.close(); cluster.close()
med = lambda name, key: statistics.median(x[key] for x in rows[name])
print(json.dumps({"turns": len(corpus), "sessions": len(corpus.sessions), "cluster_s": cluster_s,
                  "local_wall": med("local", "wall_s"), "local_cpu": med("local", "cpu_s"),
                  "dask_wall": med("dask", "wall_s"), "dask_cpu": med("dask", "cpu_s"), "rows": rows,
                  "identical": same}))
"""


def measure(sessions: int, lenses: str, workers: int, rounds: int, chunk_turns: int) -> dict:
    data = os.environ.get("ALLIANCE_DATA") or str(ROOT.parent / "shared" / "data")
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "ALLIANCE_DATA": data}
    res = subprocess.run([sys.executable, "-c", CHILD, str(sessions), lenses, str(workers), str(rounds),
                          str(chunk_turns)], capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode:
        raise SystemExit(f"{lenses}: the run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=30, help="KokoroChat sessions for the default lenses")
    ap.add_argument("--cheap-sessions", type=int, default=300, help="sessions for the cheap lenses")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the local Dask cluster")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunk-turns", type=int, default=500,
                    help="turns per chunk (both engines; several chunks, so the workers share them)")
    a = ap.parse_args()
    print(f"one machine, {os.cpu_count()} cores; local engine vs a local Dask cluster of {a.workers} worker "
          f"processes x 1 thread; warm embedding cache; chunks of ~{a.chunk_turns} turns; medians of {a.rounds}")
    for label, lenses, n in (("default lenses", "defaults", a.sessions),
                             ("cheap lenses (markers, trajectory)", "markers,trajectory", a.cheap_sessions)):
        r = measure(n, lenses, a.workers, a.rounds, a.chunk_turns)
        t = r["turns"]
        print(f"{label}: {t:,} turns ({r['sessions']} sessions); Dask cluster start-up {r['cluster_s']:.1f} s "
              "(once, not in the runs)")
        for name in ("local", "dask"):
            print(f"  {name:5s} {t / r[f'{name}_wall']:9,.0f} turns/s wall ({r[f'{name}_wall']:6.1f} s)  "
                  f"{t / r[f'{name}_cpu']:9,.0f} turns/s CPU ({r[f'{name}_cpu']:6.1f} s, all processes)")
        print(f"  dask/local throughput: {r['local_wall'] / r['dask_wall']:.2f}x wall, "
              f"{r['local_cpu'] / r['dask_cpu']:.2f}x CPU (target >= 0.90); identical tables: "
              + ", ".join(f"{k} {v}" for k, v in r["identical"].items()))


if __name__ == "__main__":
    main()
