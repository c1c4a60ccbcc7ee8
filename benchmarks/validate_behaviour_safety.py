"""Validation figures for the behaviour lens, printed for docs/validation.md (the safety half moved to
benchmarks/validate_safety.py, which validates the learned safety model on real labels).

AnnoMI (grouped cross-validation by transcript): macro-F1 of counsellor MI codes, AUC of high vs low MI quality from
the behaviour profile, premature problem-solving in high vs low sessions.
Speed: lens time per turn against the encoder's own throughput in the same run.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_behaviour_safety.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

SEED = 0


def data_root(arg: str | None) -> Path:
    p = Path(arg or os.environ.get("ALLIANCE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not p.is_dir():
        sys.exit(f"research data folder not found: {p} (pass --data or set ALLIANCE_DATA)")
    return p


def annomi_figures(root: Path, encoder) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from alliance.lenses.behaviour import BehaviourLens, behaviour_session_figures
    from alliance.training.behaviour import ANNOMI_CODES, cross_validate_head, features, load_annomi

    data = load_annomi(root / "annomi" / "AnnoMI-full.csv")
    t = data.corpus.turns
    X = features(data, encoder)
    _, decision = cross_validate_head(data, X, seed=SEED)
    print("## AnnoMI: counsellor MI codes (grouped 5-fold CV by transcript; thresholds tuned inside each training "
          "fold)")
    f1s = {}
    for code, (side, _, _) in ANNOMI_CODES.items():
        rows = (t["speaker"] == side).to_numpy()
        f1s[code] = f1_score(data.labels[code].to_numpy()[rows], decision[code].fillna(False).to_numpy(dtype=bool)[rows])
    coun = [c for c, (s, _, _) in ANNOMI_CODES.items() if s == "counsellor"]
    print(f"macro-F1 counsellor codes ({len(coun)}): {np.mean([f1s[c] for c in coun]):.3f}")
    print("per code F1: " + ", ".join(f"{c} {f1s[c]:.2f}" for c in ANNOMI_CODES))
    prev = ((data.labels[coun].to_numpy()[(t['speaker'] == 'counsellor').to_numpy()]).mean(axis=0))
    print("(chance F1 = 2p/(1+p) per code if always predicting the code: macro "
          f"{np.mean(2 * prev / (1 + prev)):.3f})")

    # the full behaviour profile per session, with out-of-fold MI codes and the (untrained) prototype codes
    lens = BehaviourLens()
    emb = encoder.encode(t["text"].astype(str).tolist())
    speaker = t["speaker"].to_numpy()
    present = {c: decision[c].fillna(False).to_numpy(dtype=bool) for c in decision.columns}
    codes = lens.assemble(t["text"].astype(str).tolist(), speaker, emb, {}, present, encoder, t.index)
    sess = behaviour_session_figures(t, codes, lens.code_ids(), lens.codebook)
    quality = data.quality.reindex(sess.index)
    y = (quality == "high").to_numpy().astype(int)
    feats = [c for c in sess.columns if c.startswith("behaviour_rate_")
             and lens.codebook.get(c.removeprefix("behaviour_rate_")).side == "counsellor"]
    feats += ["behaviour_reflection_question_ratio", "behaviour_complex_reflection_share",
              "behaviour_premature_problem_solving_rate"]
    Xs = sess[feats].astype(float).replace([np.inf, -np.inf], np.nan).to_numpy()
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000))
    aucs = []
    for r in range(10):
        cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=SEED + r)
        oof = np.zeros(len(y))
        for tr, te in cv.split(Xs, y):
            model.fit(Xs[tr], y[tr])
            oof[te] = model.predict_proba(Xs[te])[:, 1]
        aucs.append(roc_auc_score(y, oof))
    print(f"\n## AnnoMI: high ({y.sum()}) vs low ({len(y) - y.sum()}) MI quality sessions from the behaviour profile")
    print(f"AUC, logistic on {len(feats)} counsellor rates + 3 MI figures, stratified 5-fold x 10 seeds: "
          f"{np.mean(aucs):.3f} (sd {np.std(aucs):.3f})")
    for f in ("behaviour_reflection_question_ratio", "behaviour_complex_reflection_share",
              "behaviour_premature_problem_solving_rate", "behaviour_rate_advice", "behaviour_rate_problem_solving"):
        v = sess[f].astype(float).replace([np.inf, -np.inf], np.nan)
        ok = v.notna().to_numpy()
        print(f"single-figure AUC (no fitting) {f.removeprefix('behaviour_')}: "
              f"{roc_auc_score(y[ok], v.to_numpy()[ok]):.3f} (n={ok.sum()})")
    print("\n## AnnoMI: premature problem-solving (advice/problem-solving right after a client negative emotion)")
    for q in ("high", "low"):
        m = (quality == q).to_numpy()
        s = sess[m]
        pooled = (s["behaviour_premature_problem_solving_rate"] * s["behaviour_after_negative_emotion_n"]).sum() / max(
            s["behaviour_after_negative_emotion_n"].sum(), 1)
        print(f"{q:4s} sessions: mean session rate {s['behaviour_premature_problem_solving_rate'].mean():.3f}, "
              f"pooled {pooled:.3f} over {int(s['behaviour_after_negative_emotion_n'].sum())} counsellor turns "
              f"after a negative emotion ({m.sum()} sessions)")


def speed_figures(root: Path, encoder) -> None:
    from alliance.encoders import load_encoder
    from alliance.lenses.base import LensContext
    from alliance.pipeline import build_lenses
    from alliance.training.behaviour import load_annomi

    data = load_annomi(root / "annomi" / "AnnoMI-full.csv")
    keys = data.corpus.session_keys()[:30]
    corpus = data.corpus.subset_sessions(keys)
    raw = load_encoder(use_cache=False)
    sample = corpus.turns["text"].astype(str).tolist()[:512]
    raw.encode(sample[:16])  # load weights outside the timing
    t0 = time.perf_counter()
    raw.encode(sample)
    enc_per_turn = (time.perf_counter() - t0) / len(sample)
    emb = encoder.encode(corpus.turns["text"].astype(str).tolist())
    lenses = build_lenses(["alliance", "behaviour"])
    ctx = LensContext(corpus, encoder)
    ctx._embeddings = emb  # time the lenses, not the encoding
    for lens in lenses:  # warm: prototype and exemplar vectors, once per encoder
        lens.score(corpus.subset_sessions(keys[:1]), LensContext(corpus.subset_sessions(keys[:1]), encoder))
    times = {}
    for lens in lenses:
        t0 = time.perf_counter()
        cols = lens.score(corpus, ctx)
        cols.index = corpus.turns.index
        ctx.add(cols)
        lens.summarize(corpus, cols, ctx)
        times[lens.name] = (time.perf_counter() - t0) / len(corpus)
    print(f"\n## Speed ({len(corpus)} AnnoMI turns; encoder uncached on {len(sample)} turns in the same run)")
    print(f"encoder: {enc_per_turn * 1e3:.2f} ms/turn")
    for name in ("behaviour",):
        print(f"{name} lens (score + summarize, embeddings given): {times[name] * 1e3:.3f} ms/turn = "
              f"{times[name] / enc_per_turn:.3f} x the encoder's time per turn")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--only", choices=["annomi", "speed"], default=None)
    args = ap.parse_args()
    root = data_root(args.data)
    from alliance.encoders import load_encoder

    encoder = load_encoder()
    print(f"# validate_behaviour_safety (seed {SEED}; encoder {encoder.model_id})")
    if args.only in (None, "annomi"):
        annomi_figures(root, encoder)
    if args.only in (None, "speed"):
        speed_figures(root, encoder)


if __name__ == "__main__":
    main()
