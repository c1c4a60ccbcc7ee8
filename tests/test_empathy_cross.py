"""The empathy cross-encoder: adapter files, the training entry point on a tiny synthetic set, bad input, and the
shipped adapter scoring hand-written pairs (slow: it loads MiniLM)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from alliance.lenses.empathy import LEVELS, MECHANISMS, EmpathyLens, EmpathyModelError
from alliance.lenses.empathy_cross import (
    CROSS_FORMAT,
    DEFAULT_CROSS_MODEL,
    CrossConfig,
    CrossEmpathyModel,
    build_head,
    encode_pairs,
    score_cross,
)
from alliance.training.empathy import TrainingDataError
from alliance.training.empathy_cross import TrainSettings, class_weights, train_and_save_cross

TINY = CrossConfig(frozen_layers=1, rank=2, alpha=4.0, reply_tokens=24, post_tokens=12)


@functools.cache
def tokenizer():
    from transformers import AutoTokenizer

    from alliance.lenses.empathy_cross import base_model_path

    return AutoTokenizer.from_pretrained(base_model_path(), local_files_only=True)


def tiny_base():
    """The real tokenizer and a randomly initialised two-layer BERT of width 32: the training code path in seconds."""
    import torch
    from transformers import BertConfig, BertModel

    tok = tokenizer()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    return tok, BertModel(cfg).eval()


POSTS = ["My dog died last week and I can't stop crying.", "I failed my exam again, I feel useless.",
         "My partner left me and the flat is so quiet.", "I haven't slept properly in a month.",
         "Work is crushing me and nobody notices.", "I moved city and I know nobody here.",
         "My mum is in hospital and I'm scared.", "I keep arguing with my brother about money."]
REPLIES = [("I'm so sorry, that is heartbreaking.", 2, 0, 0), ("What happened?", 0, 0, 2),
           ("It sounds like you feel you have lost a part of yourself.", 1, 2, 0), ("ok", 0, 0, 0),
           ("That must be so hard. How are you coping?", 1, 0, 2), ("I went through the same, it felt endless.", 0, 2, 0)]


def write_epitome(folder, n_posts: int = 8) -> None:
    rows = {m: [] for m in MECHANISMS}
    for p in range(n_posts):
        for r in range(3):
            text, *levels = REPLIES[(p + r) % len(REPLIES)]
            for m, lvl in zip(MECHANISMS, levels, strict=True):
                rows[m].append({"sp_id": f"p{p}", "rp_id": f"p{p}r{r}", "seeker_post": POSTS[p % len(POSTS)],
                                "response_post": text + (" Long tail of the reply goes on." * 6 if r == 2 else ""),
                                "level": lvl})
    names = {"er": "emotional-reactions-reddit.csv", "ip": "interpretations-reddit.csv",
             "ex": "explorations-reddit.csv"}
    for m, name in names.items():
        pd.DataFrame(rows[m]).to_csv(folder / name, index=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("epitome")
    write_epitome(d)
    out = d / "model"
    res = train_and_save_cross(d, out, seed=3, cv_folds=2, config=TINY, base=tiny_base(),
                               settings=TrainSettings(max_epochs=2, batch_size=4, val_share=0.25))
    return d, out, res


def test_training_entry_point_writes_a_small_adapter_and_card(trained):
    _, out, res = trained
    path = out / DEFAULT_CROSS_MODEL
    assert path.is_file() and path.stat().st_size < 200_000
    card = (out / "MODEL_CARD_cross.md").read_text()
    assert "alliance train empathy --model cross --seed 3" in card and "F1 of levels 0 / 1 / 2" in card
    cv = res["meta"]["cross_validation"]
    assert cv["folds"] == 2 and len(cv["best_epochs"]) == 2 and all(e in (1, 2) for e in cv["best_epochs"])
    for m in MECHANISMS:
        s = cv["scores"][m]
        assert len(s["level_f1"]) == 3 and 0 <= s["macro_f1"] <= 1
        assert s["macro_f1"] == pytest.approx(np.mean(s["level_f1"]))
    # the out-of-fold probabilities are proper distributions over the three levels
    for m in MECHANISMS:
        assert np.allclose(res["cv"]["oof"][m].sum(axis=1), 1.0)
    model = CrossEmpathyModel.load(path)
    assert model.config == TINY and model.meta["seed"] == 3 and model.meta["epochs"] == res["meta"]["epochs"]
    # only adapters and heads are stored: every array is a LoRA factor or the heads
    assert all(k.endswith((".a", ".b")) or k.startswith("heads.") for k in model.arrays)


def test_training_is_deterministic_for_a_seed(trained, tmp_path):
    d, _, _ = trained
    res = train_and_save_cross(d, tmp_path, seed=3, cv_folds=0, config=TINY, base=tiny_base(), epochs=2,
                               settings=TrainSettings(max_epochs=2, batch_size=4, val_share=0.25))
    a = CrossEmpathyModel.load(tmp_path / DEFAULT_CROSS_MODEL).arrays
    again = train_and_save_cross(d, tmp_path / "again", seed=3, cv_folds=0, config=TINY, base=tiny_base(), epochs=2,
                                 settings=TrainSettings(max_epochs=2, batch_size=4, val_share=0.25))
    b = CrossEmpathyModel.load(tmp_path / "again" / DEFAULT_CROSS_MODEL).arrays
    assert res["meta"]["epochs"] == again["meta"]["epochs"] == 2
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_lens_recognises_a_cross_file_and_describes_it(trained):
    _, out, _ = trained
    lens = EmpathyLens(model=out / DEFAULT_CROSS_MODEL)
    assert lens.cross is not None
    d = lens.describe()
    assert d["model"]["kind"] == "cross-encoder" and d["model"]["config"]["rank"] == TINY.rank


def test_pairs_keep_the_end_of_the_post_and_the_start_of_the_reply():
    tok, _ = tiny_base()
    cfg = CrossConfig(post_tokens=3, reply_tokens=2)
    (ids, types), = encode_pairs(tok, ["one two three four five"], ["alpha beta gamma"], cfg)
    words = tok.convert_ids_to_tokens(ids)
    assert words == ["[CLS]", "three", "four", "five", "[SEP]", "alpha", "beta", "[SEP]"]
    assert types == [0, 0, 0, 0, 0, 1, 1, 1]


def test_class_weights_favour_rare_levels():
    w = class_weights(np.array([0] * 80 + [1] * 5 + [2] * 15), "balanced")
    assert w[1] > w[2] > w[0] and w.sum() == pytest.approx(100 / 3 * (1 / 80 + 1 / 5 + 1 / 15))
    assert class_weights(np.array([0, 0, 2]), "balanced")[1] == 1.0  # absent level: neutral, not infinite


def test_bad_adapter_files_name_the_file_and_the_problem(tmp_path, trained):
    with pytest.raises(EmpathyModelError, match="not found"):
        CrossEmpathyModel.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(EmpathyModelError, match=r"junk\.npz: not an empathy cross-encoder"):
        CrossEmpathyModel.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array('{"format": "alliance-empathy-linear/1"}'))
    with pytest.raises(EmpathyModelError, match=f"expected '{CROSS_FORMAT}'"):
        CrossEmpathyModel.load(other)
    no_cfg = tmp_path / "nocfg.npz"
    np.savez(no_cfg, meta=np.array(f'{{"format": "{CROSS_FORMAT}"}}'))
    with pytest.raises(EmpathyModelError, match="'config' missing"):
        CrossEmpathyModel.load(no_cfg)
    # an adapter trained for another architecture is refused, naming its file, before anything is scored
    _, out, _ = trained
    model = CrossEmpathyModel.load(out / DEFAULT_CROSS_MODEL)
    head = build_head(tiny_base()[1], CrossConfig(frozen_layers=0, rank=2, alpha=4.0))
    with pytest.raises(EmpathyModelError, match="do not match the architecture"):
        head.load_trainable(model.arrays, model.source)
    bigger = build_head(tiny_base()[1], CrossConfig(frozen_layers=1, rank=3, alpha=4.0))
    with pytest.raises(EmpathyModelError, match="has shape"):
        bigger.load_trainable(model.arrays, model.source)


def test_bad_training_input_is_reported(tmp_path):
    with pytest.raises(TrainingDataError, match="EPITOME file not found"):
        train_and_save_cross(tmp_path, tmp_path / "out", cv_folds=0, config=TINY, base=tiny_base())
    write_epitome(tmp_path, n_posts=1)
    with pytest.raises(TrainingDataError, match="too few to train on"):
        train_and_save_cross(tmp_path, tmp_path / "out", cv_folds=0, config=TINY, base=tiny_base(), limit=1)


def test_contexts_and_replies_must_pair_up(trained):
    _, out, _ = trained
    with pytest.raises(ValueError, match="2 client contexts for 1 replies"):
        score_cross(CrossEmpathyModel.load(out / DEFAULT_CROSS_MODEL), ["a", "b"], ["reply"])


def test_cli_rejects_an_unknown_model_kind():
    from typer.testing import CliRunner

    from alliance.cli import app

    res = CliRunner().invoke(app, ["train", "empathy", "--model", "bert"])
    assert res.exit_code == 2 and "choose 'linear' or 'cross'" in res.output


@pytest.mark.slow
def test_shipped_adapter_scores_pairs_in_context_offline():
    from alliance.lenses.base import LensContext
    from tests.test_empathy import corpus_of

    lens = EmpathyLens(model="cross", rationales=True)
    client = "My dad died last month and I still can't get out of bed most days."
    replies = ["I'm so sorry for your loss, that sounds incredibly painful.",
               "What has helped you get through the days so far?",
               "The bus timetable changes in December.",
               "I'm so sorry. " + " ".join(["Grief comes in waves and there is no schedule for it."] * 20)
               + " How are you sleeping?"]
    c = corpus_of([(client, r) for r in replies])
    out = lens.score(c, LensContext(c, encoder=None))
    rows = out[c.turns["speaker"].to_numpy() == "counsellor"]
    for m in MECHANISMS:
        p = rows[[f"empathy_{m}_p{k}" for k in LEVELS]].to_numpy()
        assert np.allclose(p.sum(axis=1), 1.0)
    er = (rows["empathy_er_p1"] + 2 * rows["empathy_er_p2"]).to_numpy()
    ex = (rows["empathy_ex_p1"] + 2 * rows["empathy_ex_p2"]).to_numpy()
    assert er[0] > er[2] and ex[1] > ex[2] and ex[1] > ex[0]
    assert rows["empathy_ex"].iloc[1] > 0 and rows["empathy_er"].iloc[0] > 0 and rows["empathy_er"].iloc[2] == 0
    # the long reply (several windows) keeps the question at its end: explorations found in its last window
    assert rows["empathy_ex"].iloc[3] > 0
    # rationales come from the same occlusion machinery as the linear heads
    assert isinstance(rows["empathy_er_rationale"].iloc[0], str) and rows["empathy_er_rationale"].iloc[0]
