"""Train and cross-validate the empathy lens's classifiers on EPITOME (Sharma et al., EMNLP 2020), on CPU.

Evidence: EPITOME's Reddit (seeker post, response) pairs, each response labelled 0/1/2 per mechanism by trained
annotators; folds are grouped by seeker post so no post is on both sides of a split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.encoders.base import Encoder
from alliance.lenses.empathy import (
    FEATURE_PARTS,
    LEVELS,
    MECHANISMS,
    TEXT_TOKEN_PATTERN,
    EmpathyModel,
    build_features,
    embed_whole,
    encoder_window,
    pool_windows,
    split_windows,
)

EPITOME_FILES: dict[str, str] = {
    "er": "emotional-reactions-reddit.csv",
    "ip": "interpretations-reddit.csv",
    "ex": "explorations-reddit.csv",
}
EPITOME_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level")
DATA_TERMS = ("EPITOME Reddit portion (Sharma et al., EMNLP 2020; github.com/behavioral-data/Empathy-Mental-Health), "
              "University of Washington academic licence: research and non-commercial use only, with attribution")


class TrainingDataError(ValueError):
    """EPITOME files that are missing or not in the published shape."""


def load_epitome(data_dir: str | Path) -> pd.DataFrame:
    """The three EPITOME files joined on (sp_id, rp_id): columns sp_id, rp_id, seeker_post, response_post, er,
    ip, ex. A repeated (sp_id, rp_id) pair is kept once, with its first label; ``attrs["conflicting_duplicates"]``
    counts, per mechanism, the repeated pairs whose labels disagree."""
    d = Path(data_dir)
    merged: pd.DataFrame | None = None
    conflicts: dict[str, int] = {}
    for m, name in EPITOME_FILES.items():
        path = d / name
        if not path.is_file():
            raise TrainingDataError(f"{path}: EPITOME file not found (expected {list(EPITOME_FILES.values())} in {d})")
        df = pd.read_csv(path, dtype={"sp_id": str, "rp_id": str})
        missing = [c for c in EPITOME_COLUMNS if c not in df.columns]
        if missing:
            raise TrainingDataError(f"{path}: missing column(s) {missing}")
        bad = ~df["level"].isin(LEVELS)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TrainingDataError(f"{path}: row {i + 2}: field 'level': {df['level'].iat[i]} is not 0, 1 or 2")
        for col in ("seeker_post", "response_post"):
            empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
            if empty.any():
                i = int(np.flatnonzero(empty.to_numpy())[0])
                raise TrainingDataError(f"{path}: row {i + 2}: field {col!r}: empty text")
        # EPITOME repeats a few pairs (a second annotation); some disagree. The first is kept, as in file order,
        # and the disagreements are counted so the model card can say how many
        conflicts[m] = int((df.groupby(["sp_id", "rp_id"])["level"].nunique() > 1).sum())
        df = df.drop_duplicates(["sp_id", "rp_id"], keep="first")
        df = df[["sp_id", "rp_id", "seeker_post", "response_post", "level"]].rename(columns={"level": m})
        merged = df if merged is None else merged.merge(df[["sp_id", "rp_id", m]], on=["sp_id", "rp_id"],
                                                        how="inner", validate="one_to_one")
    assert merged is not None
    merged = merged.sort_values(["sp_id", "rp_id"], kind="stable").reset_index(drop=True)
    for m in MECHANISMS:
        merged[m] = merged[m].astype("int64")
    merged.attrs["conflicting_duplicates"] = conflicts
    return merged


@dataclass
class EncodedPairs:
    """EPITOME pairs encoded once: whole-text vectors for training, sentence-window vectors for scoring."""

    seeker: np.ndarray
    response: np.ndarray
    responses: list[str]
    window_vecs: np.ndarray
    window_texts: list[str]
    window_owner: np.ndarray
    labels: dict[str, np.ndarray]
    groups: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame, encoder: Encoder) -> EncodedPairs:
        window = encoder_window(encoder)
        seekers = df["seeker_post"].astype(str).tolist()
        responses = df["response_post"].astype(str).tolist()
        windows = split_windows(responses, window)
        flat = [w for ws in windows for w in ws]
        owner = np.repeat(np.arange(len(windows)), [len(ws) for ws in windows])
        window_vecs = encoder.encode(flat)
        # whole-reply vectors for training: one window is the reply itself; longer ones average their windows
        sums = np.zeros((len(windows), window_vecs.shape[1]))
        np.add.at(sums, owner, window_vecs)
        response = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)
        return cls(embed_whole(seekers, encoder, window), response, responses, window_vecs, flat, owner,
                   {m: df[m].to_numpy() for m in MECHANISMS}, df["sp_id"].astype(str).to_numpy())

    def subset(self, idx: np.ndarray) -> EncodedPairs:
        idx = np.asarray(idx)
        keep = np.isin(self.window_owner, idx)
        remap = np.full(len(self.responses), -1)
        remap[idx] = np.arange(len(idx))
        return EncodedPairs(self.seeker[idx], self.response[idx], [self.responses[i] for i in idx],
                            self.window_vecs[keep], [t for t, k in zip(self.window_texts, keep, strict=True) if k],
                            remap[self.window_owner[keep]], {m: y[idx] for m, y in self.labels.items()},
                            self.groups[idx])

    def train_features(self, parts: Sequence[str]) -> np.ndarray:
        return build_features(self.seeker, self.response, self.responses, parts)

    def window_features(self, parts: Sequence[str]) -> np.ndarray:
        return build_features(self.seeker[self.window_owner], self.window_vecs, self.window_texts, parts)


@dataclass(frozen=True)
class Variant:
    """One model choice compared under grouped cross-validation."""

    name: str
    parts: tuple[str, ...] = FEATURE_PARTS
    C: float = 0.01
    class_weight: str | None = "balanced"
    #: inverse regularisation of the word (TF-IDF 1-2-gram) model averaged in; None = no word model
    text_C: float | None = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


#: The default model, chosen by grouped cross-validation on the development split (docs/empathy.md).
DEFAULT_VARIANT = Variant("reply+cues+context cosine C=0.01 | words C=1", ("response", "lexical", "similarity"))


#: The recipes compared under grouped cross-validation before DEFAULT_VARIANT was chosen (``--compare``).
COMPARED_VARIANTS: tuple[Variant, ...] = (
    Variant("reply only C=0.05", ("response",), 0.05, text_C=None),
    Variant("reply+cues C=0.01", ("response", "lexical"), 0.01, text_C=None),
    Variant("reply+context (all blocks)+cues C=0.05", FEATURE_PARTS[:5], 0.05, text_C=None),
    Variant("reply+context (all blocks)+cues C=0.003 | words C=1", FEATURE_PARTS[:5], 0.003),
    Variant("reply+context product+cues C=0.01 | words C=1", ("response", "product", "lexical"), 0.01),
    Variant("reply+cues C=0.01 | words C=1", ("response", "lexical"), 0.01),
    DEFAULT_VARIANT,
)


def fit(data: EncodedPairs, variant: Variant = DEFAULT_VARIANT, seed: int = 0,
        meta: dict[str, Any] | None = None) -> EmpathyModel:
    """Fit one standardiser and three multinomial logistic regressions; deterministic for a given seed."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import StandardScaler

    x = data.train_features(variant.parts)
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    coef, intercept = {}, {}
    for m in MECHANISMS:
        coef[m], intercept[m] = _fit_levels(z, data.labels[m], variant.C, variant.class_weight, seed)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    info = {"feature_parts": list(variant.parts), "classifier": {"type": "LogisticRegression (multinomial, L2)",
                                                                   "C": variant.C, "class_weight": variant.class_weight,
                                                                   "variant": variant.name},
            "seed": seed, "n_train": len(data.responses), **(meta or {})}
    model = EmpathyModel(scaler.mean_.astype(np.float64), scale.astype(np.float64), coef, intercept, info)
    if variant.text_C is not None:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=TEXT_TOKEN_PATTERN)
        words = vec.fit_transform(data.responses)
        model.text_vocabulary = vec.get_feature_names_out().astype(str)
        model.text_idf = vec.idf_.astype(np.float64)
        for m in MECHANISMS:
            model.text_coef[m], model.text_intercept[m] = _fit_levels(words, data.labels[m], variant.text_C,
                                                                      variant.class_weight, seed)
        info["classifier"]["words"] = {"type": "LogisticRegression on TF-IDF word 1-2-grams (min_df 2, sublinear)",
                                       "C": variant.text_C, "vocabulary": len(model.text_vocabulary),
                                       "fusion": "mean of the two models' level probabilities"}
    return model


