"""Train the behaviour lens's MI head: logistic regression per code on frozen sentence embeddings of AnnoMI turns.

Evidence: AnnoMI's utterance annotations (Wu et al. 2022), one annotator per transcript; cross-validation is grouped
by transcript so no session is both trained and scored on. Seeded and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import Corpus
from alliance.encoders.base import Encoder
from alliance.lenses.behaviour import BehaviourHead, best_f1_threshold, head_features, resolve_exclusive

#: code -> (side, AnnoMI column, value that means the code is present)
ANNOMI_CODES: dict[str, tuple[str, str, str]] = {
    "reflection_simple": ("counsellor", "reflection_subtype", "simple"),
    "reflection_complex": ("counsellor", "reflection_subtype", "complex"),
    "question_open": ("counsellor", "question_subtype", "open"),
    "question_closed": ("counsellor", "question_subtype", "closed"),
    "information": ("counsellor", "therapist_input_subtype", "information"),
    "advice": ("counsellor", "therapist_input_subtype", "advice"),
    "options": ("counsellor", "therapist_input_subtype", "options"),
    "negotiation": ("counsellor", "therapist_input_subtype", "negotiation"),
    "change_talk": ("client", "client_talk_type", "change"),
    "sustain_talk": ("client", "client_talk_type", "sustain"),
}
REGULARISATION_C = 1.0
HEAD_VERSION = "1.0.0"
#: hashed word n-gram features appended to the two embeddings (a measured gain on AnnoMI, see docs/behaviour.md)
N_HASH = 2**12


@dataclass
class AnnoMIData:
    corpus: Corpus
    labels: pd.DataFrame  # one boolean column per code, aligned to corpus.turns
    groups: np.ndarray  # transcript id per turn
    quality: pd.Series  # 'high'/'low' per (course_id, session_id)


def load_annomi(csv_path: str | Path) -> AnnoMIData:
    """AnnoMI-full.csv as a corpus plus per-turn code labels (the lowest annotator id of multi-annotator sessions)."""
    path = Path(csv_path)
    df = pd.read_csv(path)
    need = {"transcript_id", "utterance_id", "interlocutor", "utterance_text", "annotator_id", "mi_quality",
            *(col for _, col, _ in ANNOMI_CODES.values())}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; is this AnnoMI-full.csv?")
    first = df.groupby("transcript_id")["annotator_id"].transform("min")
    df = df[df["annotator_id"] == first].sort_values(["transcript_id", "utterance_id"]).reset_index(drop=True)
    df["utterance_text"] = df["utterance_text"].fillna("").astype(str)
    df.loc[df["utterance_text"].str.strip() == "", "utterance_text"] = "..."
    sid = "annomi-" + df["transcript_id"].astype(str)
    turns = pd.DataFrame({"course_id": sid, "session_id": sid, "turn_index": df["utterance_id"].astype(int),
                          "speaker": df["interlocutor"].map({"therapist": "counsellor", "client": "client"}),
                          "text": df["utterance_text"]})
    for code, (_, col, val) in ANNOMI_CODES.items():
        turns[f"y_{code}"] = (df[col].astype(str) == val).to_numpy()
    sessions = (df.assign(course_id=sid, session_id=sid).groupby(["course_id", "session_id"], sort=False)
                ["mi_quality"].first().reset_index())
    sessions["meta"] = [{"mi_quality": q} for q in sessions["mi_quality"]]
    corpus = Corpus(turns, sessions[["course_id", "session_id", "meta"]])
    ycols = [f"y_{c}" for c in ANNOMI_CODES]
    labels = corpus.turns[ycols].rename(columns=lambda c: c[2:]).astype(bool)
    corpus.turns = corpus.turns.drop(columns=ycols)
    quality = corpus.session_meta("mi_quality")
    groups = corpus.turns["course_id"].to_numpy()
    return AnnoMIData(corpus, labels, groups, quality)


def _fit(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=2000, random_state=seed)
    m.fit(X, y)
    return m.coef_[0], float(m.intercept_[0])


def _proba(X: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(X @ coef + intercept)))


def _oof(X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, n_splits: int) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    out = np.full(len(y), np.nan)
    for tr, te in GroupKFold(n_splits=n_splits).split(X, y, groups):
        coef, b = _fit(X[tr], y[tr], seed)
        out[te] = _proba(X[te], coef, b)
    return out


def features(data: AnnoMIData, encoder: Encoder, n_hash: int = N_HASH) -> np.ndarray:
    texts = data.corpus.turns["text"].astype(str).tolist()
    emb = encoder.encode(texts)
    return head_features(emb, data.corpus.previous_turn_of_other_side().to_numpy(), texts, n_hash)


def cross_validate_head(data: AnnoMIData, X: np.ndarray, seed: int = 0, n_splits: int = 5,
                        progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold probabilities and decisions per code, grouped by transcript; thresholds tuned inside each
    training fold (inner grouped 3-fold), so no figure is tuned on the turns it is reported on."""
    from sklearn.model_selection import GroupKFold

    speaker = data.corpus.turns["speaker"].to_numpy()
    proba = pd.DataFrame(np.nan, index=data.corpus.turns.index, columns=list(ANNOMI_CODES))
    thresholds = pd.DataFrame(np.nan, index=data.corpus.turns.index, columns=list(ANNOMI_CODES))
    for code, (side, _, _) in ANNOMI_CODES.items():
        rows = np.flatnonzero(speaker == side)
        Xs, ys, gs = X[rows], data.labels[code].to_numpy()[rows], data.groups[rows]
        for tr, te in GroupKFold(n_splits=n_splits).split(Xs, ys, gs):
            inner = _oof(Xs[tr], ys[tr], gs[tr], seed, 3)
            thr = best_f1_threshold(ys[tr], inner)
            coef, b = _fit(Xs[tr], ys[tr], seed)
            p = _proba(Xs[te], coef, b)
            proba.iloc[rows[te], proba.columns.get_loc(code)] = p
            thresholds.iloc[rows[te], thresholds.columns.get_loc(code)] = thr
        if progress:
            progress(code)
    p, th = proba.fillna(0.0).to_numpy(), thresholds.fillna(1.0).to_numpy()
    hits = resolve_exclusive(p, p >= th, th, list(ANNOMI_CODES))
    decision = pd.DataFrame(hits, index=proba.index, columns=proba.columns).astype("boolean")
    decision[proba.isna()] = pd.NA
    return proba, decision


