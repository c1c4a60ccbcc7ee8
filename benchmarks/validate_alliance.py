"""Validate the zero-shot alliance lens against labels nobody on this project wrote.

AnnoMI: session-level AUC of high- vs low-quality MI for each subscale and side. KokoroChat: Spearman correlation
of session subscale means with the client's own review (overall score and the items closest to bond, task, goal).
Both the calibrated lens and the naive COMPASS-style variant (raw cosines, no calibration) are reported, as the
baseline later work must beat. Nothing here is fitted, so every session is a test session.

    python benchmarks/validate_alliance.py [--data DIR] [--kokoro-limit N] [--write-summary]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from alliance.encoders import load_encoder
from alliance.io import read
from alliance.lenses.alliance_probes import SUBSCALES, AllianceLens
from alliance.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
KOKORO_ITEMS = {"score": "score", "bond": "felt_heard_and_understood", "task": "thought_through_concerns_together",
                "goal": "helped_identify_goals"}


def data_dir(arg: str | None) -> Path:
    p = Path(arg or os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")
    if not p.is_dir():
        sys.exit(f"no data folder at {p}; pass --data or set ALLIANCE_DATA")
    return p


def session_scores(corpus, lens, encoder) -> pd.DataFrame:
    res = analyze(corpus, [lens], encoder=encoder)
    return res.sessions.set_index(["course_id", "session_id"])


def annomi(data: Path, encoder) -> list[dict]:
    corpus = read(data / "annomi" / "AnnoMI-simple.csv", format="annomi").corpus
    label = (corpus.session_meta("mi_quality") == "high").astype(int)
    rows = []
    for variant, lens in (("calibrated", AllianceLens()), ("naive", AllianceLens(calibrate=False))):
        s = session_scores(corpus, lens, encoder)
        y = label.reindex(s.index)
        for side in ("client", "counsellor"):
            for sub in SUBSCALES:
                x = s[f"alliance_{side}_{sub}_mean"]
                ok = x.notna()
                rows.append({"corpus": "AnnoMI", "variant": variant, "side": side, "subscale": sub,
                             "auc_high_vs_low": roc_auc_score(y[ok], x[ok]), "n_high": int(y[ok].sum()),
                             "n_low": int((1 - y[ok]).sum())})
    return rows


def kokorochat(data: Path, encoder, limit: int | None) -> list[dict]:
    folder = data / "kokorochat_en" / "English"
    files = sorted(folder.glob("*.json"))
    if limit:
        files = files[:limit]
    corpus = read(files, format="kokorochat", on_error="skip").corpus  # 20 empty translated turns
    rows = []
    for variant, lens in (("calibrated", AllianceLens()), ("naive", AllianceLens(calibrate=False))):
        s = session_scores(corpus, lens, encoder)
        for target, item in KOKORO_ITEMS.items():
            y = pd.to_numeric(corpus.session_meta(item), errors="coerce").reindex(s.index)
            for side in ("client", "counsellor"):
                for sub in SUBSCALES:
                    x = s[f"alliance_{side}_{sub}_mean"]
                    ok = x.notna() & y.notna()
                    rho = spearmanr(x[ok], y[ok]).statistic
                    rows.append({"corpus": "KokoroChat", "variant": variant, "side": side, "subscale": sub,
                                 "target": item, "target_axis": target, "spearman_rho": rho, "n": int(ok.sum())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--kokoro-limit", type=int, default=None, help="first N KokoroChat sessions only (quick check)")
    ap.add_argument("--write-summary", action="store_true",
                    help="write the figures the HTML report shows to src/alliance/data/validation/alliance.json")
    args = ap.parse_args()
    data = data_dir(args.data)
    encoder = load_encoder()
    started = time.time()
    a = pd.DataFrame(annomi(data, encoder))
    k = pd.DataFrame(kokorochat(data, encoder, args.kokoro_limit))
    pd.set_option("display.width", 160)
    print("## AnnoMI: AUC of high vs low MI quality from session mean probe similarity (>0.5: higher in high-quality)")
    print(a.pivot_table(index=["side", "subscale"], columns="variant", values="auc_high_vs_low").round(3).to_string())
    print(f"sessions: {a['n_high'].iloc[0]} high, {a['n_low'].iloc[0]} low\n")
    print("## KokoroChat: Spearman rho of session mean probe similarity with the client's review")
    print(k.pivot_table(index=["variant", "side", "subscale"], columns="target", values="spearman_rho")
          .round(3).to_string())
    print(f"sessions: {k['n'].max()}")
    print(f"\nencoder {encoder.model_id}; {time.time() - started:.0f} s")
    if args.write_summary:
        cal_a = a[a.variant == "calibrated"]
        cal_k = k[(k.variant == "calibrated") & (k.target == "score")]
        best_a = cal_a.loc[(cal_a.auc_high_vs_low - 0.5).abs().idxmax()]
        best_k = cal_k.loc[cal_k.spearman_rho.abs().idxmax()]
        lines = [
            f"AnnoMI high vs low MI quality: session-mean AUC ranges {cal_a.auc_high_vs_low.min():.2f}-"
            f"{cal_a.auc_high_vs_low.max():.2f} across sides and subscales (strongest: {best_a.side} "
            f"{best_a.subscale}, {best_a.auc_high_vs_low:.2f}).",
            f"KokoroChat client score: Spearman rho ranges {cal_k.spearman_rho.min():+.2f} to "
            f"{cal_k.spearman_rho.max():+.2f} (strongest: {best_k.side} {best_k.subscale}, "
            f"{best_k.spearman_rho:+.2f}; n = {int(best_k.n)} sessions).",
        ]
        out = ROOT / "src" / "alliance" / "data" / "validation" / "alliance.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"title": "Alliance probe similarity vs client and expert labels",
                                   "command": "python benchmarks/validate_alliance.py --write-summary",
                                   "date": datetime.now(UTC).date().isoformat(), "lines": lines}, indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
