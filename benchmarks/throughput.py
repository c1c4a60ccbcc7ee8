"""End-to-end `alliance analyze` throughput against a plain encode() of the same texts, in the same run.

Both run in fresh subprocesses with an empty embedding cache, so each pays for loading the model and encoding
every text once; everything `analyze` does beyond that is overhead. Target: analyze >= 0.8x the plain encoder's
turns/s. Also prints each process's peak memory.

    python benchmarks/throughput.py [--sessions N] [--lens alliance ...]
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

ENCODE_ONLY = """
import json, resource, sys, time
t0 = time.perf_counter()
from alliance.encoders.sentence import SentenceTransformerEncoder
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
SentenceTransformerEncoder().encode(texts)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ANALYZE = """
import resource, sys, time, json
t0 = time.perf_counter()
from alliance.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    if e.code: raise
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


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
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"subprocess failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=40, help="KokoroChat sessions to use (about 90 turns each)")
    ap.add_argument("--lens", action="append", default=None, help="lenses to run (default: the default lenses)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "corpus.jsonl"
        n = sample_corpus(args.sessions, corpus_file)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "ALLIANCE_CACHE": str(tmp / "cache-analyze")}
        lens_args = [a for name in (args.lens or []) for a in ("--lens", name)]
        base = run(ENCODE_ONLY, [str(corpus_file)], env)
        full = run(ANALYZE, ["analyze", str(corpus_file), "--format", "jsonl", "--out", str(tmp / "out"),
                             *lens_args], env)
    base_tps, full_tps = n / base["seconds"], n / full["seconds"]
    print(f"turns: {n}")
    print(f"plain encode():    {base_tps:8.1f} turns/s  ({base['seconds']:.1f} s, peak {base['peak_mb']:.0f} MB)")
    print(f"alliance analyze:  {full_tps:8.1f} turns/s  ({full['seconds']:.1f} s, peak {full['peak_mb']:.0f} MB)"
          f"  lenses: {', '.join(args.lens) if args.lens else 'defaults'}")
    print(f"ratio analyze/encode: {full_tps / base_tps:.2f}x (target >= 0.80)")


if __name__ == "__main__":
    main()
