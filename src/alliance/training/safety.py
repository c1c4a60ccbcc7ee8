"""Train the safety lens's model: risk heads on client turns and reply heads on (turn, reply) pairs, seeded, on CPU.

Evidence: the labelled safety sources' own labels (alliance.training.safety_data) plus the project's written exemplars,
with ordinary counselling talk as negatives; thresholds and calibration come from grouped out-of-fold predictions.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.encoders.base import Encoder
from alliance.lenses.safety_model import (
    CATEGORIES,
    REPLY_HEADS,
    Binary,
    SafetyModel,
    pair_features,
    turn_features,
)
from alliance.training import safety_data as sd

MODEL_VERSION = "2.0.0"
C_RISK = 1.0
C_REPLY = 1.0
#: the stated false-alarm rate on ordinary client turns at the default operating point, and for level 'low'
FALSE_ALARM = 0.02
FALSE_ALARM_LOW = 0.05
#: how many messages of a positive Between Help and Harm item count as positives (multiple-instance refinement:
#: an item's label is for the whole chat, so only its most risk-like messages carry it)
MIL_TOP = 2
EXEMPLARS = "exemplars_v2.json"

Progress = Callable[[str], None] | None


@dataclass
class RiskTable:
    """Client texts with labels: ``y_risk``/``y_plan`` (1, 0 or NaN = not used), ``category``, ``group`` (never split
    across folds), ``unit`` (what recall counts: an item, a text) and ``source``."""

    frame: pd.DataFrame
    X: np.ndarray


def load_exemplars() -> dict[str, Any]:
    text = resources.files("alliance.data.safety").joinpath(EXEMPLARS).read_text(encoding="utf-8")
    doc = json.loads(text)
    for i, row in enumerate(doc.get("client", [])):
        if len(row) != 3 or (row[0] not in (*CATEGORIES, "none")) or row[1] not in ("none", "low", "high", "imminent"):
            raise ValueError(f"alliance:data/safety/{EXEMPLARS}: client item {i}: expected [category, level, text]")
    for i, row in enumerate(doc.get("reply", [])):
        if len(row) != 3 or row[2] not in ("adequate", "dismissal", "means_info", "collusion", "sycophancy",
                                           "dependence", "expertise"):
            raise ValueError(f"alliance:data/safety/{EXEMPLARS}: reply item {i}: expected [client, reply, kind]")
    return doc


def exemplar_client_rows() -> pd.DataFrame:
    rows = []
    for i, (cat, level, text) in enumerate(load_exemplars()["client"]):
        risk = 1.0 if level in ("high", "imminent") and cat not in ("endangering_plan", "none") else (
            0.0 if level == "none" else np.nan)
        plan = 1.0 if cat == "endangering_plan" else (0.0 if cat == "none" else np.nan)
        rows.append({"source": "exemplar", "text": text, "group": f"ex{i}", "unit": f"ex{i}", "y_risk": risk,
                     "y_plan": plan, "category": cat if cat != "none" else ""})
    return pd.DataFrame(rows)


def risk_rows(safety_root: Path | None, data_root: Path | None, per_corpus: int = 1500, seed: int = 0,
              sources: tuple[str, ...] = ("exemplar", "bhh", "moderation", "xstest", "ordinary"),
              ordinary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The client-side training table (see :class:`RiskTable`), from the sources asked for."""
    parts = []
    if "exemplar" in sources:
        parts.append(exemplar_client_rows())
    if safety_root is not None and "bhh" in sources:
        b = sd.load_bhh(safety_root)
        risk = b["risk"].map({True: 1.0, False: 0.0}).astype(float)
        plan = np.where(b["category"] == "endangering_plan", 1.0, np.where(b["label"] == "no_crisis", 0.0, np.nan))
        parts.append(pd.DataFrame({"source": "bhh", "text": b["text"], "group": "bhh" + b["item"],
                                   "unit": "bhh" + b["item"], "y_risk": risk, "y_plan": plan,
                                   "category": b["category"], "bag": True, "label": b["label"]}))
    if safety_root is not None and "moderation" in sources:
        m = sd.load_moderation(safety_root)
        parts.append(pd.DataFrame({"source": "moderation", "text": m["text"], "group": "mod" + m["group"],
                                   "unit": "mod" + m["group"], "y_risk": m["sh"].astype(float),
                                   "y_plan": np.where(m["sh"], np.nan, 0.0), "category": ""}))
    if safety_root is not None and "xstest" in sources:
        x = sd.load_xstest(safety_root)
        x = x[x["safe"]]  # unsafe XSTest prompts are harmful requests, not disclosures of the writer's risk
        parts.append(pd.DataFrame({"source": "xstest", "text": x["text"], "group": x["group"], "unit": x["group"],
                                   "y_risk": 0.0, "y_plan": 0.0, "category": ""}))
    if data_root is not None and "ordinary" in sources:
        o = ordinary if ordinary is not None else sd.load_ordinary(data_root, per_corpus, seed)
        parts.append(pd.DataFrame({"source": o["source"], "text": o["text"], "group": o["group"],
                                   "unit": o["group"] + ":" + o.index.astype(str), "y_risk": 0.0, "y_plan": 0.0,
                                   "category": ""}))
    df = pd.concat(parts, ignore_index=True)
    df["bag"] = df.get("bag", pd.Series(False, index=df.index)).fillna(False).astype(bool)
    df["category"] = df["category"].fillna("")
    df["ordinary"] = df["source"].isin(("annomi", "esconv", "kokorochat"))
    return df


