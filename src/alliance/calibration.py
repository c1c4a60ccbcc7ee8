"""Alliance calibrated to what clients say: goal, task, bond and the overall rating predicted from session features.

Evidence: client-rated session reviews (KokoroChat's 20 items and 0-100 score, mapped onto Bordin's goal, task
and bond; see docs/calibration.md), learnt with per-axis ridge sub-models stacked over named lens outputs,
structural features and interpretable bag-of-words channels, cross-validated grouped by client.

Why per-axis linear sub-models: each prediction decomposes into named parts (a lens column, a structural
feature, or a text channel whose top words can be listed), so a reader can see what a figure rests on. The fitted
model is saved as gzipped JSON (no pickle), versioned, and replaceable by a user's own file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from alliance.calibration_features import (  # re-exported: the features live in their own module
    AXES,
    CLIENT_END_TURNS,
    DEFAULT_ENCODER_ID,
    ENCODER_SOURCES,
    HEADS,
    KOKOROCHAT_ITEM_MAP,
    MINIMAL_WORDS,
    SPECIFIC,
    TARGETS,
    TEXT_CHANNELS,
    bag_of_words_baseline,
    feature_group,
    feature_source,
    is_time_feature,
    review_targets,
    session_features,
    structural_features,
    text_channels,
    transcript_text,
)
from alliance.calibration_io import (  # re-exported: persistence lives in its own module
    CLIP_QUANTILES,
    DEFAULT_MODEL,
    MODEL_FORMAT,
    MODEL_VERSION,
    Z_CLIP,
    CalibrationError,
    ModelFile,
)
from alliance.corpus import SESSION_KEY

__all__ = [
    "AXES",
    "CLIENT_END_TURNS",
    "CLIP_QUANTILES",
    "DEFAULT_ENCODER_ID",
    "DEFAULT_MODEL",
    "ENCODER_SOURCES",
    "HEADS",
    "KOKOROCHAT_ITEM_MAP",
    "MINIMAL_WORDS",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "OOD_MARGIN",
    "SCALES",
    "SPECIFIC",
    "TARGETS",
    "TEXT_CHANNELS",
    "Z_CLIP",
    "CalibratedAlliance",
    "CalibrationError",
    "add_calibrated",
    "bag_of_words_baseline",
    "corpus_weights",
    "feature_group",
    "feature_source",
    "is_time_feature",
    "key_fingerprint",
    "review_targets",
    "session_features",
    "shipped_model_exists",
    "structural_features",
    "text_channels",
    "transcript_text",
]

#: The rating scales predictions are bounded to: the axes are means of 0-5 review items, the overall a 0-100 score.
SCALES: dict[str, tuple[float, float]] = {"goal": (0.0, 5.0), "task": (0.0, 5.0), "bond": (0.0, 5.0),
                                          "overall": (0.0, 100.0)}
#: A session is out of domain when a feature lies outside the training data's [min, max] by more than this share of
#: the training data's central range (CLIP_QUANTILES): it was scored by extrapolation, not by what the model saw.
OOD_MARGIN = 0.25
#: How many out-of-domain features ``out_of_domain_features`` names (the furthest out first).
OOD_NAMED = 5

def key_fingerprint(value: Any) -> str:
    """A short SHA-1 of a session key (``course_id/session_id``) or a client id.

    A saved model lists the fingerprints of what it was trained on, so it can tell a held-out session from a
    training one without carrying the training data's ids."""
    if isinstance(value, tuple):
        value = "/".join(map(str, value))
    return hashlib.sha1(str(value).encode("utf-8")).hexdigest()[:12]



def corpus_weights(corpus: np.ndarray) -> np.ndarray:
    """Per-session training weight when several corpora train one model: sqrt(n_largest / n_corpus), so a corpus
    of 133 sessions beside one of 2,120 counts four times per session (not sixteen, which would let a few sessions
    dominate). Fixed a priori, not tuned on the figures."""
    corpus = np.asarray(corpus)
    names, counts = np.unique(corpus, return_counts=True)
    w = dict(zip(names, np.sqrt(counts.max() / counts), strict=True))
    return np.array([w[c] for c in corpus], dtype=float)


