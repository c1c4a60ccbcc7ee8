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


class GapError(ValueError):
    """The outcome or the features cannot support the analysis (what is wrong is in the message)."""


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
    (``rho`` or ``auc``), ``value``, and ``gain`` over the previous step.
    """
    from scipy.stats import spearmanr
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = pd.to_numeric(pd.Series(np.asarray(outcome, dtype=object)), errors="coerce").to_numpy(dtype=float)
    if len(y) != len(features):
        raise GapError(f"outcome has {len(y)} values for {len(features)} sessions")
    ok = np.isfinite(y)
    if ok.sum() < MIN_RATED:
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
    return pd.DataFrame(rows)
