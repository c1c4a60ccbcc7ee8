"""Validate the client-calibrated alliance, the empathy-alliance gap and trajectories against client ratings.

Evidence: KokoroChat client reviews (score 0-100, 20 items, dropout flag), cross-validated grouped by client, with a
bag-of-words ridge baseline in the same folds; transfer to ESConv (seeker-rated empathy, relevance, change in
emotion intensity) and FailedESConv. Reads ../shared/data (or $ALLIANCE_DATA); prints every figure it reports.

    PYTHONPATH=src python benchmarks/validate_trajectory.py                 # figures (lenses without an encoder)
    PYTHONPATH=src python benchmarks/validate_trajectory.py --lenses alliance,trajectory,markers
    PYTHONPATH=src python benchmarks/validate_trajectory.py --lenses alliance,empathy,markers,trajectory --no-rationales
    PYTHONPATH=src python benchmarks/validate_trajectory.py --train src/alliance/data/calibration/calibration_v1.json.gz
    ALLIANCE_DATA=/path/to/held-out PYTHONPATH=src python benchmarks/validate_trajectory.py --holdout

``--holdout`` fits nothing: it scores the shipped model (or ``--model``) as it is on whatever the data folder holds,
leaving out the sessions the model was trained on, and prints the same figures for sessions of new clients.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alliance.calibration import (
    AXES,
    DEFAULT_ENCODER_ID,
    ENCODER_SOURCES,
    HEADS,
    KOKOROCHAT_ITEM_MAP,
    MODEL_VERSION,
    SPECIFIC,
    CalibratedAlliance,
    bag_of_words_baseline,
    feature_group,
    feature_source,
    is_time_feature,
    review_targets,
    session_features,
    transcript_text,
)
from alliance.corpus import SESSION_KEY
from alliance.gap import GAP_STEPS

SEED = 0
FOLDS = 5


def data_root() -> Path:
    return Path(os.environ.get("ALLIANCE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The benchmarks' shared command line: the description from the docstring, and --cache."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=default_cache(),
                    help="folder for the scored corpora (never inside the repository; default "
                         "$ALLIANCE_CACHE/validation)")
    return ap


def default_cache() -> Path:
    """Where the benchmarks keep scored corpora: $ALLIANCE_CACHE/validation (default ~/.cache/alliance), never
    inside the repository, since the tables hold the corpora's text."""
    from alliance.encoders import default_cache_dir

    return default_cache_dir() / "validation"


def data_digest(paths: list[Path]) -> str:
    """SHA-256 of the input files' bytes (a folder: every file under it, with its relative path), so a cache entry
    belongs to the data it was computed from, never to a folder's or corpus's name."""
    from alliance.pipeline import file_digest

    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(file_digest(p).encode())
    return h.hexdigest()


def cache_key(name: str, paths: list[Path], fmt: str, lenses: list[str],
              options: dict[str, dict] | None = None) -> str:
    """The cache folder's name for a scored corpus: the corpus name (for a reader) and a hash of the data's content,
    the reader, the lenses with their versions and options. Another folder with other files gets another entry."""
    from alliance.registry import lenses as registry

    versions = {}
    for n in sorted(lenses):
        try:
            versions[n] = str(getattr(registry.get(n), "version", "?"))
        except (KeyError, ImportError):
            versions[n] = "?"
    key = json.dumps({"data": data_digest(paths), "format": fmt, "lenses": versions, "options": options or {}},
                     sort_keys=True)
    return f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def analysed(name: str, paths: list[Path], fmt: str, lenses: list[str], cache: Path,
             options: dict[str, dict] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn and session tables of a corpus scored by ``lenses`` (with lens ``options``), computed once and cached
    under ``cache``, keyed by the content of ``paths`` (see :func:`cache_key`). Cached session tables never feed
    ``calibrated_*`` back as features (see session_features)."""
    from alliance.io import read
    from alliance.pipeline import run_analysis

    out = cache / cache_key(name, paths, fmt, lenses, options)
    if (out / "sessions.parquet").exists():
        print(f"# {name}: scored tables from the cache {out} (keyed by the data's content)", file=sys.stderr)
        return pd.read_parquet(out / "turns.parquet"), pd.read_parquet(out / "sessions.parquet")
    loaded = read(paths, format=fmt, on_error="skip")
    corpus = loaded.corpus
    if loaded.rejected:  # skipped, not hidden: the figures rest on the records that were read
        r = loaded.rejected[0]
        print(f"# {name}: {len(loaded.rejected)} records rejected and left out (first: {r.source}:{r.location}: "
              f"{r.problem})", file=sys.stderr)
    t0 = time.time()

    step = [0]

    def progress(done: int, total: int) -> None:  # about every tenth of the corpus, and at the end
        if done >= total or done >= (step[0] + 1) * total / 10:
            step[0] = int(10 * done / max(total, 1))
            print(f"# scoring {name}: {done}/{total} turns ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)

    # lenses that need the encoder get the default one (cached on disk) from run_analysis; a run cut short resumes
    a = run_analysis(corpus, out, lenses=lenses, lens_options=options, seed=SEED, write_report=False,
                     progress=progress)
    print(f"# scored {name}: {len(corpus.sessions)} sessions with {lenses} in {time.time() - t0:.0f}s", file=sys.stderr)
    return a.turns, a.sessions


def meta_value(meta, key: str):
    """One key of a row's metadata, stored as a dict or as JSON text (as in turns/sessions.parquet)."""
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    return (meta or {}).get(key)


def session_meta(sessions: pd.DataFrame, key: str) -> pd.Series:
    vals = [meta_value(m, key) for m in sessions["meta"]]
    return pd.Series(vals, index=pd.MultiIndex.from_frame(sessions[SESSION_KEY]), name=key)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok])[0]) if ok.sum() > 3 else float("nan")


