"""The empathy-alliance gap on ESConv: how much of what seekers said per-reply empathy explains, and what the others add.

Evidence: ESConv seekers' own post-chat survey (empathy 1-5, relevance 1-5, the drop in emotion intensity from
start to end) and the ESConv authors' rejection of FailedESConv dialogues. Every lens is run on every dialogue and
``alliance.gap.incremental_gap`` (the analysis behind ``alliance gap --outcome``) adds the feature families one at a
time, cross-validated (5 folds, shuffled with the seed; ESConv has no seeker ids, each dialogue is its own seeker).
No text channels: this is about the measures, not the words.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_gap.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from validate_trajectory import (
    FOLDS,
    SEED,
    analysed,
    benchmark_parser,
    data_root,
    session_meta,
    spearman,
)

from alliance.calibration import bag_of_words_baseline, session_features, transcript_text
from alliance.gap import incremental_gap

LENSES = ["alliance", "empathy", "markers", "coordination", "behaviour", "safety", "ruptures", "trajectory"]
OPTIONS = {"empathy": {"rationales": False}}  # identical scores; the rationale text is not a feature


def bag_of_words_oof(text: pd.Series, y: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions of the plain bag-of-words baseline, in the ladder's folds."""
    from sklearn.model_selection import KFold

    ok = np.isfinite(y)
    sub = np.full(ok.sum(), np.nan)
    t, yy = text[ok], y[ok]
    for tr, te in KFold(FOLDS, shuffle=True, random_state=SEED).split(t):
        sub[te] = bag_of_words_baseline().fit(t.iloc[tr], yy[tr]).predict(t.iloc[te])
    pred = np.full(len(y), np.nan)
    pred[ok] = sub
    return pred


def main() -> None:
    args = benchmark_parser(__doc__).parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    root = data_root()
    print(f"# validate_gap  date {time.strftime('%Y-%m-%d')}  lenses {','.join(LENSES)}  seed {SEED}  "
          f"{FOLDS}-fold CV, shuffled  options {OPTIONS}")
    es_paths = [root / "esconv" / "hf_format" / f for f in ("train.json", "valid.json", "test.json")]
    es_paths = [p for p in es_paths if p.exists()]
    if not es_paths:
        print(f"ESConv: no {root / 'esconv' / 'hf_format'}/*.json; nothing to do")
        return
    et, es = analysed("esconv", es_paths, "esconv", LENSES, args.cache, OPTIONS)
    X = session_features(et, es).drop(columns=["text_client", "text_counsellor", "text_client_end"],
                                      errors="ignore")
    X = X.select_dtypes("number")
    idx = X.index
    meta = {k: pd.to_numeric(session_meta(es, k).reindex(idx), errors="coerce") for k in
            ("empathy", "relevance", "initial_emotion_intensity", "final_emotion_intensity")}
    targets = {"seeker empathy": meta["empathy"], "seeker relevance": meta["relevance"],
               "intensity drop": meta["initial_emotion_intensity"] - meta["final_emotion_intensity"]}
    print(f"ESConv: {len(X)} dialogues; rated: " + ", ".join(f"{k} {int(v.notna().sum())}"
                                                          for k, v in targets.items())
          + "; top score (5 of 5): " + ", ".join(f"{k} {(meta[k].dropna() == 5).mean():.0%}"
                                                for k in ("empathy", "relevance")))
    print("\n## Incremental out-of-fold rho with each seeker rating (no text)")
    ladders = {k: incremental_gap(X, v, seed=SEED).set_index("step")["value"] for k, v in targets.items()}
    for name in ladders["seeker empathy"].index:
        print(f"{name}: " + "   ".join(f"rho({k}) = {ladders[k][name]:.3f}" for k in targets))
    text = transcript_text(et).reindex(idx)
    print("for reference, bag-of-words ridge on the whole transcript (same folds): " + "   ".join(
        f"rho({k}) = {spearman(bag_of_words_oof(text, v.to_numpy(dtype=float)), v):.3f}" for k, v in targets.items()))
    failed = root / "esconv" / "thu-coai" / "FailedESConv.json"
    if failed.exists():
        ft, fs = analysed("failedesconv", [failed], "esconv", LENSES, args.cache, OPTIONS)
        Xf = session_features(ft, fs).reindex(columns=X.columns)
        both = pd.concat([X, Xf])
        flag = np.r_[np.zeros(len(X)), np.ones(len(Xf))]
        print(f"\n## Incremental out-of-fold AUC: FailedESConv ({len(Xf)}) vs ESConv ({len(X)}), ridge on the flag")
        for r in incremental_gap(both, flag, seed=SEED).itertuples():
            print(f"{r.step}: AUC(failed) = {r.value:.3f}")


if __name__ == "__main__":
    main()
