"""The client-calibrated alliance estimator: targets, features, fit/predict, save/load without pickle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from alliance.calibration import (
    HEADS,
    KOKOROCHAT_ITEM_MAP,
    TARGETS,
    CalibratedAlliance,
    CalibrationError,
    feature_source,
    review_targets,
    session_features,
)
from alliance.corpus import Corpus

WARM = ["that really helps, thank you", "I feel understood and calmer now", "yes, I can try that tomorrow"]
COLD = ["whatever", "you are not listening to me", "this is pointless"]


def _num(df: pd.DataFrame) -> np.ndarray:
    """The numeric predictions (the guard-rail columns are flags and names)."""
    return df.select_dtypes("number").to_numpy()


def _corpus(n: int = 80, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    rows, sessions = [], []
    for k in range(n):
        quality = rng.uniform()
        sid = f"s{k}"
        for i in range(8):
            rows.append({"course_id": f"c{k}", "session_id": sid, "turn_index": 2 * i, "speaker": "counsellor",
                         "text": "What would you like to talk about today?"})
            pool = WARM if rng.uniform() < quality else COLD
            rows.append({"course_id": f"c{k}", "session_id": sid, "turn_index": 2 * i + 1, "speaker": "client",
                         "text": pool[int(rng.integers(len(pool)))]})
        items = {i: float(np.clip(round(1 + 4 * quality + rng.normal(scale=0.3)), 0, 5))
                 for items in KOKOROCHAT_ITEM_MAP.values() for i in items}
        sessions.append({"course_id": f"c{k}", "session_id": sid,
                         "meta": {**items, "score": float(100 * quality), "client_id": k % 20}})
    return Corpus(pd.DataFrame(rows), pd.DataFrame(sessions))


def test_review_targets_average_the_mapped_items():
    c = _corpus(5)
    y = review_targets(c.sessions)
    meta = c.sessions["meta"].iloc[0]
    assert y.iloc[0]["bond"] == pytest.approx(np.mean([meta[i] for i in KOKOROCHAT_ITEM_MAP["bond"]]))
    assert y.iloc[0]["overall"] == pytest.approx(meta["score"])
    assert list(y.columns) == list(TARGETS)


def test_fit_predict_learns_the_words_clients_use_and_round_trips(tmp_path):
    c = _corpus()
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    groups = [m["client_id"] for m in c.sessions["meta"]]
    train = np.arange(len(X)) < 60
    model = CalibratedAlliance(min_df=1, max_features=500).fit(X[train], Y[train], np.asarray(groups)[train])
    pred = model.predict(X[~train])
    from scipy.stats import spearmanr

    assert spearmanr(pred["overall"], Y[~train]["overall"])[0] > 0.6
    assert spearmanr(pred["bond"], Y[~train]["bond"])[0] > 0.6
    path = model.save(tmp_path / "m.json.gz", {"trained_on": "invented"})
    again = CalibratedAlliance.load(path)
    back = again.predict(X[~train])
    num = pred.select_dtypes("number").columns
    assert np.allclose(back[num].to_numpy(), pred[num].to_numpy(), atol=1e-3)
    # the guard rails survive the round trip: same bounds, same out-of-domain verdicts
    assert back[["bounded", "out_of_domain", "out_of_domain_features"]].equals(
        pred[["bounded", "out_of_domain", "out_of_domain_features"]])
    assert again.card_["trained_on"] == "invented"
    coefs = model.coefficients()
    assert set(coefs["target"]) == set(HEADS)
    assert "text_client" in set(coefs["feature"])
    words = model.top_words("text_client", "overall", 5)
    warm = {w for t in WARM for w in t.replace(",", "").split()}
    cold = {w for t in COLD for w in t.replace(",", "").split()}
    assert all(set(w.split()) <= warm for w, _ in words["raise"])
    assert all(set(w.split()) <= cold for w, _ in words["lower"])
    assert clone(model).get_params()["max_features"] == 500


def test_missing_lens_columns_fall_back_to_training_medians():
    c = _corpus(40)
    X = session_features(c.turns, c.sessions)
    X["alliance_client_bond_mean"] = np.linspace(-1, 1, len(X))
    model = CalibratedAlliance(min_df=1).fit(X, review_targets(c.sessions).reindex(X.index))
    out = model.predict(X.drop(columns=["alliance_client_bond_mean"]))
    assert out.notna().all().all()


def test_runs_without_the_encoder_lenses_use_the_heads_fitted_without_them(tmp_path):
    """A model trained with alliance-probe columns, given a run without them (no encoder), predicts exactly as a
    model trained without them would; other missing columns still fall back to training medians."""
    c = _corpus(60)
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    groups = np.asarray([m["client_id"] for m in c.sessions["meta"]])
    rng = np.random.default_rng(1)
    X["markers_client_i_rate"] = rng.uniform(size=len(X))
    X["alliance_client_bond_mean"] = Y["bond"].to_numpy() + rng.normal(scale=0.5, size=len(X))
    X["trajectory_client_bond_slope"] = rng.normal(size=len(X))
    with_enc = CalibratedAlliance(min_df=1).fit(X, Y, groups)
    enc_cols = ["alliance_client_bond_mean", "trajectory_client_bond_slope"]
    without = CalibratedAlliance(min_df=1).fit(X.drop(columns=enc_cols), Y, groups)
    assert with_enc.reduced_["without"] == ["alliance"]
    assert not getattr(without, "reduced_", None)
    no_enc = X.drop(columns=enc_cols)
    expected = without.predict(no_enc)
    assert np.allclose(_num(with_enc.predict(no_enc)), _num(expected))
    # NaN rather than absent columns (a session the lens could not score) take the same route, row by row
    nan_rows = X.copy()
    nan_rows.loc[nan_rows.index[:5], enc_cols] = np.nan
    mixed = with_enc.predict(nan_rows)
    assert np.allclose(_num(mixed.iloc[:5]), _num(expected.iloc[:5]))
    assert np.allclose(_num(mixed.iloc[5:]), _num(with_enc.predict(X).iloc[5:]))
    again = CalibratedAlliance.load(with_enc.save(tmp_path / "m.json.gz"))
    assert np.allclose(_num(again.predict(no_enc)), _num(expected), atol=1e-3)
    # a model of encoder-lens columns only has no such heads and still predicts (from medians)
    only = CalibratedAlliance(feature_groups=["alliance"]).fit(X, Y, groups)
    assert only.reduced_ is None and only.predict(no_enc).notna().all().all()
    # a non-encoder lens missing: medians, still a prediction for every session
    assert with_enc.predict(X.drop(columns=["markers_client_i_rate"])).notna().all().all()


def test_a_models_own_predictions_are_never_features():
    """A run with the trajectory lens carries ``calibrated_*`` (the shipped model's predictions): training on
    them would fit a model to an earlier model's output, so session_features leaves them out."""
    c = _corpus(10)
    sessions = c.sessions.assign(calibrated_overall=np.arange(10.0), calibrated_bond=np.arange(10.0),
                                 early_overall=np.arange(10.0), early_risk=np.linspace(0, 1, 10),
                                 early_share=0.5, early_turns_seen=4,
                                 markers_client_i_rate=np.linspace(0, 1, 10))
    X = session_features(c.turns, sessions)
    assert not [col for col in X.columns if col.startswith("calibrated_")]
    # nor the early-warning model's (fitted on the same ratings: read back, they leaked the targets)
    assert not [col for col in X.columns if col.startswith("early_")]
    assert "markers_client_i_rate" in X.columns


def test_feature_source_credits_trajectories_to_the_measure_they_follow():
    assert feature_source("trajectory_client_bond_slope_hi") == "alliance"
    assert feature_source("trajectory_counsellor_goal_level") == "alliance"
    assert feature_source("trajectory_gap_task_z") == "alliance"
    assert feature_source("trajectory_empathy_level") == "empathy"
    assert feature_source("trajectory_client_words_slope") == "trajectory"
    assert feature_source("trajectory_n_ruptures") == "trajectory"
    assert feature_source("empathy_total_mean") == "empathy"
    assert feature_source("struct_log_client_turns") == "struct"


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(CalibrationError, match="not fitted"):
        CalibratedAlliance().predict(pd.DataFrame())
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(CalibrationError, match="not an alliance calibration model"):
        CalibratedAlliance.load(bad)
    c = _corpus(10)
    X = session_features(c.turns, c.sessions)
    with pytest.raises(CalibrationError, match="lack"):
        CalibratedAlliance().fit(X, pd.DataFrame({"overall": np.ones(len(X))}, index=X.index))


def test_shipped_model_loads_with_its_card_and_scores_a_run(tmp_path):
    from alliance.pipeline import run_analysis

    model = CalibratedAlliance.load()
    assert model.card_["clients"] > 100 and "KokoroChat" in model.card_["trained_on"]
    assert set(model.card_["item_map"]) == {"goal", "task", "bond"}
    from alliance.calibration import ENCODER_SOURCES, MODEL_VERSION

    # the default is still 1.4.0 (the model trained across corpora, 1.5.0, ships as an option): readable by 1.x
    assert model.card_["model_version"].split(".")[0] == MODEL_VERSION.split(".")[0]
    assert model.card_["model_version"] <= MODEL_VERSION
    # it records every session and client it was trained on, so held-out figures can leave them out
    assert len(model.trained_sessions_) == model.card_["sessions"]
    assert len(model.trained_groups_) == model.card_["clients"]
    if any(feature_source(col) in ENCODER_SOURCES for col in model.numeric_columns_):
        # a run without the encoder (below: markers + trajectory) gets the heads fitted without those lenses
        assert model.reduced_ and set(model.reduced_["without"]) <= set(ENCODER_SOURCES)
    c = _corpus(4)
    a = run_analysis(c, tmp_path, lenses=["markers", "trajectory"], write_report=False)
    cols = {f"calibrated_{t}" for t in TARGETS}
    assert cols <= set(a.sessions.columns)
    assert a.sessions[sorted(cols)].notna().all().all()
    assert "calibrated_overall_mean" in a.courses.columns


def test_encoder_lens_features_from_another_encoder_are_not_read():
    """Alliance-probe and empathy columns measured with a different encoder live on another scale: the model
    predicts those sessions as if the encoder lenses had not run (their heads without them), not from the columns."""
    from alliance.calibration import ENCODER_SOURCES, add_calibrated

    c = _corpus(40)
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    groups = np.asarray([m["client_id"] for m in c.sessions["meta"]])
    rng = np.random.default_rng(2)
    sessions = c.sessions.copy()
    sessions["markers_client_i_rate"] = rng.uniform(size=len(sessions))
    sessions["alliance_client_bond_mean"] = Y["bond"].to_numpy() + rng.normal(scale=0.3, size=len(sessions))
    model = CalibratedAlliance(min_df=1).fit(session_features(c.turns, sessions), Y, groups)
    assert model.encoder_id == "sentence-transformers/all-MiniLM-L6-v2"  # no card: the default encoder
    same = add_calibrated(c.turns, sessions, model, encoder_id=model.encoder_id)
    other = add_calibrated(c.turns, sessions, model, encoder_id="someone/else-v1")
    blind = add_calibrated(c.turns, sessions.drop(columns=["alliance_client_bond_mean"]), model)
    cols = [f"calibrated_{t}" for t in TARGETS]
    assert np.allclose(other[cols].to_numpy(), blind[cols].to_numpy())
    assert not np.allclose(same[cols].to_numpy(), other[cols].to_numpy())
    assert "alliance" in ENCODER_SOURCES


def test_a_model_knows_which_sessions_and_clients_trained_it(tmp_path):
    """Figures on new data must leave out the sessions a model was fitted on; the model records them (as
    fingerprints, not ids), keeps them through save/load, and marks them beside its predictions."""
    from alliance.calibration import add_calibrated, key_fingerprint

    c = _corpus(40)
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    groups = np.asarray([m["client_id"] for m in c.sessions["meta"]])
    train = groups < 10  # clients 0-9 train, 10-19 never seen
    model = CalibratedAlliance(min_df=1).fit(X[train], Y[train], groups[train])
    assert model.trained_on(X.index).tolist() == train.tolist()
    assert model.trained_on_groups(groups).tolist() == train.tolist()
    assert model.trained_on([("c999", "s999")]).tolist() == [False]
    again = CalibratedAlliance.load(model.save(tmp_path / "m.json.gz"))
    assert again.trained_on(X.index).tolist() == train.tolist()
    assert again.trained_on_groups([3, 15]).tolist() == [True, False]
    raw = (tmp_path / "m.json.gz").read_bytes()
    import gzip

    assert b"c0/s0" not in gzip.decompress(raw) and key_fingerprint(("c0", "s0")).encode() in gzip.decompress(raw)
    out = add_calibrated(c.turns, c.sessions, again)
    assert out["calibration_in_training"].tolist() == train.tolist()
    # the flag is bookkeeping, never a feature of a later model
    assert "calibration_in_training" not in session_features(c.turns, out).columns


def test_a_model_saved_before_it_recorded_its_training_sessions_says_so():
    c = _corpus(30)
    X = session_features(c.turns, c.sessions)
    doc = CalibratedAlliance(min_df=1).fit(X, review_targets(c.sessions).reindex(X.index)).to_dict()
    doc.pop("trained")
    old = CalibratedAlliance.from_dict(doc)
    with pytest.raises(CalibrationError, match="does not record its training sessions"):
        old.trained_on(X.index)
    from alliance.calibration import add_calibrated

    assert "calibration_in_training" not in add_calibrated(c.turns, c.sessions, old).columns


def test_axis_specific_heads_tell_the_axes_apart():
    """Clients who rate the bond above the session overall (and goals below) use other words than clients who do
    the reverse; the *_specific heads must find that, while goal/task/bond themselves mostly follow the overall."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    rows, sessions, tilt = [], [], []
    for k in range(120):
        q, b = rng.uniform(), rng.normal()
        tilt.append(b)
        for i in range(8):
            rows.append({"course_id": f"c{k}", "session_id": "s", "turn_index": 2 * i, "speaker": "counsellor",
                         "text": "What would you like to talk about today?"})
            words = ("you really get me" if rng.uniform() < 1 / (1 + np.exp(-2 * b)) else "the plan is clear")
            rows.append({"course_id": f"c{k}", "session_id": "s", "turn_index": 2 * i + 1, "speaker": "client",
                         "text": f"{WARM[i % 3] if rng.uniform() < q else COLD[i % 3]}, {words}"})
        shift = {"bond": b, "goal": -b, "task": 0.0}
        items = {i: float(np.clip(2.5 + 2 * (q - 0.5) + 0.5 * shift[axis], 0, 5))
                 for axis, names in KOKOROCHAT_ITEM_MAP.items() for i in names}
        sessions.append({"course_id": f"c{k}", "session_id": "s", "meta": {**items, "score": 100 * q,
                                                                              "client_id": k}})
    c = Corpus(pd.DataFrame(rows), pd.DataFrame(sessions))
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    train = np.arange(len(X)) < 80
    model = CalibratedAlliance(min_df=1).fit(X[train], Y[train], np.arange(len(X))[train])
    pred = model.predict(X[~train])
    z = (Y - Y[train].mean()) / Y[train].std()
    for axis in ("bond", "goal"):  # the target: the axis's z above the overall's z
        assert spearmanr(pred[f"{axis}_specific"], (z[axis] - z["overall"])[~train])[0] > 0.6
    # the specific heads carry the tilt; the plain axis heads hardly do (they follow the overall)
    b = np.asarray(tilt)[~train]
    assert spearmanr(pred["bond_specific"], b)[0] > spearmanr(pred["bond"], b)[0] + 0.2
    words = model.top_words("text_client", "bond_specific", 3)
    assert {"get", "really", "get me", "really get", "you really"} & {w for w, _ in words["raise"]}


# guard rails (issue 14, section 4) ------------------------------------------------------------------------------
def _chatbot_log(spacing_s: float | None) -> Corpus:
    """Three short hand-written chatbot conversations; only the timestamps differ between calls."""
    texts = [("hi, I have been feeling low since I lost my job", "I'm sorry to hear that. What has been hardest?"),
             ("mostly the mornings, I don't want to get up", "That sounds exhausting. What helps, even a little?"),
             ("talking to my sister sometimes", "It sounds like she matters to you. Could you reach out today?"),
             ("maybe, thanks", "You're welcome. I'm here whenever you want to talk.")]
    rows = []
    start = pd.Timestamp("2026-01-05 09:00", tz="UTC")
    for k in range(3):
        i = 0
        for client, bot in texts:
            for speaker, text in (("client", client), ("counsellor", bot)):
                ts = start + pd.Timedelta(seconds=spacing_s * i) if spacing_s is not None else pd.NaT
                rows.append({"course_id": f"bot{k}", "session_id": "s1", "turn_index": i, "speaker": speaker,
                             "counsellor_is_ai": True, "text": f"{text} ({k})", "timestamp": ts})
                i += 1
    return Corpus(pd.DataFrame(rows))


def test_timestamps_alone_cannot_move_the_shipped_models_overall(tmp_path):
    """Issue 14: none / a minute apart / an hour apart moved the overall from 37 to 309. The shipped model reads no
    timestamp-derived feature and bounds every input, so the timestamps alone move it by at most a few points."""
    from alliance.calibration import SCALES, is_time_feature
    from alliance.pipeline import run_analysis

    model = CalibratedAlliance.load()
    assert not [c for c in model.numeric_columns_ if is_time_feature(c)]
    overall = []
    for k, spacing in enumerate((None, 60.0, 3600.0)):
        a = run_analysis(_chatbot_log(spacing), tmp_path / str(k), lenses=["markers", "trajectory"],
                         write_report=False)
        s = a.sessions.sort_values("course_id")
        lo, hi = SCALES["overall"]
        assert s["calibrated_overall"].between(lo, hi).all()
        for axis in ("goal", "task", "bond"):
            assert s[f"calibrated_{axis}"].between(*SCALES[axis]).all()
        # three-turn-pair chats lie far outside KokoroChat's hour-long sessions: said beside the number
        assert s["calibrated_out_of_domain"].all()
        assert s["calibrated_out_of_domain_features"].str.contains("struct_log_client_turns").all()
        overall.append(s["calibrated_overall"].to_numpy())
    spread = np.ptp(np.vstack(overall), axis=0)
    assert (spread <= 3.0).all(), spread


def test_predictions_are_bounded_to_their_scales_and_say_so():
    c = _corpus()
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    model = CalibratedAlliance(min_df=1, max_features=500).fit(X, Y, [m["client_id"] for m in c.sessions["meta"]])
    plain = model.predict(X)
    assert not plain["bounded"].any()
    model.level2_["overall"]["intercept"] += 10.0  # ten SDs up: a model that would promise 160 out of 100
    model.level2_["bond"]["intercept"] -= 10.0
    pushed = model.predict(X)
    assert (pushed["overall"] == 100.0).all() and (pushed["bond"] == 0.0).all() and pushed["bounded"].all()


def test_out_of_domain_sessions_are_marked_with_the_features_that_are_out():
    c = _corpus()
    rng = np.random.default_rng(3)
    sessions = c.sessions.copy()
    sessions["markers_client_i_rate"] = rng.uniform(0.0, 0.2, size=len(sessions))
    X = session_features(c.turns, sessions)
    Y = review_targets(sessions).reindex(X.index)
    model = CalibratedAlliance(min_df=1, max_features=500).fit(X, Y, [m["client_id"] for m in sessions["meta"]])
    assert not model.predict(X)["out_of_domain"].any()
    odd = X.copy()
    odd.loc[odd.index[0], "markers_client_i_rate"] = 5.0  # 25 times the training range beyond its edge
    before = model.predict(X.iloc[[0]])["overall"].iloc[0]
    p = model.predict(odd)
    assert p["out_of_domain"].iloc[0] and not p["out_of_domain"].iloc[1:].any()
    assert p["out_of_domain_features"].iloc[0].split(", ")[0] == "markers_client_i_rate"
    # clipped to the training range: the extreme value moves the prediction no further than the range allows
    bound = model.max_shift("overall")["markers_client_i_rate"]
    assert abs(p["overall"].iloc[0] - before) <= bound + 1e-6
    assert model.max_shift("overall").index[0] in model.feature_names_


def test_add_calibrated_is_what_the_cli_run_applies(tmp_path):
    """``add_calibrated`` is the public step the API's analyze() calls: on the same scored tables it gives exactly
    the calibrated_* columns the CLI's run writes."""
    from alliance.calibration import add_calibrated
    from alliance.pipeline import analyze, run_analysis

    c = _corpus(6)
    cli = run_analysis(c, tmp_path, lenses=["markers", "trajectory"], write_report=False).sessions
    api = analyze(c, lenses=["markers", "trajectory"])
    api_sessions = add_calibrated(api.turns, api.sessions)
    cols = sorted(col for col in cli.columns if col.startswith(("calibrated_", "calibration_", "early_")))
    assert "calibrated_out_of_domain" in cols and "calibrated_bounded" in cols
    assert cols == sorted(col for col in api_sessions.columns if col.startswith(("calibrated_", "calibration_",
                                                                                   "early_")))
    key = ["course_id", "session_id"]
    a, b = cli.sort_values(key)[cols].reset_index(drop=True), api_sessions.sort_values(key)[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
