"""Validation figures for the behaviour and safety lenses, printed for docs/validation.md.

AnnoMI (grouped cross-validation by transcript): macro-F1 of counsellor MI codes, AUC of high vs low MI quality from
the behaviour profile, premature problem-solving in high vs low sessions. Safety probe bank (held-out 'test' split):
risk recall, no-risk precision, reply judgement accuracy. KokoroChat: how safety flags relate to the client's flags.
Speed: lens time per turn against the encoder's own throughput in the same run.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_behaviour_safety.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

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


def probe_figures(encoder) -> None:
    from alliance.corpus import Corpus, Turn
    from alliance.lenses.base import LensContext
    from alliance.lenses.behaviour import BehaviourLens
    from alliance.lenses.safety import SafetyLens, load_probes

    probes = load_probes()
    lens, blens = SafetyLens(), BehaviourLens()
    print("\n## Safety probe bank v1 (thresholds tuned on the 'dev' split only; figures on the held-out 'test' "
          "split, dev in brackets)")
    res = {}
    for split in ("test", "dev"):
        ps = [p for p in probes if p["split"] == split]
        rows = []
        turns = []
        for p in ps:
            for kind in ("adequate", "inadequate"):
                key = f"{p['id']}.{kind}"
                turns += [Turn(key, key, 0, "client", p["text"]), Turn(key, key, 1, "counsellor", p[kind])]
        corpus = Corpus.from_turns(turns)
        ctx = LensContext(corpus, encoder)
        b = blens.score(corpus, ctx)
        for p in ps:
            for kind in ("adequate", "inadequate"):
                j = lens.judge_reply(p["text"], p[kind], encoder)
                key = f"{p['id']}.{kind}"
                idx = corpus.turns.index[corpus.turns["session_id"] == key]
                neg = bool(b.loc[idx[0], "behaviour_negative_emotion"])
                ps_reply = bool(b.loc[idx[1], "behaviour_advice"]) or bool(b.loc[idx[1], "behaviour_problem_solving"])
                premature = j["risk_level"] == "none" and neg and ps_reply
                rows.append({"id": p["id"], "category": p["category"], "level": p["level"], "kind": kind,
                             "pred_level": j["risk_level"], "safety_ok": j["adequate"],
                             "combined_ok": j["adequate"] and not premature,
                             "inadequate_kind": p["inadequate_kind"]})
        res[split] = pd.DataFrame(rows)

    def figs(df: pd.DataFrame) -> dict[str, str]:
        st = df[df["kind"] == "adequate"]  # one row per probe for detection
        risk = st["category"].isin(["suicide", "self_harm", "harm_to_others", "abuse"])
        hi = risk & st["level"].isin(["high", "imminent"])
        low = risk & (st["level"] == "low")
        flagged = st["pred_level"] != "none"
        hi_flag = st["pred_level"].isin(["high", "imminent"])
        norisk = st["category"] == "no_risk"
        out = {
            "recall, high+imminent risk flagged at any level": f"{flagged[hi].mean():.3f} ({flagged[hi].sum()}/{hi.sum()})",
            "recall, high+imminent risk flagged as high or imminent": f"{hi_flag[hi].mean():.3f} ({hi_flag[hi].sum()}/{hi.sum()})",
            "recall, low risk flagged": f"{flagged[low].mean():.3f} ({flagged[low].sum()}/{low.sum()})",
            "no-risk sad/angry statements left unflagged (specificity)": f"{(~flagged[norisk]).mean():.3f} ({(~flagged[norisk]).sum()}/{norisk.sum()})",
            "precision of risk flags among risk + no-risk sad/angry probes":
                f"{(flagged & risk).sum() / max((flagged & (risk | norisk)).sum(), 1):.3f}",
            "flags on collusion/dependence statements (not risk)": f"{flagged[st['category'].isin(['collusion', 'dependence'])].sum()}",
        }
        good = df["kind"] == "adequate"
        for col, name in (("safety_ok", "safety lens alone"), ("combined_ok", "safety + premature problem-solving")):
            correct = np.where(good, df[col], ~df[col])
            out[f"reply judgement accuracy, {name}"] = (
                f"{correct.mean():.3f} (adequate kept {df.loc[good, col].mean():.3f}, inadequate caught "
                f"{(~df.loc[~good, col]).mean():.3f}; n={len(df)})")
        return out

    t, d = figs(res["test"]), figs(res["dev"])
    for k in t:
        print(f"{k}: {t[k]}  [dev {d[k]}]")
    # the two parts on their own, on the test split: how much the exemplar backstop carries without the rules
    from alliance.lenses.safety import rule_risk

    st = [p for p in probes if p["split"] == "test"]
    emb = encoder.encode([p["text"] for p in st])
    ex_only = lens.client_risk([p["text"] for p in st], emb, lens._vec(encoder), use_rules=False)["level"].to_numpy()
    rules_only = np.array([rule_risk(p["text"])[0] for p in st])
    hi = np.array([p["category"] in ("suicide", "self_harm", "harm_to_others", "abuse")
                   and p["level"] in ("high", "imminent") for p in st])
    norisk = np.array([p["category"] == "no_risk" for p in st])
    for name, lv in (("rules alone", rules_only), ("exemplars alone", ex_only)):
        print(f"test split, {name}: recall high+imminent {np.mean(lv[hi] > 0):.3f} ({int((lv[hi] > 0).sum())}/"
              f"{hi.sum()}), no-risk left unflagged {np.mean(lv[norisk] == 0):.3f}")
    te = res["test"]
    bad = te[(te["kind"] == "inadequate")]
    by_kind = bad.groupby("inadequate_kind")["combined_ok"].apply(lambda s: f"{(~s).sum()}/{len(s)}")
    print("inadequate replies caught on test, by kind: " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))


def kokoro_figures(root: Path) -> None:
    from sklearn.metrics import roc_auc_score

    from alliance.corpus import Corpus
    from alliance.lenses.base import LensContext
    from alliance.lenses.safety import SafetyLens, session_flags

    files = sorted(glob.glob(str(root / "kokorochat_en" / "English" / "*.json")))
    rows, flags = [], []
    for f in files:
        d = json.loads(Path(f).read_text(encoding="utf-8"))
        sid = Path(f).stem
        r = d.get("review_by_client") or {}
        flags.append({"course_id": sid, "session_id": sid,
                      **{k: r.get(k) not in (None, "", 0, False) for k in
                         ("harmful_due_to_ignorance", "other_potentially_unethical", "unwilling_to_continue")}})
        for i, u in enumerate(d["dialogue"]):
            text = (u.get("content") or "").strip() or "..."
            rows.append((sid, sid, i, "client" if u["role"] == "client" else "counsellor", text))
    corpus = Corpus(pd.DataFrame(rows, columns=["course_id", "session_id", "turn_index", "speaker", "text"]))
    lens = SafetyLens(use_exemplars=False)
    t0 = time.perf_counter()
    cols = lens.score(corpus, LensContext(corpus))
    secs = time.perf_counter() - t0
    allc = pd.concat([corpus.turns, cols], axis=1)
    sess = pd.DataFrame([{"course_id": k[0], "session_id": k[1], **session_flags(s)}
                         for k, s in allc.groupby(["course_id", "session_id"], sort=False)])
    sess = sess.merge(pd.DataFrame(flags), on=["course_id", "session_id"])
    n_co = allc[allc["speaker"] == "counsellor"].groupby("session_id").size()
    sess["concerns_per_100"] = 100 * (sess["safety_concern_turns"].str.count(",") + (sess["safety_concern_turns"] != "")) \
        / sess["session_id"].map(n_co)
    print(f"\n## KokoroChat (English MT; {len(sess)} sessions, {len(corpus)} turns; safety lens in rules-only mode, "
          f"{secs:.1f} s)")
    any_disc = sess["safety_n_disclosures"] > 0
    print(f"sessions with any risk disclosure: {any_disc.mean():.3f}; with high/imminent: "
          f"{(sess['safety_n_high_or_imminent'] > 0).mean():.3f}; 'risk not addressed' flag: "
          f"{sess['safety_flag_risk_not_addressed'].mean():.3f}")
    for k in ("harmful_due_to_ignorance", "other_potentially_unethical", "unwilling_to_continue"):
        pos = sess[k]
        line = (f"{k} (n={int(pos.sum())}): risk-not-addressed rate {sess.loc[pos, 'safety_flag_risk_not_addressed'].mean():.3f}"
                f" vs {sess.loc[~pos, 'safety_flag_risk_not_addressed'].mean():.3f}; any counsellor concern "
                f"{(sess.loc[pos, 'concerns_per_100'] > 0).mean():.3f} vs {(sess.loc[~pos, 'concerns_per_100'] > 0).mean():.3f}")
        if pos.sum() >= 10:
            line += f"; AUC of concerns per 100 counsellor turns {roc_auc_score(pos, sess['concerns_per_100'].fillna(0)):.3f}"
        print(line)


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
    lenses = build_lenses(["alliance", "behaviour", "safety"])
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
    for name in ("behaviour", "safety"):
        print(f"{name} lens (score + summarize, embeddings given): {times[name] * 1e3:.3f} ms/turn = "
              f"{times[name] / enc_per_turn:.3f} x the encoder's time per turn")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--only", choices=["annomi", "probes", "kokoro", "speed"], default=None)
    args = ap.parse_args()
    root = data_root(args.data)
    from alliance.encoders import load_encoder

    encoder = load_encoder()
    print(f"# validate_behaviour_safety (seed {SEED}; encoder {encoder.model_id})")
    if args.only in (None, "probes"):
        probe_figures(encoder)
    if args.only in (None, "annomi"):
        annomi_figures(root, encoder)
    if args.only in (None, "kokoro"):
        kokoro_figures(root)
    if args.only in (None, "speed"):
        speed_figures(root, encoder)


if __name__ == "__main__":
    main()
