"""Alliance calibrated to what clients say: goal, task, bond and the overall rating predicted from session features.

Evidence: client-rated session reviews (KokoroChat's 20 items and 0-100 score, mapped onto Bordin's goal, task
and bond; see docs/calibration.md), learnt with per-axis ridge sub-models stacked over named lens outputs,
structural features and interpretable bag-of-words channels, cross-validated grouped by client.

Why per-axis linear sub-models: each prediction decomposes into named parts (a lens column, a structural
feature, or a text channel whose top words can be listed), so a reader can see what a figure rests on. The fitted
model is saved as gzipped JSON (no pickle), versioned, and replaceable by a user's own file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from alliance.corpus import SESSION_KEY

AXES: tuple[str, ...] = ("goal", "task", "bond")
TARGETS: tuple[str, ...] = (*AXES, "overall")
#: Axis-specific heads: how far the client's rating of one axis stands above (or below) their overall rating, in SD
#: units (z of the axis minus z of the overall). The axes share most of their variance with the overall rating, so
#: a predicted axis mostly restates the overall; these heads predict only what tells the axes apart.
SPECIFIC: tuple[str, ...] = tuple(f"{a}_specific" for a in AXES)
HEADS: tuple[str, ...] = (*TARGETS, *SPECIFIC)
MODEL_FORMAT = "alliance-calibration"
MODEL_VERSION = "1.3.0"
DEFAULT_MODEL = "calibration_v1.json.gz"

#: KokoroChat review items (0-5) averaged into each axis. Bond: the client felt understood, respected, accepted
#: and at ease (Bordin's affective bond). Task: the pair worked on the concern together with useful techniques
#: (questions, clarifying, summarising, suggestions, insight). Goal: agreement on and movement toward what the
#: client wants (goals identified, concerns addressed, hope). Items about rhythm, start, end, value and overall
#: satisfaction describe the session as a whole and stay out of the three axes. The item name
#: ``clarified_issues_cleraly`` is spelt as in the corpus.
KOKOROCHAT_ITEM_MAP: dict[str, tuple[str, ...]] = {
    "bond": ("felt_heard_and_understood", "felt_respected", "showed_acceptance_and_empathy",
             "conversation_felt_comfortable", "provided_acknowledgment_and_affirmation"),
    "task": ("thought_through_concerns_together", "asked_effective_questions", "clarified_issues_cleraly",
             "summarized_key_points_effectively", "offered_actionable_suggestions", "gained_new_insights"),
    "goal": ("helped_identify_goals", "concerns_were_addressed", "felt_hopeful_or_expectant",
             "encouraged_and_instilled_hope"),
}

#: Text channels: which words each bag-of-words sub-model reads.
TEXT_CHANNELS: tuple[str, ...] = ("text_client", "text_counsellor", "text_client_end")
#: How many of the client's last turns make the ``text_client_end`` channel (how a session ends for the client).
CLIENT_END_TURNS = 8
#: A client turn of at most this many words counts as a minimal reply (withdrawal sign).
MINIMAL_WORDS = 3
#: The encoder the shipped model's alliance and empathy features come from.
DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Lens families (by :func:`feature_source`) that need the sentence encoder, so a user's run may lack them. A model
#: trained with them also keeps level-2 heads without them (``reduced``), used for sessions that lack them all.
ENCODER_SOURCES: tuple[str, ...] = ("alliance", "empathy", "behaviour", "safety", "ruptures")
#: Session columns never used as features (keys, labels, bookkeeping).
_NOT_FEATURES = {"session_index", "n_turns", "course_id", "session_id", "source", "meta"}
#: Column prefixes never used as features: ``calibrated_*`` are a (shipped) calibration model's own predictions,
#: added to every session of a run that has the trajectory lens. Reading them back would train a model on an
#: earlier model's output (on KokoroChat: on a model fitted to the very ratings being cross-validated);
#: ``calibration_in_training`` says whether a session trained that model.
_NOT_FEATURE_PREFIXES: tuple[str, ...] = ("n_client", "n_counsellor", "calibrated_", "calibration_")


def key_fingerprint(value: Any) -> str:
    """A short SHA-1 of a session key (``course_id/session_id``) or a client id.

    A saved model lists the fingerprints of what it was trained on, so it can tell a held-out session from a
    training one without carrying the training data's ids."""
    if isinstance(value, tuple):
        value = "/".join(map(str, value))
    return hashlib.sha1(str(value).encode("utf-8")).hexdigest()[:12]


