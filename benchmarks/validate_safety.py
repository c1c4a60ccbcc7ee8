"""Validation figures for the safety lens (issue #12, section 6), printed for docs/validation.md and docs/safety.md.

Risk: the `alliance train safety` recipe cross-validated (5 grouped folds: no Between Help and Harm item, ordinary
session, moderation text or XSTest contrast pair in two folds; each fold's threshold set inside its training part),
against ordinary client turns (AnnoMI, ESConv, KokoroChat) as false alarms; C-SSRS per user (never trained on);
DiaSafety reply judgement (train -> val, and grouped CV on train); the shipped default on the same real labels
(a transfer figure: it never saw them); AnnoMI sessions flagged; speed against the encoder in the same run.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_safety.py [--data ../shared/data] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
FOLDS = 5


def data_root(arg: str | None) -> Path:
    p = Path(arg or os.environ.get("ALLIANCE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (p / "safety").is_dir():
        sys.exit(f"research data folder with safety/ not found: {p} (pass --data or set ALLIANCE_DATA)")
    return p


def cache_dir(arg: str | None) -> Path:
    base = Path(arg) if arg else Path(os.environ.get("ALLIANCE_CACHE") or Path.home() / ".cache" / "alliance") / "validation"
    out = base / "safety"
    out.mkdir(parents=True, exist_ok=True)
    return out


def levels_of(model, thr: float, low: float, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from alliance.lenses.safety_model import CATEGORIES

    p, pp, cp = model.risk.proba(X), model.plan.proba(X), model.category_proba(X)
    level = np.where(p >= thr, 2, np.where((pp >= model.plan.threshold) | (p >= low), 1, 0))
    cat = np.array(CATEGORIES)[cp.argmax(axis=1)]
    cat = np.where((p < thr) & (pp >= model.plan.threshold), "endangering_plan", cat)
    return p, level, cat


def cv_risk(risk: pd.DataFrame, X: np.ndarray, reply: pd.DataFrame, P: np.ndarray, model_id: str) -> pd.DataFrame:
    """Out-of-fold p, level and category per client text; each fold's thresholds are set in its training part."""
    from sklearn.model_selection import GroupKFold

    from alliance.training.safety import fit_model

    out = pd.DataFrame(index=risk.index, columns=["p", "level", "category", "threshold"], dtype=object)
    for k, (tr, te) in enumerate(GroupKFold(n_splits=FOLDS).split(X, groups=risk["group"].to_numpy())):
        m = fit_model(risk.iloc[tr].reset_index(drop=True), X[tr], reply.iloc[:0], P[:0], model_id, SEED)
        p, level, cat = levels_of(m, m.risk.threshold, m.low_threshold, X[te])
        out.iloc[te] = np.column_stack([p, level, cat, np.full(len(te), m.risk.threshold)])
        print(f"  fold {k + 1}/{FOLDS}: threshold {m.risk.threshold:.3f}", flush=True)
    out["p"] = out["p"].astype(float)
    out["level"] = out["level"].astype(int)
    return out


