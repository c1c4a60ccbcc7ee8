"""The empathy-alliance gap on ESConv, and the client-counsellor perception gap on KokoroChat, against client ratings.

Evidence: ESConv seekers' own post-chat survey (empathy 1-5, relevance 1-5, the drop in emotion intensity from
start to end) and the ESConv authors' rejection of FailedESConv dialogues. Every lens is run on every dialogue and
``alliance.gap.incremental_gap`` (the analysis behind ``alliance gap --outcome``) adds the feature families one at a
time, cross-validated (5 folds, shuffled with the seed; ESConv has no seeker ids, each dialogue is its own seeker).
No text channels: this is about the measures, not the words. On KokoroChat: each side's bond-probe language
and their gap against the client's score and bond items, by the gap's trend, and when the client disclosed risk.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_gap.py
"""

from __future__ import annotations

import time
from pathlib import Path

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
    if es_paths:
        esconv_gap(es_paths, root, args.cache)
    else:
        print(f"ESConv: no {root / 'esconv' / 'hf_format'}/*.json; skipped")
    kk = root / "kokorochat_en" / "English"
    if kk.exists():
        perception_gap(kk, args.cache)
    else:
        print(f"KokoroChat: no {kk}; skipped")


def esconv_gap(es_paths: list[Path], root: Path, cache: Path) -> None:
    """The incremental analysis against ESConv seekers' ratings and FailedESConv."""
    et, es = analysed("esconv", es_paths, "esconv", LENSES, cache, OPTIONS)
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
        ft, fs = analysed("failedesconv", [failed], "esconv", LENSES, cache, OPTIONS)
        Xf = session_features(ft, fs).reindex(columns=X.columns)
        both = pd.concat([X, Xf])
        flag = np.r_[np.zeros(len(X)), np.ones(len(Xf))]
        print(f"\n## Incremental out-of-fold AUC: FailedESConv ({len(Xf)}) vs ESConv ({len(X)}), ridge on the flag")
        for r in incremental_gap(both, flag, seed=SEED).itertuples():
            print(f"{r.step}: AUC(failed) = {r.value:.3f}")



def client_boot(fn, n: int, groups: np.ndarray, draws: int = 300) -> tuple[float, float]:
    """95% interval of ``fn(rows)`` from resampling clients (all of a client's sessions together)."""
    rng = np.random.default_rng(SEED)
    by_client = list(pd.Series(np.arange(n)).groupby(groups).indices.values())
    vals = [fn(np.concatenate([by_client[k] for k in rng.integers(0, len(by_client), len(by_client))]))
            for _ in range(draws)]
    return float(np.nanpercentile(vals, 2.5)), float(np.nanpercentile(vals, 97.5))


def perception_gap(folder: Path, cache: Path) -> None:
    """Does each side see the bond the same way? Each side's bond-probe language and their gap (client minus
    counsellor) against the client's own rating; the gap's trend; the gap when the client disclosed risk."""
    from alliance.calibration import KOKOROCHAT_ITEM_MAP

    _, ks = analysed("kokorochat", [folder], "kokorochat", LENSES, cache, OPTIONS)
    score = pd.to_numeric(session_meta(ks, "score"), errors="coerce").to_numpy()
    bond = np.nanmean(np.column_stack([pd.to_numeric(session_meta(ks, k), errors="coerce").to_numpy()
                                       for k in KOKOROCHAT_ITEM_MAP["bond"]]), axis=1)
    groups = session_meta(ks, "client_id").astype(str).to_numpy()
    n = len(ks)
    print(f"\n## KokoroChat perception gap ({n} sessions, {len(set(groups))} clients; intervals: 95%, resampling "
          "clients)")
    print("Spearman rho with the client's score and with their bond items (mean of the five):")
    for col in ("alliance_client_bond_mean", "alliance_counsellor_bond_mean", "alliance_gap_bond_mean",
                "alliance_gap_bond_last"):
        v = ks[col].to_numpy(dtype=float)
        lo, hi = client_boot(lambda i, v=v: spearman(v[i], score[i]), n, groups)
        print(f"  {col}: rho(score) = {spearman(v, score):+.3f} [{lo:+.3f}, {hi:+.3f}]   rho(bond items) = "
              f"{spearman(v, bond):+.3f}")
    trend = ks["alliance_gap_bond_trend"].astype(str).to_numpy()
    print("Client's score by the bond gap's trend over the session (first vs last third):")
    for t in ("narrowing", "stable", "widening"):
        m = trend == t
        print(f"  {t}: {int(m.sum())} sessions, mean score {np.nanmean(score[m]):.1f}")
    lo, hi = client_boot(lambda i: np.nanmean(score[i][trend[i] == "widening"])
                         - np.nanmean(score[i][trend[i] != "widening"]), n, groups)
    diff = np.nanmean(score[trend == "widening"]) - np.nanmean(score[trend != "widening"])
    print(f"  widening minus the rest: {diff:+.1f} points [{lo:+.1f}, {hi:+.1f}]")
    risk = ks["safety_n_disclosures"].fillna(0).to_numpy() > 0
    last = ks["alliance_gap_bond_last"].to_numpy(dtype=float)
    print(f"Bond gap in the last third, client disclosed risk ({int(risk.sum())}) vs not ({int((~risk).sum())}):")
    diff = np.nanmean(last[risk]) - np.nanmean(last[~risk])
    lo, hi = client_boot(lambda i: np.nanmean(last[i][risk[i]]) - np.nanmean(last[i][~risk[i]]), n, groups)
    print(f"  {np.nanmean(last[risk]):+.3f} vs {np.nanmean(last[~risk]):+.3f}: difference {diff:+.3f} "
          f"[{lo:+.3f}, {hi:+.3f}] (negative = the counsellor's bond language further above the client's)")


if __name__ == "__main__":
    main()
