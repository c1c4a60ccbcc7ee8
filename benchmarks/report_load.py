"""How fast the HTML report is written: session pages per second before and after, and a session too long for the
old report, measured in one run on one synthetic corpus scored with the chosen lenses.

Evidence: the same scored tables written by the report code of a baseline commit (``--baseline-ref``, checked out of
git into a temporary folder and run in a subprocess) and by this tree, serially and with parallel workers; wall
seconds for the whole site (overview, session and course pages). The corpus is synthetic (invented lines, no research
data): a figure of speed, not of any measure. Optionally, headless-Chromium load times of the overview.

    PYTHONPATH=src python benchmarks/report_load.py --sessions 150 --turns 40 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: The report before this work: serial pages, every chart validated by Altair, every session on the overview.
BASELINE_REF = "3ee712e"
CLIENT = ["I keep worrying about my exams.", "ok", "I don't know, maybe.", "Things have been hard at home lately.",
          "I feel a bit better after talking.", "I don't want to be here anymore.", "My sister helps sometimes.",
          "Work has been really stressful and I can't sleep.", "I guess so.", "I want to try going for walks again."]
COUNSELLOR = ["What feels most important to you today?", "That sounds really hard.", "Can you tell me more?",
              "Are you thinking of hurting yourself?", "What would help most right now?",
              "You've been carrying a lot on your own.", "How did that feel for you?"]

TIMER = """
import json, sys, time
import pandas as pd
from alliance.report.site import write_site
run_dir, out, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t = pd.read_parquet(run_dir + "/turns.parquet"); s = pd.read_parquet(run_dir + "/sessions.parquet")
c = pd.read_parquet(run_dir + "/courses.parquet"); run = json.load(open(run_dir + "/run.json"))
write_site(t.head(50), s.head(1), run, out + "-warm", **kwargs)  # imports and the Vega bundle, not timed
t0 = time.perf_counter()
try:
    write_site(t, s, run, out, c, **kwargs)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e).splitlines()[0][:120]}))
"""


def synthetic_corpus(n_sessions: int, n_turns: int, seed: int = 0):
    from alliance.corpus import Corpus

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        for i in range(n_turns):
            side = "counsellor" if i % 2 == 0 else "client"
            bank = COUNSELLOR if side == "counsellor" else CLIENT
            rows.append({"course_id": f"c{s // 3}", "session_id": f"s{s}", "session_index": s % 3, "turn_index": i,
                         "speaker": side, "text": bank[int(rng.integers(len(bank)))]})
    return Corpus(pd.DataFrame(rows))


def scored(cache: Path, n_sessions: int, n_turns: int, lenses: list[str] | None) -> Path:
    """Score the synthetic corpus once into the benchmark cache (reused by later runs with the same settings)."""
    from alliance.pipeline import run_analysis

    folder = cache / f"report_load-{n_sessions}x{n_turns}-{'-'.join(lenses or ['default'])}"
    if not (folder / "run.json").exists():
        run_analysis(synthetic_corpus(n_sessions, n_turns), folder, lenses=lenses, write_report=False)
    return folder


def baseline_src(ref: str, into: Path) -> Path:
    """The package source of ``ref`` (git archive), so the old report runs beside the new one in this run."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def timed(src: Path, run_dir: Path, out: Path, **kwargs) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    shutil.rmtree(out, ignore_errors=True)
    res = subprocess.run([sys.executable, "-c", TIMER, str(run_dir), str(out), json.dumps(kwargs)], env=env,
                         capture_output=True, text=True, check=False)
    lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
    if not lines:
        return {"error": (res.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1])