def _fit_with_offsets(Z: np.ndarray, y: np.ndarray, corpus: np.ndarray, weights: np.ndarray,
                      alpha: float) -> tuple[dict[str, Any], dict[str, float]]:
    """A ridge with one unpenalised offset per corpus (its fixed effect): inputs and target are centred within
    each corpus, so the shared weights learn only from differences inside a corpus. Sessions with a NaN target are
    left out. Returns the head (intercept = the first corpus's offset) and every corpus's offset."""
    from sklearn.linear_model import Ridge

    ok = np.isfinite(y)
    Z, y, corpus, weights = Z[ok], y[ok], corpus[ok], weights[ok]
    Zc, yc, means = Z.copy(), y.copy(), {}
    for c in dict.fromkeys(corpus.tolist()):
        m = corpus == c
        zm, ym = np.average(Z[m], axis=0, weights=weights[m]), float(np.average(y[m], weights=weights[m]))
        Zc[m] -= zm
        yc[m] -= ym
        means[c] = (zm, ym)
    fit = Ridge(alpha=alpha, fit_intercept=False).fit(Zc, yc, sample_weight=weights)
    coef = fit.coef_.astype(np.float64)
    offsets = {c: float(ym - zm @ coef) for c, (zm, ym) in means.items()}
    return {"coef": coef, "intercept": offsets[str(corpus[0])]}, offsets