class CalibrationError(ValueError):
    pass


def _meta(v: Any) -> dict:
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, str) and v.strip():
        return dict(json.loads(v))
    return {}


def review_targets(sessions: pd.DataFrame, item_map: Mapping[str, Sequence[str]] = KOKOROCHAT_ITEM_MAP,
                   overall_key: str = "score") -> pd.DataFrame:
    """Client-rated goal, task, bond (mean of mapped items) and overall, indexed by (course_id, session_id).

    Items and the overall score are looked up in each session's meta, either at top level or under ``review``.
    Sessions without a rating give NaN.
    """
    rows = []
    for m in sessions["meta"]:
        m = _meta(m)
        src = {**m, **_meta(m.get("review") or m.get("review_by_client"))}
        row = {}
        for axis, items in item_map.items():
            vals = [pd.to_numeric(src.get(i), errors="coerce") for i in items]
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            row[axis] = float(np.mean(vals)) if vals else np.nan
        row["overall"] = pd.to_numeric(src.get(overall_key), errors="coerce")
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(TARGETS), dtype=float)
    out.index = pd.MultiIndex.from_frame(sessions[SESSION_KEY])
    return out


def structural_features(turns: pd.DataFrame) -> pd.DataFrame:
    """Per session: how much each side writes, minimal client replies, shrinking client turns, reply latency.

    These are the withdrawal signs of the rupture literature (Safran & Muran 2000) read as plain counts, so they
    exist for every corpus even when the markers lens is not run.
    """
    t = turns
    words = t["text"].astype(str).str.split().str.len().astype(float)
    is_client = (t["speaker"] == "client").to_numpy()
    keys = pd.MultiIndex.from_frame(t[SESSION_KEY])
    df = pd.DataFrame({"w": words.to_numpy(), "client": is_client}, index=keys)
    ts = pd.to_datetime(t["timestamp"], utc=True) if "timestamp" in t else pd.Series(pd.NaT, index=t.index)
    df["ts"] = ts.to_numpy()
    out = {}
    for key, g in df.groupby(level=[0, 1], sort=False):
        cw = g.loc[g["client"], "w"].to_numpy()
        kw = g.loc[~g["client"], "w"].to_numpy()
        n = len(cw)
        third = max(n // 3, 1)
        row = {
            "struct_log_client_turns": np.log1p(n),
            "struct_log_counsellor_turns": np.log1p(len(kw)),
            "struct_log_client_words": np.log1p(cw.mean()) if n else np.nan,
            "struct_log_counsellor_words": np.log1p(kw.mean()) if len(kw) else np.nan,
            "struct_client_share_words": cw.sum() / max(cw.sum() + kw.sum(), 1.0),
            "struct_client_minimal_share": float((cw <= MINIMAL_WORDS).mean()) if n else np.nan,
            "struct_client_words_last_vs_first": (np.log1p(cw[-third:].mean()) - np.log1p(cw[:third].mean()))
            if n >= 3 else np.nan,
        }
        tsv = pd.to_datetime(g["ts"])
        if tsv.notna().sum() >= 3:
            dt = tsv.diff().dt.total_seconds().to_numpy()
            cl = g["client"].to_numpy()
            lat = dt[cl & np.isfinite(dt)]
            lat = lat[lat >= 0]
            row["struct_log_client_latency"] = float(np.log1p(np.median(lat))) if len(lat) else np.nan
            span = (tsv.max() - tsv.min()).total_seconds()
            row["struct_log_minutes"] = float(np.log1p(span / 60.0))
        else:
            row["struct_log_client_latency"] = np.nan
            row["struct_log_minutes"] = np.nan
        out[key] = row
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
    return res


def text_channels(turns: pd.DataFrame) -> pd.DataFrame:
    """Per session, the words each text channel reads: the client's, the counsellor's, the client's closing turns."""
    out = {}
    for key, g in turns.groupby(SESSION_KEY, sort=False):
        cl = g.loc[g["speaker"] == "client", "text"].astype(str).tolist()
        co = g.loc[g["speaker"] != "client", "text"].astype(str).tolist()
        out[key] = {"text_client": " ".join(cl), "text_counsellor": " ".join(co),
                    "text_client_end": " ".join(cl[-CLIENT_END_TURNS:])}
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
    return res


def session_features(turns: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """The calibration model's input, indexed by (course_id, session_id): every numeric lens column of
    ``sessions`` (grouped by lens prefix), the structural features and the text channels."""
    s = sessions.set_index(SESSION_KEY)
    num = s[[c for c in s.columns if c not in _NOT_FEATURES and pd.api.types.is_numeric_dtype(s[c])
             and not pd.api.types.is_bool_dtype(s[c])]].astype(float)
    num = num.drop(columns=[c for c in num.columns if c.startswith(_NOT_FEATURE_PREFIXES)])
    feats = num.join(structural_features(turns), how="left").join(text_channels(turns), how="left")
    for c in TEXT_CHANNELS:
        feats[c] = feats[c].fillna("")
    return feats


def feature_group(name: str) -> str:
    """The lens (column prefix) a feature belongs to: ``alliance``, ``trajectory``, ``struct``, ``text`` ..."""
    return name.split("_", 1)[0]


def feature_source(name: str) -> str:
    """The measure a feature is computed from, which differs from its lens prefix for the trajectory lens: its
    ``trajectory_{client,counsellor}_{goal,task,bond}_*`` and ``trajectory_gap_*`` columns follow the alliance
    probes, ``trajectory_empathy_*`` the per-reply empathy; the rest (client words, ruptures, repairs) stay
    ``trajectory``. Used to attribute what each lens family adds (the gap analysis)."""
    group = feature_group(name)
    if group == "trajectory":
        rest = name.split("_", 1)[1]
        if rest.startswith("empathy_"):
            return "empathy"
        if rest.startswith("gap_") or any(rest.startswith(f"{side}_{s}_") for side in ("client", "counsellor")
                                          for s in AXES):
            return "alliance"
    return group


# the estimator ---------------------------------------------------------------------------------------------
class CalibratedAlliance(BaseEstimator, RegressorMixin):
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
                 dropout_c: float = 0.05, random_state: int = 0):
        self.text_alpha = text_alpha
        self.stack_alpha = stack_alpha
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.inner_folds = inner_folds
        self.feature_groups = feature_groups
        self.dropout_c = dropout_c
        self.random_state = random_state

    # helpers ---------------------------------------------------------------------------------------------
    def _numeric_columns(self, X: pd.DataFrame) -> list[str]:
        cols = [c for c in X.columns if c not in TEXT_CHANNELS and pd.api.types.is_numeric_dtype(X[c])]
        if self.feature_groups is not None:
            cols = [c for c in cols if feature_group(c) in set(self.feature_groups)]
        return cols

    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True, min_df=self.min_df, ngram_range=(1, self.ngram_max),
                               max_features=self.max_features, dtype=np.float32)

    def _fit_channel(self, texts: pd.Series, Yz: np.ndarray) -> dict[str, Any]:
        from sklearn.linear_model import Ridge

        vec = self._vectorizer()
        Xt = vec.fit_transform(texts)
        model = Ridge(alpha=self.text_alpha).fit(Xt, Yz)
        return {"vec": vec, "coef": model.coef_.astype(np.float64), "intercept": model.intercept_.astype(np.float64)}

    @staticmethod
    def _channel_predict(ch: dict[str, Any], texts: pd.Series) -> np.ndarray:
        return np.asarray(ch["vec"].transform(texts) @ ch["coef"].T) + ch["intercept"]

    def _level2_inputs(self, X: pd.DataFrame, text_scores: dict[str, np.ndarray], target_j: int) -> np.ndarray:
        num = X[self.numeric_columns_].to_numpy(dtype=float)
        num = np.where(np.isfinite(num), num, self.num_median_)
        num = (num - self.num_mean_) / self.num_scale_
        txt = np.column_stack([text_scores[c][:, target_j] for c in self.text_channels_]) if self.text_channels_ \
            else np.empty((len(X), 0))
        return np.column_stack([num, txt])

    # API -------------------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, groups: Sequence[Any] | None = None,
            dropout: Sequence[bool] | None = None) -> CalibratedAlliance:
        """Fit on session features ``X`` and client ratings ``y`` (columns goal, task, bond, overall).

        ``groups`` (e.g. client ids) keep one client's sessions in one inner fold. ``dropout``, when given, is a
        per-session flag (the client would not continue); a logistic head then learns ``dropout_risk`` from the
        same named inputs.
        """
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GroupKFold, KFold

        y = pd.DataFrame(y)
        missing = [t for t in TARGETS if t not in y.columns]
        if missing:
            raise CalibrationError(f"targets lack column(s) {missing}; expected {list(TARGETS)}")
        keep = y[list(TARGETS)].notna().all(axis=1).to_numpy()
        if keep.sum() < 20:
            raise CalibrationError(f"only {int(keep.sum())} sessions have all of {list(TARGETS)}; need at least 20")
        X, Y = X.loc[keep], y.loc[keep, list(TARGETS)].to_numpy(dtype=float)
        flags = np.asarray(dropout, dtype=bool)[keep] if dropout is not None else None
        # which sessions and clients trained this model, so figures on new data can leave them out
        self.trained_sessions_ = sorted({key_fingerprint(k) for k in X.index})
        self.trained_groups_ = sorted({key_fingerprint(g) for g in np.asarray(groups)[keep]}) \
            if groups is not None else None
        groups = np.asarray(groups)[keep] if groups is not None else np.arange(len(X))
        self.y_mean_, self.y_scale_ = Y.mean(axis=0), Y.std(axis=0) + 1e-9
        Yz = (Y - self.y_mean_) / self.y_scale_
        Yz = np.column_stack([Yz, Yz[:, :len(AXES)] - Yz[:, [TARGETS.index("overall")]]])  # + the SPECIFIC heads
        self.heads_ = list(HEADS)
        self.numeric_columns_ = self._numeric_columns(X)
        num = X[self.numeric_columns_].to_numpy(dtype=float)
        finite = np.isfinite(num)
        # a column with no value at all (a lens that gave NaN everywhere) gets median 0 rather than a warning
        med = np.array([np.median(num[finite[:, j], j]) if finite[:, j].any() else 0.0 for j in range(num.shape[1])])
        self.num_median_ = np.where(np.isfinite(med), med, 0.0)
        num = np.where(np.isfinite(num), num, self.num_median_)
        self.num_mean_, self.num_scale_ = num.mean(axis=0), num.std(axis=0) + 1e-9
        use_text = self.feature_groups is None or "text" in set(self.feature_groups)
        self.text_channels_ = [c for c in TEXT_CHANNELS if c in X.columns] if use_text else []
        n_groups = len(np.unique(groups))
        splitter = GroupKFold(min(self.inner_folds, n_groups)) if n_groups >= 2 else KFold(2)
        oof = {}
        self.channels_ = {}
        for c in self.text_channels_:
            texts = X[c].fillna("")
            pred = np.zeros_like(Yz)
            for tr, te in splitter.split(X, Yz, groups):
                ch = self._fit_channel(texts.iloc[tr], Yz[tr])
                pred[te] = self._channel_predict(ch, texts.iloc[te])
            oof[c] = pred
            self.channels_[c] = self._fit_channel(texts, Yz)
        self.level2_ = {}
        for j, t in enumerate(self.heads_):
            Z = self._level2_inputs(X, oof, j)
            m = Ridge(alpha=self.stack_alpha).fit(Z, Yz[:, j])
            self.level2_[t] = {"coef": m.coef_.astype(np.float64), "intercept": float(m.intercept_)}
        self.feature_names_ = [*self.numeric_columns_, *self.text_channels_]
        self.reduced_ = None
        drop = [k for k, c in enumerate(self.numeric_columns_) if feature_source(c) in ENCODER_SOURCES]
        n_inputs = len(self.numeric_columns_) + len(self.text_channels_)
        if drop and len(drop) < n_inputs:  # the same model for runs without the encoder lenses: left out, not imputed
            heads = {}
            for j, t in enumerate(self.heads_):
                Z = np.delete(self._level2_inputs(X, oof, j), drop, axis=1)
                m = Ridge(alpha=self.stack_alpha).fit(Z, Yz[:, j])
                heads[t] = {"coef": m.coef_.astype(np.float64), "intercept": float(m.intercept_)}
            self.reduced_ = {"without": sorted({feature_source(self.numeric_columns_[k]) for k in drop}),
                             "drop": drop, "level2": heads}
        self.dropout_ = None
        if flags is not None and 0 < flags.sum() < len(flags):
            from sklearn.linear_model import LogisticRegression

            Z = self._dropout_inputs(X, oof)
            head = LogisticRegression(C=self.dropout_c, class_weight="balanced", max_iter=2000).fit(Z, flags)
            self.dropout_ = {"coef": head.coef_[0].astype(np.float64), "intercept": float(head.intercept_[0])}
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
        1.3.0; ``dropout_risk`` when the model has a dropout head."""
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
        return pd.DataFrame(out, index=X.index)

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

    # persistence: gzipped JSON, no pickle ------------------------------------------------------------------
    def to_dict(self, card: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self._check_fitted()
        chans = {}
        for c, ch in self.channels_.items():
            vec = ch["vec"]
            vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            chans[c] = {"vocabulary": vocab, "idf": _r(vec.idf_), "coef": [_r(row) for row in ch["coef"]],
                        "intercept": _r(ch["intercept"])}
        return {
            "format": MODEL_FORMAT, "version": MODEL_VERSION, "params": self.get_params(),
            "targets": list(TARGETS), "heads": self._heads(), "item_map": {k: list(v) for k, v in KOKOROCHAT_ITEM_MAP.items()},
            "numeric_columns": self.numeric_columns_, "num_median": _r(self.num_median_),
            "num_mean": _r(self.num_mean_), "num_scale": _r(self.num_scale_),
            "y_mean": _r(self.y_mean_), "y_scale": _r(self.y_scale_), "text_channels": self.text_channels_,
            "channels": chans, "level2": {t: {"coef": _r(v["coef"]), "intercept": v["intercept"]}
                                          for t, v in self.level2_.items()},
            "reduced": ({"without": self.reduced_["without"], "drop": [int(k) for k in self.reduced_["drop"]],
                         "level2": {t: {"coef": _r(v["coef"]), "intercept": v["intercept"]}
                                    for t, v in self.reduced_["level2"].items()}}
                        if getattr(self, "reduced_", None) else None),
            "dropout": ({"coef": _r(self.dropout_["coef"]), "intercept": self.dropout_["intercept"]}
                        if getattr(self, "dropout_", None) else None),
            "trained": {"fingerprint": "sha1 of course_id/session_id (sessions) or of the group id, first 12 hex",
                        "sessions": getattr(self, "trained_sessions_", None),
                        "groups": getattr(self, "trained_groups_", None)},
            "card": dict(card or {}),
        }

    def save(self, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        path = Path(path)
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(self.to_dict(card), f)
        return path

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "<dict>") -> CalibratedAlliance:
        if doc.get("format") != MODEL_FORMAT:
            raise CalibrationError(f"{source}: not an alliance calibration model (format={doc.get('format')!r})")
        major = str(doc.get("version", "0")).split(".")[0]
        if major != MODEL_VERSION.split(".")[0]:
            raise CalibrationError(f"{source}: model version {doc.get('version')} is not readable by this "
                                   f"alliance (reads {MODEL_VERSION.split('.')[0]}.x)")
        m = cls(**doc["params"])
        m.numeric_columns_ = list(doc["numeric_columns"])
        for k in ("num_median", "num_mean", "num_scale", "y_mean", "y_scale"):
            setattr(m, k + "_", np.asarray(doc[k], dtype=float))
        m.text_channels_ = list(doc["text_channels"])
        m.channels_ = {}
        for c, ch in doc["channels"].items():
            vec = m._vectorizer()
            vec.set_params(vocabulary={t: i for i, t in enumerate(ch["vocabulary"])}, max_features=None)
            vec.fit([" "])  # builds the analyser; idf_ is then replaced by the trained one
            vec.idf_ = np.asarray(ch["idf"], dtype=np.float64)
            m.channels_[c] = {"vec": vec, "coef": np.asarray(ch["coef"], dtype=float),
                              "intercept": np.asarray(ch["intercept"], dtype=float)}
        m.heads_ = list(doc.get("heads", TARGETS))
        m.level2_ = {t: {"coef": np.asarray(v["coef"], dtype=float), "intercept": float(v["intercept"])}
                     for t, v in doc["level2"].items()}
        m.feature_names_ = [*m.numeric_columns_, *m.text_channels_]
        d = doc.get("dropout")
        m.dropout_ = {"coef": np.asarray(d["coef"], dtype=float), "intercept": float(d["intercept"])} if d else None
        r = doc.get("reduced")
        m.reduced_ = {"without": list(r["without"]), "drop": [int(k) for k in r["drop"]],
                      "level2": {t: {"coef": np.asarray(v["coef"], dtype=float), "intercept": float(v["intercept"])}
                                 for t, v in r["level2"].items()}} if r else None
        trained = doc.get("trained") or {}
        m.trained_sessions_ = trained.get("sessions")
        m.trained_groups_ = trained.get("groups")
        m.card_ = dict(doc.get("card", {}))
        return m

    @classmethod
    def load(cls, path: str | Path | None = None) -> CalibratedAlliance:
        """Load a saved model; ``None`` loads the one shipped with alliance."""
        if path is None:
            ref = resources.files("alliance.data.calibration").joinpath(DEFAULT_MODEL)
            with ref.open("rb") as fb, gzip.open(fb, "rt", encoding="utf-8") as f:
                return cls.from_dict(json.load(f), f"alliance:data/calibration/{DEFAULT_MODEL}")
        path = Path(path)
        if not path.exists():
            raise CalibrationError(f"{path}: no such calibration model file")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as e:
                raise CalibrationError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        return cls.from_dict(doc, str(path))


def _r(a: Any) -> list[float]:
    return [float(f"{x:.6g}") for x in np.asarray(a, dtype=float).ravel()]


def bag_of_words_baseline(alpha: float = 3.0, ngram_max: int = 2):
    """The plain baseline: TF-IDF words (and word pairs, by default) of the whole transcript into one ridge."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, ngram_max),
                                         max_features=50000), Ridge(alpha=alpha))


def transcript_text(turns: pd.DataFrame) -> pd.Series:
    """Whole transcript per session (both sides), indexed by (course_id, session_id), for the baseline."""
    return turns.groupby(SESSION_KEY, sort=False)["text"].agg(lambda s: " ".join(map(str, s)))




def shipped_model_exists() -> bool:
    return resources.files("alliance.data.calibration").joinpath(DEFAULT_MODEL).is_file()


def add_calibrated(turns: pd.DataFrame, sessions: pd.DataFrame, model: CalibratedAlliance | None = None,
                   encoder_id: str | None = None) -> pd.DataFrame:
    """``sessions`` with ``calibrated_goal/task/bond/overall`` from the shipped (or given) model, and
    ``calibration_in_training`` (the session was in the model's training data); unchanged when no model is shipped.

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
    out = sessions.drop(columns=[c for c in pred.columns if c in sessions])
    return out.join(pred, on=SESSION_KEY)
