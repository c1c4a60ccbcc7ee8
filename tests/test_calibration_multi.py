"""The calibrated alliance trained across corpora: within-corpus rank targets, corpus offsets, round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from alliance.calibration import CalibratedAlliance, CalibrationError, corpus_weights, session_features
from alliance.calibration_multi import (
    MultiCorpusError,
    corpus_paths,
    family_percentiles,
    multi_corpus_targets,
    percentile,
    rank_to_scale,
)
from tests.test_calibration import _corpus

# a second corpus whose seekers rate on another scale and in other words than the reference corpus
GOOD = ["that helped me a lot", "I feel calmer", "good idea, I will try it"]
BAD = ["you are not helping", "I give up", "this is useless"]


def _other(n: int = 60, seed: int = 1, kind: str = "esconv") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows, sessions = [], []
    for k in range(n):
        quality = rng.uniform()
        for i in range(5):
            rows.append({"course_id": f"{kind}{k}", "session_id": f"{kind}{k}", "turn_index": 2 * i,
                         "speaker": "counsellor", "text": "Tell me more about it."})
            pool = GOOD if rng.uniform() < quality else BAD
            rows.append({"course_id": f"{kind}{k}", "session_id": f"{kind}{k}", "turn_index": 2 * i + 1,
                         "speaker": "client", "text": pool[int(rng.integers(len(pool)))]})
        meta = ({"empathy": int(1 + round(4 * quality)), "relevance": int(1 + round(4 * quality))}
                if kind == "esconv" else {"mi_quality": "high" if quality > 0.3 else "low"})
        sessions.append({"course_id": f"{kind}{k}", "session_id": f"{kind}{k}", "meta": meta})
    return pd.DataFrame(rows), pd.DataFrame(sessions)


def test_percentiles_and_the_reference_scale():
    assert percentile([3.0, 1.0, np.nan, 2.0]).round(3).tolist()[:2] == [0.833, 0.167]
    assert np.isnan(percentile([3.0, 1.0, np.nan, 2.0])[2])
    assert percentile([1, 1, 2, 2]).tolist() == [0.25, 0.25, 0.75, 0.75]  # ties share one rank
    ref = np.arange(101.0)
    assert rank_to_scale([0.3, 0.9], ref).tolist() == [30.0, 90.0]
    with pytest.raises(MultiCorpusError, match="no reference ratings"):
        rank_to_scale([0.5], [np.nan])


def test_failed_dialogues_rank_below_kept_ones_and_high_quality_above_low():
    _, es = _other(20)
    _, failed = _other(6, seed=5)
    failed["meta"] = [{**m, "failed": True} for m in failed["meta"]]
    both = pd.concat([es, failed], ignore_index=True)
    pct = family_percentiles(both, "esconv").to_numpy()
    assert pct[20:].max() < pct[:20].min()
    _, an = _other(30, kind="annomi")
    p = family_percentiles(an, "annomi").to_numpy()
    high = np.array([m["mi_quality"] == "high" for m in an["meta"]])
    assert p[high].min() > p[~high].max()
    with pytest.raises(MultiCorpusError, match="unknown corpus 'nope'"):
        family_percentiles(an, "nope")


def test_targets_put_other_corpora_on_the_reference_scale_and_leave_its_axes_alone():
    ref = _corpus(40)
    _, es = _other(30)
    Y, dropout, groups, family = multi_corpus_targets({"kokorochat": ref.sessions, "esconv": es})
    assert family.iloc[0] == "kokorochat" and set(family) == {"kokorochat", "esconv"}
    other = family.eq("esconv").to_numpy()
    assert Y.loc[other, ["goal", "task", "bond"]].isna().all().all() and dropout[other].isna().all()
    scores = [m["score"] for m in ref.sessions["meta"]]
    assert Y.loc[other, "overall"].between(min(scores), max(scores)).all()
    # the better a dialogue's seeker rated it, the higher its target
    emp = np.array([m["empathy"] for m in es["meta"]])
    assert spearmanr(Y.loc[other, "overall"], emp)[0] > 0.9
    assert groups[~other].iloc[0] == str(ref.sessions["meta"].iloc[0]["client_id"])
    Y0, *_ = multi_corpus_targets({"esconv": es}, reference=None)  # leaving the reference out: 0-100 ranks
    assert Y0["overall"].between(0, 100).all() and Y0.notna().all().all()
    with pytest.raises(MultiCorpusError, match="reference corpus 'kokorochat' is needed"):
        multi_corpus_targets({"esconv": es})


def test_corpus_weights_let_a_small_corpus_count_without_drowning_the_rest():
    w = corpus_weights(np.array(["a"] * 400 + ["b"] * 25))
    assert w[0] == 1.0 and w[-1] == pytest.approx(4.0)


def test_a_model_trained_across_corpora_ranks_each_and_round_trips(tmp_path):
    ref = _corpus(80)
    et, es = _other(80)
    parts = {"kokorochat": ref.sessions, "esconv": es}
    Y, dropout, groups, family = multi_corpus_targets(parts)
    X = pd.concat([session_features(ref.turns, ref.sessions), session_features(et, es)]).reindex(Y.index)
    train = np.r_[np.arange(80) < 60, np.arange(80) < 60]
    model = CalibratedAlliance(min_df=1, max_features=500).fit(
        X[train], Y[train], groups[train].to_numpy(), dropout=dropout[train].to_numpy(),
        corpus=family[train].to_numpy())
    assert model.corpora_ == {"kokorochat": 60, "esconv": 60}
    assert set(model.corpus_offsets_["overall"]) == {"kokorochat", "esconv"}
    pred = model.predict(X[~train])
    test_other = family[~train].eq("esconv").to_numpy()
    emp = np.array([m["empathy"] for m in es["meta"]])[60:]
    assert spearmanr(pred["overall"][test_other], emp)[0] > 0.6  # learnt from the other corpus's own words
    assert spearmanr(pred["overall"][~test_other], Y[~train]["overall"][~test_other])[0] > 0.6
    assert pred["overall"].between(0, 100).all() and pred["bond"].between(0, 5).all()
    # the axes, never rated by the other corpus, still follow the reference ratings
    assert spearmanr(pred["bond"][~test_other], Y[~train]["bond"][~test_other])[0] > 0.6
    again = CalibratedAlliance.load(model.save(tmp_path / "m.json.gz", {"trained_on": "invented"}))
    assert again.corpora_ == model.corpora_
    num = pred.select_dtypes("number").columns
    assert np.allclose(again.predict(X[~train])[num].to_numpy(), pred[num].to_numpy(), atol=1e-3)
    with pytest.raises(CalibrationError, match="overall rating"):
        CalibratedAlliance().fit(X.iloc[:10], Y.iloc[:10], corpus=family.iloc[:10].to_numpy())


def test_a_single_corpus_fit_is_unchanged_by_the_multi_corpus_path():
    """Without ``corpus`` the model is the 1.4.0 design: corpus offsets and weights never enter."""
    ref = _corpus(60)
    X = session_features(ref.turns, ref.sessions)
    Y, _, groups, family = multi_corpus_targets({"kokorochat": ref.sessions})
    a = CalibratedAlliance(min_df=1, max_features=300).fit(X.reindex(Y.index), Y, groups.to_numpy())
    b = CalibratedAlliance(min_df=1, max_features=300).fit(X.reindex(Y.index), Y, groups.to_numpy(),
                                                           corpus=family.to_numpy())
    assert a.corpora_ is None and b.corpora_ == {"kokorochat": 60}
    # one corpus, equal weights: the fixed effect is the ridge's own intercept, so the predictions agree
    pa, pb = a.predict(X)["overall"], b.predict(X)["overall"]
    assert np.allclose(pa, pb, atol=1e-6)


def test_a_missing_corpus_names_its_files(tmp_path):
    with pytest.raises(MultiCorpusError, match=r"annomi: missing .*AnnoMI-simple\.csv"):
        corpus_paths(tmp_path, "annomi")
    with pytest.raises(MultiCorpusError, match="unknown corpus"):
        corpus_paths(tmp_path, "reddit")


def _annomi_root(root, n: int = 30, seed: int = 2):
    """An invented data root with annomi/AnnoMI-simple.csv: high-quality sessions in GOOD words, low in BAD."""
    rng = np.random.default_rng(seed)
    lines = ["transcript_id,mi_quality,utterance_id,interlocutor,utterance_text"]
    for t in range(n):
        high = t % 3 != 0
        for u in range(8):
            who = "therapist" if u % 2 == 0 else "client"
            pool = ["What matters most to you here?"] if who == "therapist" else (GOOD if high else BAD)
            lines.append(f"{t},{'high' if high else 'low'},{u},{who},{pool[int(rng.integers(len(pool)))]}")
    (root / "annomi").mkdir(parents=True)
    (root / "annomi" / "AnnoMI-simple.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_train_calibration_takes_the_extra_corpora_of_a_data_root(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app
    from alliance.pipeline import run_analysis

    run_analysis(_corpus(40), tmp_path / "run", lenses=["markers", "trajectory"], write_report=False)
    root = _annomi_root(tmp_path / "data")
    runner = CliRunner()
    res = runner.invoke(app, ["train", "calibration", str(tmp_path / "run"), "--corpora", "annomi", "--data-root",
                              str(root), "--out", str(tmp_path / "m.json.gz")])
    assert res.exit_code == 0, res.output
    model = CalibratedAlliance.load(tmp_path / "m.json.gz")
    assert model.corpora_ == {"kokorochat": 40, "annomi": 30}
    assert model.card_["corpora"] == {"kokorochat": 40, "annomi": 30}
    assert model.card_["lenses"] == ["markers", "trajectory"] and model.card_["clients"] == 20
    assert any(t.endswith(":annomi") for t in model.card_["trained_on"])
    res = runner.invoke(app, ["train", "calibration", str(tmp_path / "run"), "--corpora", "esconv", "--data-root",
                              str(root), "--out", str(tmp_path / "m2.json.gz")])
    assert res.exit_code == 2 and "esconv: missing" in res.output


def test_the_shipped_across_corpora_model_keeps_the_guard_rails():
    """The option shipped beside the default (``load("corpora")``): trained on the four rated corpora, it reads no
    timestamp, stays on its scales, and the timestamps of three chatbot chats alone move its overall by at most a
    few points (issue 14)."""
    from alliance.calibration import MODEL_VERSION, SCALES, add_calibrated, is_time_feature
    from alliance.pipeline import analyze
    from tests.test_calibration import _chatbot_log

    model = CalibratedAlliance.load("corpora")
    assert model.card_["model_version"] == MODEL_VERSION
    assert set(model.corpora_) == {"kokorochat", "esconv", "annomi"}
    assert "leave_one_corpus_out" in model.card_["cv_figures"]
    assert not [c for c in model.numeric_columns_ if is_time_feature(c)]
    overall = []
    for spacing in (None, 60.0, 3600.0):
        a = analyze(_chatbot_log(spacing), lenses=["markers", "trajectory"])
        s = add_calibrated(a.turns, a.sessions, model=model, early=False).sort_values("course_id")
        assert s["calibrated_overall"].between(*SCALES["overall"]).all()
        for axis in ("goal", "task", "bond"):
            assert s[f"calibrated_{axis}"].between(*SCALES[axis]).all()
        assert "calibrated_out_of_domain" in s
        overall.append(s["calibrated_overall"].to_numpy())
    assert (np.ptp(np.vstack(overall), axis=0) <= 3.0).all()