def auc(flag, score) -> float:
    from sklearn.metrics import roc_auc_score

    flag, score = np.asarray(flag, dtype=bool), np.asarray(score, dtype=float)
    ok = np.isfinite(score)
    return float(roc_auc_score(flag[ok], score[ok])) if 0 < flag[ok].sum() < ok.sum() else float("nan")


def boot_auc(flag, score, draws: int = 1000) -> tuple[float, float]:
    """95% stratified bootstrap interval of the AUC (positives and negatives resampled separately)."""
    rng = np.random.default_rng(SEED)
    flag, score = np.asarray(flag, dtype=bool), np.asarray(score, dtype=float)
    ok = np.isfinite(score)
    pos, neg = score[flag & ok], score[~flag & ok]
    if not len(pos) or not len(neg):
        return float("nan"), float("nan")
    vals = [auc(np.r_[np.ones(len(pos)), np.zeros(len(neg))],
                np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]) for _ in range(draws)]
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def partial_spearman(x, y, control) -> float:
    """Spearman correlation of x and y with the control's ranks partialled out of both."""
    from scipy.stats import rankdata

    df = pd.DataFrame({"x": x, "y": y, "c": control}).astype(float).dropna()
    r = df.apply(rankdata)
    res = {}
    for v in ("x", "y"):
        beta = np.polyfit(r["c"], r[v], 1)
        res[v] = r[v] - np.polyval(beta, r["c"])
    return float(np.corrcoef(res["x"], res["y"])[0, 1])


def cross_validate(X: pd.DataFrame, Y: pd.DataFrame, text: pd.Series, groups: np.ndarray,
                   variants: dict[str, list[str] | None], dropout: np.ndarray | None = None,
                   columns: dict[str, list[str]] | None = None) -> tuple[pd.Series, dict[str, pd.DataFrame]]:
    """Out-of-fold predictions of the bag-of-words baseline and of each calibrated-model variant, same folds.

    A variant named in ``columns`` sees only those columns of ``X`` (no text unless listed)."""
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(FOLDS).split(X, groups=groups))
    base = pd.Series(np.nan, index=X.index)
    cols = [*HEADS, "dropout_risk", "bounded", "out_of_domain"]
    preds = {k: pd.DataFrame(np.nan, index=X.index, columns=cols) for k in variants}
    for tr, te in folds:
        bow = bag_of_words_baseline().fit(text.iloc[tr], Y["overall"].iloc[tr])
        base.iloc[te] = bow.predict(text.iloc[te])
        for name, groups_ in variants.items():
            Xv = X[columns[name]] if columns and name in columns else X
            m = CalibratedAlliance(feature_groups=groups_, random_state=SEED).fit(
                Xv.iloc[tr], Y.iloc[tr], groups[tr], dropout=None if dropout is None else dropout[tr])
            preds[name].iloc[te] = m.predict(Xv.iloc[te]).reindex(columns=cols).astype(float).to_numpy()
    return base, preds