def replicated(run_dir: Path, n_sessions: int, into: Path) -> Path:
    """The run's session table repeated to ``n_sessions`` rows (new session ids; turns only for the originals):
    what the overview and page selection face on a large corpus, without scoring one."""
    into.mkdir(parents=True, exist_ok=True)
    s = pd.read_parquet(run_dir / "sessions.parquet")
    big = pd.concat([s] * -(-n_sessions // len(s)), ignore_index=True).head(n_sessions)
    big["session_id"] = [f"r{i}-{x}" if i >= len(s) else x for i, x in enumerate(big["session_id"])]
    big.to_parquet(into / "sessions.parquet")
    for f in ("turns.parquet", "courses.parquet", "run.json"):
        shutil.copy(run_dir / f, into / f)
    return into


def load_seconds(browser: str, page: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=2000",
                        "--dump-dom", page.resolve().as_uri()], capture_output=True, check=True, timeout=300)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=150)
    ap.add_argument("--turns", type=int, default=40, help="turns per session")
    ap.add_argument("--long-turns", type=int, default=3000, help="turns of the one long session (0: skip)")
    ap.add_argument("--lens", action="append", help="lenses to score with (default: the default lenses)")
    ap.add_argument("--overview-sessions", type=int, default=100_000,
                    help="session rows of the large-corpus overview row (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel row")
    ap.add_argument("--baseline-ref", default=BASELINE_REF, help="git commit whose report is the baseline")
    ap.add_argument("--cache", type=Path, default=None, help="benchmark cache (default $ALLIANCE_CACHE/validation)")
    ap.add_argument("--load-times", action="store_true", help="also time headless Chromium opening the overview")
    args = ap.parse_args()
    from alliance.encoders import default_cache_dir

    cache = args.cache or default_cache_dir() / "validation"
    run_dir = scored(cache, args.sessions, args.turns, args.lens)
    tmp = Path(tempfile.mkdtemp(prefix="alliance-report-load-"))
    old = baseline_src(args.baseline_ref, tmp / "baseline")
    new = ROOT / "src"
    n = len(pd.read_parquet(run_dir / "sessions.parquet"))
    print(f"# report_load  {n} sessions x {args.turns} turns, lenses {','.join(args.lens or ['default'])}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; baseline {args.baseline_ref}; "
          f"date {time.strftime('%Y-%m-%d')}")
    rows = [("baseline", "baseline (serial, Altair-validated charts)", old, {}),
            ("serial", "this tree, 1 process", new, {"workers": 1, "pages": "all"}),
            ("parallel", f"this tree, {args.workers} processes", new, {"workers": args.workers, "pages": "all"})]
    base = None
    for key, label, src, kwargs in rows:
        res = timed(src, run_dir, tmp / key, **kwargs)
        if "error" in res:
            print(f"{label}: failed: {res['error']}")
            continue
        rate = n / res["seconds"]
        base = base or rate
        print(f"{label}: {res['seconds']:.1f} s, {rate:.1f} session pages/s ({rate / base:.2f}x the baseline)")
    if args.long_turns:
        long_dir = scored(cache, 1, args.long_turns, args.lens)
        for key, label, src, kwargs in rows[:2]:
            res = timed(src, long_dir, tmp / f"long-{key}", **kwargs)
            print(f"one {args.long_turns}-turn session, {label}: "
                  + (f"failed: {res['error']}" if "error" in res else f"written in {res['seconds']:.1f} s"))
    if args.overview_sessions:
        big = replicated(run_dir, args.overview_sessions, tmp / "big-run")
        for key, label, src, kwargs in rows[:2]:
            res = timed(src, big, tmp / f"big-{key}", **{k: v for k, v in kwargs.items() if k != "pages"})
            size = (tmp / f"big-{key}" / "report.html").stat().st_size / 1e6 if "error" not in res else 0
            print(f"{args.overview_sessions} sessions (pages for the {n} with turns; default pages), {label}: "
                  + (f"failed: {res['error']}" if "error" in res else f"written in {res['seconds']:.1f} s, "
                                                                      f"overview {size:.1f} MB"))
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if args.load_times and browser:
        o = load_seconds(browser, tmp / "serial" / "report.html")
        b = load_seconds(browser, tmp / "baseline" / "report.html")
        print(f"headless Chromium load of the overview, median of 3: baseline {b:.2f}s, this tree {o:.2f}s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