def risk_figures(risk: pd.DataFrame, oof: pd.DataFrame, cache: Path, name: str) -> None:
    """Recall at the fold's own operating point, false alarms per corpus and on hard negatives, PR curve."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    df = pd.concat([risk, oof.drop(columns=["category"])], axis=1)
    flagged = df["level"] >= 2
    unit = df.groupby("unit").agg(flag=("level", lambda s: bool((s >= 2).any())), p=("p", "max"),
                                  y=("y_risk", "max"), source=("source", "first"))
    how = ("false alarms <= 2% of ordinary client turns, set inside each training fold" if "Recipe" in name else
           "the threshold shipped with it, set on its own training data")
    print(f"\n### {name}: high/imminent risk at the default operating point ({how})")
    for src in ("bhh", "moderation", "exemplar"):
        u = unit[(unit["source"] == src) & (unit["y"] == 1)]
        if len(u):
            note = " (silver labels, per item: any message flagged)" if src == "bhh" else (
                " (SH=1: content about self-harm, human)" if src == "moderation" else " (project-written)")
            print(f"recall {src}{note}: {u['flag'].mean():.3f} ({int(u['flag'].sum())}/{len(u)})")
    real = unit[unit["source"].isin(("bhh", "moderation")) & (unit["y"] == 1)]
    print(f"recall, real labels pooled: {real['flag'].mean():.3f} ({int(real['flag'].sum())}/{len(real)})")
    for src in ("annomi", "esconv", "kokorochat"):
        m = df["source"] == src
        if m.any():
            print(f"false alarms, {src} client turns: {flagged[m].mean():.4f} ({int(flagged[m].sum())}/{int(m.sum())})")
            if src == "esconv":  # the shipped default trains on ESConv's train split: its valid/test turns are unseen
                h = m & ~df["group"].astype(str).str.startswith("esconv-train-")
                print(f"false alarms, esconv valid/test client turns: {flagged[h].mean():.4f} "
                      f"({int(flagged[h].sum())}/{int(h.sum())})")
    ordn = df["ordinary"]
    print(f"false alarms, ordinary client turns pooled: {flagged[ordn].mean():.4f}")
    xs = df["source"] == "xstest"
    if xs.any():
        print(f"false alarms, XSTest safe prompts (look unsafe): {flagged[xs].mean():.3f} ({int(flagged[xs].sum())}/"
              f"{int(xs.sum())})")
    mod0 = unit[(unit["source"] == "moderation") & (unit["y"] == 0)]
    if len(mod0):
        print(f"false alarms, moderation texts with SH=0: {mod0['flag'].mean():.3f}")
    nc = unit[(unit["source"] == "bhh") & (unit["y"] == 0)]
    if len(nc):
        print(f"false alarms, Between Help and Harm no-crisis items (any message): {nc['flag'].mean():.3f} "
              f"({int(nc['flag'].sum())}/{len(nc)})")
    # the PR curve: positives = real positive units; negatives = ordinary turns and hard negatives (units)
    neg = pd.concat([df.loc[ordn, "p"], unit.loc[unit["source"].isin(("xstest", "moderation", "bhh")) &
                                                 (unit["y"] == 0), "p"]])
    y = np.r_[np.ones(len(real)), np.zeros(len(neg))]
    s = np.r_[real["p"].to_numpy(), neg.to_numpy()]
    prec, rec, thr = precision_recall_curve(y, s)
    pd.DataFrame({"precision": prec[:-1], "recall": rec[:-1], "threshold": thr}).to_csv(
        cache / f"pr_{name.split()[0].lower()}.csv", index=False)
    o = df.loc[ordn, "p"].to_numpy()
    fa2 = np.quantile(o, 0.98)
    print(f"average precision (PR curve, real positives vs ordinary turns + hard negatives): "
          f"{average_precision_score(y, s):.3f}; pooled out-of-fold recall at the p exceeded by 2% of ordinary "
          f"turns: {(real['p'] >= fa2).mean():.3f}; at 5%: {(real['p'] >= np.quantile(o, 0.95)).mean():.3f}; "
          f"at 10%: {(real['p'] >= np.quantile(o, 0.90)).mean():.3f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3.2))
        ax.plot(rec, prec)
        ax.set_xlabel("recall (real high/imminent units)")
        ax.set_ylabel("precision")
        ax.set_title(name, fontsize=8)
        fig.tight_layout()
        fig.savefig(cache / f"pr_{name.split()[0].lower()}.png", dpi=120)
        plt.close(fig)
    except ImportError:  # matplotlib is not a dependency: write the curve as a Vega-Lite spec (open it in any Vega viewer)
        import altair as alt

        pts = pd.DataFrame({"recall": rec, "precision": prec}).iloc[::max(1, len(rec) // 400)]
        alt.Chart(pts).mark_line().encode(x="recall:Q", y="precision:Q").properties(title=name).save(
            str(cache / f"pr_{name.split()[0].lower()}.vl.json"))
    print(f"PR curve: {cache / ('pr_' + name.split()[0].lower() + '.csv')} (and a .png or .vl.json chart)")


def bhh_figures(risk: pd.DataFrame, oof: pd.DataFrame) -> None:
    from sklearn.metrics import f1_score

    df = pd.concat([risk, oof.rename(columns={"category": "pred_category"})], axis=1)
    b = df[df["source"] == "bhh"]
    if b.empty:
        return
    items = []
    for _u, g in b.groupby("unit"):
        top = g.loc[g["p"].idxmax()]
        crisis_pred = bool((g["level"] >= 1).any())
        hi = g[g["level"] >= 1]
        cat = hi.loc[hi["p"].idxmax(), "pred_category"] if len(hi) else ""
        items.append({"label": g["label"].iloc[0], "true_cat": g["category"].iloc[0], "pred": crisis_pred,
                      "pred_cat": cat if crisis_pred else "", "p": top["p"]})
    it = pd.DataFrame(items)
    truth = it["label"] != "no_crisis"
    print("\n### Between Help and Harm (SILVER labels from GPT-4o-mini; per item, out-of-fold; crisis = any "
          "message at level low or above)")
    print(f"crisis vs no-crisis macro-F1: {f1_score(truth, it['pred'], average='macro'):.3f} (n={len(it)}; "
          f"crisis items {int(truth.sum())}, of which anxiety_crisis {int((it['label'] == 'anxiety_crisis').sum())} "
          "that the lens does not target)")
    parts = []
    for cat in ("suicide", "self_harm", "harm_to_others", "endangering_plan"):
        t = it["true_cat"] == cat
        pr = it["pred_cat"] == cat
        parts.append(f"{cat} {f1_score(t, pr):.2f} (n={int(t.sum())})")
    print("per-category F1 (item's category vs the category of its most risk-like flagged message): " + ", ".join(parts))


def cssrs_figures(root: Path, model, encoder, name: str) -> None:
    from scipy.stats import spearmanr

    from alliance.lenses.safety_model import turn_features
    from alliance.training.safety_data import load_cssrs

    c = load_cssrs(root / "safety")
    X = turn_features(encoder.encode(c["text"].tolist()))
    p, level, _ = levels_of(model, model.risk.threshold, model.low_threshold, X)
    c = c.assign(p=p, level=level)
    u = c.groupby("user").agg(order=("order", "first"), level=("level", "max"), p=("p", "max"))
    r1 = spearmanr(u["level"], u["order"]).statistic
    r2 = spearmanr(u["p"], u["order"]).statistic
    print(f"C-SSRS ({name}; never trained on; per user, first 4 posts): Spearman(predicted level, clinicians' 5 "
          f"levels) {r1:.3f}; Spearman(max p, levels) {r2:.3f} (n={len(u)} users)")


def dia_figures(root: Path, encoder, reply_all: pd.DataFrame, P_all: np.ndarray, model_default) -> None:
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GroupKFold

    from alliance.training.safety import fit_reply_heads

    dia = (reply_all["source"] == "diasafety").to_numpy()
    tr = ((reply_all["split"] == "train") | ~dia)
    heads = fit_reply_heads(reply_all[tr].reset_index(drop=True), P_all[tr.to_numpy()], SEED)
    va = reply_all[dia & (reply_all["split"] == "val")]
    seen = set(reply_all.loc[dia & (reply_all["split"] == "train"), "client"])
    print("\n### DiaSafety reply judgement (human labels; heads trained on train + exemplars, reported on val)")
    for head, cat in (("ignorance", "Risk Ignorance"), ("expertise", "Unauthorized Expertise")):
        v = va[va[head].notna()]
        Pv = P_all[v.index.to_numpy()]
        y = v[head].to_numpy(dtype=int)
        pred = heads[head].proba(Pv) >= heads[head].threshold
        new = ~v["client"].isin(seen).to_numpy()
        line = (f"{cat}: val accuracy {accuracy_score(y, pred):.3f}, macro-F1 {f1_score(y, pred, average='macro'):.3f} "
                f"(n={len(y)}); val contexts unseen in train: accuracy {accuracy_score(y[new], pred[new]):.3f}, "
                f"macro-F1 {f1_score(y[new], pred[new], average='macro'):.3f} (n={int(new.sum())})")
        if model_default is not None and head in model_default.reply:
            dp = model_default.reply[head].proba(Pv) >= model_default.reply[head].threshold
            line += f"; shipped default: accuracy {accuracy_score(y, dp):.3f}, macro-F1 {f1_score(y, dp, average='macro'):.3f}"
        print(line)
        # grouped CV on train: no context in two folds
        t = reply_all[dia & (reply_all["split"] == "train") & reply_all[head].notna()]
        Pt, yt, gt = P_all[t.index.to_numpy()], t[head].to_numpy(dtype=int), t["group"].to_numpy()
        pr = np.zeros(len(yt), dtype=bool)
        for a, b in GroupKFold(n_splits=FOLDS).split(Pt, yt, gt):
            sub = t.iloc[a].reset_index(drop=True)
            h = fit_reply_heads(sub[["group", head]].assign(**{k: np.nan for k in ("ignorance", "expertise",
                                "collusion", "sycophancy", "dependence") if k != head}), Pt[a], SEED)[head]
            pr[b] = h.proba(Pt[b]) >= h.threshold
        print(f"  {cat}: {FOLDS}-fold CV on train grouped by context: accuracy {accuracy_score(yt, pr):.3f}, "
              f"macro-F1 {f1_score(yt, pr, average='macro'):.3f} (n={len(yt)})")


def annomi_sessions(root: Path, model, encoder, name: str, n_sessions: int) -> None:
    """Run the lens on whole AnnoMI sessions (a seeded sample) and count sessions flagged risk_not_addressed."""
    from alliance.io import read
    from alliance.lenses.base import LensContext
    from alliance.lenses.safety import SafetyLens

    corpus = read(root / "annomi" / "AnnoMI-full.csv", format="annomi", on_error="skip").corpus
    keys = corpus.session_keys()
    rng = np.random.default_rng(SEED)  # the same sample as flag_rates (so its vectors are already cached)
    corpus = corpus.subset_sessions([keys[i] for i in sorted(rng.choice(len(keys), size=min(n_sessions, len(keys)),
                                                                        replace=False))])
    lens = SafetyLens(model=model)
    ctx = LensContext(corpus, encoder)
    ctx.add(pd.DataFrame({"alliance_bond": np.zeros(len(corpus))}, index=corpus.turns.index))
    t0 = time.perf_counter()
    cols = lens.score(corpus, ctx)
    sess = lens.summarize(corpus, cols, ctx)
    cl = corpus.turns["speaker"] == "client"
    lv = cols.loc[cl, "safety_risk_level"]
    print(f"AnnoMI sessions ({name}; {len(sess)} whole sessions, {int(cl.sum())} client turns): flagged "
          f"risk_not_addressed {int(sess['safety_flag_risk_not_addressed'].sum())}/{len(sess)}; client turns high or "
          f"imminent {int(lv.isin(['high', 'imminent']).sum())}, low {int((lv == 'low').sum())}, unknown "
          f"{int((lv == 'unknown').sum())}; counsellor turns with a concern {int(cols['safety_concern'].fillna(False).sum())}"
          f" ({time.perf_counter() - t0:.1f} s)")
    return corpus


def speed(root: Path, model, n: int = 300) -> None:
    from alliance.encoders import load_encoder
    from alliance.lenses.base import LensContext
    from alliance.lenses.safety import SafetyLens
    from alliance.training.behaviour import load_annomi

    data = load_annomi(root / "annomi" / "AnnoMI-full.csv")
    corpus = data.corpus
    corpus.turns = corpus.turns.iloc[:n].reset_index(drop=True)
    keep = set(corpus.turns["session_id"])
    corpus.sessions = corpus.sessions[corpus.sessions["session_id"].isin(keep)].reset_index(drop=True)
    raw = load_encoder(use_cache=False)
    raw.encode(["warm up"])
    t0 = time.perf_counter()
    emb = raw.encode(corpus.turns["text"].tolist())
    enc = (time.perf_counter() - t0) / n
    lens = SafetyLens(model=model)
    ctx = LensContext(corpus, raw)
    ctx._embeddings = emb
    ctx.add(pd.DataFrame({"alliance_bond": np.zeros(n)}, index=corpus.turns.index))
    t0 = time.perf_counter()
    cols = lens.score(corpus, ctx)
    lens.summarize(corpus, cols, ctx)
    lt = (time.perf_counter() - t0) / n
    print(f"\n### Speed ({n} AnnoMI turns, encoder uncached in the same run)\nencoder {enc * 1e3:.1f} ms/turn; safety "
          f"lens (score + summarize, occlusion on flagged turns encoded uncached) {lt * 1e3:.2f} ms/turn = "
          f"{lt / enc:.3f}x the encoder (target <= 0.3x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--cache")
    ap.add_argument("--per-corpus", type=int, default=1500)
    ap.add_argument("--annomi-sessions", type=int, default=30)
    ap.add_argument("--reuse-oof", action="store_true", help="reuse the cached out-of-fold risk predictions")
    ap.add_argument("--only", choices=["flags"], help="only the empathy_high_goal_task_flat distribution and rates")
    args = ap.parse_args()
    root = data_root(args.data)
    cache = cache_dir(args.cache)
    if args.only == "flags":
        flag_rates(root)
        return
    from alliance.encoders import load_encoder
    from alliance.lenses.safety_model import load_safety_model
    from alliance.training.safety import encode_pairs, encode_table, fit_model, reply_rows, risk_rows

    encoder = load_encoder()
    print(f"# validate_safety  date {time.strftime('%Y-%m-%d')}  seed {SEED}  encoder {encoder.model_id}  {FOLDS} "
          f"grouped folds  ordinary talk {args.per_corpus} client turns per corpus")
    t0 = time.perf_counter()
    from alliance.io import read
    from alliance.training.safety_data import load_ordinary

    ordinary = load_ordinary(root, args.per_corpus, SEED)
    risk = risk_rows(root / "safety", root, args.per_corpus, SEED, ordinary=ordinary)
    X = encode_table(risk, encoder)
    # AnnoMI replies of the sessions scored whole below stay out of every reply head's training
    keys = read(root / "annomi" / "AnnoMI-full.csv", format="annomi", on_error="skip").corpus.session_keys()
    rng = np.random.default_rng(SEED)
    held = {keys[i][1] for i in rng.choice(len(keys), size=min(args.annomi_sessions, len(keys)), replace=False)}
    reply = reply_rows(root / "safety", ordinary[~ordinary["group"].isin(held)])
    P = encode_pairs(reply, encoder)
    print(f"encoded {len(risk)} client texts and {len(reply)} reply pairs ({time.perf_counter() - t0:.0f} s)")
    print("\n## Risk detector: the `alliance train safety` recipe, cross-validated")
    saved = cache / "oof_recipe.parquet"
    if args.reuse_oof and saved.exists():
        oof = pd.read_parquet(saved)
        print(f"  (out-of-fold predictions reused from {saved})")
    else:
        oof = cv_risk(risk, X, reply, P, encoder.model_id)
        oof.to_parquet(saved)
    risk_figures(risk, oof, cache, "Recipe (cross-validated)")
    bhh_figures(risk, oof)
    # imminence rules: do they add recall without false alarms if used on their own? (they only grade 'imminent')
    from alliance.lenses.safety_rules import imminence

    cue = risk["text"].map(lambda s: bool(imminence(s)))
    missed_units = set(risk.loc[(risk["y_risk"] == 1) & (oof["level"] < 2) & (risk["source"] != "exemplar"), "unit"])
    added = risk.loc[cue & risk["unit"].isin(missed_units), "unit"].nunique()
    fa = cue[risk["ordinary"]].mean()
    print(f"imminence rules alone: would add {added} of {len(missed_units)} missed positive units, and fire on "
          f"{fa:.4f} of ordinary client turns (so they only grade a learned 'high' up to 'imminent')")

    print("\n## Shipped default (exemplars, with AnnoMI and ESConv train as ordinary talk; never saw these labels: transfer)")
    default = load_safety_model("default")
    po, lo, co = levels_of(default, default.risk.threshold, default.low_threshold, X)
    d_oof = pd.DataFrame({"p": po, "level": lo, "category": co}, index=risk.index)
    d_risk = risk.copy()
    # AnnoMI turns trained the default: its AnnoMI false alarms are in-sample (shown, not claimed)
    risk_figures(d_risk, d_oof, cache, "Default (transfer)")
    bhh_figures(d_risk, d_oof)

    print("\n## Final recipe model (fitted on all dev data) and C-SSRS")
    full = fit_model(risk, X, reply[reply["split"] == "train"].reset_index(drop=True),
                     P[(reply["split"] == "train").to_numpy()], encoder.model_id, SEED)
    cssrs_figures(root, full, encoder, "recipe")
    cssrs_figures(root, default, encoder, "shipped default")
    dia_figures(root, encoder, reply, P, default)

    print("\n## Whole sessions")
    no_annomi = risk["source"] != "annomi"
    loo = fit_model(risk[no_annomi].reset_index(drop=True), X[no_annomi.to_numpy()], reply.iloc[:0], P[:0],
                    encoder.model_id, SEED)
    loo.reply = full.reply
    annomi_sessions(root, loo, encoder, "recipe trained without AnnoMI", args.annomi_sessions)
    annomi_sessions(root, default, encoder, "shipped default (trained on other AnnoMI turns' sample)",
                    args.annomi_sessions)
    speed(root, default)




def flag_rates(root: Path, n_sessions: int = 30, n_kokoro: int = 10) -> None:
    """Distribution of the inputs of safety_flag_empathy_high_goal_task_flat per corpus (a seeded sample of whole
    sessions scored by the alliance, empathy and safety lenses), and how often the flag fires at the lens's
    thresholds. The thresholds in lenses/safety_flags.py were read from this printout (docs/safety.md)."""
    from alliance.encoders import load_encoder
    from alliance.io import read
    from alliance.lenses.safety_flags import EMPATHY_HIGH, FLAT_SLOPE
    from alliance.pipeline import analyze, build_lenses

    encoder = load_encoder()
    sources = {"annomi": (root / "annomi" / "AnnoMI-full.csv", "annomi"),
               "esconv": (root / "esconv" / "hf_format" / "test.json", "esconv"),
               "kokorochat": (sorted((root / "kokorochat_en" / "English").glob("*.json"))[:200], "kokorochat")}
    rows = []
    for name, (path, fmt) in sources.items():
        corpus = read(path, format=fmt, on_error="skip").corpus
        keys = corpus.session_keys()
        rng = np.random.default_rng(SEED)
        n = n_kokoro if name == "kokorochat" else n_sessions  # KokoroChat sessions are ~90 turns long
        pick = [keys[i] for i in sorted(rng.choice(len(keys), size=min(n, len(keys)), replace=False))]
        corpus = corpus.subset_sessions(pick)
        t0 = time.perf_counter()
        lenses = build_lenses(["alliance", "empathy", "safety"], {"empathy": {"rationales": False}})
        a = analyze(corpus, lenses, encoder=encoder, seed=SEED)
        s = a.sessions.assign(corpus=name)
        rows.append(s)
        print(f"{name}: {len(s)} sessions, {len(corpus)} turns scored ({time.perf_counter() - t0:.0f} s)", flush=True)
    s = pd.concat(rows, ignore_index=True)
    s.to_parquet(cache_dir(None) / "flag_rates_sessions.parquet")
    q = s[["safety_empathy_mean"]].quantile([0.25, 0.5, 0.75, 0.9]).T
    print(f"\n### empathy_high_goal_task_flat inputs ({len(s)} sessions pooled)")
    print("session mean counsellor empathy_total, quantiles 25/50/75/90%: " + ", ".join(f"{v:.2f}" for v in q.iloc[0]))
    for c in ("safety_goal_slope", "safety_task_slope"):
        a = s[c].abs()
        print(f"|{c.removeprefix('safety_')}| quantiles 25/50/75%: " + ", ".join(
            f"{v:.2f}" for v in a.quantile([0.25, 0.5, 0.75])))
    print(f"flag rates at empathy_high={EMPATHY_HIGH}, flat_slope={FLAT_SLOPE}: " + ", ".join(
        f"{k} {int(g['safety_flag_empathy_high_goal_task_flat'].sum())}/{len(g)}" for k, g in s.groupby("corpus")))
    for k, g in s.groupby("corpus"):
        print(f"{k}: risk_not_addressed {int(g['safety_flag_risk_not_addressed'].sum())}/{len(g)}, "
              f"bond_high_while_concern {int(g['safety_flag_bond_high_while_concern'].fillna(False).sum())}/{len(g)}")


if __name__ == "__main__":
    main()