def main() -> None:
    ap = benchmark_parser(__doc__)
    ap.add_argument("--lenses", default="", help="comma-separated lenses to score first (default: every registered "
                                                  "lens that needs no encoder)")
    ap.add_argument("--holdout", action="store_true",
                    help="fit nothing: score --model (default: the shipped model) as it is on the data folder, "
                         "leaving out the sessions it was trained on")
    ap.add_argument("--model", type=Path, default=None, help="with --holdout: a saved model (.json.gz)")
    ap.add_argument("--train-data", type=Path, default=training_folder(),
                    help="with --holdout: the model's training data (KokoroChat folder), where the bag-of-words "
                         "baseline is trained (default: ../shared/data/kokorochat_en/English)")
    ap.add_argument("--random-part", type=Path, default=None,
                    help="with --holdout: a file listing the sessions (ids or file names, one a line) drawn at "
                         "random; the others are an enriched sample, left out of the correlations")
    ap.add_argument("--baseline-sweep", action="store_true",
                    help="also print the bag-of-words ridge over a grid of n-grams and alphas (same folds)")
    ap.add_argument("--train", type=Path, help="also fit on all of KokoroChat and save the model here")
    ap.add_argument("--write-reliability", type=Path, help="estimate the trajectory lens's reliabilities on "
                                                            "KokoroChat and write them here")
    ap.add_argument("--no-esconv", action="store_true")
    ap.add_argument("--no-rationales", action="store_true",
                    help="empathy lens without its occlusion rationales (same scores, far less encoding; for bulk "
                         "validation runs)")
    ap.add_argument("--write-summary", action="store_true",
                    help="write the figures the HTML report shows to src/alliance/data/validation/calibration.json")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.holdout:
        holdout(args)
        return
    from alliance.registry import lenses as registry

    if args.lenses:
        lenses = [x for x in args.lenses.split(",") if x]
    else:
        lenses = []
        for n in ("empathy", "markers", "coordination", "behaviour", "safety", "ruptures", "trajectory"):
            try:
                if not registry.get(n).needs_encoder:
                    lenses.append(n)
            except (KeyError, ImportError):  # a lens not installed in this checkout
                continue
    options = {"empathy": {"rationales": False}} if args.no_rationales and "empathy" in lenses else {}
    command = "PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_trajectory.py " + " ".join(sys.argv[1:])
    root = data_root()
    print(f"# validate_trajectory  date {time.strftime('%Y-%m-%d')}  lenses {','.join(lenses)}  seed {SEED}  "
          f"folds {FOLDS} grouped by client_id" + (f"  options {json.dumps(options)}" if options else ""))
    turns, sessions = analysed("kokorochat", [root / "kokorochat_en" / "English"], "kokorochat", lenses, args.cache,
                               options)
    if args.write_reliability:
        from alliance.lenses.trajectory import estimate_reliability

        doc = estimate_reliability(turns, "KokoroChat English (shared dev split), all sessions")
        args.write_reliability.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"# wrote {args.write_reliability}")
    X, Y, unwilling, groups, text = kokorochat_tables(turns, sessions)
    present = sorted({feature_group(c) for c in X.columns if c not in ("text_client", "text_counsellor",
                                                                         "text_client_end")})
    print(f"KokoroChat: {len(X)} rated sessions, {len(set(groups))} clients, {int(unwilling.sum())} unwilling to "
          f"continue; feature groups: {', '.join(present)} + text")
    variants: dict[str, list[str] | None] = {"calibrated (all groups + text)": None}
    for g in ("empathy", "alliance"):
        if g in present:
            variants[f"{g} only"] = [g]
    nontext = [g for g in present]
    variants["all lens + structural features, no text"] = nontext
    base, preds = cross_validate(X, Y, text, groups, variants, unwilling.to_numpy())
    full = preds["calibrated (all groups + text)"]
    print("\n## KokoroChat, out-of-fold (GroupKFold by client)")
    print(f"bag-of-words ridge baseline: rho(score) = {spearman(base, Y['overall']):.3f}   "
          f"AUC(unwilling_to_continue) = {auc(unwilling, -base):.3f}")
    for name, p in preds.items():
        print(f"{name}: rho(score) = {spearman(p['overall'], Y['overall']):.3f}   "
              f"AUC(unwilling_to_continue) = {auc(unwilling, p['dropout_risk']):.3f} (dropout head), "
              f"{auc(unwilling, -p['overall']):.3f} (lower predicted overall)   "
              + "   ".join(f"rho({a}) = {spearman(p[a], Y[a]):.3f}" for a in AXES))
    print(f"guard rails, out of fold: {guard_line(full)}")
    lo, hi = boot_auc(unwilling, -full["overall"])
    print(f"AUC(unwilling, lower predicted overall) of the calibrated model: 95% stratified bootstrap [{lo:.3f}, "
          f"{hi:.3f}] ({int(unwilling.sum())} positives)")
    if args.baseline_sweep:
        baseline_sweep(text, Y["overall"], unwilling, groups)
    if any(feature_source(c) in ENCODER_SOURCES for c in X.columns if not c.startswith("text_")):
        # a user without the sentence encoder runs only the other lenses: score the test folds that way
        from sklearn.model_selection import GroupKFold

        plain = [n for n in lenses if not registry.get(n).needs_encoder]
        pt, ps = analysed("kokorochat", [root / "kokorochat_en" / "English"], "kokorochat", plain, args.cache,
                          {k: v for k, v in options.items() if k in plain})
        Xp = session_features(pt, ps).reindex(X.index)
        p_heads, p_median = pd.Series(np.nan, index=X.index), pd.Series(np.nan, index=X.index)
        for tr, te in GroupKFold(FOLDS).split(X, groups=groups):
            m = CalibratedAlliance(random_state=SEED).fit(X.iloc[tr], Y.iloc[tr], groups[tr])
            p_heads.iloc[te] = m.predict(Xp.iloc[te])["overall"].to_numpy()
            m.reduced_ = None
            p_median.iloc[te] = m.predict(Xp.iloc[te])["overall"].to_numpy()
        print(f"\n## Calibrated model (all groups + text) on test folds scored without the encoder lenses "
              f"({','.join(plain)} only)")
        print(f"heads fitted without them: rho(score) = {spearman(p_heads, Y['overall']):.3f}   "
              f"AUC(unwilling) = {auc(unwilling, -p_heads):.3f}   training medians instead: rho(score) = "
              f"{spearman(p_median, Y['overall']):.3f}   AUC(unwilling) = {auc(unwilling, -p_median):.3f}")
    print("\n## Discriminant validity (partial Spearman, controlling for the client's overall score)")
    axes_for_dv = {"predicted goal axis (OOF)": full["goal"], "predicted bond axis (OOF)": full["bond"],
                   "predicted goal-specific (OOF)": full["goal_specific"],
                   "predicted bond-specific (OOF)": full["bond_specific"]}
    for col in ("empathy_total_mean", "trajectory_empathy_level"):
        if col in X:
            axes_for_dv = {f"per-reply empathy ({col})": X[col], **axes_for_dv}
            break
    else:
        print("per-reply empathy: no empathy lens columns in this run")
    discriminant_validity(axes_for_dv, sessions, Y, groups)
    specific_fit(full, Y)
    # incremental gap analysis, by the measure each feature comes from (feature_source): the trajectory lens's
    # alliance-probe and empathy trajectories count with the alliance and empathy steps, not with "trajectory"
    print("\n## Empathy-alliance gap: incremental out-of-fold rho with the overall score")
    numeric = [c for c in X.columns if not c.startswith("text_")]
    sources = {feature_source(c) for c in numeric}
    steps = [g for g in GAP_STEPS if g in sources]
    print("(steps by source: empathy = empathy_* and trajectory_empathy_*; alliance = alliance_*, "
          "trajectory_{client,counsellor}_{goal,task,bond}_* and trajectory_gap_*; trajectory = client words, "
          "ruptures, repairs; no text)")
    gx: dict[str, list[str] | None] = {}
    gcols: dict[str, list[str]] = {}
    cum: list[str] = []
    for g in steps:
        cum = [*cum, g]
        name = " + ".join(cum)
        gx[name] = None
        gcols[name] = [c for c in numeric if feature_source(c) in cum]
    if gx:
        _, inc = cross_validate(X, Y, text, groups, gx, columns=gcols)
        for name, p in inc.items():
            print(f"{name}: rho(score) = {spearman(p['overall'], Y['overall']):.3f}   "
                  f"AUC(unwilling) = {auc(unwilling, -p['overall']):.3f}")
    # the shipped model has no dropout head: out of fold it ranked dropout worse than the predicted overall does
    if args.write_summary:
        out = Path(__file__).resolve().parents[1] / "src" / "alliance" / "data" / "validation" / "calibration.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"KokoroChat client score, unseen clients (5-fold GroupKFold): calibrated rho = "
                 f"{spearman(full['overall'], Y['overall']):.2f} vs bag-of-words ridge {spearman(base, Y['overall']):.2f}; "
                 + ", ".join(f"{a} rho = {spearman(full[a], Y[a]):.2f}" for a in AXES) + ".",
                 f"Unwilling to continue ({int(unwilling.sum())} of {len(X)} sessions): AUC of lower calibrated overall "
                 f"{auc(unwilling, -full['overall']):.2f} vs baseline {auc(unwilling, -base):.2f}.",
                 f"Lenses in this model: {', '.join(lenses)} + text."]
    model = CalibratedAlliance(random_state=SEED).fit(X, Y, groups)
    coefs = model.coefficients()
    shift = model.max_shift("overall")
    print("\n## How far one input alone can move the overall (weight x the range it is clipped to; points of 0-100)")
    print(", ".join(f"{f} {v:.1f}" for f, v in shift.head(8).items())
          + f"; timestamp-derived inputs read: {[c for c in model.numeric_columns_ if is_time_feature(c)] or 'none'}")
    print("\n## Level-2 weights per axis (model fitted on all KokoroChat; top 6 by |weight|)")
    for t in HEADS:
        c = coefs[coefs["target"] == t].reindex(coefs[coefs["target"] == t]["weight"].abs().sort_values(
            ascending=False).index).head(6)
        print(f"{t}: " + ", ".join(f"{r.feature} {r.weight:+.2f}" for r in c.itertuples()))
    for ch in model.text_channels_:
        w = model.top_words(ch, "overall", 8)
        print(f"{ch} words raising overall: {', '.join(t for t, _ in w['raise'])}; lowering: "
              f"{', '.join(t for t, _ in w['lower'])}")
    for t in SPECIFIC:
        w = model.top_words("text_client", t, 8) if "text_client" in model.text_channels_ else None
        if w:
            print(f"text_client words raising {t}: {', '.join(x for x, _ in w['raise'])}; lowering: "
                  f"{', '.join(x for x, _ in w['lower'])}")
    if args.train:
        card = {"encoder": DEFAULT_ENCODER_ID, "trained_on": "KokoroChat English (shared dev split), client reviews", "sessions": len(X),
                "clients": len(set(groups)), "lenses": lenses, "lens_options": options, "seed": SEED,
                "item_map": {k: list(v) for k, v in KOKOROCHAT_ITEM_MAP.items()},
                "command": command, "cv_figures_command": command,
                "cv_figures": {"folds": f"{FOLDS}-fold GroupKFold by client_id",
                               "rho_overall": round(spearman(full["overall"], Y["overall"]), 3),
                               "rho_overall_bag_of_words": round(spearman(base, Y["overall"]), 3),
                               **{f"rho_{a}": round(spearman(full[a], Y[a]), 3) for a in AXES},
                               "auc_unwilling_lower_overall": round(auc(unwilling, -full["overall"]), 3),
                               "auc_unwilling_bag_of_words": round(auc(unwilling, -base), 3),
                               **{f"partial_rho_{t}_with_{item}": round(partial_spearman(
                                   full[t], session_meta(sessions, item).reindex(X.index).astype(float),
                                   Y["overall"]), 3)
                                  for t in ("goal_specific", "bond_specific")
                                  for item in ("helped_identify_goals", "showed_acceptance_and_empathy")}},
                "date": time.strftime("%Y-%m-%d"), "model_version": MODEL_VERSION,
                "model_card": "alliance/data/calibration/MODEL_CARD.md"}
        model.save(args.train, card)
        print(f"# saved {args.train} ({args.train.stat().st_size / 1e6:.1f} MB)")
    if not args.no_esconv:
        cross = transfer(model, root, lenses, args.cache, options)
        if args.write_summary:  # in-corpus and cross-corpus side by side: never one without the other
            lines.append("Other corpora, the model as fitted (never trained on them): " + "; ".join(cross) + ".")
    if args.write_summary:
        out.write_text(json.dumps({"title": "Calibrated alliance (calibrated_* columns) vs what clients said",
                                   "command": command,
                                   "date": time.strftime("%Y-%m-%d"), "lines": lines}, indent=1))
        print(f"# wrote {out}")