# the estimator ---------------------------------------------------------------------------------------------
class CalibratedAlliance(ModelFile, BaseEstimator, RegressorMixin):
    """Predict client-rated goal, task, bond and overall from :func:`session_features`.

    Targets (``HEADS``): goal, task, bond and overall, and (``SPECIFIC``) each axis's distance from the overall
    rating, which is what tells the axes apart.
    Level 1: one ridge per text channel (TF-IDF words and word pairs) predicting every target; in training its
    scores are out-of-fold (inner folds grouped by client), so level 2 learns how far to trust them.
    Level 2: per target, a ridge over standardised numeric features (lens columns, structural features) and the
    text-channel scores for that target. ``coefficients()`` lists every level-2 weight by name and
    ``top_words()`` the words behind each text channel.
    """

    def __init__(self, text_alpha: float = 3.0, stack_alpha: float = 30.0, max_features: int = 8000,
                 ngram_max: int = 2, min_df: int = 3, inner_folds: int = 3, feature_groups: Sequence[str] | None = None,
                 dropout_c: float = 0.05, random_state: int = 0, text_channels: Sequence[str] | None = None):
        self.text_alpha = text_alpha
        self.stack_alpha = stack_alpha
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.inner_folds = inner_folds
        self.feature_groups = feature_groups
        self.dropout_c = dropout_c
        self.random_state = random_state
        self.text_channels = text_channels  # None: every channel of TEXT_CHANNELS

    # helpers ---------------------------------------------------------------------------------------------
    def _numeric_columns(self, X: pd.DataFrame) -> list[str]:
        cols = [c for c in X.columns if c not in TEXT_CHANNELS and pd.api.types.is_numeric_dtype(X[c])
                and not is_time_feature(c)]
        if self.feature_groups is not None:
            cols = [c for c in cols if feature_group(c) in set(self.feature_groups)]
        return cols

    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True, min_df=self.min_df, ngram_range=(1, self.ngram_max),
                               max_features=self.max_features, dtype=np.float32)

    def _fit_channel(self, texts: pd.Series, Yz: np.ndarray, weights: np.ndarray | None = None) -> dict[str, Any]:
        from sklearn.linear_model import Ridge

        vec = self._vectorizer()
        Xt = vec.fit_transform(texts)
        finite = np.isfinite(Yz)
        if finite.all():
            model = Ridge(alpha=self.text_alpha).fit(Xt, Yz, sample_weight=weights)
            return {"vec": vec, "coef": model.coef_.astype(np.float64),
                    "intercept": model.intercept_.astype(np.float64)}
        # targets some corpora do not rate: each set of targets learns from the sessions that rate all of them
        coef, icpt = np.zeros((Yz.shape[1], Xt.shape[1])), np.zeros(Yz.shape[1])
        patterns: dict[bytes, list[int]] = {}
        for j in range(Yz.shape[1]):
            patterns.setdefault(finite[:, j].tobytes(), []).append(j)
        for cols in patterns.values():
            rows = finite[:, cols[0]]
            m = Ridge(alpha=self.text_alpha).fit(Xt[rows], Yz[np.ix_(rows, cols)],
                                                 sample_weight=None if weights is None else weights[rows])
            coef[cols], icpt[cols] = m.coef_, m.intercept_
        return {"vec": vec, "coef": coef, "intercept": icpt}

    @staticmethod
    def _channel_predict(ch: dict[str, Any], texts: pd.Series) -> np.ndarray:
        from alliance.tfidf import tfidf_transform

        return np.asarray(tfidf_transform(ch["vec"], texts) @ ch["coef"].T) + ch["intercept"]

    def _raw_numeric(self, X: pd.DataFrame) -> np.ndarray:
        num = X[self.numeric_columns_].to_numpy(dtype=float)
        # timestamps-derived features of a model saved before 1.4.0 are read at their training median (not at all)
        timed = [k for k, c in enumerate(self.numeric_columns_) if is_time_feature(c)]
        if timed:
            num[:, timed] = np.nan
        return num

    def _level2_inputs(self, X: pd.DataFrame, text_scores: dict[str, np.ndarray], target_j: int) -> np.ndarray:
        num = self._raw_numeric(X)
        num = np.where(np.isfinite(num), num, self.num_median_)
        if getattr(self, "num_lo_", None) is not None:  # bounded to the training range (models from 1.4.0)
            num = np.clip(num, self.num_lo_, self.num_hi_)
        num = (num - self.num_mean_) / self.num_scale_
        if getattr(self, "num_lo_", None) is not None:
            num = np.clip(num, -Z_CLIP, Z_CLIP)
        if self.text_channels_:
            txt = np.column_stack([text_scores[c][:, target_j] for c in self.text_channels_])
            if getattr(self, "text_lo_", None) is not None:
                txt = np.clip(txt, self.text_lo_[:, target_j], self.text_hi_[:, target_j])
        else:
            txt = np.empty((len(X), 0))
        return np.column_stack([num, txt])

    # API -------------------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, groups: Sequence[Any] | None = None,
            dropout: Sequence[Any] | None = None, corpus: Sequence[str] | None = None) -> CalibratedAlliance:
        """Fit on session features ``X`` and client ratings ``y`` (columns goal, task, bond, overall).

        ``groups`` (e.g. client ids) keep one client's sessions in one inner fold. ``dropout``, when given, is a
        per-session flag (the client would not continue); a logistic head then learns ``dropout_risk`` from the
        same named inputs.

        ``corpus`` (one name per session) trains across corpora (from 1.5.0; docs/calibration.md, "Across
        corpora"): sessions of every corpus need ``overall`` (for other corpora than the first, the
        within-corpus rank of their own rating put on the first corpus's scale; see
        :func:`alliance.calibration_multi.rank_to_scale`), while goal, task, bond and dropout may be NaN where a
        corpus does not rate them (those heads learn from the sessions that do). Each corpus gets its own offset
        (fixed effect) in the level-2 heads, so only differences within a corpus teach the shared weights, and
        sessions are weighted so that a small corpus is not drowned (``corpus_weights``). Predictions use the
        first corpus's offset (the scale of its ratings).
        """
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GroupKFold, KFold

        y = pd.DataFrame(y)
        missing = [t for t in TARGETS if t not in y.columns]
        if missing:
            raise CalibrationError(f"targets lack column(s) {missing}; expected {list(TARGETS)}")
        if corpus is None:
            keep = y[list(TARGETS)].notna().all(axis=1).to_numpy()
            if keep.sum() < 20:
                raise CalibrationError(f"only {int(keep.sum())} sessions have all of {list(TARGETS)}; need at least 20")
        else:
            keep = y["overall"].notna().to_numpy()
            if keep.sum() < 20 or y.loc[keep, list(TARGETS)].notna().all(axis=1).sum() < 20:
                raise CalibrationError(f"only {int(keep.sum())} sessions have an overall rating; need at least 20, "
                                       "and 20 with every target")
        X, Y = X.loc[keep], y.loc[keep, list(TARGETS)].to_numpy(dtype=float)
        if dropout is None:
            flags = None
        elif corpus is None:
            flags = np.asarray(dropout, dtype=bool)[keep]
        else:  # NaN where a corpus has no dropout label
            flags = pd.to_numeric(pd.Series(list(dropout)).astype(object), errors="coerce").to_numpy(float)[keep]
        corp = np.asarray(corpus, dtype=object)[keep].astype(str) if corpus is not None else None
        weights = corpus_weights(corp) if corp is not None else None
        # which sessions and clients trained this model, so figures on new data can leave them out
        self.trained_sessions_ = sorted({key_fingerprint(k) for k in X.index})
        self.trained_groups_ = sorted({key_fingerprint(g) for g in np.asarray(groups)[keep]}) \
            if groups is not None else None
        groups = np.asarray(groups)[keep] if groups is not None else np.arange(len(X))
        if corp is not None:  # a client id is unique within its corpus only
            groups = np.array([f"{c}\x1f{g}" for c, g in zip(corp, groups, strict=True)])
        if corp is None:
            self.y_mean_, self.y_scale_ = Y.mean(axis=0), Y.std(axis=0) + 1e-9
        else:  # the scale of the first (reference) corpus, whose ratings the predictions are on
            ref = corp == corp[0]
            self.y_mean_, self.y_scale_ = np.nanmean(Y[ref], axis=0), np.nanstd(Y[ref], axis=0) + 1e-9
        Yz = (Y - self.y_mean_) / self.y_scale_
        Yz = np.column_stack([Yz, Yz[:, :len(AXES)] - Yz[:, [TARGETS.index("overall")]]])  # + the SPECIFIC heads
        self.heads_ = list(HEADS)
        self.numeric_columns_ = self._numeric_columns(X)
        self.num_lo_ = self.num_hi_ = self.text_lo_ = self.text_hi_ = self.text_min_ = self.text_max_ = None
        num = X[self.numeric_columns_].to_numpy(dtype=float)
        finite = np.isfinite(num)
        # a column with no value at all (a lens that gave NaN everywhere) gets median 0 rather than a warning
        med = np.array([np.median(num[finite[:, j], j]) if finite[:, j].any() else 0.0 for j in range(num.shape[1])])
        self.num_median_ = np.where(np.isfinite(med), med, 0.0)
        num = np.where(np.isfinite(num), num, self.num_median_)
        # the training range: inputs are clipped to its central part; beyond [min, max] a session is out of domain
        self.num_min_, self.num_max_ = num.min(axis=0), num.max(axis=0)
        lo, hi = np.quantile(num, CLIP_QUANTILES, axis=0) if len(num) else (self.num_median_, self.num_median_)
        num = np.clip(num, lo, hi)
        self.num_mean_, self.num_scale_ = num.mean(axis=0), num.std(axis=0) + 1e-9
        self.num_lo_, self.num_hi_ = lo, hi
        use_text = self.feature_groups is None or "text" in set(self.feature_groups)
        chans = TEXT_CHANNELS if self.text_channels is None else tuple(self.text_channels)
        self.text_channels_ = [c for c in chans if c in X.columns] if use_text else []
        n_groups = len(np.unique(groups))
        splitter = GroupKFold(min(self.inner_folds, n_groups)) if n_groups >= 2 else KFold(2)
        oof = {}
        self.channels_ = {}
        for c in self.text_channels_:
            texts = X[c].fillna("")
            pred = np.zeros_like(Yz)
            for tr, te in splitter.split(X, Yz, groups):
                ch = self._fit_channel(texts.iloc[tr], Yz[tr], None if weights is None else weights[tr])
                pred[te] = self._channel_predict(ch, texts.iloc[te])
            oof[c] = pred
            self.channels_[c] = self._fit_channel(texts, Yz, weights)
        if self.text_channels_:  # the text channels' out-of-fold score range, per channel and target
            stack = np.stack([oof[c] for c in self.text_channels_])  # channel x session x target
            self.text_min_, self.text_max_ = stack.min(axis=1), stack.max(axis=1)
            self.text_lo_, self.text_hi_ = (np.quantile(stack, q, axis=1) for q in CLIP_QUANTILES)
        self.level2_ = {}
        self.corpus_offsets_ = None if corp is None else {}
        for j, t in enumerate(self.heads_):
            Z = self._level2_inputs(X, oof, j)
            if corp is None:
                m = Ridge(alpha=self.stack_alpha).fit(Z, Yz[:, j])
                self.level2_[t] = {"coef": m.coef_.astype(np.float64), "intercept": float(m.intercept_)}
            else:
                self.level2_[t], self.corpus_offsets_[t] = _fit_with_offsets(Z, Yz[:, j], corp, weights,
                                                                             self.stack_alpha)
        self.feature_names_ = [*self.numeric_columns_, *self.text_channels_]
        self.reduced_ = None
        drop = [k for k, c in enumerate(self.numeric_columns_) if feature_source(c) in ENCODER_SOURCES]
        n_inputs = len(self.numeric_columns_) + len(self.text_channels_)
        if drop and len(drop) < n_inputs:  # the same model for runs without the encoder lenses: left out, not imputed
            heads = {}
            for j, t in enumerate(self.heads_):
                Z = np.delete(self._level2_inputs(X, oof, j), drop, axis=1)
                if corp is None:
                    m = Ridge(alpha=self.stack_alpha).fit(Z, Yz[:, j])
                    heads[t] = {"coef": m.coef_.astype(np.float64), "intercept": float(m.intercept_)}
                else:
                    heads[t] = _fit_with_offsets(Z, Yz[:, j], corp, weights, self.stack_alpha)[0]
            self.reduced_ = {"without": sorted({feature_source(self.numeric_columns_[k]) for k in drop}),
                             "drop": drop, "level2": heads}
        self.dropout_ = None
        rated = np.isfinite(flags) if flags is not None and corp is not None else None
        fl = flags[rated].astype(bool) if rated is not None else flags
        if fl is not None and 0 < fl.sum() < len(fl):
            from sklearn.linear_model import LogisticRegression

            Z = self._dropout_inputs(X, oof)
            Z = Z[rated] if rated is not None else Z
            head = LogisticRegression(C=self.dropout_c, class_weight="balanced", max_iter=2000).fit(Z, fl)
            self.dropout_ = {"coef": head.coef_[0].astype(np.float64), "intercept": float(head.intercept_[0])}
        self.corpora_ = None if corp is None else {c: int((corp == c).sum()) for c in dict.fromkeys(corp.tolist())}
        return self

    def _dropout_inputs(self, X: pd.DataFrame, text_scores: dict[str, np.ndarray]) -> np.ndarray:
        # numeric features once, then every text channel's score for every target (the overall and each axis)
        base = self._level2_inputs(X, text_scores, 0)[:, :len(self.numeric_columns_)]
        txt = [text_scores[c][:, j] for c in self.text_channels_ for j in range(len(TARGETS))]
        return np.column_stack([base, *txt]) if txt else base

    def _lacks_encoder_lenses(self, X: pd.DataFrame) -> np.ndarray:
        """Per session: True when every column of the encoder lenses (ENCODER_SOURCES) is absent or NaN."""
        cols = [self.numeric_columns_[k] for k in self.reduced_["drop"]]
        return X[cols].isna().all(axis=1).to_numpy()

    @property
    def encoder_id(self) -> str:
        """The sentence encoder whose outputs the model was trained on (recorded in its card; the default one for
        models saved before the card named it)."""
        return str(getattr(self, "card_", {}).get("encoder", DEFAULT_ENCODER_ID))

    def trained_on(self, keys: Sequence[Any]) -> np.ndarray:
        """Per session key (``(course_id, session_id)``): True when that session was in this model's training data.

        Raises CalibrationError for a model saved before 1.3.0, which did not record its training sessions."""
        self._check_fitted()
        if getattr(self, "trained_sessions_", None) is None:
            raise CalibrationError("this calibration model does not record its training sessions (saved before "
                                   "model format 1.3.0)")
        seen = set(self.trained_sessions_)
        return np.array([key_fingerprint(k) in seen for k in keys], dtype=bool)

    def trained_on_groups(self, groups: Sequence[Any]) -> np.ndarray:
        """Per client id (the ``groups`` given to fit): True when that client's sessions trained this model."""
        self._check_fitted()
        if getattr(self, "trained_groups_", None) is None:
            raise CalibrationError("this calibration model does not record the clients it was trained on")
        seen = set(self.trained_groups_)
        return np.array([key_fingerprint(g) in seen for g in groups], dtype=bool)

    def dropout_feature_names(self) -> list[str]:
        return [*self.numeric_columns_, *(f"{c}:{t}" for c in self.text_channels_ for t in TARGETS)]

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Predicted goal, task, bond (item scale 0-5) and overall (the rating's scale), one row per session;
        ``goal/task/bond_specific`` (SD units: the axis's rating above or below the overall one) for models from
        1.3.0; ``dropout_risk`` when the model has a dropout head.

        Guard rails: goal, task, bond and overall are bounded to their scales (``SCALES``) and ``bounded`` says
        which sessions were cut back; timestamp-derived features are never read; from 1.4.0 every input is
        clipped to the training data's range, and ``out_of_domain`` / ``out_of_domain_features`` say which
        sessions lie outside it and on which inputs (scored by extrapolation: treat the number with caution)."""
        self._check_fitted()
        missing = [c for c in self.numeric_columns_ if c not in X.columns]
        # a lens not run here: its features fall back to the training median (added at once, not column by column)
        X = pd.concat([X, pd.DataFrame(np.nan, index=X.index, columns=missing)], axis=1) if missing else X.copy()
        # sessions with none of the encoder lenses' columns use the heads fitted without them (when stored)
        lacking = self._lacks_encoder_lenses(X) if getattr(self, "reduced_", None) else None
        scores = {c: self._channel_predict(self.channels_[c], X[c].fillna("") if c in X else pd.Series([""] * len(X)))
                  for c in self.text_channels_}
        out = {}
        for j, t in enumerate(self._heads()):
            Z = self._level2_inputs(X, scores, j)
            z = Z @ self.level2_[t]["coef"] + self.level2_[t]["intercept"]
            if lacking is not None and lacking.any():
                head = self.reduced_["level2"][t]
                z[lacking] = np.delete(Z[lacking], self.reduced_["drop"], axis=1) @ head["coef"] + head["intercept"]
            out[t] = z * self.y_scale_[j] + self.y_mean_[j] if t in TARGETS else z  # SPECIFIC: SD units
        if getattr(self, "dropout_", None):
            logit = self._dropout_inputs(X, scores) @ self.dropout_["coef"] + self.dropout_["intercept"]
            out["dropout_risk"] = 1.0 / (1.0 + np.exp(-logit))
        # predictions stay on the rating's scale; ``bounded`` says which sessions were cut back to it
        bounded = np.zeros(len(X), dtype=bool)
        for t, (lo, hi) in SCALES.items():
            if t in out:
                bounded |= (out[t] < lo) | (out[t] > hi)
                out[t] = np.clip(out[t], lo, hi)
        out["bounded"] = bounded
        if getattr(self, "num_min_", None) is not None:
            out["out_of_domain"], out["out_of_domain_features"] = self._out_of_domain(X, scores)
        return pd.DataFrame(out, index=X.index)

    def _out_of_domain(self, X: pd.DataFrame, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
        """Per session: whether any input lies beyond the training data's range (by more than OOD_MARGIN of its
        central range), and the names of those inputs, furthest out first (in central ranges beyond the edge)."""
        names = list(self.numeric_columns_)
        vals = [self._raw_numeric(X)]
        lo, hi, mn, mx = [self.num_lo_], [self.num_hi_], [self.num_min_], [self.num_max_]
        if self.text_channels_ and getattr(self, "text_min_", None) is not None:
            j = TARGETS.index("overall")
            names += self.text_channels_
            vals.append(np.column_stack([scores[c][:, j] for c in self.text_channels_]))
            lo.append(self.text_lo_[:, j]), hi.append(self.text_hi_[:, j])
            mn.append(self.text_min_[:, j]), mx.append(self.text_max_[:, j])
        v, lo_, hi_, mn_, mx_ = (np.column_stack(vals), *(np.concatenate(a) for a in (lo, hi, mn, mx)))
        # a floor on the width: a feature constant in training still tolerates rounding (the file keeps 6 digits)
        width = np.maximum(hi_ - lo_, 1e-3 * np.maximum(np.abs(hi_), 1.0))
        beyond = np.maximum(mn_ - v, v - mx_) / width  # in central ranges; NaN (a lens not run) is never out
        beyond = np.where(np.isfinite(beyond), beyond, -np.inf)
        out = beyond > OOD_MARGIN
        named = []
        for row, flags in zip(beyond, out, strict=True):
            idx = np.flatnonzero(flags)
            idx = idx[np.argsort(-row[idx])]
            more = f" (+{len(idx) - OOD_NAMED} more)" if len(idx) > OOD_NAMED else ""
            named.append(", ".join(names[k] for k in idx[:OOD_NAMED]) + more)
        return out.any(axis=1), named

    def max_shift(self, target: str = "overall") -> pd.Series:
        """How far each input alone can move ``target`` (in the rating's units; SD units for the SPECIFIC heads):
        its weight times the width of the range it is clipped to, largest first. NaN for models before 1.4.0,
        whose inputs are not bounded."""
        self._check_fitted()
        if getattr(self, "num_lo_", None) is None:
            return pd.Series(np.nan, index=self.feature_names_, name=f"max_shift_{target}")
        j = self._heads().index(target)
        zlo = np.maximum((self.num_lo_ - self.num_mean_) / self.num_scale_, -Z_CLIP)
        zhi = np.minimum((self.num_hi_ - self.num_mean_) / self.num_scale_, Z_CLIP)
        width = np.r_[zhi - zlo, (self.text_hi_[:, j] - self.text_lo_[:, j]) if self.text_channels_ else []]
        unit = self.y_scale_[j] if target in TARGETS else 1.0
        shift = np.abs(self.level2_[target]["coef"]) * width * unit
        return pd.Series(shift, index=self.feature_names_, name=f"max_shift_{target}").sort_values(ascending=False)

    def score(self, X: pd.DataFrame, y: pd.DataFrame, sample_weight: Any = None) -> float:
        """Spearman rho of predicted vs rated overall."""
        from scipy.stats import spearmanr

        p = self.predict(X)["overall"]
        ok = pd.DataFrame(y)["overall"].notna().to_numpy()
        return float(spearmanr(p[ok], pd.DataFrame(y)["overall"][ok])[0])

    def coefficients(self) -> pd.DataFrame:
        """Level-2 weights per target and feature (standardised units: weight per SD of the feature, in SDs of
        the target), with the feature's lens group."""
        self._check_fitted()
        rows = [{"target": t, "feature": f, "group": feature_group(f), "weight": float(w)}
                for t in self._heads() for f, w in zip(self.feature_names_, self.level2_[t]["coef"], strict=True)]
        return pd.DataFrame(rows)

    def top_words(self, channel: str, target: str, n: int = 15) -> dict[str, list[tuple[str, float]]]:
        """The n terms that most raise and most lower ``target`` in one text channel."""
        self._check_fitted()
        ch = self.channels_[channel]
        terms = ch["vec"].get_feature_names_out()
        w = ch["coef"][self._heads().index(target)]
        order = np.argsort(w)
        return {"raise": [(str(terms[i]), float(w[i])) for i in order[::-1][:n]],
                "lower": [(str(terms[i]), float(w[i])) for i in order[:n]]}

    def _heads(self) -> list[str]:
        # models saved before 1.3.0 have the four TARGETS only
        return list(getattr(self, "heads_", TARGETS))

    def _check_fitted(self) -> None:
        if not hasattr(self, "level2_"):
            raise CalibrationError("this CalibratedAlliance is not fitted; call fit() or CalibratedAlliance.load()")


def shipped_model_exists() -> bool:
    return resources.files("alliance.data.calibration").joinpath(DEFAULT_MODEL).is_file()


def add_calibrated(turns: pd.DataFrame, sessions: pd.DataFrame, model: CalibratedAlliance | None = None,
                   encoder_id: str | None = None, early: bool = True) -> pd.DataFrame:
    """``sessions`` with ``calibrated_goal/task/bond/overall`` from the shipped (or given) model, and
    ``calibration_in_training`` (the session was in the model's training data); unchanged when no model is shipped.
    The one entry point for batch runs, the CLI and ``alliance.analyze()`` alike, so both give the same columns.

    Beside the numbers: ``calibrated_bounded`` (a prediction was cut back to its scale), and for models from 1.4.0
    ``calibrated_out_of_domain`` with ``calibrated_out_of_domain_features`` (inputs beyond the training data's
    range, furthest out first). When the shipped early-warning model exists, the ``early_*`` columns of
    :func:`alliance.early_warning.add_early` are added too (``early=False`` leaves them out).

    ``encoder_id``: the sentence encoder of this run. Features of the encoder lenses (alliance probes, empathy)
    measured with another encoder than the model was trained on live on another scale, so they are not read:
    those sessions are predicted by the model's heads fitted without the encoder lenses.
    """
    if model is None:
        if not shipped_model_exists():
            return sessions
        model = CalibratedAlliance.load()
    X = session_features(turns, sessions)
    if encoder_id is not None and encoder_id != model.encoder_id:
        X = X.drop(columns=[c for c in X.columns if feature_source(c) in ENCODER_SOURCES])
    pred = model.predict(X).add_prefix("calibrated_")
    if getattr(model, "trained_sessions_", None) is not None:
        # a client rating of a session the model was trained on is no test of it: say so beside the prediction
        pred["calibration_in_training"] = model.trained_on(pred.index)
    out = sessions.drop(columns=[c for c in pred.columns if c in sessions]).join(pred, on=SESSION_KEY)
    if early:  # the early-warning columns: what the first half of each session said (alliance.early_warning)
        from alliance.early_warning import add_early

        out = add_early(turns, out)
    return out
