"""The empathy lens (EPITOME mechanisms): hand-written replies, long replies, probabilities, model files, training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.lenses.empathy import (
    LEVELS,
    MECHANISMS,
    EmpathyModel,
    EmpathyModelError,
    clauses,
    client_context,
    lexical_features,
    pool_windows,
    split_windows,
)


def corpus_of(pairs: list[tuple[str, str]], opener: str | None = None) -> Corpus:
    """One session per (client, counsellor) pair; ``opener`` adds a counsellor turn before the first client."""
    rows = []
    for k, (client, reply) in enumerate(pairs):
        sid = f"s{k}"
        ti = 0
        if opener and k == 0:
            rows.append({"course_id": sid, "session_id": sid, "turn_index": ti, "speaker": "counsellor", "text": opener})
            ti += 1
        rows.append({"course_id": sid, "session_id": sid, "turn_index": ti, "speaker": "client", "text": client})
        rows.append({"course_id": sid, "session_id": sid, "turn_index": ti + 1, "speaker": "counsellor", "text": reply})
    return Corpus(pd.DataFrame(rows))


class WordTokenizer:
    """A stand-in tokenizer: one token per whitespace word."""

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        return {"input_ids": [t.split() for t in texts]}


# --- pieces that need no encoder --------------------------------------------------------------------------
def test_lexical_features_see_questions_and_feelings():
    f = lexical_features(["What happened after that? How did you feel?", "The bus leaves at nine."])
    assert f[0, 1] == 2 and f[0, 3] == 1  # two questions, opened by a wh-word
    assert f[1, 1] == 0 and f[1, 6] == 0
    assert lexical_features(["I'm so sorry, that sounds awful."])[0, 8] >= 1  # a sympathy phrase


def test_split_windows_keeps_every_word():
    long = " ".join(f"Sentence number {i} has exactly seven words." for i in range(40))
    windows = split_windows([long, "short one"], (WordTokenizer(), 30))
    assert windows[1] == ["short one"]
    assert len(windows[0]) > 1 and all(len(w.split()) <= 30 for w in windows[0])
    assert " ".join(windows[0]).split() == long.split()  # nothing dropped, nothing reordered


def test_split_windows_cuts_a_run_on_sentence_at_words():
    run_on = " ".join(["word"] * 95)
    windows = split_windows([run_on], (WordTokenizer(), 20))[0]
    assert [len(w.split()) for w in windows] == [20, 20, 20, 20, 15]


def test_pool_windows_probabilities_sum_to_one_and_take_the_strongest_window():
    p = {m: np.array([[0.9, 0.08, 0.02], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]) for m in MECHANISMS}
    pooled = pool_windows(p, np.array([0, 0, 1]), 2)
    for m in MECHANISMS:
        assert np.allclose(pooled[m].sum(axis=1), 1.0)
        assert np.allclose(pooled[m][0], [0.2, 0.3, 0.5])  # the second window carries reply 0
        assert np.allclose(pooled[m][1], [0.6, 0.3, 0.1])  # one window: unchanged


def test_clauses_are_bounded():
    text = ", ".join(f"part {i}" for i in range(20))
    cl = clauses(text, limit=8)
    assert len(cl) == 8 and " ".join(cl).replace(",", "").split() == text.replace(",", "").split()


def test_client_context_joins_consecutive_client_turns():
    rows = [("client", "I lost my job."), ("client", "And my dog is sick."), ("counsellor", "That is a lot."),
            ("counsellor", "How are you coping?"), ("client", "Badly."), ("counsellor", "Tell me more.")]
    c = Corpus(pd.DataFrame([{"course_id": "a", "session_id": "a", "turn_index": i, "speaker": s, "text": t}
                             for i, (s, t) in enumerate(rows)]))
    ctx = client_context(c)
    assert ctx[0] is None and ctx[1] is None and ctx[4] is None
    assert ctx[2] == ctx[3] == "I lost my job. And my dog is sick."
    assert ctx[5] == "Badly."


# --- model files ------------------------------------------------------------------------------------------
def tiny_model(d: int = 4) -> EmpathyModel:
    rng = np.random.default_rng(0)
    return EmpathyModel(np.zeros(d), np.ones(d), {m: rng.normal(size=(3, d)) for m in MECHANISMS},
                        {m: rng.normal(size=3) for m in MECHANISMS}, {"feature_parts": ["response"]})


def test_model_round_trip(tmp_path):
    m = tiny_model()
    path = m.save(tmp_path / "m.npz")
    back = EmpathyModel.load(path)
    x = np.random.default_rng(1).normal(size=(5, 4))
    for mech in MECHANISMS:
        assert np.allclose(m.predict_proba(x)[mech], back.predict_proba(x)[mech], atol=1e-5)
        assert np.allclose(back.predict_proba(x)[mech].sum(axis=1), 1.0)


def test_model_loading_errors_are_clear(tmp_path):
    with pytest.raises(EmpathyModelError, match="not found"):
        EmpathyModel.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(EmpathyModelError, match=r"junk\.npz: not an empathy model"):
        EmpathyModel.load(junk)
    np.savez(tmp_path / "nometa.npz", mean=np.zeros(3))
    with pytest.raises(EmpathyModelError, match="no 'meta'"):
        EmpathyModel.load(tmp_path / "nometa.npz")
    np.savez(tmp_path / "fmt.npz", meta=np.array('{"format": "other/9"}'))
    with pytest.raises(EmpathyModelError, match="format 'other/9'"):
        EmpathyModel.load(tmp_path / "fmt.npz")
    m = tiny_model()
    m.coef["ip"] = np.zeros((3, 7))
    m.save(tmp_path / "shape.npz")
    with pytest.raises(EmpathyModelError, match=r"ip_coef has shape \(3, 7\)"):
        EmpathyModel.load(tmp_path / "shape.npz")
    with pytest.raises(EmpathyModelError, match="expects 4 features, got 6"):
        tiny_model().predict_proba(np.zeros((2, 6)))


def test_shipped_model_loads_with_card():
    from importlib import resources

    m = EmpathyModel.load()
    assert m.meta["encoder_model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "non-commercial" in m.meta["data"]["terms"]
    card = resources.files("alliance.data.empathy").joinpath("MODEL_CARD.md").read_text(encoding="utf-8")
    assert "non-commercial" in card and "seed" in card


def test_lens_refuses_a_model_for_another_encoder(tmp_path):
    from alliance.lenses.base import LensContext
    from alliance.lenses.empathy import EmpathyLens

    m = EmpathyModel.load()
    m.meta["encoder_model_id"] = "some/other-encoder"
    m.save(tmp_path / "other.npz")
    lens = EmpathyLens(model=tmp_path / "other.npz")

    class FakeEncoder:
        model_id, dimension = "sentence-transformers/all-MiniLM-L6-v2", 384

    c = corpus_of([("hi", "hello")])
    with pytest.raises(EmpathyModelError, match="trained on encoder 'some/other-encoder'"):
        lens.score(c, LensContext(c, FakeEncoder()))


# --- the lens with the real encoder -----------------------------------------------------------------------
CLIENT = "My mum died last month and I can't stop crying. I don't know how to get through the days."


@pytest.fixture(scope="module")
def scored(encoder):
    from alliance.lenses.empathy import EmpathyLens
    from alliance.pipeline import analyze

    replies = [
        "That sounds awful, I'm so sorry.",
        "What happened after that?",
        "The train timetable changes in December.",
    ]
    c = corpus_of([(CLIENT, r) for r in replies], opener="Hello, welcome.")
    return c, analyze(c, [EmpathyLens(rationales=True)], encoder=encoder)


@pytest.mark.slow
def test_unambiguous_replies(scored):
    _, a = scored
    t = a.turns
    reply = t[t["speaker"] == "counsellor"].set_index("text")
    assert reply.loc["That sounds awful, I'm so sorry.", "empathy_er"] >= 1
    assert reply.loc["What happened after that?", "empathy_ex"] >= 1
    off = reply.loc["The train timetable changes in December."]
    assert [off[f"empathy_{m}"] for m in MECHANISMS] == [0, 0, 0]
    assert "sorry" in reply.loc["That sounds awful, I'm so sorry.", "empathy_er_rationale"].lower()


@pytest.mark.slow
def test_probabilities_sum_to_one_and_client_turns_are_nan(scored):
    _, a = scored
    t = a.turns
    mine = t["speaker"] == "counsellor"
    for m in MECHANISMS:
        p = t.loc[mine, [f"empathy_{m}_p{k}" for k in LEVELS]].to_numpy()
        assert np.allclose(p.sum(axis=1), 1.0)
        assert (t.loc[mine, f"empathy_{m}"].to_numpy() == p.argmax(axis=1)).all()
        assert t.loc[~mine, [f"empathy_{m}", f"empathy_{m}_p0", "empathy_total"]].isna().all().all()
        assert t.loc[~mine, f"empathy_{m}_rationale"].isna().all()
    # the opening counsellor turn has no client words before it and is still scored
    assert t.loc[mine, "empathy_er"].notna().all()


@pytest.mark.slow
def test_session_summary_and_report(scored):
    from alliance.lenses.empathy import EmpathyLens

    _, a = scored
    s = a.sessions.set_index(["course_id", "session_id"])
    for m in MECHANISMS:
        shares = s[[f"empathy_{m}_share{k}" for k in LEVELS]].sum(axis=1)
        assert np.allclose(shares, 1.0)
        assert {f"empathy_{m}_mean", f"empathy_{m}_trend"} <= set(s.columns)
    assert s.loc[("s0", "s0"), "empathy_n_replies"] == 2
    first = a.turns[a.turns["session_id"] == "s0"]
    sec = EmpathyLens.report_section(first, a.sessions.iloc[0], "x")
    assert sec is not None and "x-timeline" in sec.specs and "data-spec='x-timeline'" in sec.html


@pytest.mark.slow
def test_rationales_off_gives_the_same_scores_without_occlusion(scored, encoder):
    """``rationales=False`` (bulk validation runs) skips the occlusion pass and nothing else; describe() says so."""
    from alliance.lenses.empathy import EmpathyLens
    from alliance.pipeline import analyze, build_lenses

    c, with_rationales = scored
    lens = EmpathyLens(rationales=False)
    a = analyze(c, [lens], encoder=encoder)
    cols = [f"empathy_{m}{s}" for m in MECHANISMS for s in ("", "_p0", "_p1", "_p2")] + ["empathy_total"]
    assert np.allclose(a.turns[cols].to_numpy(dtype=float), with_rationales.turns[cols].to_numpy(dtype=float),
                       equal_nan=True)
    for m in MECHANISMS:
        assert a.turns[f"empathy_{m}_rationale"].isna().all()
    assert lens.describe()["rationales"] is False
    assert build_lenses(["empathy"], {"empathy": {"rationales": False}})[0].describe()["rationales"] is False
    assert build_lenses(["empathy"])[0].describe()["rationales"] is False  # opt-in: bulk runs skip occlusion
    assert a.run["lenses"][0]["rationales"] is False


@pytest.mark.slow
def test_long_reply_is_scored_whole(encoder):
    from alliance.pipeline import analyze

    filler = " ".join(f"The meeting on day {i} covered the budget, the rota and the car park." for i in range(30))
    ending = " I'm so sorry you lost her, that sounds heartbreaking. What has helped you most since then?"
    long = filler + ending
    tokens = encoder.tokenizer(long, add_special_tokens=False)["input_ids"]
    assert len(tokens) > 300  # longer than the encoder's 256-piece window
    head = encoder.tokenizer.decode(tokens[:64])
    a = analyze(corpus_of([(CLIENT, long), (CLIENT, head)]), ["empathy"], encoder=encoder)
    r = a.turns[a.turns["speaker"] == "counsellor"]
    whole, first64 = r.iloc[0], r.iloc[1]
    assert whole["empathy_ex"] >= 1 and whole["empathy_er"] >= 1  # the content at the end counted
    assert first64["empathy_ex"] == 0
    assert whole["empathy_total"] > first64["empathy_total"] + 0.5


# --- training ---------------------------------------------------------------------------------------------
def invented_epitome(folder, n_posts: int = 24) -> None:
    """EPITOME-shaped CSVs of invented pairs (no real data in tests)."""
    rng = np.random.default_rng(0)
    worries = ["I failed my exam", "my partner left", "I can't sleep", "work is crushing me", "I feel so alone",
               "my brother is ill"]
    replies = [("Okay.", 0, 0, 0), ("I'm so sorry, that sounds really hard.", 2, 0, 0),
               ("It sounds like you feel completely overwhelmed by this.", 0, 2, 0),
               ("What do you think started it?", 0, 0, 2), ("Try going for a walk.", 0, 0, 0),
               ("That must hurt. I went through the same thing last year.", 1, 2, 0),
               ("Oh no. How long has this been going on?", 1, 0, 2)]
    rows = []
    for p in range(n_posts):
        post = f"{worries[p % len(worries)]} and it has been {p + 2} weeks."
        for r in rng.choice(len(replies), size=3, replace=False):
            text, er, ip, ex = replies[r]
            rows.append({"sp_id": f"p{p}", "rp_id": f"p{p}r{r}", "seeker_post": post, "response_post": text,
                         "levels": (er, ip, ex)})
    from alliance.training.empathy import EPITOME_FILES

    for k, name in enumerate(EPITOME_FILES.values()):
        pd.DataFrame([{**{c: r[c] for c in ("sp_id", "rp_id", "seeker_post", "response_post")},
                       "level": r["levels"][k], "rationales": ""} for r in rows]).to_csv(folder / name, index=False)


def test_load_epitome_errors(tmp_path):
    from alliance.training.empathy import TrainingDataError, load_epitome

    with pytest.raises(TrainingDataError, match="EPITOME file not found"):
        load_epitome(tmp_path)
    invented_epitome(tmp_path)
    bad = pd.read_csv(tmp_path / "interpretations-reddit.csv")
    bad.loc[3, "level"] = 5
    bad.to_csv(tmp_path / "interpretations-reddit.csv", index=False)
    with pytest.raises(TrainingDataError, match=r"interpretations-reddit\.csv: row 5: field 'level': 5"):
        load_epitome(tmp_path)


@pytest.mark.slow
def test_training_is_deterministic_with_a_seed(tmp_path, encoder):
    from alliance.training.empathy import train_and_save

    invented_epitome(tmp_path)
    a = train_and_save(tmp_path, tmp_path / "a", encoder, seed=3, cv_folds=3)
    b = train_and_save(tmp_path, tmp_path / "b", encoder, seed=3, cv_folds=3)
    ma, mb = EmpathyModel.load(a["model"]), EmpathyModel.load(b["model"])
    for m in MECHANISMS:
        assert np.array_equal(ma.coef[m], mb.coef[m])
    assert a["meta"]["cross_validation"] == b["meta"]["cross_validation"]
    assert a["meta"]["seed"] == 3 and "non-commercial" in (tmp_path / "a" / "MODEL_CARD.md").read_text()
    # the invented labels are learnable: a strong sympathy reply gets emotional reactions
    from alliance.lenses.empathy import embed_whole, score_pairs

    s = score_pairs(ma, embed_whole(["my partner left"], encoder), ["I'm so sorry, that sounds really hard."], encoder)
    assert s.level("er")[0] >= 1


@pytest.mark.slow
@pytest.mark.data
def test_train_command_on_real_data_subset(shared_data, tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    res = CliRunner().invoke(app, ["train", "empathy", "--data", str(shared_data / "epitome"), "--out",
                                   str(tmp_path), "--limit", "300", "--folds", "0", "--seed", "1"])
    assert res.exit_code == 0, res.output
    m = EmpathyModel.load(tmp_path / "empathy_epitome_v1.npz")
    assert m.meta["seed"] == 1 and m.meta["data"]["seeker_posts"] == 300


def test_a_session_without_counsellor_replies_gives_nan_not_an_error():
    from alliance.lenses.base import LensContext
    from alliance.lenses.empathy import EmpathyLens

    c = Corpus(pd.DataFrame([{"course_id": "a", "session_id": "a", "turn_index": i, "speaker": "client",
                              "text": f"note {i}"} for i in range(3)]))
    lens = EmpathyLens()
    ctx = LensContext(c, encoder=None)
    cols = lens.score(c, ctx)
    assert cols["empathy_er"].isna().all() and len(cols) == 3
    summary = lens.summarize(c, cols, ctx)
    assert summary["empathy_er_mean"].isna().all() and summary["empathy_n_replies"].tolist() == [0]


def test_joined_client_runs_are_pooled_from_turn_vectors_not_reencoded():
    """Two client turns before a reply: the context is the normalised mean of their turn vectors, and the run
    encodes each turn once (no joined text, no occlusion variants by default)."""
    from alliance.lenses.empathy import EmpathyLens, pooled_context
    from alliance.pipeline import analyze
    from tests.helpers import TableEncoder

    rng = np.random.default_rng(0)
    texts = ["I lost my job.", "And my dog died.", "That is a lot to carry at once. What helps?"]
    enc = TableEncoder({t: rng.normal(size=384) for t in texts}, model_id="sentence-transformers/all-MiniLM-L6-v2")
    c = Corpus(pd.DataFrame({"course_id": "c", "session_id": "s", "turn_index": [0, 1, 2],
                             "speaker": ["client", "client", "counsellor"], "text": texts}))
    a = analyze(c, [EmpathyLens()], encoder=enc)
    assert enc.texts_encoded == 3
    assert a.turns["empathy_er"].notna().sum() == 1
    emb = enc.encode(texts)
    got = pooled_context(c, np.array([2, 0]), emb, enc, None)
    want = (emb[0] + emb[1]) / np.linalg.norm(emb[0] + emb[1])
    np.testing.assert_allclose(got[0], want, atol=1e-6)
    assert not got[1].any()  # a client turn answers nothing: zeros mean "no context"