def transfer(model: CalibratedAlliance, root: Path, lenses: list[str], cache: Path,
             options: dict[str, dict]) -> list[str]:
    """The model as it is, on corpora it was not trained on: ESConv seekers' ratings, FailedESConv, AnnoMI quality.
    A corpus whose folder is absent is skipped with a line saying so. Returns one short line per corpus scored."""
    summary: list[str] = []
    print("\n## Transfer: the model as fitted, scored on ESConv, FailedESConv and AnnoMI")
    trained = sorted(getattr(model, "corpora_", None) or {})
    if set(trained) - {"kokorochat"}:  # a model trained across corpora (1.5.0): these are its training data
        print(f"WARNING: this model was trained on {', '.join(trained)}: the figures below include its training "
              "dialogues and are no test of it; the cross-validated and leave-one-corpus-out figures are printed by "
              "benchmarks/validate_transfer.py")
    es_paths = [root / "esconv" / "hf_format" / f for f in ("train.json", "valid.json", "test.json")]
    es_paths = [p for p in es_paths if p.exists()]
    failed = root / "esconv" / "thu-coai" / "FailedESConv.json"
    pe = None
    if es_paths:
        et, es = analysed("esconv", es_paths, "esconv", lenses, cache, options)
        pe = model.predict(session_features(et, es))
        print(f"ESConv guard rails: {guard_line(pe)}")
        idx = pe.index
        emp = pd.to_numeric(session_meta(es, "empathy").reindex(idx), errors="coerce")
        rel = pd.to_numeric(session_meta(es, "relevance").reindex(idx), errors="coerce")
        drop = (pd.to_numeric(session_meta(es, "initial_emotion_intensity").reindex(idx), errors="coerce")
                - pd.to_numeric(session_meta(es, "final_emotion_intensity").reindex(idx), errors="coerce"))
        summary.append(f"ESConv seekers' empathy rating rho = {spearman(pe['overall'], emp):.2f}, relevance "
                       f"{spearman(pe['overall'], rel):.2f}")
        print(f"ESConv ({len(pe)} dialogues): " + "   ".join(
            f"rho({t} vs {lab}) = {spearman(pe[t], v):.3f}" for t in ("overall", "bond", "goal")
            for lab, v in (("empathy", emp), ("relevance", rel), ("intensity drop", drop))))
        if set(SPECIFIC) <= set(pe.columns):  # discriminant check outside KokoroChat: the seeker's two ratings
            print("ESConv axis-specific heads, partial Spearman with seeker empathy (controlling relevance) / with "
                  "relevance (controlling empathy): " + "   ".join(
                      f"{t} {partial_spearman(pe[t], emp, rel):+.3f} / {partial_spearman(pe[t], rel, emp):+.3f}"
                      for t in SPECIFIC))
    else:
        print(f"ESConv: no {root / 'esconv' / 'hf_format'}/*.json; skipped")
    if pe is not None and failed.exists():
        ft, fs = analysed("failedesconv", [failed], "esconv", lenses, cache, options)
        pf = model.predict(session_features(ft, fs))
        print(f"FailedESConv guard rails: {guard_line(pf)}")
        flag = np.r_[np.zeros(len(pe)), np.ones(len(pf))]
        summary.append(f"FailedESConv vs ESConv AUC {auc(flag, -np.r_[pe['overall'], pf['overall']]):.2f}")
        print(f"FailedESConv ({len(pf)} dialogues) vs ESConv: AUC(failed, lower predicted overall) = "
              f"{auc(flag, -np.r_[pe['overall'], pf['overall']]):.3f}")
    else:
        print("FailedESConv: needs ESConv and FailedESConv.json; skipped")
    annomi = root / "annomi" / "AnnoMI-simple.csv"
    if annomi.exists():
        at, asess = analysed("annomi", [annomi], "annomi", lenses, cache, options)
        pa = model.predict(session_features(at, asess))
        print(f"AnnoMI guard rails: {guard_line(pa)}")
        high = session_meta(asess, "mi_quality").reindex(pa.index).astype(str).str.lower().eq("high")
        summary.append(f"AnnoMI high- vs low-quality MI AUC {auc(high, pa['overall']):.2f}")
        print(f"AnnoMI ({len(pa)} MI sessions, {int(high.sum())} high quality): AUC(high-quality MI, higher "
              f"predicted overall) = {auc(high, pa['overall']):.3f} [95% stratified bootstrap "
              + "{:.3f}, {:.3f}]".format(*boot_auc(high, pa["overall"])) + f"   bond {auc(high, pa['bond']):.3f}")
    else:
        print(f"AnnoMI: no {annomi}; skipped")
    return summary