def fit_head(data: AnnoMIData, X: np.ndarray, model_id: str, seed: int = 0, n_hash: int = N_HASH) -> BehaviourHead:
    """Fit on all of AnnoMI; each code's threshold maximises F1 on grouped 5-fold out-of-fold probabilities."""
    speaker = data.corpus.turns["speaker"].to_numpy()
    coefs, intercepts, thresholds, sides = [], [], [], []
    for code, (side, _, _) in ANNOMI_CODES.items():
        rows = np.flatnonzero(speaker == side)
        Xs, ys, gs = X[rows], data.labels[code].to_numpy()[rows], data.groups[rows]
        thresholds.append(best_f1_threshold(ys, _oof(Xs, ys, gs, seed, 5)))
        coef, b = _fit(Xs, ys, seed)
        coefs.append(coef)
        intercepts.append(b)
        sides.append(side)
    return BehaviourHead(tuple(ANNOMI_CODES), tuple(sides), np.vstack(coefs), np.array(intercepts),
                         np.array(thresholds), model_id, HEAD_VERSION, "trained", n_hash)


def train_behaviour(annomi_csv: str | Path, out: str | Path, encoder: Encoder, seed: int = 0) -> dict[str, Any]:
    """Train and write the head (``out``, .npz); returns what the model card records."""
    data = load_annomi(annomi_csv)
    X = features(data, encoder)
    head = fit_head(data, X, encoder.model_id, seed)
    head.save(out)
    return {"n_turns": len(data.corpus), "n_transcripts": len(set(data.groups)),
            "codes": {c: {"side": s, "positives": int(data.labels[c].sum()), "threshold": round(float(t), 4)}
                      for c, s, t in zip(head.codes, head.sides, head.threshold, strict=True)},
            "model_id": encoder.model_id, "seed": seed, "C": REGULARISATION_C, "n_hash": N_HASH}