def _fit_levels(x: Any, y: np.ndarray, c: float, class_weight: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (3, d) and intercepts (3,) of a multinomial logistic regression over levels 0/1/2."""
    from sklearn.linear_model import LogisticRegression

    # a training set may lack a level (EPITOME has few weak explorations): it gets no probability, not a crash
    full_coef = np.zeros((len(LEVELS), x.shape[1]))
    full_int = np.full(len(LEVELS), -1e4)
    present = np.unique(y)
    if len(present) == 1:
        full_int[int(present[0])] = 0.0
        return full_coef, full_int
    clf = LogisticRegression(C=c, class_weight=class_weight, max_iter=3000, random_state=seed).fit(x, y)
    if len(clf.classes_) == 2:  # sklearn keeps one row (second class vs first): softmax with the first at 0
        full_coef[int(clf.classes_[1])], full_int[int(clf.classes_[1])] = clf.coef_[0], clf.intercept_[0]
        full_int[int(clf.classes_[0])] = 0.0
    else:
        for j, cls in enumerate(clf.classes_):
            full_coef[int(cls)], full_int[int(cls)] = clf.coef_[j], clf.intercept_[j]
    return full_coef, full_int


def predict(model: EmpathyModel, data: EncodedPairs) -> dict[str, np.ndarray]:
    """Level probabilities per reply, exactly as the lens computes them (long replies pooled over windows)."""
    window_p = model.predict_proba(data.window_features(model.parts), data.window_texts)
    return pool_windows(window_p, data.window_owner, len(data.responses))


def grouped_folds(data: EncodedPairs, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by seeker post, stratified on the joint (interpretation, exploration) level."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    strata = data.labels["ip"] * 3 + data.labels["ex"]
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # some joint levels are rarer than the folds; stratification is best effort
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(cv.split(np.zeros(len(strata)), strata, data.groups))


def cross_validate(data: EncodedPairs, variant: Variant = DEFAULT_VARIANT, n_splits: int = 5,
                   seed: int = 0) -> dict[str, Any]:
    """Out-of-fold probabilities and per-mechanism macro-F1 and accuracy, folds grouped by seeker post."""
    from sklearn.metrics import accuracy_score, f1_score

    oof = {m: np.zeros((len(data.responses), len(LEVELS))) for m in MECHANISMS}
    for train_idx, test_idx in grouped_folds(data, n_splits, seed):
        model = fit(data.subset(train_idx), variant, seed)
        pred = predict(model, data.subset(test_idx))
        for m in MECHANISMS:
            oof[m][test_idx] = pred[m]
    scores = {}
    for m in MECHANISMS:
        y, yhat = data.labels[m], oof[m].argmax(axis=1)
        scores[m] = {"macro_f1": float(f1_score(y, yhat, average="macro", labels=list(LEVELS), zero_division=0)),
                     "accuracy": float(accuracy_score(y, yhat))}
    return {"variant": variant.name, "scores": scores, "oof": oof}


def train_and_save(data_dir: str | Path, out: str | Path, encoder: Encoder, seed: int = 0,
                   variant: Variant = DEFAULT_VARIANT, cv_folds: int = 5, limit: int | None = None) -> dict[str, Any]:
    """Cross-validate, fit on all pairs, and write ``<out>/empathy_epitome_v1.npz`` and its ``MODEL_CARD.md``.

    ``limit`` keeps only the first N seeker posts (for quick checks); the card says so.
    """
    df = load_epitome(data_dir)
    if limit is not None:
        keep = df["sp_id"].drop_duplicates().head(limit)
        df = df[df["sp_id"].isin(keep)].reset_index(drop=True)
    data = EncodedPairs.from_frame(df, encoder)
    cv = cross_validate(data, variant, cv_folds, seed) if cv_folds >= 2 else None
    trained = datetime.now(UTC).strftime("%Y-%m-%d")
    meta = {"version": "1", "trained": trained, "encoder_model_id": encoder.model_id,
            "data": {"name": "EPITOME Reddit, development split", "pairs": len(df),
                     "seeker_posts": int(df["sp_id"].nunique()), "terms": DATA_TERMS,
                     "duplicate_pairs_with_conflicting_labels_first_kept": df.attrs.get("conflicting_duplicates"),
                     "level_counts": {m: {str(k): int((df[m] == k).sum()) for k in LEVELS} for m in MECHANISMS}},
            "cross_validation": None if cv is None else {"folds": cv_folds, "grouped_by": "sp_id",
                                                         "scores": cv["scores"]},
            "command": f"alliance train empathy --data DIR --out DIR --seed {seed}"}
    model = fit(data, variant, seed, meta)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = model.save(out / "empathy_epitome_v1.npz")
    (out / "MODEL_CARD.md").write_text(model_card(model.meta), encoding="utf-8")
    return {"model": str(path), "card": str(out / "MODEL_CARD.md"), "meta": model.meta}


def model_card(meta: dict[str, Any]) -> str:
    data = meta.get("data", {})
    cv = meta.get("cross_validation") or {}
    rows = "".join(f"| {m} | {s['macro_f1']:.3f} | {s['accuracy']:.3f} |\n" for m, s in cv.get("scores", {}).items())
    parts = ", ".join(meta.get("feature_parts", []))
    words = (meta.get("classifier") or {}).get("words")
    word_line = (f" and one over TF-IDF word 1-2-grams of the reply ({words.get('vocabulary')} terms); the two "
                 "models' level probabilities are averaged") if words else ""
    return f"""# Empathy model card: empathy_epitome_v1

Per EPITOME mechanism (emotional reactions `er`, interpretations `ip`, explorations `ex`; levels 0/1/2), one
multinomial logistic regression over standardised features built from frozen `{meta.get('encoder_model_id')}`
sentence embeddings of the reply and of the seeker's words before it (blocks: `{parts}`){word_line}. Long replies
are scored over sentence windows (see docs/empathy.md). Stored as plain arrays in `.npz` (no pickle).

- **Data**: {data.get('name')}: {data.get('pairs')} distinct (seeker post, response) pairs, {data.get('seeker_posts')}
  seeker posts. Level counts: `{json.dumps(data.get('level_counts'))}`. Repeated pairs whose labels disagree (first
  label kept): `{json.dumps(data.get('duplicate_pairs_with_conflicting_labels_first_kept'))}`.
- **Licence terms of the training data**: {data.get('terms', DATA_TERMS)}. The weights are a derivative of that
  data: use them for research, non-commercial purposes, and cite Sharma et al. (2020).
- **Classifier**: `{json.dumps(meta.get('classifier'))}`.
- **Trained**: {meta.get('trained')}, seed {meta.get('seed')}, {meta.get('n_train')} pairs.
- **Command**: `{meta.get('command')}`

## Scores ({cv.get('folds', '-')}-fold cross-validation grouped by seeker post, on the training data)

| mechanism | macro-F1 | accuracy |
|---|---|---|
{rows}
These are cross-validated on the development split; a held-out split exists outside this project. See
docs/empathy.md for the limits (Reddit peer support, not counselling; English; the reply is read with the
client's preceding words only).

## Replace it

Train your own with `alliance train empathy --data DIR --out DIR`, or any file in the same format, and pass it as
the lens option `model=PATH`. The file must have been trained with the encoder the run uses.
"""