def encode_table(df: pd.DataFrame, encoder: Encoder, progress: Progress = None, batch: int = 512) -> np.ndarray:
    texts = df["text"].astype(str).tolist()
    out = []
    for i in range(0, len(texts), batch):
        out.append(encoder.encode(texts[i:i + batch]))
        if progress:
            progress(f"encoded {min(i + batch, len(texts))}/{len(texts)} client texts")
    return turn_features(np.vstack(out)) if out else np.zeros((0, 384), dtype=np.float32)


# --- fitting ------------------------------------------------------------------------------------------------------
def _logit(X: np.ndarray, y: np.ndarray, seed: int, C: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
    m.fit(X, y.astype(int))
    return m.coef_[0].astype(np.float32), float(m.intercept_[0])


def _oof_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, C: float, folds: int = 4) -> np.ndarray:
    """Grouped out-of-fold decision scores (no group in two folds)."""
    from sklearn.model_selection import GroupKFold

    z = np.zeros(len(y))
    n = min(folds, len(set(groups)))
    for tr, te in GroupKFold(n_splits=n).split(X, y, groups):
        if len(set(y[tr])) < 2:
            continue
        w, b = _logit(X[tr], y[tr], seed, C)
        z[te] = X[te] @ w + b
    return z


def _platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Calibration of decision scores into probabilities (Platt scaling on out-of-fold scores)."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=2000).fit(z.reshape(-1, 1), y.astype(int))
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def _refine_bags(df: pd.DataFrame, z: np.ndarray, col: str) -> np.ndarray:
    """Multiple-instance labels: in each positive bag (a Between Help and Harm item), only the ``MIL_TOP`` most
    risk-like messages stay positive; the rest are left out (neither positive nor negative)."""
    y = df[col].to_numpy(dtype=float).copy()
    pos_bag = (df["bag"] & (df[col] == 1.0)).to_numpy()
    if pos_bag.any():
        sub = pd.DataFrame({"unit": df["unit"].to_numpy()[pos_bag], "z": z[pos_bag]}, index=np.flatnonzero(pos_bag))
        rank = sub.groupby("unit")["z"].rank(ascending=False, method="first")
        y[rank.index[rank > MIL_TOP]] = np.nan
    return y


def fit_binary(df: pd.DataFrame, X: np.ndarray, col: str, seed: int, false_alarm: float,
               progress: Progress = None) -> tuple[Binary, np.ndarray]:
    """One risk-side head: a first grouped out-of-fold pass picks each positive item's messages, a second gives the
    scores for calibration and the threshold (the calibrated p exceeded by ``false_alarm`` of ordinary turns)."""
    groups = df["group"].to_numpy()
    y0 = df[col].to_numpy(dtype=float)
    use = ~np.isnan(y0)
    z = np.zeros(len(df))
    if df["bag"].any():
        z[use] = _oof_scores(X[use], y0[use], groups[use], seed, C_RISK)
        y = _refine_bags(df, z, col)
    else:
        y = y0
    use = ~np.isnan(y)
    z[use] = _oof_scores(X[use], y[use], groups[use], seed, C_RISK)
    calib = _platt(z[use], y[use])
    p = 1.0 / (1.0 + np.exp(-(calib[0] * z + calib[1])))
    neg = use & df["ordinary"].to_numpy() if df["ordinary"].any() else use & (y == 0)
    thr = float(np.quantile(p[neg], 1.0 - false_alarm)) if neg.any() else 0.5
    w, b = _logit(X[use], y[use], seed, C_RISK)
    if progress:
        progress(f"{col}: fitted on {int(use.sum())} texts ({int((y[use] == 1).sum())} positive)")
    p_oof = np.where(use, p, np.nan)
    return Binary(w, b, calib, thr), p_oof


