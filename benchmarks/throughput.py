"""Speed of `alliance analyze` against a plain encode() of the same texts, measured in the same run from fresh caches.

Each round runs in fresh subprocesses with an empty embedding cache: the plain encoder (load the shipped model,
encode every turn once) and `alliance analyze` with the default lenses; then, on a second empty cache, the one-time
set-up of an installation (the lenses' reference texts encoded once, by analysing the bundled sample), `analyze`
cold, and `analyze` again on the now warm cache into a new folder. Wall and CPU time (user+system of
the child, all threads) are both reported: on a shared machine CPU time is the steadier ratio. Medians over rounds.

    python benchmarks/throughput.py [--sessions 30] [--rounds 3] [--cheap-sessions 300] [--lens NAME ...]
                                    [--compare-to OTHER/src]

``--compare-to`` runs `analyze` once more with another source tree (e.g. the main branch's ``src``) on the same
corpus and cache, and checks every lens column against this tree's run: equal, or Spearman >= 0.9999 per numeric
column (a speed-up must not change a score). The command times run the installed console script's entry point
(pyproject's ``[project.scripts]``), as `alliance lenses` does.

Targets (issue #15): default lenses >= 0.8x the plain encoder's turns/s from a fresh cache; the cheap lenses
(markers, trajectory) >= 20k turns/s of scoring; warm re-analysis >= 20x faster than cold; `alliance lenses` and
`alliance formats` under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "alliance" / "data" / "sample" / "annomi_sample.jsonl"

ENCODE_ONLY = """
import json, sys, time
t0 = time.perf_counter()
from alliance.encoders.sentence import SentenceTransformerEncoder
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
enc = SentenceTransformerEncoder()
enc.model  # loading the model is set-up; encoding is the work
t1 = time.perf_counter()
enc.encode(texts)
import resource
print(json.dumps({"setup_s": t1 - t0, "encode_s": time.perf_counter() - t1,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ANALYZE = """
import json, sys, time
from alliance.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    if e.code: raise
import resource
print(json.dumps({"torch_loaded": "torch" in sys.modules,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHEAP = """
import json, sys, time
from alliance.io import read
from alliance.pipeline import analyze
corpus = read(sys.argv[1], format="jsonl").corpus
lenses = sys.argv[2].split(",")
analyze(corpus, lenses)  # warm-up: imports and first-call costs are not per-turn work
t0 = time.perf_counter(); c0 = time.process_time()
analyze(corpus, lenses)
print(json.dumps({"turns": len(corpus), "seconds": time.perf_counter() - t0,
                  "scoring_cpu_s": time.process_time() - c0}))
"""


def console_script() -> str:
    """Code that runs `alliance` as the installed script does: its entry point from pyproject.toml."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["alliance"]
    module, _, attr = target.partition(":")
    return (f"import sys\nfrom {module} import {attr}\ntry:\n    {attr}()\nexcept SystemExit:\n    pass\n"
            "print('{}')")


#: Columns that record the run, not a score.
NOT_SCORES = {"meta", "session_meta", "source"}


def compare_runs(ours: Path, theirs: Path, min_rho: float = 0.9999) -> tuple[int, list[str]]:
    """Every column of both runs' turn and session tables: equal, or (numeric) Spearman >= ``min_rho`` over the
    rows where both are finite with the same rows missing. Returns (columns compared, failures)."""
    import numpy as np
    import pandas as pd

    compared, failures = 0, []
    for table in ("turns.parquet", "sessions.parquet"):
        a, b = pd.read_parquet(ours / table), pd.read_parquet(theirs / table)
        missing = sorted(set(a.columns) ^ set(b.columns))
        if missing:
            failures.append(f"{table}: columns only in one run: {missing}")
        if len(a) != len(b):
            failures.append(f"{table}: {len(a)} rows against {len(b)}")
            continue
        for c in [c for c in a.columns if c in b.columns and c not in NOT_SCORES]:
            compared += 1
            x, y = a[c], b[c]
            if x.astype(str).equals(y.astype(str)):
                continue
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) \
                    and not pd.api.types.is_bool_dtype(x):
                xf, yf = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
                ok = np.isfinite(xf) & np.isfinite(yf)
                if (np.isfinite(xf) != np.isfinite(yf)).any():
                    failures.append(f"{table}:{c}: missing in one run only")
                    continue
                if np.allclose(xf[ok], yf[ok], rtol=0, atol=0):
                    continue
                rho = pd.Series(xf[ok]).corr(pd.Series(yf[ok]), method="spearman") if ok.sum() > 2 else np.nan
                if not rho >= min_rho:
                    failures.append(f"{table}:{c}: Spearman {rho:.6f}")
            else:
                failures.append(f"{table}:{c}: values differ")
    return compared, failures


def sample_corpus(n_sessions: int, out: Path) -> int:
    """Write the first N KokoroChat sessions (or, without data, the bundled sample) as turn-per-line JSONL."""
    from alliance.io import read

    data = Path(os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")
    folder = data / "kokorochat_en" / "English"
    if folder.is_dir():
        corpus = read(sorted(folder.glob("*.json"))[:n_sessions], format="kokorochat", on_error="skip").corpus
    else:
        from importlib import resources

        sample = Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl")))
        corpus = read(sample, format="jsonl").corpus
    with open(out, "w", encoding="utf-8") as fh:
        for r in corpus.turns.itertuples(index=False):
            fh.write(json.dumps({"course_id": r.course_id, "session_id": r.session_id, "turn_index": int(r.turn_index),
                                 "speaker": r.speaker, "text": r.text}) + "\n")
    return len(corpus.turns)


def run(code: str, args: list[str], env: dict[str, str]) -> dict:
    """Run a child; its wall time (from the parent, interpreter start included) and CPU time (all its threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"subprocess failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**res, "wall_s": wall, "cpu_s": cpu}


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30, help="KokoroChat sessions to use (about 90 turns each)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (encoder, cold analyze, warm analyze)")
    ap.add_argument("--cheap-sessions", type=int, default=300, help="sessions for the cheap lenses' scoring rate")
    ap.add_argument("--lens", action="append", default=None, help="lenses to run (default: the default lenses)")
    ap.add_argument("--skip-analyze", action="store_true",
                    help="only the cheap lenses' rate and the command times (no encoder, no analyze rounds)")
    ap.add_argument("--compare-to", type=Path, default=None,
                    help="another source tree (e.g. ../main/src): its lens columns must equal this tree's")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    lens_args = [a for name in (args.lens or []) for a in ("--lens", name)]
    base, fresh, setup, cold, warm = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "corpus.jsonl"
        n = sample_corpus(args.sessions, corpus_file)
        for r in range(0 if args.skip_analyze else args.rounds):
            cache = {**env, "ALLIANCE_CACHE": str(tmp / f"cache-{r}")}  # fresh: nothing encoded, nothing built
            base.append(run(ENCODE_ONLY, [str(corpus_file)], cache))
            cli = ["analyze", str(corpus_file), "--format", "jsonl", *lens_args]
            fresh.append(run(ANALYZE, [*cli, "--out", str(tmp / f"fresh-{r}")], cache))
            cache = {**env, "ALLIANCE_CACHE": str(tmp / f"cache-setup-{r}")}
            # one-time set-up of an installation: the lenses' reference texts (probes, examples, background lines)
            # are encoded once into the cache, here by analysing the bundled two-session sample
            setup.append(run(ANALYZE, ["analyze", str(SAMPLE), "--format", "jsonl", *lens_args,
                                       "--out", str(tmp / f"setup-{r}")], cache))
            cold.append(run(ANALYZE, [*cli, "--out", str(tmp / f"out-{r}")], cache))
            warm.append(run(ANALYZE, [*cli, "--out", str(tmp / f"warm-{r}")], cache))
            print(json.dumps({"round": r + 1, "encoder": base[-1], "fresh": fresh[-1], "setup": setup[-1],
                              "cold": cold[-1], "warm": warm[-1]}), file=sys.stderr)
            print(f"round {r + 1}: encoder {base[-1]['wall_s']:.1f} s, fresh {fresh[-1]['wall_s']:.1f} s, "
                  f"cold after set-up {cold[-1]['wall_s']:.1f} s, "
                  f"warm {warm[-1]['wall_s']:.1f} s (wall)", file=sys.stderr)
        cheap_file = tmp / "cheap.jsonl"
        n_cheap = sample_corpus(args.cheap_sessions, cheap_file)
        cheap = [run(CHEAP, [str(cheap_file), "markers,trajectory"], env) for _ in range(args.rounds)]
        info = {cmd: [run(console_script(), [cmd], env) for _ in range(5)] for cmd in ("--help", "lenses", "formats")}
        comparison = None
        if args.compare_to is not None and not args.skip_analyze:
            other = {**env, "PYTHONPATH": str(args.compare_to.resolve()),
                     "ALLIANCE_CACHE": str(tmp / f"cache-setup-{args.rounds - 1}")}
            run(ANALYZE, [*cli, "--out", str(tmp / "other")], other)
            comparison = compare_runs(tmp / f"warm-{args.rounds - 1}", tmp / "other")

    lens_label = ", ".join(args.lens) if args.lens else "defaults"
    print(f"turns: {n} ({args.sessions} sessions), rounds: {args.rounds}, medians; lenses: {lens_label}")
    if not args.skip_analyze:
        print_rounds(n, base, fresh, setup, cold, warm)
    print_fast_parts(n_cheap, cheap, info)
    if comparison is not None:
        compared, failures = comparison
        print(f"scores against {args.compare_to}: {compared} columns compared, "
              + ("all equal or Spearman >= 0.9999" if not failures else f"{len(failures)} differ: {failures[:20]}"))


def print_rounds(n: int, base: list[dict], fresh: list[dict], setup: list[dict], cold: list[dict],
                 warm: list[dict]) -> None:
    print(f"plain encoder: set-up {med(base, 'setup_s'):.1f} s (imports, model load), encode {med(base, 'encode_s'):.1f} s")
    for label, rows in (("plain encode()", base), ("analyze, fresh", fresh), ("one-time set-up", setup),
                        ("analyze, cold", cold), ("analyze, warm", warm)):
        print(f"{label:16s} {n / med(rows, 'wall_s'):8.1f} turns/s wall ({med(rows, 'wall_s'):6.1f} s)   "
              f"{n / med(rows, 'cpu_s'):8.1f} turns/s CPU ({med(rows, 'cpu_s'):6.1f} s)   peak {med(rows, 'peak_mb'):.0f} MB")
    print(f"ratio analyze/encode, fresh cache (set-up included): {med(base, 'wall_s') / med(fresh, 'wall_s'):.2f}x "
          f"wall, {med(base, 'cpu_s') / med(fresh, 'cpu_s'):.2f}x CPU")
    print(f"ratio analyze/encode, cold after the one-time set-up: {med(base, 'wall_s') / med(cold, 'wall_s'):.2f}x "
          f"wall, {med(base, 'cpu_s') / med(cold, 'cpu_s'):.2f}x CPU (target >= 0.80)")
    print(f"warm re-analysis: {med(cold, 'wall_s') / med(warm, 'wall_s'):.1f}x faster wall, "
          f"{med(cold, 'cpu_s') / med(warm, 'cpu_s'):.1f}x CPU (target >= 20); torch loaded when warm: "
          f"{any(w['torch_loaded'] for w in warm)}")


def print_fast_parts(n_cheap: int, cheap: list[dict], info: dict[str, list[dict]]) -> None:
    print(f"cheap lenses (markers, trajectory), scoring {n_cheap} turns in-process: "
          f"{med(cheap, 'turns') / med(cheap, 'seconds'):,.0f} turns/s wall, "
          f"{med(cheap, 'turns') / med(cheap, 'scoring_cpu_s'):,.0f} turns/s CPU (target >= 20,000; the timed "
          "call only, after a warm-up call)")
    print("command times, median of 5 (target < 0.2 s): " + ", ".join(
        f"`alliance {cmd}` {med(rows, 'wall_s'):.2f} s wall / {med(rows, 'cpu_s'):.2f} s CPU"
        for cmd, rows in info.items()))


if __name__ == "__main__":
    main()
