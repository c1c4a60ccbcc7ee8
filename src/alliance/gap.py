"""The empathy-alliance gap: how much of a rated outcome per-reply empathy explains, and what every other measure adds.

Evidence: any session-level rating (a client's score, a seeker's survey, a dropout flag) against the session columns
of every lens that was run, cross-validated, with feature families added one at a time, per-reply empathy first.

Why this order and this model: the claim under test is that empathy is a property of a reply and alliance one of a
trajectory, so per-reply empathy is the baseline and each step shows what a measure of the relationship adds beyond
it. The model is a ridge over standardised, median-imputed columns (alpha 30, the calibrated model's level 2) with
no text, so a step's gain belongs to a named measure, not to the words. Features are credited to the measure they
follow (:func:`alliance.calibration.feature_source`): the trajectory lens's empathy trend counts as empathy, its
alliance-probe trends as alliance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alliance.calibration import TEXT_CHANNELS, feature_source

#: The order of the analysis: per-reply empathy first, then what each other measure adds.
GAP_STEPS: tuple[str, ...] = ("empathy", "trajectory", "markers", "coordination", "behaviour", "safety", "ruptures",
                              "alliance", "struct")
#: Fewer rated sessions than this and a cross-validated figure means nothing.
MIN_RATED = 30
#: Rated sessions per feature column below which figures are flagged as unstable: the usual events-per-variable rule
#: of thumb for prediction models (Peduzzi et al. 1996; Harrell 2015, ch. 4) is about 10.
SESSIONS_PER_FEATURE = 10
#: Below this many rated sessions a figure's out-of-fold spread is wide whatever the feature count.
SMALL_SAMPLE = 100
_TRUE, _FALSE = {"true", "yes", "y"}, {"false", "no", "n"}


class GapError(ValueError):
    """The outcome or the features cannot support the analysis (what is wrong is in the message)."""


def outcome_numbers(values: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """A number per session from raw label values: numbers, booleans (1/0), and strings that spell a number or
    true/false/yes/no count; missing values are NaN. Returns the numbers and the text values that are none of
    these (so an error can name them rather than say nothing was rated)."""
    out = np.full(len(values), np.nan)
    text: list[str] = []
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            out[i] = float(v)
        elif isinstance(v, str):
            s = v.strip()
            try:
                out[i] = float(s)
            except ValueError:
                if s.lower() in _TRUE | _FALSE:
                    out[i] = float(s.lower() in _TRUE)
                elif s:
                    text.append(s)
        else:
            text.append(str(v))
    out[~np.isfinite(out)] = np.nan
    return out, text


def _text_problem(text: list[str], n: int) -> str:
    distinct = sorted(set(text))
    shown = ", ".join(repr(x) for x in distinct[:6]) + (", ..." if len(distinct) > 6 else "")
    hint = (f"; its {len(distinct)} values could be mapped to numbers or true/false in the input first"
            if len(distinct) <= 10 else "")
    return (f"the outcome is text, not a number, in {len(text)} of {n} sessions ({shown}); it needs a number or "
            f"true/false per session{hint}")


def sample_warning(n_rated: int, n_features: int) -> str | None:
    """A warning when the rated sessions are too few for the feature columns (or too few at all), else None."""
    if n_features * SESSIONS_PER_FEATURE <= n_rated and n_rated >= SMALL_SAMPLE:
        return None
    return (f"{n_features} feature columns on {n_rated} rated sessions (fewer than {SESSIONS_PER_FEATURE} sessions "
            f"per column{'' if n_rated >= SMALL_SAMPLE else f', and under {SMALL_SAMPLE} sessions'}): out-of-fold "
            "figures this small vary widely from one split to the next; read them as exploratory, and narrow them "
            "with more rated sessions or fewer lenses")


def _folds(n: int, groups: Sequence[Any] | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, KFold

    if groups is not None:
        g = np.asarray(groups)
        if len(np.unique(g)) >= folds:  # one client's sessions never on both sides of a fold
            return list(GroupKFold(folds).split(np.zeros(n), groups=g))
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def incremental_gap(features: pd.DataFrame, outcome: Sequence[float] | pd.Series, groups: Sequence[Any] | None = None,
                    steps: Sequence[str] = GAP_STEPS, folds: int = 5, seed: int = 0,
                    alpha: float = 30.0) -> pd.DataFrame:
    """Out-of-fold figures of ``outcome`` from the cumulative feature families of ``features``.

    ``features``: one row per session, e.g. :func:`alliance.calibration.session_features` (text columns are
    ignored). ``outcome``: a number per session (NaN = not rated); two distinct values make it a flag, scored by
    AUC (higher predicted = the larger value), otherwise by Spearman rho. ``groups`` (e.g. client ids) keep one
    client's sessions in one fold. Steps whose family has no column in ``features`` are left out.

    Returns one row per step: ``step`` (the families so far), ``added``, ``n_features``, ``n``, ``metric``
    (``rho`` or ``auc``), ``value``, and ``gain`` over the previous step; ``attrs["warnings"]`` says when the rated
    sessions are few for the columns (:func:`sample_warning`) or some labels were text and left out. Raw label
    values are read by :func:`outcome_numbers`; text where numbers were needed is named in the error.
    """
    from scipy.stats import spearmanr
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y, text = outcome_numbers(list(outcome))
    if len(y) != len(features):
        raise GapError(f"outcome has {len(y)} values for {len(features)} sessions")
    ok = np.isfinite(y)
    if ok.sum() < MIN_RATED:
        if text:
            raise GapError(_text_problem(text, len(y)) + (f" (only {int(ok.sum())} hold a number; at least "
                                                          f"{MIN_RATED} are needed)"))
        raise GapError(f"only {int(ok.sum())} sessions carry the outcome; need at least {MIN_RATED}")
    values = np.unique(y[ok])
    if len(values) < 2:
        raise GapError(f"the outcome takes one value ({values[0]:g}) in every rated session; nothing to explain")
    binary = len(values) == 2
    numeric = [c for c in features.columns if c not in TEXT_CHANNELS
               and pd.api.types.is_numeric_dtype(features[c])]
    present = {feature_source(c) for c in numeric}
    used = [s for s in steps if s in present]
    if not used:
        raise GapError(f"no columns of {list(steps)} in the features; run the lenses first")
    split = _folds(int(ok.sum()), None if groups is None else np.asarray(groups)[ok], folds, seed)
    rows, cum, prev = [], [], np.nan
    for family in used:
        cum = [*cum, family]
        cols = [c for c in numeric if feature_source(c) in cum]
        X = np.array(features.loc[ok, cols], dtype=float)  # a copy: pandas may hand out a read-only view
        X[~np.isfinite(X)] = np.nan
        pred = np.empty(int(ok.sum()))
        for tr, te in split:
            model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                  Ridge(alpha=alpha))
            pred[te] = model.fit(X[tr], y[ok][tr]).predict(X[te])
        value = float(roc_auc_score(y[ok] == values[1], pred)) if binary else float(spearmanr(pred, y[ok])[0])
        rows.append({"step": " + ".join(cum), "added": family, "n_features": len(cols), "n": int(ok.sum()),
                     "metric": "auc" if binary else "rho", "value": value, "gain": value - prev})
        prev = value
    res = pd.DataFrame(rows)
    warning = sample_warning(int(ok.sum()), int(res["n_features"].max()))
    res.attrs["warnings"] = [w for w in (warning, _text_problem(text, len(y)) + "; those sessions are left out"
                                         if text else None) if w]
    return res
