"""The calibration benchmark reports honestly: a cache keyed by the data, a baseline trained where the model was,
correlations read on a random part apart from an enriched sample."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.calibration import KOKOROCHAT_ITEM_MAP

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vt():
    spec = importlib.util.spec_from_file_location("validate_trajectory", ROOT / "benchmarks" / "validate_trajectory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _kokoro_folder(folder: Path, n: int, seed: int, first: int = 0) -> Path:
    """Invented sessions in KokoroChat's file format: warm words go with high scores."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(first, first + n):
        q = rng.uniform()
        word = "grateful calmer" if q > 0.5 else "pointless annoyed"
        dialogue = [{"role": "counselor" if i % 2 == 0 else "client", "time": f"2024-01-01T10:{i:02d}:00",
                     "content": "How are things?" if i % 2 == 0 else f"I feel {word} today {i}"} for i in range(8)]
        review = {"client_id": k % 7, "counselor_id": 1, "score": round(100 * q),
                  "unwilling_to_continue": True if q < 0.1 else None,
                  **{i: round(5 * q) for items in KOKOROCHAT_ITEM_MAP.values() for i in items}}
        (folder / f"en{k}.json").write_text(json.dumps({"dialogue": dialogue, "review_by_client": review}))
    return folder


def test_the_cache_is_keyed_by_the_datas_content_not_its_name(vt, tmp_path):
    a = _kokoro_folder(tmp_path / "a" / "English", 3, seed=0)
    b = _kokoro_folder(tmp_path / "b" / "English", 3, seed=1)  # same corpus name, same file names, other data
    same = _kokoro_folder(tmp_path / "c" / "English", 3, seed=0)  # the same data in another folder
    key = vt.cache_key("kokorochat", [a], "kokorochat", ["markers", "trajectory"])
    assert key != vt.cache_key("kokorochat", [b], "kokorochat", ["markers", "trajectory"])
    assert key == vt.cache_key("kokorochat", [same], "kokorochat", ["trajectory", "markers"])
    assert key != vt.cache_key("kokorochat", [a], "kokorochat", ["markers"])
    assert key != vt.cache_key("kokorochat", [a], "kokorochat", ["markers", "trajectory"], {"markers": {"x": 1}})
    (a / "en0.json").write_text((a / "en0.json").read_text().replace("How are things?", "How are you?"))
    assert key != vt.cache_key("kokorochat", [a], "kokorochat", ["markers", "trajectory"])


def test_the_random_part_is_read_from_a_list_and_a_typo_is_an_error(vt, tmp_path):
    index = pd.MultiIndex.from_tuples([("c1", "en1"), ("c2", "en2"), ("c3", "en3")], names=["course_id", "session_id"])
    listing = tmp_path / "random.txt"
    listing.write_text("# the random draw\nen1.json\n\nsome/folder/en3.json\n")
    assert vt.random_part(index, listing).tolist() == [True, False, True]
    listing.write_text("en1\nen9\n")
    with pytest.raises(SystemExit, match=r"random.txt:line 2: session 'en9'"):
        vt.random_part(index, listing)


def test_reweighting_to_the_training_rate_undoes_an_enriched_sample(vt):
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    pred = y + rng.normal(size=400)
    flag = rng.uniform(size=400) < 0.2
    assert vt.reweighted_spearman(pred, y, flag, flag.mean()) == pytest.approx(vt.spearman(pred, y))
    # duplicating the flagged sessions is what a weight of 2 on them means
    dup = np.r_[np.arange(400), np.flatnonzero(flag)]
    rate = 2 * flag.sum() / (400 + flag.sum())
    assert vt.reweighted_spearman(pred, y, flag, rate) == pytest.approx(vt.spearman(pred[dup], y[dup]), abs=0.02)


def test_the_holdout_baseline_is_trained_on_the_models_training_data(vt, tmp_path):
    from alliance.calibration import CalibratedAlliance, review_targets, session_features
    from alliance.io import read

    train = _kokoro_folder(tmp_path / "train", 40, seed=0)
    held = _kokoro_folder(tmp_path / "held", 12, seed=1, first=100)
    c = read([train], format="kokorochat").corpus
    X = session_features(c.turns, c.sessions)
    Y = review_targets(c.sessions).reindex(X.index)
    model = CalibratedAlliance(min_df=1, max_features=200).fit(
        X, Y, [m["client_id"] if isinstance(m, dict) else json.loads(m)["client_id"] for m in c.sessions["meta"]])
    bow, n, note, rate = vt.training_baseline(model, train)
    assert n == 40 and note == "the model's training sessions" and 0 <= rate <= 1
    words = pd.Series(["I feel grateful calmer today", "I feel pointless annoyed today"])
    assert bow.predict(words)[0] > bow.predict(words)[1]  # it learnt from the training folder
    _, n_held, note_held, _ = vt.training_baseline(model, held)  # not the model's training data: said so
    assert n_held == 12 and "not its training data" in note_held
    missing = vt.training_baseline(model, tmp_path / "nowhere")
    assert missing[0] is None and "not found" in missing[2]