def guard_line(pred: pd.DataFrame) -> str:
    """How many predictions were cut back to their scale and how many sessions lie outside the training range
    (with the inputs most often out), for one table of predictions."""
    n = len(pred)
    if not n:
        return "no sessions"
    line = f"{int(pred['bounded'].astype(bool).sum())} of {n} bounded to the scale"
    if "out_of_domain" in pred:
        ood = pred["out_of_domain"].astype(float).fillna(0).astype(bool)
        line += f", {int(ood.sum())} ({ood.mean():.1%}) out of domain"
        if "out_of_domain_features" in pred and ood.any():
            names = pd.Series([f.split(" (+")[0] for f in pred.loc[ood, "out_of_domain_features"] for f in
                               f.split(", ")]).value_counts().head(4)
            line += " (most often: " + ", ".join(f"{k} {v}" for k, v in names.items()) + ")"
    return line


def kokorochat_tables(turns: pd.DataFrame, sessions: pd.DataFrame):
    """Session features, the client's ratings, the dropout flag, client ids and transcripts of rated sessions."""
    X = session_features(turns, sessions)
    Y = review_targets(sessions).reindex(X.index)
    unwilling = session_meta(sessions, "unwilling_to_continue").reindex(X.index).fillna(False).astype(bool)
    groups = session_meta(sessions, "client_id").reindex(X.index).astype(str).to_numpy()
    text = transcript_text(turns).reindex(X.index)
    ok = Y.notna().all(axis=1).to_numpy()
    return X[ok], Y[ok], unwilling[ok], groups[ok], text[ok]


