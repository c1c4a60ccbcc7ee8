"""Validate early warning: the client's rating and dropout predicted from the first 20-80% of a KokoroChat session.

Evidence: KokoroChat client reviews (score 0-100, unwilling_to_continue), 5-fold GroupKFold by client; each fold's
model is trained on prefixes of the training clients' sessions only, and a bag-of-words ridge is trained on the same
prefixes in the same folds. No later turn is ever seen; closing turns never are. Prints every figure it reports.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_early.py
    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_early.py --train src/alliance/data/calibration/early_v1.json.gz
    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_early.py --clients 40    # a quick look on a subsample
    ALLIANCE_DATA=/path/to/held-out PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_early.py --holdout

``--holdout`` fits nothing: it scores the shipped early model on the folder's sessions of clients it never saw, with
a bag-of-words ridge trained on the training data's same prefixes beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_trajectory import SEED, auc, boot_auc, data_root, spearman

from alliance.calibration import bag_of_words_baseline, transcript_text
from alliance.early_warning import (
    DEFAULT_SHARE,
    FLAG_THRESHOLD,
    POOR_QUANTILE,
    SHARES,
    early_scores,
    fit_early,
    kokorochat_early_tables,
    poor_outcome,
    prefix_turns,
    save_early,
)

FOLDS = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=0, help="use only this many clients (drawn with the seed): a "
                                                            "quick look, not a figure to report")
    ap.add_argument("--train", type=Path, help="also fit on every rated session and save the model here")
    ap.add_argument("--holdout", action="store_true",
                    help="fit nothing: score the shipped early model (or --model) on the data folder's sessions it was "
                         "not trained on, beside a bag-of-words ridge trained on its training data's same prefixes")
    ap.add_argument("--model", type=Path, default=None, help="with --holdout: a saved early model (.json.gz)")
    ap.add_argument("--lenses", default="", help="comma-separated lenses run on each prefix (the turns so far "
                                                 "only) whose session columns the model also reads, e.g. "
                                                 "markers,trajectory (default: none, words and counts only)")
    args = ap.parse_args()
    if args.holdout:
        holdout(args)
        return
    from sklearn.model_selection import GroupKFold

    from alliance.io import read

    command = "PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_early.py " + " ".join(sys.argv[1:])
    root = data_root() / "kokorochat_en" / "English"
    if not root.exists():
        sys.exit(f"KokoroChat: no {root}; nothing to validate")
    loaded = read([root], format="kokorochat", on_error="skip")
    turns, sessions = loaded.corpus.turns, loaded.corpus.sessions
    Y, dropout, groups = kokorochat_early_tables(turns, sessions)
    if args.clients:
        rng = np.random.default_rng(SEED)
        pick = set(rng.choice(sorted(set(groups)), size=min(args.clients, len(set(groups))), replace=False))
        keep = np.array([g in pick for g in groups])
        Y, dropout, groups = Y[keep], dropout[keep], groups[keep]
    turns = turns[turns.set_index(["course_id", "session_id"]).index.isin(Y.index)]
    shares = (*SHARES[:2], DEFAULT_SHARE, *SHARES[2:]) if DEFAULT_SHARE not in SHARES else SHARES
    print(f"# validate_early  date {time.strftime('%Y-%m-%d')}  seed {SEED}  folds {FOLDS} grouped by client_id  "
          f"{len(Y)} rated sessions, {len(set(groups))} clients, {int(dropout.sum())} unwilling to continue"
          + (f"  SUBSAMPLE of {args.clients} clients" if args.clients else ""))
    print(f"# trained on prefixes at shares {list(SHARES)}; scored at {list(shares)}; poor outcome = unwilling to "
          f"continue or score at or below the training folds' {POOR_QUANTILE:.0%} quantile; flag at risk >= "
          f"{FLAG_THRESHOLD}")
    lenses = tuple(x for x in args.lenses.split(",") if x)
    feats = prefix_tables(turns, root, shares, lenses, cache=not args.clients) if lenses else None
    if lenses:
        print(f"# lenses run on each prefix: {','.join(lenses)}")
    pred = {s: pd.DataFrame(index=Y.index, columns=["early_overall", "early_risk", "early_warning", "bow"],
                            dtype=float) for s in shares}
    poor = np.zeros(len(Y), dtype=bool)
    texts = {s: transcript_text(prefix_turns(turns, s)).reindex(Y.index) for s in shares}
    t0 = time.time()
    for k, (tr, te) in enumerate(GroupKFold(FOLDS).split(Y, groups=groups)):
        tr_keys, te_keys = Y.index[tr], Y.index[te]
        tr_turns = turns[turns.set_index(["course_id", "session_id"]).index.isin(tr_keys)]
        te_turns = turns[turns.set_index(["course_id", "session_id"]).index.isin(te_keys)]
        model = fit_early(tr_turns, Y.iloc[tr], dropout[tr], groups[tr], random_state=SEED, lenses=lenses,
                          features=feats)
        poor[te] = poor_outcome(Y.iloc[te], dropout[te], model.early_["poor_score_at_or_below"])
        for s in shares:
            f = None if feats is None else share_rows(feats, s, te_keys)
            p = early_scores(prefix_turns(te_turns, s), model, features=f).reindex(te_keys)
            pred[s].loc[te_keys, ["early_overall", "early_risk", "early_warning"]] = p[
                ["early_overall", "early_risk", "early_warning"]].astype(float).to_numpy()
            bow = bag_of_words_baseline().fit(texts[s].iloc[tr], Y["overall"].iloc[tr])
            pred[s].loc[te_keys, "bow"] = bow.predict(texts[s].iloc[te])
        print(f"# fold {k + 1}/{FOLDS} done ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    score = Y["overall"].to_numpy()
    print("\n## KokoroChat, out-of-fold by client: predicted from the first part of each session only")
    print("share seen | rho(score) early / bag-of-words | AUC(unwilling) lower early_overall / early_risk / "
          "bag-of-words | AUC(poor outcome) early_risk")
    for s in shares:
        p = pred[s]
        print(f"{s:.0%} | {spearman(p['early_overall'], score):.3f} / {spearman(p['bow'], score):.3f} | "
              f"{auc(dropout, -p['early_overall']):.3f} / {auc(dropout, p['early_risk']):.3f} / "
              f"{auc(dropout, -p['bow']):.3f} | {auc(poor, p['early_risk']):.3f}")
    p = pred[DEFAULT_SHARE]
    lo, hi = boot_auc(dropout, -p["early_overall"])
    print(f"\nfirst {DEFAULT_SHARE:.0%}: AUC(unwilling, lower early_overall) 95% stratified bootstrap [{lo:.3f}, "
          f"{hi:.3f}] ({int(dropout.sum())} positives)")
    flag = p["early_warning"].to_numpy(dtype=float) > 0.5
    n_flag = int(flag.sum())
    prec = poor[flag].mean() if n_flag else float("nan")
    print(f"early_warning at the default threshold (risk >= {FLAG_THRESHOLD}), first {DEFAULT_SHARE:.0%}: "
          f"{n_flag} of {len(flag)} sessions flagged ({n_flag / len(flag):.1%}); precision for a poor outcome "
          f"{prec:.3f} (base rate {poor.mean():.3f}), recall {flag[poor].mean():.3f}; precision for unwilling to "
          f"continue {dropout[flag].mean() if n_flag else float('nan'):.3f} (base rate {dropout.mean():.3f}), "
          f"recall {flag[dropout].mean() if dropout.any() else float('nan'):.3f}")
    if args.train:
        model = fit_early(turns, Y, dropout, groups, random_state=SEED, lenses=lenses, features=feats)
        figures = {"folds": f"{FOLDS}-fold GroupKFold by client_id",
                   "rho_score_first_half": round(spearman(p["early_overall"], score), 3),
                   "rho_score_first_half_bag_of_words": round(spearman(p["bow"], score), 3),
                   "auc_unwilling_first_half": round(auc(dropout, -p["early_overall"]), 3),
                   "auc_unwilling_first_half_bag_of_words": round(auc(dropout, -p["bow"]), 3),
                   "flag_precision_poor_outcome": round(float(prec), 3), "flag_share": round(n_flag / len(flag), 3),
                   "poor_outcome_base_rate": round(float(poor.mean()), 3)}
        card = {"trained_on": "KokoroChat English (shared dev split), client reviews, session prefixes",
                "sessions": len(Y), "clients": len(set(groups)), "seed": SEED, "lenses": list(lenses),
                "command": command, "cv_figures": figures, "date": time.strftime("%Y-%m-%d"),
                "model_card": "alliance/data/calibration/MODEL_CARD.md"}
        save_early(model, args.train, card)
        print(f"# saved {args.train} ({args.train.stat().st_size / 1e6:.1f} MB)")
        # the report's validity notes: early-warning accuracy beside the calibrated model's in- and cross-corpus lines
        out = Path(__file__).resolve().parents[1] / "src" / "alliance" / "data" / "validation" / "calibration_early.json"
        lines = [f"From the first {DEFAULT_SHARE:.0%} of a KokoroChat session (clients never seen, 5-fold by client): "
                 f"rho with the client's score {figures['rho_score_first_half']:.2f} vs bag-of-words ridge on the same "
                 f"turns {figures['rho_score_first_half_bag_of_words']:.2f}; AUC(unwilling to continue) "
                 f"{figures['auc_unwilling_first_half']:.2f} vs {figures['auc_unwilling_first_half_bag_of_words']:.2f}.",
                 f"early_warning flags {figures['flag_share']:.0%} of sessions; {figures['flag_precision_poor_outcome']:.0%}"
                 f" of those end poorly (unwilling to continue or a score in the lowest tenth; base rate "
                 f"{figures['poor_outcome_base_rate']:.0%}).",
                 "Full-session curve (20-80%) and its bag-of-words baseline: docs/calibration.md, Early warning."]
        out.write_text(json.dumps({"title": "Early warning (early_* columns): before the session's end",
                                   "command": command, "date": time.strftime("%Y-%m-%d"), "lines": lines}, indent=1))
        print(f"# wrote {out}")


def prefix_tables(turns: pd.DataFrame, root: Path, shares: tuple[float, ...], lenses: tuple[str, ...],
                  cache: bool = True) -> pd.DataFrame:
    """Stacked prefix features (:func:`stacked_prefixes`) of every session with ``lenses`` run on each prefix,
    computed once and cached under $ALLIANCE_CACHE/validation, keyed by the data's content, lenses and shares
    (``cache=False`` for a subsample: computed, never stored)."""
    from validate_trajectory import cache_key, default_cache

    from alliance.early_warning import stacked_prefixes

    out = default_cache() / cache_key("kokorochat-prefixes", [root], "kokorochat", list(lenses),
                                      {"prefix_shares": {"shares": list(shares)}})
    if cache and (out / "features.parquet").exists():
        print(f"# prefix features from the cache {out}", file=sys.stderr)
        f = pd.read_parquet(out / "features.parquet")
        return f.set_index(["course_id", "session_id", "share"])
    t0 = time.time()
    f = stacked_prefixes(turns, shares, lenses)
    print(f"# scored {len(f)} prefixes with {','.join(lenses)} in {time.time() - t0:.0f}s", file=sys.stderr)
    if cache:
        out.mkdir(parents=True, exist_ok=True)
        f.reset_index().to_parquet(out / "features.parquet")
    return f


def share_rows(feats: pd.DataFrame, share: float, keys: pd.Index) -> pd.DataFrame:
    """The rows of one share, indexed by session key, in the order of ``keys``."""
    f = feats.xs(share, level="share")
    return f.reindex(keys)


def holdout(args: argparse.Namespace) -> None:
    """The early model as shipped, on sessions it never saw: the same curve, flag precision and baseline."""
    from validate_trajectory import training_folder

    from alliance.early_warning import load_early
    from alliance.io import read

    model = load_early(args.model)
    root = data_root() / "kokorochat_en" / "English"
    print(f"# validate_early --holdout  date {time.strftime('%Y-%m-%d')}  model {args.model or 'shipped'}  data {root}")
    if not root.exists():
        print(f"KokoroChat: no {root}; skipped")
        return
    corpus = read([root], format="kokorochat", on_error="skip").corpus
    Y, dropout, groups = kokorochat_early_tables(corpus.turns, corpus.sessions)
    # left out: every session of a client whose sessions trained the model (figures are for new clients)
    seen = model.trained_on(Y.index) | model.trained_on_groups(groups)
    print(f"KokoroChat: {len(Y)} rated sessions; {int(seen.sum())} are training sessions or of training clients and "
          "are left out")
    Y, dropout = Y[~seen], dropout[~seen]
    if len(Y) < 10:
        print(f"{len(Y)} held-out sessions: too few for figures")
        return
    turns = corpus.turns[corpus.turns.set_index(["course_id", "session_id"]).index.isin(Y.index)]
    train_dir = training_folder()
    base_turns = base_y = None
    if train_dir.exists():
        tc = read([train_dir], format="kokorochat", on_error="skip").corpus
        ty = kokorochat_early_tables(tc.turns, tc.sessions)[0]
        ty = ty[model.trained_on(ty.index)] if model.trained_on(ty.index).any() else ty
        base_turns, base_y = tc.turns, ty["overall"]
    else:
        print(f"bag-of-words ridge: training data not found at {train_dir}; skipped")
    below = float(model.early_.get("poor_score_at_or_below", np.nan))
    poor = poor_outcome(Y, dropout, below)
    score = Y["overall"].to_numpy()
    print(f"{len(Y)} held-out sessions, {int(dropout.sum())} unwilling to continue, {int(poor.sum())} poor outcomes")
    print("share seen | rho(score) early / bag-of-words (trained on the training data) | AUC(unwilling) lower "
          "early_overall / bag-of-words | AUC(poor outcome) early_risk | flagged, precision (poor outcome)")
    for s in (*SHARES[:2], DEFAULT_SHARE, *SHARES[2:]):
        p = early_scores(prefix_turns(turns, s), model).reindex(Y.index)
        b = pd.Series(np.nan, index=Y.index)
        if base_turns is not None:
            bow = bag_of_words_baseline().fit(transcript_text(prefix_turns(base_turns, s)).reindex(base_y.index),
                                              base_y)
            b = pd.Series(bow.predict(transcript_text(prefix_turns(turns, s)).reindex(Y.index)), index=Y.index)
        flag = p["early_warning"].astype(bool).to_numpy()
        print(f"{s:.0%} | {spearman(p['early_overall'], score):.3f} / {spearman(b, score):.3f} | "
              f"{auc(dropout, -p['early_overall']):.3f} / {auc(dropout, -b):.3f} | {auc(poor, p['early_risk']):.3f} | "
              f"{flag.mean():.1%}, {poor[flag].mean() if flag.any() else float('nan'):.3f}")


if __name__ == "__main__":
    main()
