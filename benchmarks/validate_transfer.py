"""Validate the calibrated alliance trained across corpora: in-corpus (cross-validated) and leave-one-corpus-out.

Evidence: KokoroChat client reviews (score, dropout), ESConv seekers' ratings (empathy, relevance, drop in emotion
intensity) and FailedESConv (rejected dialogues), AnnoMI session quality (high/low MI). Folds by client
(KokoroChat) or dialogue/session (others); every figure has a bag-of-words ridge trained on the same training
sessions beside it, and the KokoroChat-only model (the 1.4.0 design) trained on the same KokoroChat folds.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_transfer.py
    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_transfer.py --train src/alliance/data/calibration/calibration_v1.json.gz

Reads ../shared/data (or $ALLIANCE_DATA); scored corpora are cached as by validate_trajectory.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_trajectory import SEED, analysed, auc, benchmark_parser, boot_auc, data_root, guard_line, spearman

from alliance.calibration import (
    AXES,
    DEFAULT_ENCODER_ID,
    KOKOROCHAT_ITEM_MAP,
    MODEL_VERSION,
    TEXT_CHANNELS,
    CalibratedAlliance,
    bag_of_words_baseline,
    corpus_weights,
    session_features,
    transcript_text,
)
from alliance.calibration_multi import CORPORA, FAMILY, corpus_paths, esconv_outcome, multi_corpus_targets
from alliance.corpus import SESSION_KEY

FOLDS = 5
LENSES = ["markers", "trajectory"]  # the shipped model's lenses (no encoder)


def load(root: Path, cache: Path, lenses: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    out = {}
    for name in CORPORA:
        try:
            fmt, paths = corpus_paths(root, name)
        except ValueError as e:
            print(f"# {e}; skipped")
            continue
        out[name] = analysed(name, paths, fmt, lenses, cache, {})
    return out


def labels(parts: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """Each session's own evaluation labels (never ranks): KokoroChat score and dropout, ESConv ratings, failed,
    AnnoMI quality."""
    from validate_trajectory import session_meta

    rows = []
    for name, (_, s) in parts.items():
        idx = pd.MultiIndex.from_frame(s[SESSION_KEY])
        d = pd.DataFrame(index=idx)
        d["corpus"] = name
        if name == "kokorochat":
            from alliance.calibration import review_targets

            d["score"] = review_targets(s)["overall"].to_numpy()
            d["unwilling"] = session_meta(s, "unwilling_to_continue").fillna(False).astype(bool).to_numpy()
        if name in ("esconv", "failedesconv"):
            for k in ("empathy", "relevance"):
                d[k] = pd.to_numeric(session_meta(s, k), errors="coerce").to_numpy()
            d["intensity_drop"] = (pd.to_numeric(session_meta(s, "initial_emotion_intensity"), errors="coerce")
                                   - pd.to_numeric(session_meta(s, "final_emotion_intensity"), errors="coerce")
                                   ).to_numpy()
            d["esconv_outcome"] = esconv_outcome(s).to_numpy()
            d["failed"] = name == "failedesconv"
        if name == "annomi":
            d["high"] = session_meta(s, "mi_quality").astype(str).str.lower().eq("high").to_numpy()
        rows.append(d)
    return pd.concat(rows)


def figures(pred: pd.Series, lab: pd.DataFrame, dropout_risk: pd.Series | None = None) -> dict[str, float]:
    """Every figure of one set of predictions (``pred``: predicted overall per session) against the labels."""
    f: dict[str, float] = {}
    kk = lab["corpus"].eq("kokorochat") & pred.notna()
    if kk.any():
        f["kk_rho"] = spearman(pred[kk], lab.loc[kk, "score"])
        f["kk_auc"] = auc(lab.loc[kk, "unwilling"].astype(bool), -pred[kk])
        if dropout_risk is not None:
            f["kk_auc_head"] = auc(lab.loc[kk, "unwilling"].astype(bool), dropout_risk[kk])
    es = lab["corpus"].eq("esconv") & pred.notna()
    if es.any():
        for k in ("empathy", "relevance", "intensity_drop", "esconv_outcome"):
            f[f"es_rho_{k}"] = spearman(pred[es], lab.loc[es, k])
    fe = lab["corpus"].isin(["esconv", "failedesconv"]) & pred.notna()
    if fe.any() and lab.loc[fe, "corpus"].eq("failedesconv").any():
        f["failed_auc"] = auc(lab.loc[fe, "corpus"].eq("failedesconv"), -pred[fe])
    an = lab["corpus"].eq("annomi") & pred.notna()
    if an.any():
        f["annomi_auc"] = auc(lab.loc[an, "high"].astype(bool), pred[an])
    return f


def line(name: str, f: dict[str, float]) -> str:
    parts = []
    if "kk_rho" in f:
        parts.append(f"KokoroChat rho(score) {f['kk_rho']:.3f}, AUC(unwilling) {f['kk_auc']:.3f}"
                     + (f" (dropout head {f['kk_auc_head']:.3f})" if "kk_auc_head" in f else ""))
    if "es_rho_empathy" in f:
        parts.append(f"ESConv rho empathy {f['es_rho_empathy']:.3f} / relevance {f['es_rho_relevance']:.3f} / "
                     f"intensity drop {f['es_rho_intensity_drop']:.3f} / mean rank {f['es_rho_esconv_outcome']:.3f}")
    if "failed_auc" in f:
        parts.append(f"FailedESConv vs ESConv AUC {f['failed_auc']:.3f}")
    if "annomi_auc" in f:
        parts.append(f"AnnoMI high vs low AUC {f['annomi_auc']:.3f}")
    return f"{name}: " + "   ".join(parts)


def fit_multi(X: pd.DataFrame, parts_s: dict[str, pd.DataFrame], keys: pd.Index, reference: str | None,
              params: dict) -> CalibratedAlliance:
    """The across-corpora model fitted on the sessions ``keys`` (targets computed from those sessions only)."""
    sub = {n: s[pd.MultiIndex.from_frame(s[SESSION_KEY]).isin(keys)] for n, s in parts_s.items()}
    sub = {n: s for n, s in sub.items() if len(s)}
    Y, drop, groups, fam = multi_corpus_targets(sub, reference=reference)
    return CalibratedAlliance(random_state=SEED, **params).fit(
        X.reindex(Y.index), Y, groups.to_numpy(), dropout=drop.to_numpy(), corpus=fam.to_numpy())


def fit_bow(text: pd.Series, parts_s: dict[str, pd.DataFrame], keys: pd.Index, reference: str | None):
    sub = {n: s[pd.MultiIndex.from_frame(s[SESSION_KEY]).isin(keys)] for n, s in parts_s.items()}
    sub = {n: s for n, s in sub.items() if len(s)}
    Y, _, _, fam = multi_corpus_targets(sub, reference=reference)
    return bag_of_words_baseline().fit(text.reindex(Y.index), Y["overall"],
                                       ridge__sample_weight=corpus_weights(fam.to_numpy()))


def main() -> None:
    ap = benchmark_parser(__doc__)
    ap.add_argument("--train", type=Path, help="also fit on every corpus and save the model here")
    ap.add_argument("--write-summary", type=Path, default=None, metavar="MODEL",
                    help="fit nothing: write the report's validity notes (src/alliance/data/validation/"
                         "calibration.json) from the cross-validated figures in MODEL's card, and stop")
    ap.add_argument("--variants", default="all",
                    help="comma-separated across-corpora variants to cross-validate (all: every one; see VARIANTS)")
    args = ap.parse_args()
    if args.write_summary:
        write_summary(args.write_summary)
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    root = data_root()
    command = "PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_transfer.py " + " ".join(sys.argv[1:])
    print(f"# validate_transfer  date {time.strftime('%Y-%m-%d')}  lenses {','.join(LENSES)}  seed {SEED}  folds "
          f"{FOLDS} (KokoroChat by client_id, others by dialogue/session)  model version {MODEL_VERSION}")
    parts = load(root, args.cache, LENSES)
    if "kokorochat" not in parts:
        sys.exit("KokoroChat is needed (its ratings set the scale)")
    parts_s = {n: s for n, (_, s) in parts.items()}
    X = pd.concat([session_features(t, s) for t, s in parts.values()])
    text = pd.concat([transcript_text(t) for t, _ in parts.values()])
    Y, drop, groups, fam = multi_corpus_targets(parts_s)
    lab = labels(parts).reindex(Y.index)
    X, text = X.reindex(Y.index), text.reindex(Y.index)
    for c in TEXT_CHANNELS:
        X[c] = X[c].fillna("")
    counts = lab["corpus"].value_counts()
    print("sessions with a rating: " + ", ".join(f"{n} {counts.get(n, 0)}" for n in CORPORA)
          + f"; KokoroChat unwilling to continue {int(lab['unwilling'].fillna(False).astype(bool).sum())}, "
          f"AnnoMI high quality {int(lab['high'].fillna(False).astype(bool).sum())}")
    from sklearn.model_selection import GroupKFold

    fold = pd.Series(-1, index=Y.index)
    for f_ in fam.unique():  # folds within each family, by its groups (client / dialogue / session)
        m = (fam == f_).to_numpy()
        for k, (_, te) in enumerate(GroupKFold(FOLDS).split(np.zeros(m.sum()), groups=groups[m].to_numpy())):
            fold.iloc[np.flatnonzero(m)[te]] = k
    variants = {
        "across corpora (all inputs, 3 text channels)": {},
        "across corpora, no closing-turns channel": {"text_channels": ("text_client", "text_counsellor")},
    }
    if args.variants != "all":
        keep = [v.strip() for v in args.variants.split(",")]
        variants = {k: v for i, (k, v) in enumerate(variants.items()) if str(i) in keep}
    kk_rows = fam.eq("kokorochat").to_numpy()
    preds = {"kokorochat only (1.4.0 design)": pd.DataFrame(index=Y.index, columns=["overall", "dropout_risk"],
                                                            dtype=float)}
    for v in variants:
        preds[v] = pd.DataFrame(index=Y.index, columns=["overall", "dropout_risk", "out_of_domain", *AXES],
                                dtype=float)
    bow = pd.Series(np.nan, index=Y.index)
    t0 = time.time()
    print("\n## In-corpus: 5 folds; each model trained on the training folds of every corpus, scored on the test folds")
    for k in range(FOLDS):
        tr, te = (fold != k).to_numpy(), (fold == k).to_numpy()
        trk = tr & kk_rows
        m = CalibratedAlliance(random_state=SEED).fit(X[trk], Y[trk], groups[trk].to_numpy(),
                                                     dropout=drop[trk].astype(bool).to_numpy())
        p = m.predict(X[te])
        preds["kokorochat only (1.4.0 design)"].loc[te, ["overall", "dropout_risk"]] = p[
            ["overall", "dropout_risk"]].to_numpy(float)
        for v, params in variants.items():
            mm = fit_multi(X, parts_s, Y.index[tr], "kokorochat", params)
            p = mm.predict(X[te])
            preds[v].loc[te, ["overall", "dropout_risk", "out_of_domain", *AXES]] = p[
                ["overall", "dropout_risk", "out_of_domain", *AXES]].to_numpy(float)
        bow[te] = fit_bow(text, parts_s, Y.index[tr], "kokorochat").predict(text[te])
        print(f"# fold {k + 1}/{FOLDS} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    print(line("bag-of-words ridge (trained on every corpus's training folds, rank targets)", figures(bow, lab)))
    for v, p in preds.items():
        print(line(v, figures(p["overall"], lab, p["dropout_risk"])))
        if set(AXES) <= set(p.columns):
            print(f"{v}: KokoroChat " + "   ".join(
                f"rho({a}) {spearman(p.loc[kk_rows, a], Y.loc[kk_rows, a]):.3f}" for a in AXES))
    for v in variants:
        ood = preds[v]["out_of_domain"]
        print(f"{v}: out of domain (test folds): " + ", ".join(
            f"{n} {ood[lab['corpus'].eq(n)].mean():.1%}" for n in CORPORA if lab["corpus"].eq(n).any()))
    best = next(iter(variants)) if variants else None
    if best:
        p = preds[best]
        kk = lab["corpus"].eq("kokorochat")
        lo, hi = boot_auc(lab.loc[kk, "unwilling"].astype(bool), -p.loc[kk, "overall"])
        an = lab["corpus"].eq("annomi")
        alo, ahi = boot_auc(lab.loc[an, "high"].astype(bool), p.loc[an, "overall"])
        print(f"{best}: 95% stratified bootstrap, KokoroChat AUC(unwilling) [{lo:.3f}, {hi:.3f}], AnnoMI AUC "
              f"[{alo:.3f}, {ahi:.3f}]")

    print("\n## Leave one corpus out: trained on the other corpora only (all their sessions), scored on the one left out")
    loco: dict[str, dict] = {}
    for left in dict.fromkeys(fam):
        keys = Y.index[(fam != left).to_numpy()]
        reference = "kokorochat" if left != "kokorochat" else None
        test = (fam == left).to_numpy()
        for v, params in list(variants.items())[:1]:
            mm = fit_multi(X, parts_s, keys, reference, params)
            p = mm.predict(X[test])
            f_m = figures(p["overall"], lab[test])
            print(line(f"{v}, without {left}", f_m) + f"   [{guard_line(p)}]")
            loco[left] = f_m
        b = fit_bow(text, parts_s, keys, reference).predict(text[test])
        print(line(f"bag-of-words ridge, without {left}", figures(pd.Series(b, index=Y.index[test]), lab[test])))
        print(f"# left out {left} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    if args.train:
        params = next(iter(variants.values())) if variants else {}
        model = fit_multi(X, parts_s, Y.index, "kokorochat", params)
        f_cv = figures(preds[next(iter(variants))]["overall"], lab, preds[next(iter(variants))]["dropout_risk"])
        card = {"encoder": DEFAULT_ENCODER_ID,
                "trained_on": "KokoroChat English (shared dev split) client reviews; ESConv seeker ratings and "
                              "FailedESConv; AnnoMI session quality (within-corpus ranks on KokoroChat's score scale)",
                "corpora": {n: int(c) for n, c in counts.items()}, "sessions": len(Y),
                "clients": int(groups[kk_rows].nunique()), "lenses": LENSES, "lens_options": {}, "seed": SEED,
                "item_map": {k: list(v) for k, v in KOKOROCHAT_ITEM_MAP.items()}, "params": params,
                "command": command, "cv_figures_command": command,
                "cv_figures": {"folds": f"{FOLDS}-fold GroupKFold (KokoroChat by client_id, others by dialogue)",
                               "rho_overall": round(f_cv["kk_rho"], 3),
                               "auc_unwilling_lower_overall": round(f_cv["kk_auc"], 3),
                               "rho_overall_bag_of_words": round(figures(bow, lab)["kk_rho"], 3),
                               **{f"rho_{a}": round(spearman(preds[next(iter(variants))].loc[kk_rows, a],
                                                             Y.loc[kk_rows, a]), 3) for a in AXES},
                               "auc_unwilling_bag_of_words": round(figures(bow, lab)["kk_auc"], 3),
                               **{k: round(v, 3) for k, v in f_cv.items() if k.startswith(("es_", "failed",
                                                                                           "annomi"))},
                               "leave_one_corpus_out": {k: {a: round(b, 3) for a, b in v.items()}
                                                        for k, v in loco.items()}},
                "licences": "coefficients derived from KokoroChat (see its LICENSE), ESConv (CC BY-NC 4.0) and "
                            "AnnoMI (public domain); none from safety/",
                "date": time.strftime("%Y-%m-%d"), "model_version": MODEL_VERSION,
                "model_card": "alliance/data/calibration/MODEL_CARD.md"}
        model.save(args.train, card)
        print(f"# saved {args.train} ({args.train.stat().st_size / 1e6:.1f} MB)")
        print("max shift of the overall by one input: " + ", ".join(
            f"{f} {v:.1f}" for f, v in model.max_shift("overall").head(6).items()))
    _ = FAMILY


def write_summary(path: Path) -> None:
    """The report's validity notes from a model's card: in-corpus (cross-validated) and leave-one-corpus-out
    figures side by side, never one without the other."""
    import json

    model = CalibratedAlliance.load(path)
    cv = model.card_.get("cv_figures") or {}
    if "leave_one_corpus_out" not in cv:
        sys.exit(f"{path}: its card has no across-corpora figures (train it with validate_transfer.py --train)")
    lo = cv["leave_one_corpus_out"]
    lines = [f"KokoroChat client score, unseen clients ({cv['folds']}): calibrated rho = {cv['rho_overall']:.2f} vs "
             f"bag-of-words ridge {cv['rho_overall_bag_of_words']:.2f}; unwilling to continue AUC "
             f"{cv['auc_unwilling_lower_overall']:.2f} vs {cv['auc_unwilling_bag_of_words']:.2f}.",
             f"Trained with the other corpora too, same folds: ESConv seekers' empathy rating rho = "
             f"{cv['es_rho_empathy']:.2f}, relevance {cv['es_rho_relevance']:.2f}; FailedESConv vs ESConv AUC "
             f"{cv['failed_auc']:.2f}; AnnoMI high- vs low-quality MI AUC {cv['annomi_auc']:.2f}.",
             "A corpus it never saw (trained on the others only): "
             + "; ".join(x for x in (
                 f"ESConv empathy rho {lo['esconv']['es_rho_empathy']:.2f}, relevance "
                 f"{lo['esconv']['es_rho_relevance']:.2f}, FailedESConv AUC {lo['esconv']['failed_auc']:.2f}"
                 if "esconv" in lo else "",
                 f"AnnoMI AUC {lo['annomi']['annomi_auc']:.2f}" if "annomi" in lo else "",
                 f"KokoroChat rho {lo['kokorochat']['kk_rho']:.2f}, unwilling AUC {lo['kokorochat']['kk_auc']:.2f}"
                 if "kokorochat" in lo else "") if x) + ".",
             f"Lenses in this model: {', '.join(model.card_.get('lenses') or [])} + text; corpora: "
             + ", ".join(f"{k} {v}" for k, v in (model.card_.get("corpora") or {}).items()) + "."]
    out = Path(__file__).resolve().parents[1] / "src" / "alliance" / "data" / "validation" / "calibration.json"
    out.write_text(json.dumps({"title": "Calibrated alliance (calibrated_* columns) vs what clients said",
                               "command": "PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_transfer.py "
                                          + " ".join(sys.argv[1:]) + f"  (figures: {model.card_.get('command')})",
                               "date": time.strftime("%Y-%m-%d"), "lines": lines}, indent=1))
    print(f"# wrote {out}")


if __name__ == "__main__":
    main()