def discriminant_validity(named: dict[str, pd.Series], sessions: pd.DataFrame, Y: pd.DataFrame,
                          groups: np.ndarray | None = None, draws: int = 300) -> None:
    """Partial Spearman of each axis with two review items, controlling for the client's overall score, and the
    difference between the two with a 95% interval from resampling clients (``groups``)."""
    items = {k: session_meta(sessions, k).reindex(Y.index).astype(float) for k in
             ("showed_acceptance_and_empathy", "helped_identify_goals")}
    acc, goals, score = (np.asarray(v, dtype=float) for v in (items["showed_acceptance_and_empathy"],
                                                               items["helped_identify_goals"], Y["overall"]))
    rng = np.random.default_rng(SEED)
    clients = pd.Series(np.arange(len(Y))).groupby(np.asarray(groups)).indices if groups is not None else None
    for name, v in named.items():
        v = np.asarray(v, dtype=float)
        a, b = partial_spearman(v, acc, score), partial_spearman(v, goals, score)
        line = f"{name}: with showed_acceptance_and_empathy {a:+.3f}   with helped_identify_goals {b:+.3f}"
        if clients is not None and len(clients) > 5:
            keys = list(clients)
            diffs = []
            for _ in range(draws):
                i = np.concatenate([clients[keys[k]] for k in rng.integers(0, len(keys), len(keys))])
                diffs.append(partial_spearman(v[i], acc[i], score[i]) - partial_spearman(v[i], goals[i], score[i]))
            lo, hi = np.percentile(diffs, [2.5, 97.5])
            line += f"   difference {a - b:+.3f} [95% by client {lo:+.3f}, {hi:+.3f}]"
        print(line)


def baseline_sweep(text: pd.Series, score: pd.Series, unwilling: pd.Series, groups: np.ndarray) -> None:
    """The bag-of-words ridge over a grid of settings, same folds: how far the plain baseline gets here at best.
    The best cell is picked on the figures it prints, so it is an optimistic ceiling, not a fair baseline."""
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(FOLDS).split(text, groups=groups))
    print("\n## Bag-of-words ridge over settings (same folds; the best cell is an optimistic ceiling)")
    for ngram_max in (1, 2):
        for alpha in (0.3, 1.0, 3.0, 10.0):
            p = pd.Series(np.nan, index=text.index)
            for tr, te in folds:
                m = bag_of_words_baseline(alpha, ngram_max).fit(text.iloc[tr], score.iloc[tr])
                p.iloc[te] = m.predict(text.iloc[te])
            print(f"n-grams 1-{ngram_max}, alpha {alpha:>4}: rho(score) = {spearman(p, score):.3f}   "
                  f"AUC(unwilling) = {auc(unwilling, -p):.3f}")


def specific_fit(pred: pd.DataFrame, Y: pd.DataFrame, indent: str = "") -> None:
    """How well the axis-specific heads predict each axis's rating relative to the overall (z of the axis minus z
    of the overall, standardised over these sessions)."""
    z = (Y - Y.mean()) / Y.std()
    print(indent + "axis-specific heads vs the client's axis-minus-overall (z): " + "   ".join(
        f"rho({t}) = {spearman(pred[t], z[t.removesuffix('_specific')] - z['overall']):.3f}" for t in SPECIFIC))


