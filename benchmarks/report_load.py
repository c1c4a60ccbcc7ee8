"""How fast the HTML report opens for a corpus of N sessions: file sizes and headless-Chromium load time.

Evidence: the site layout (overview + one page per session) against the single-page layout (every session in one
file, charts rendered lazily), both written from the same scored KokoroChat sessions in the same run; times are
wall-clock for `chromium --headless --dump-dom` to load and run the page's scripts, median of 3.

    PYTHONPATH=src python benchmarks/report_load.py --sessions 1000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd


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
    ap.add_argument("--run", type=Path, required=True, help="a scored run folder (turns/sessions parquet)")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "alliance-report-load",
                    help="folder the two layouts are written to (emptied first)")
    args = ap.parse_args()
    from alliance.report.html import render_html
    from alliance.report.site import write_site

    turns = pd.read_parquet(args.run / "turns.parquet")
    sessions = pd.read_parquet(args.run / "sessions.parquet").head(args.sessions)
    keep = pd.MultiIndex.from_frame(turns[["course_id", "session_id"]]).isin(
        pd.MultiIndex.from_frame(sessions[["course_id", "session_id"]]))
    turns = turns[keep]
    run = {"lenses": [{"name": n} for n in ("markers", "trajectory")], "counts": {"sessions": len(sessions)}}
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    t0 = time.perf_counter()
    single = args.out / "single.html"
    single.write_text(render_html(turns, sessions, run), encoding="utf-8")
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    overview = write_site(turns, sessions, run, args.out / "site")
    t_site = time.perf_counter() - t0
    pages = sorted((args.out / "site" / "report_files" / "sessions").glob("*.html"))
    sizes = [p.stat().st_size for p in pages]
    print(f"# report_load  {len(sessions)} sessions, {len(turns)} turns  date {time.strftime('%Y-%m-%d')}")
    print(f"single page (baseline): {single.stat().st_size / 1e6:.1f} MB, written in {t_single:.1f}s")
    print(f"site: overview {overview.stat().st_size / 1e6:.2f} MB + vega.js "
          f"{(args.out / 'site' / 'report_files' / 'vega.js').stat().st_size / 1e6:.2f} MB; session pages median "
          f"{statistics.median(sizes) / 1e3:.0f} kB (max {max(sizes) / 1e3:.0f} kB); written in {t_site:.1f}s")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no headless Chromium found: load times not measured")
        return
    b = load_seconds(browser, single)
    o = load_seconds(browser, overview)
    s = load_seconds(browser, pages[len(pages) // 2])
    print(f"headless Chromium load, median of 3: single page {b:.2f}s; overview {o:.2f}s ({o / b:.2f}x the "
          f"baseline); one session page {s:.2f}s ({s / b:.2f}x)")


if __name__ == "__main__":
    main()
