"""The corpus-level empathy-alliance gap analysis: what each measure adds to per-reply empathy, cross-validated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.gap import GapError, incremental_gap


def _features(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    bond = rng.normal(size=n)
    X = pd.DataFrame({
        "empathy_total_mean": 0.3 * bond + rng.normal(size=n),  # a weak view of the outcome
        "markers_client_minimal_share": bond + 0.3 * rng.normal(size=n),  # a strong one
        "coordination_lsm": rng.normal(size=n),  # noise
        "text_client": ["words"] * n,  # text never enters the analysis
    })
    return X, 50 + 10 * bond + rng.normal(size=n)


def test_each_measure_is_credited_with_what_it_adds_beyond_empathy():
    X, y = _features()
    res = incremental_gap(X, y)
    assert list(res["added"]) == ["empathy", "markers", "coordination"]
    assert list(res["n_features"]) == [1, 2, 3]
    assert (res["metric"] == "rho").all() and (res["n"] == 200).all()
    empathy, markers, _ = res["value"]
    assert 0.1 < empathy < 0.5
    assert markers > 0.85 and res["gain"].iloc[1] > 0.4
    assert abs(res["gain"].iloc[2]) < 0.03
    assert np.isnan(res["gain"].iloc[0])


def test_a_flag_is_scored_by_auc_and_unrated_sessions_are_left_out():
    X, y = _features()
    flag = (y < np.quantile(y, 0.2)).astype(float)
    flag[:20] = np.nan
    res = incremental_gap(X, flag, groups=np.arange(200) % 40)
    assert (res["metric"] == "auc").all() and (res["n"] == 180).all()
    # higher predicted = the larger value (1 = flagged, the low outcomes): the strong measure ranks them well
    assert res["value"].iloc[1] > 0.9


def test_bad_outcomes_are_named():
    X, y = _features(50)
    with pytest.raises(GapError, match="only 20 sessions carry the outcome"):
        incremental_gap(X, np.r_[y[:20], np.full(30, np.nan)])
    with pytest.raises(GapError, match="one value"):
        incremental_gap(X, np.ones(50))
    with pytest.raises(GapError, match="49 values for 50 sessions"):
        incremental_gap(X, y[:49])
    with pytest.raises(GapError, match="no columns"):
        incremental_gap(X[["text_client"]], y)