def training_folder() -> Path:
    """Where the shipped model's training data lies (the repository's ../shared/data), whatever ALLIANCE_DATA says:
    the bag-of-words baseline of --holdout is trained there, as the model was."""
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kokorochat_en" / "English"


def training_baseline(model: CalibratedAlliance, folder: Path):
    """The bag-of-words ridge trained on the model's own training sessions (those of ``folder`` the model records
    it was trained on; all rated ones when it records nothing), as the model was: (fitted pipeline, sessions, note,
    the share of those sessions unwilling to continue), or (None, 0, why not, NaN) when the folder is absent."""
    from alliance.io import read

    if not folder.exists():
        return None, 0, f"training data not found at {folder} (--train-data); baseline skipped", float("nan")
    corpus = read([folder], format="kokorochat", on_error="skip").corpus
    Y = review_targets(corpus.sessions)
    ok = Y["overall"].notna().to_numpy()
    note = "the model's training sessions"
    if getattr(model, "trained_sessions_", None) is not None:
        seen = model.trained_on(Y.index)
        if seen.any():
            ok = ok & seen
        else:
            note = "rated sessions of the folder (none of them trained the model: not its training data)"
    text = transcript_text(corpus.turns).reindex(Y.index)
    rate = float(session_meta(corpus.sessions, "unwilling_to_continue").reindex(Y.index)[ok].fillna(False).astype(bool).mean())
    return bag_of_words_baseline().fit(text[ok], Y["overall"][ok]), int(ok.sum()), note, rate


def random_part(index: pd.MultiIndex, path: Path) -> np.ndarray:
    """Per session: True when it is in the random part listed in ``path`` (one session id or file name a line;
    blank lines and lines starting with # are skipped). A listed id that matches no session is an error naming
    the file and line, so a typo never silently shrinks the part."""
    ids = index.get_level_values(1).astype(str)
    wanted = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        item = line.strip()
        if item and not item.startswith("#"):
            wanted[Path(item).name.removesuffix(".json")] = n
    missing = [(n, k) for k, n in wanted.items() if k not in set(ids)]
    if missing:
        n, k = missing[0]
        sys.exit(f"{path}:line {n}: session {k!r} is not among the rated sessions of the held-out folder "
                 f"({len(missing)} such lines)")
    return np.asarray(ids.isin(list(wanted)))


def reweighted_spearman(pred, y, flag, rate: float) -> float:
    """Spearman correlation with the sessions weighted so that the share of ``flag`` (e.g. dropouts) is ``rate``:
    undoes a sample enriched for one kind of session (weighted Pearson correlation of the ranks)."""
    from scipy.stats import rankdata

    pred, y, flag = np.asarray(pred, dtype=float), np.asarray(y, dtype=float), np.asarray(flag, dtype=bool)
    ok = np.isfinite(pred) & np.isfinite(y)
    pred, y, flag = pred[ok], y[ok], flag[ok]
    here = flag.mean()
    if not 0 < here < 1:
        return spearman(pred, y)
    w = np.where(flag, rate / here, (1 - rate) / (1 - here))
    a, b = rankdata(pred), rankdata(y)
    ma, mb = np.average(a, weights=w), np.average(b, weights=w)
    cov = np.average((a - ma) * (b - mb), weights=w)
    return float(cov / np.sqrt(np.average((a - ma) ** 2, weights=w) * np.average((b - mb) ** 2, weights=w)))


