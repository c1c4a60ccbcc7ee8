"""Peak memory and speed of a file-writing run (`run_analysis`) as the corpus grows: is memory bounded?

Each size runs in a fresh process on a synthetic corpus (invented counselling-like turns from a fixed word list,
seeded; courses of 2 sessions x 20 turns) with the cheap lenses (markers, trajectory) and no report. The input
corpus itself is in memory and grows with the size, so the figure that must stay flat is the run's own peak: the
process's high-water mark reset (Linux ``/proc/self/clear_refs``) after the corpus is built, minus the memory held
at that point ("run MB"; freed heap is handed back first, so that point counts live data only). Target: the
100k/10k ratio of that figure within 1.10. Throughput is turns per CPU second of the run (the machine is shared).

    python benchmarks/scale.py [--sizes 10000 100000] [--code SRC]   (--code: another checkout's src/, e.g. to
                                                                     measure the code before a change)
    python benchmarks/scale.py --engine dask   (a local Dask cluster, one worker per core, started inside the run:
                                               its start-up is in the times; peak MB is the client's alone)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, tempfile, time
import numpy as np, pandas as pd
from alliance.corpus import Corpus
from alliance.pipeline import run_analysis

n_turns, seed, out, engine = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
WORDS = ("I feel really stuck at work and my sleep is bad lately so maybe we could talk about what helps "
         "you said that last week it was hard to get out of bed how has it been since then thank you").split()
rng = np.random.default_rng(seed)
per_session, per_course = 20, 2
n_sessions = n_turns // per_session
lengths = rng.integers(3, 25, size=n_turns)
words = rng.integers(0, len(WORDS), size=int(lengths.sum()))
ends = np.cumsum(lengths)
texts = [" ".join(WORDS[w] for w in words[e - n:e]) for e, n in zip(ends, lengths)]
sess = np.repeat(np.arange(n_sessions), per_session)
turns = pd.DataFrame({
    "course_id": [f"c{s // per_course}" for s in sess], "session_id": [f"s{s}" for s in sess],
    "session_index": sess % per_course, "turn_index": np.tile(np.arange(per_session), n_sessions),
    "speaker": np.tile(["client", "counsellor"], n_turns // 2), "text": texts})
corpus = Corpus(turns)
del turns, texts, words

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")

import ctypes, gc
gc.collect()
try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the base is live data, not reusable slack
except OSError:
    pass
base = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark: what follows is the run's own peak
    reset = True
except OSError:
    reset = False
t0, c0 = time.perf_counter(), time.process_time()
run_analysis(corpus, out, lenses=["markers", "trajectory"], write_report=False, resume=False, engine=engine)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"turns": len(corpus), "base_mb": base, "peak_mb": peak, "run_mb": peak - base, "wall_s": wall,
                  "cpu_s": cpu, "hwm_reset": reset}))
"""


def measure(n: int, code: Path, seed: int, engine: str = "local") -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-c", CHILD, str(n), str(seed), str(Path(tmp) / "run"), engine],
                             capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode:
        raise SystemExit(f"size {n}: the run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--code", type=Path, default=ROOT / "src", help="the src/ folder to measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", choices=["local", "dask"], default="local", help="who runs the chunks")
    a = ap.parse_args()
    rows = [measure(n, a.code, a.seed, a.engine) for n in a.sizes]
    print(f"code: {a.code}; engine: {a.engine}; lenses: markers, trajectory; no report; one process per size")
    print(f"{'turns':>9} {'before run MB':>14} {'peak MB':>8} {'run MB':>7} {'turns/CPU s':>12} {'CPU s':>7}")
    for r in rows:
        print(f"{r['turns']:>9,} {r['base_mb']:>14.0f} {r['peak_mb']:>8.0f} {r['run_mb']:>7.0f} "
              f"{r['turns'] / r['cpu_s']:>12,.0f} {r['cpu_s']:>7.1f}")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"{last['turns']:,} vs {first['turns']:,} turns ({last['turns'] / first['turns']:.0f}x): run MB ratio "
              f"{last['run_mb'] / first['run_mb']:.2f}x (target <= 1.10), whole-process peak ratio "
              f"{last['peak_mb'] / first['peak_mb']:.2f}x (includes the input corpus, held in memory)")
    if not all(r["hwm_reset"] for r in rows):
        print("note: the high-water mark could not be reset here; peaks include building the corpus")


if __name__ == "__main__":
    main()