def fit_category(df: pd.DataFrame, X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial category head on positive texts (risk or plan) with a known category; classes = CATEGORIES."""
    from sklearn.linear_model import LogisticRegression

    ok = (df["category"].isin(CATEGORIES) & ((df["y_risk"] == 1) | (df["y_plan"] == 1))).to_numpy()
    y = df["category"].to_numpy()[ok]
    m = LogisticRegression(C=C_RISK, class_weight="balanced", max_iter=3000, random_state=seed)
    m.fit(X[ok], y)
    coef = np.zeros((len(CATEGORIES), X.shape[1]), dtype=np.float32)
    icpt = np.full(len(CATEGORIES), -1e3, dtype=np.float32)  # a class with no training text is never predicted
    for k, c in enumerate(m.classes_):
        j = CATEGORIES.index(c)
        if len(m.classes_) == 2:  # sklearn keeps one row for two classes
            coef[j] = m.coef_[0] * (1 if k == 1 else -1) / 2
            icpt[j] = m.intercept_[0] * (1 if k == 1 else -1) / 2
        else:
            coef[j], icpt[j] = m.coef_[k], m.intercept_[k]
    return coef, icpt


def dev_curve(p: np.ndarray, df: pd.DataFrame) -> list[dict[str, float]]:
    """Recall of positive units (an item counts when any of its texts is flagged) and the false-alarm rate on
    ordinary client turns, over a grid of thresholds (the operating points a user can choose from)."""
    pos_units = set(df.loc[df["y_risk"] == 1, "unit"])
    unit_max = pd.Series(p, index=df.index).groupby(df["unit"]).max()
    pos = unit_max[unit_max.index.isin(pos_units)].to_numpy()
    ordn = p[df["ordinary"].to_numpy() & ~np.isnan(p)]
    out = []
    for t in np.unique(np.quantile(np.concatenate([pos, ordn]), np.linspace(0.3, 0.999, 60))):
        out.append({"threshold": round(float(t), 5), "recall": round(float((pos >= t).mean()), 4) if len(pos) else 0.0,
                    "false_alarm": round(float((ordn >= t).mean()), 4) if len(ordn) else 0.0})
    return out


# --- reply heads --------------------------------------------------------------------------------------------------
def reply_rows(safety_root: Path | None, ordinary: pd.DataFrame | None = None) -> pd.DataFrame:
    """(client, reply) pairs with one 0/1/NaN column per reply head, from exemplars and, given, DiaSafety train and
    ordinary counsellor replies (AnnoMI: negatives for collusion, sycophancy and dependence, which are rare there)."""
    rows = []
    if ordinary is not None and "next" in ordinary:
        o = ordinary[(ordinary["next"].str.strip() != "") & (ordinary["source"] == "annomi")]
        for r in o.itertuples():
            rows.append({"source": "ordinary", "client": r.text, "reply": r.next, "group": r.group, "split": "train",
                         "ignorance": np.nan, "expertise": np.nan, "collusion": 0.0, "sycophancy": 0.0,
                         "dependence": 0.0})
    for _i, (client, reply, kind) in enumerate(load_exemplars()["reply"]):
        r = {"source": "exemplar", "client": client, "reply": reply, "group": f"exr{client}", "split": "train"}
        for h in REPLY_HEADS:
            r[h] = np.nan
        r["ignorance"] = 1.0 if kind == "dismissal" else (0.0 if kind == "adequate" else np.nan)
        r["expertise"] = 1.0 if kind in ("expertise", "means_info") else (0.0 if kind == "adequate" else np.nan)
        for h in ("collusion", "sycophancy", "dependence"):
            r[h] = 1.0 if kind == h else 0.0
        rows.append(r)
    if safety_root is not None:
        d = sd.load_diasafety(safety_root)
        for r in d.itertuples():
            head = "ignorance" if r.category == "Risk Ignorance" else "expertise"
            row = {"source": "diasafety", "client": r.context, "reply": r.response, "group": r.group,
                   "split": r.split, **{h: np.nan for h in REPLY_HEADS}}
            row[head] = float(r.unsafe)
            # a safe DiaSafety reply is a plain chatbot reply: a negative for the exemplar-only heads too
            if not r.unsafe:
                for h in ("collusion", "sycophancy", "dependence"):
                    row[h] = 0.0
            rows.append(row)
    return pd.DataFrame(rows)


def encode_pairs(df: pd.DataFrame, encoder: Encoder, progress: Progress = None) -> np.ndarray:
    texts = list(dict.fromkeys(df["client"].tolist() + df["reply"].tolist()))
    vec = {}
    for i in range(0, len(texts), 512):
        chunk = texts[i:i + 512]
        for t, v in zip(chunk, encoder.encode(chunk), strict=True):
            vec[t] = v
        if progress:
            progress(f"encoded {min(i + 512, len(texts))}/{len(texts)} reply-pair texts")
    c = np.stack([vec[t] for t in df["client"]]) if len(df) else np.zeros((0, 384))
    r = np.stack([vec[t] for t in df["reply"]]) if len(df) else np.zeros((0, 384))
    return pair_features(c, r)


def fit_reply_heads(df: pd.DataFrame, P: np.ndarray, seed: int) -> dict[str, Binary]:
    """Each reply head: logistic on pair features, Platt-calibrated on grouped out-of-fold scores, threshold at the
    best macro-F1 of those scores."""
    from sklearn.metrics import f1_score

    heads = {}
    groups = df["group"].to_numpy()
    for h in REPLY_HEADS:
        y = df[h].to_numpy(dtype=float)
        use = ~np.isnan(y)
        if len(set(y[use])) < 2:
            continue
        z = _oof_scores(P[use], y[use], groups[use], seed, C_REPLY, folds=4)
        calib = _platt(z, y[use])
        p = 1.0 / (1.0 + np.exp(-(calib[0] * z + calib[1])))
        grid = np.linspace(0.2, 0.8, 25)
        thr = float(grid[int(np.argmax([f1_score(y[use], p >= t, average="macro") for t in grid]))])
        w, b = _logit(P[use], y[use], seed, C_REPLY)
        heads[h] = Binary(w, b, calib, thr)
    return heads


# --- the whole recipe ---------------------------------------------------------------------------------------------
def fit_model(risk: pd.DataFrame, X: np.ndarray, reply: pd.DataFrame, P: np.ndarray, model_id: str, seed: int = 0,
              progress: Progress = None, meta: dict[str, Any] | None = None) -> SafetyModel:
    risk_head, p_oof = fit_binary(risk, X, "y_risk", seed, FALSE_ALARM, progress)
    plan_head, _ = fit_binary(risk, X, "y_plan", seed, FALSE_ALARM / 2, progress)
    ordn = risk["ordinary"].to_numpy() & ~np.isnan(p_oof)
    low = float(np.quantile(p_oof[ordn], 1.0 - FALSE_ALARM_LOW)) if ordn.any() else risk_head.threshold / 2
    low = min(low, risk_head.threshold)
    cat_coef, cat_b = fit_category(risk, X, seed)
    heads = fit_reply_heads(reply, P, seed)
    curve = dev_curve(p_oof, risk)
    at = min(curve, key=lambda c: abs(c["threshold"] - risk_head.threshold)) if curve else {}
    op = {"name": f"false alarms <= {FALSE_ALARM:.0%} of ordinary client turns (dev, out-of-fold)",
          "threshold": round(risk_head.threshold, 5), "dev_recall": at.get("recall"),
          "dev_false_alarm": at.get("false_alarm")}
    counts = risk.groupby("source").agg(texts=("text", "size"), positives=("y_risk", lambda s: int((s == 1).sum())))
    meta = {"version": MODEL_VERSION, "model_id": model_id, "seed": seed, "operating_point": op, "dev_curve": curve,
            "low_threshold_false_alarm": FALSE_ALARM_LOW, "C": C_RISK, "mil_top": MIL_TOP,
            "risk_sources": {k: {kk: int(vv) for kk, vv in v.items()} for k, v in counts.to_dict("index").items()},
            "reply_sources": {k: int(v) for k, v in reply["source"].value_counts().items()},
            "reply_thresholds": {k: round(v.threshold, 4) for k, v in heads.items()},
            "python": platform.python_version(), **(meta or {})}
    return SafetyModel(risk_head, plan_head, cat_coef, cat_b, heads, low, meta)


def train_safety(safety_root: Path | None, data_root: Path | None, encoder: Encoder, seed: int = 0,
                 per_corpus: int = 1500, kind: str = "trained", progress: Progress = None) -> SafetyModel:
    """Build the model: ``kind='trained'`` from the user's safety sources, ordinary-talk corpora and the exemplars;
    ``kind='default'`` (what ships) from the exemplars, with ordinary talk from public-domain AnnoMI and ESConv's
    train split (CC BY-NC 4.0, the terms the shipped reaction model already carries) as negatives: never from the
    safety sources, whose terms forbid shipping derived weights. ESConv's valid and test dialogues stay unseen, so
    the default's false alarms there (and on KokoroChat) are transfer figures."""
    ordinary = sd.load_ordinary(data_root, per_corpus, seed) if data_root is not None else None
    if kind == "default":
        if ordinary is not None:
            keep = (ordinary["source"] == "annomi") | ordinary["group"].str.startswith("esconv-train-")
            ordinary = ordinary[keep].reset_index(drop=True)
        risk = risk_rows(None, data_root, per_corpus, seed, sources=("exemplar", "ordinary"), ordinary=ordinary)
        reply = reply_rows(None, ordinary)
    else:
        risk = risk_rows(safety_root, data_root, per_corpus, seed, ordinary=ordinary)
        reply = reply_rows(safety_root, ordinary)
        reply = reply[reply["split"] == "train"].reset_index(drop=True)
    X = encode_table(risk, encoder, progress)
    P = encode_pairs(reply, encoder, progress)
    return fit_model(risk, X, reply, P, encoder.model_id, seed, progress,
                     {"kind": kind, "per_corpus": per_corpus,
                      "sources_root": {"safety": str(safety_root) if safety_root else None,
                                       "ordinary": str(data_root) if data_root else None}})


def model_card(model: SafetyModel) -> str:
    """MODEL_CARD.md text for a trained model: data, licences, the operating point, intended use, failure modes."""
    m = model.meta
    op = m.get("operating_point", {})
    src = "\n".join(f"| {k} | {v['texts']} | {v['positives']} |" for k, v in m.get("risk_sources", {}).items())
    rep = ", ".join(f"{k} {v}" for k, v in m.get("reply_sources", {}).items())
    if m.get("kind") == "default":
        licence = ("Licences: the exemplars were written for this project (CC0-1.0, data/safety/exemplars_v2.json); "
                   "AnnoMI is public domain; ESConv (train split, ordinary talk only) is CC BY-NC 4.0 for academic "
                   "research, so these weights are for non-commercial research use, as the shipped reaction model's "
                   "are. No safety source (whose terms forbid shipping derived weights) was used. "
                   "Rebuild: `alliance train safety --default --ordinary ../shared/data --out src/alliance/data/safety`.")
    else:
        licence = ("Licences: the research sources keep their own terms (see the safety data README). This file is "
                   "derived from them: keep it on your machine, never commit or ship it.")
    return f"""# Safety model ({m.get('kind', 'trained')}), version {m.get('version')}

Built by `alliance train safety` (seed {m.get('seed')}) on frozen `{m.get('model_id')}` sentence embeddings.
Logistic heads: client risk (high or imminent), endangering plan, category; reply heads {', '.join(model.reply)}.

## Data (client side: texts / high-or-imminent positives)

| source | texts | positives |
|---|---|---|
{src}

Reply pairs: {rep}. {licence}

## Operating point

{op.get('name')}: threshold {op.get('threshold')} on the calibrated probability; out-of-fold dev recall
{op.get('dev_recall')} and false-alarm rate {op.get('dev_false_alarm')} on ordinary client turns. Level 'low' starts at
{model.low_threshold:.4f} ({m.get('low_threshold_false_alarm'):.0%} of ordinary turns). Other points: the lens
options `threshold=` or `recall=` (`alliance analyze --safety-threshold/--safety-recall`).

## Intended use and limits

Screening English counselling and chatbot transcripts for risk disclosures and inadequate replies, for human review.
Not a diagnostic or crisis-triage tool. Known failure modes: indirect or culturally specific disclosures; long
multi-topic turns (one vector per turn); silver labels in Between Help and Harm; categories of harm to others and
abuse rest on few examples. See docs/safety.md and docs/validation.md for the cross-validated figures.
"""