def holdout(args: argparse.Namespace) -> None:
    """Score a fitted model, unchanged, on the data folder: the figures for sessions and clients it never saw."""
    model = CalibratedAlliance.load(args.model)
    card = getattr(model, "card_", {})
    lenses, options = list(card.get("lenses") or []), dict(card.get("lens_options") or {})
    if not lenses:
        sys.exit(f"{args.model or 'the shipped model'}: its card names no lenses, so the features cannot be "
                 "rebuilt as it was trained")
    root = data_root()
    print(f"# validate_trajectory --holdout  date {time.strftime('%Y-%m-%d')}  model {args.model or 'shipped'} "
          f"(version {model.card_.get('model_version', '?')}, encoder {model.encoder_id})  lenses "
          f"{','.join(lenses)}  data {root}")
    kk = root / "kokorochat_en" / "English"
    if not kk.exists():
        print(f"KokoroChat: no {kk}; skipped")
    else:
        turns, sessions = analysed("kokorochat", [kk], "kokorochat", lenses, args.cache, options)
        X, Y, unwilling, groups, text = kokorochat_tables(turns, sessions)
        if getattr(model, "trained_sessions_", None) is None or getattr(model, "trained_groups_", None) is None:
            print("WARNING: this model does not record what it was trained on (saved before 1.3.0, or fitted "
                  "without client ids): every session counts as held out, so the figures may include training data")
            seen = seen_client = np.zeros(len(X), dtype=bool)
        else:
            seen = model.trained_on(X.index)
            seen_client = model.trained_on_groups(groups)
        print(f"KokoroChat: {len(X)} rated sessions; {int(seen.sum())} trained the model and are left out; "
              f"{int((~seen & seen_client).sum())} new sessions of training clients; "
              f"{int((~seen_client).sum())} sessions of {len(set(groups[~seen_client]))} clients it never saw")
        rand = random_part(X.index, args.random_part) if args.random_part else None
        if rand is not None:
            print(f"random part ({args.random_part}): {int(rand.sum())} sessions; the rest ({int((~rand).sum())}) "
                  "are an enriched sample: correlations are computed on the random part only, AUCs on all")
        bow, n_bow, note, train_rate = training_baseline(model, args.train_data)
        print(f"bag-of-words ridge: trained on {n_bow} sessions of {args.train_data} ({note})" if bow is not None
              else f"bag-of-words ridge: {note}")
        base_all = pd.Series(bow.predict(text), index=X.index) if bow is not None else None
        pred = model.predict(X)
        print(f"guard rails: {guard_line(pred)}")
        subsets = [("clients it never saw", ~seen_client)]
        if (~seen & seen_client).any():  # new sessions of training clients: a second, less strict, subset
            subsets.insert(0, ("every session it was not trained on", ~seen))
        for label, mask in subsets:
            n, k = int(mask.sum()), int(unwilling[mask].sum())
            if n < 10:
                print(f"{label}: {n} sessions; too few for figures")
                continue
            p, y, u = pred[mask], Y[mask], unwilling[mask].to_numpy()
            r = rand[mask] if rand is not None else np.ones(n, dtype=bool)  # the part correlations are read on
            lo, hi = boot_auc(u, -p["overall"])
            # a bootstrap of a handful of positives gives an interval narrower than what is known
            interval = f"[95% bootstrap {lo:.3f}, {hi:.3f}]" if k >= 10 else f"(only {k} positives: no interval)"
            part = f" (random part, {int(r.sum())})" if rand is not None else ""
            print(f"{label}: {n} sessions, {k} unwilling to continue: rho(score){part} = "
                  f"{spearman(p['overall'][r], y['overall'][r]):.3f}   AUC(unwilling, lower predicted overall) = "
                  f"{auc(u, -p['overall']):.3f} {interval}   "
                  + "   ".join(f"rho({a}) = {spearman(p[a][r], y[a][r]):.3f}" for a in AXES))
            rate_here = u[r].mean() if r.any() else float("nan")
            if rand is None and np.isfinite(train_rate) and rate_here > 2 * train_rate:
                print(f"  WARNING: {rate_here:.1%} of these sessions are unwilling to continue against "
                      f"{train_rate:.1%} in the training data: the sample looks enriched, which biases rho; pass "
                      f"--random-part. rho(score) reweighted to the training rate = "
                      f"{reweighted_spearman(p['overall'], y['overall'], u, train_rate):.3f}")
            if base_all is not None:
                b = base_all[mask]
                print(f"  bag-of-words ridge trained on the training data: rho(score){part} = "
                      f"{spearman(b[r], y['overall'][r]):.3f}   AUC(unwilling) = {auc(u, -b):.3f}")
            g = groups[mask]
            print("  discriminant validity (partial Spearman, controlling for the client's overall score):")
            named = {f"  predicted {t.replace('_', '-')}{'' if t.endswith('_specific') else ' axis'}": p[t][r]
                     for t in ("goal", "bond", "goal_specific", "bond_specific") if t in p}
            discriminant_validity(named, sessions, y[r], g[r])
            if set(SPECIFIC) <= set(p.columns):  # models before 1.3.0 have no axis-specific heads
                specific_fit(p[r], y[r], "  ")
    if not args.no_esconv:
        cross = transfer(model, root, lenses, args.cache, options)
        if args.write_summary:  # the card's cross-validated figures (from the training command) beside transfer
            cv = card.get("cv_figures") or {}
            if not cv:
                sys.exit("--write-summary: the model's card has no cross-validated figures (cv_figures)")
            lines = [f"KokoroChat client score, unseen clients ({cv.get('folds', '5-fold by client')}): calibrated "
                     f"rho = {cv['rho_overall']:.2f} vs bag-of-words ridge {cv['rho_overall_bag_of_words']:.2f}; "
                     + ", ".join(f"{a} rho = {cv[f'rho_{a}']:.2f}" for a in AXES if f"rho_{a}" in cv) + ".",
                     f"Unwilling to continue: AUC of lower calibrated overall {cv['auc_unwilling_lower_overall']:.2f}"
                     f" vs baseline {cv['auc_unwilling_bag_of_words']:.2f}.",
                     "Other corpora, the model as fitted (never trained on them): " + "; ".join(cross) + ".",
                     f"Lenses in this model: {', '.join(lenses)} + text."]
            out = Path(__file__).resolve().parents[1] / "src" / "alliance" / "data" / "validation" / "calibration.json"
            command = ("PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_trajectory.py "
                       + " ".join(sys.argv[1:]) + f"  (cross-validated figures: {card.get('command', '?')})")
            out.write_text(json.dumps({"title": "Calibrated alliance (calibrated_* columns) vs what clients said",
                                       "command": command, "date": time.strftime("%Y-%m-%d"), "lines": lines},
                                      indent=1))
            print(f"# wrote {out}")

if __name__ == "__main__":
    main()
