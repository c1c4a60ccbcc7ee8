"""The client reaction model: triples from the corpora, training with a record and card, loading, the client's use."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from alliance.simulate import load_personas
from alliance.simulate.appraisal import ReplyMeter
from alliance.simulate.clients import ScriptedClient
from alliance.simulate.reaction import ReactionModel, ReactionModelError
from alliance.training.reaction import HEADS, load_reaction_data, train_reaction


class HashEncoder:
    """Bag of hashed words as unit vectors: deterministic, fast, no model (the mechanics, not the fitted values)."""

    model_id = "test-hash"
    dimension = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in str(t).lower().split():
                out[i, zlib.crc32(w.encode()) % self.dimension] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


def _corpora(root):
    (root / "esconv" / "hf_format").mkdir(parents=True)
    (root / "esconv" / "thu-coai").mkdir(parents=True)
    (root / "annomi").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "valid", "test"):
        lines = []
        for d in range(6):
            good = d % 2 == 0
            dialog = [{"speaker": "usr", "text": "I feel awful about my job and everything lately"}]
            for _ in range(4):
                dialog.append({"speaker": "sys", "text": "That sounds hard, what happened at work?" if good
                               else "Just cheer up."})
                dialog.append({"speaker": "usr", "text": " ".join(["word"] * int(rng.integers(8, 20) if good
                                                                               else 2))})
            lines.append(json.dumps({"survey_score": {"seeker": {"initial_emotion_intensity": "5", "empathy":
                                                                 "5" if good else "1",
                                                                 "final_emotion_intensity": "2" if good else "5"}},
                                     "dialog": dialog}))
        (root / "esconv" / "hf_format" / f"{split}.json").write_text("\n".join(lines))
    failed = [{"survey_score": {"seeker": {"empathy": "2"}}, "dialog": [
        {"speaker": "speaker", "content": "hello there i am sad", "annotation": {}},
        {"speaker": "listener", "content": "why?", "annotation": {"strategy": "Question"}},
        {"speaker": "speaker", "content": "no reason", "annotation": {"feedback": "2"}},
        {"speaker": "listener", "content": "ok", "annotation": {}},
        {"speaker": "speaker", "content": "bye then", "annotation": {"feedback": "1"}}]}]
    (root / "esconv" / "thu-coai" / "FailedESConv.json").write_text(json.dumps(failed))
    rows = []
    for tid in range(3):
        for u, (who, text, talk) in enumerate([("therapist", "What brings you here?", "n/a"),
                                               ("client", "I want to drink less", "change"),
                                               ("therapist", "You want to cut down.", "n/a"),
                                               ("client", "But I like it", "sustain")]):
            rows.append({"transcript_id": tid, "utterance_id": u, "interlocutor": who, "utterance_text": text,
                         "client_talk_type": talk})
    pd.DataFrame(rows).to_csv(root / "annomi" / "AnnoMI-simple.csv", index=False)


def test_triples_carry_what_the_client_did_next(tmp_path):
    _corpora(tmp_path)
    p = load_reaction_data(tmp_path).pairs
    assert set(p["source"]) == {"esconv", "failed_esconv", "annomi"}
    f = p[p["source"] == "failed_esconv"].reset_index(drop=True)
    assert f["feedback"].tolist() == [2.0, 1.0] and f["rating"].tolist() == [2.0, 2.0]
    a = p[p["source"] == "annomi"].iloc[0]
    assert a["reply"] == "You want to cut down." and a["sustain_talk"] == 1.0 and a["change_talk"] == 0.0
    e = p[p["source"] == "esconv"]
    assert e["relief"].isin([3.0, 0.0]).all() and e["feedback"].isna().all()
    assert np.isclose(e["engagement"].iloc[0], np.log1p(len(e["next"].iloc[0].split())) - np.log1p(9))


def test_missing_corpus_is_named(tmp_path):
    from alliance.training.reaction import ReactionDataError

    with pytest.raises(ReactionDataError, match="ESConv file"):
        load_reaction_data(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _corpora(root)
    out = root / "model" / "reaction_test.npz"
    record = train_reaction(root, out, HashEncoder(), seed=0, folds=3)
    return out, record


def test_training_writes_weights_record_and_card(trained):
    out, record = trained
    assert out.exists() and out.with_suffix(".json").exists()
    card = out.with_suffix(".md").read_text()
    assert "CC BY-NC 4.0" in card and "alliance train reaction --seed 0" in card
    assert set(record["cross_validation"]) <= set(HEADS) and record["fold_unit"] == "dialogue"
    # the synthetic dialogues separate good from bad replies; the heads must see it
    assert record["cross_validation"]["relief"]["spearman"] > 0.5
    assert record["fitted"]["change_talk"] is False  # one AnnoMI reply, one class: not fitted, and said so


def test_model_prefers_what_real_clients_answered_well(trained):
    model = ReactionModel(trained[0], encoder=HashEncoder())
    pred = model.predict(["I feel awful about my job"] * 2, ["That sounds hard, what happened at work?",
                                                             "Just cheer up."])
    assert list(pred.columns) == [*HEADS, "content_words", "appraisal"]
    assert pred["appraisal"].iloc[0] > pred["appraisal"].iloc[1]
    assert model.describe()["version"] == "2.0.0"


def test_a_formula_never_raises_a_reply(trained):
    """The mechanics, on any encoder: a reply with a formula sentence appended is appraised as the lower of the two
    readings; a reply that is all formula earns no credit."""
    model = ReactionModel(trained[0], encoder=HashEncoder())
    client = ["I feel awful about my job"] * 4
    base = ["That sounds hard, what happened at work?", "Just cheer up."]
    pred = model.predict(client, [*base, *(b + " I hear you." for b in base)])
    assert (pred["appraisal"].iloc[2:].to_numpy() <= pred["appraisal"].iloc[:2].to_numpy() + 1e-9).all()
    assert model.content(["That sounds hard, what happened at work? I hear you."]) == [
        "That sounds hard, what happened at work?"]
    only = model.predict(client[:1], ["I hear you. Go on."])
    assert only["appraisal"].iloc[0] <= 0 and only["content_words"].iloc[0] == 0


def test_missing_model_names_the_rebuild_command(tmp_path):
    with pytest.raises(ReactionModelError, match="alliance train reaction"):
        ReactionModel(tmp_path / "nope.npz")


def test_scripted_client_appraises_with_the_reaction_model_not_markers(trained):
    meter = ReplyMeter(use_lenses=False, reaction=ReactionModel(trained[0], encoder=HashEncoder()))
    persona = next(p for p in load_personas() if p.id == "low-mood-plain")
    client = ScriptedClient(persona, seed=0, meter=meter)
    client.open_session(0)
    turn = client.respond("It sounds like you feel low. What happened?", "I have been low")
    assert "reaction" in turn.reasons and "reflection" not in turn.reasons and "open_question" not in turn.reasons
    assert meter.describe()["appraisal"] == "reaction model"


# --- with the shipped model and the real encoder (slow) -------------------------------------------------------------
def _gaming_bots():
    from alliance.simulate.bots import AdviceBot, ElizaBot

    def suffixed(base, name):
        def bot(messages):
            return f"{base(messages)} It sounds like you feel that this is really hard."
        bot.name = name
        return bot

    def mirror(messages):
        last = next(m["content"] for m in reversed(messages) if m["role"] == "user").strip().rstrip(".!?")
        return f"It sounds like you feel {last[:1].lower() + last[1:]}."

    mirror.name = "mirror"
    eliza, advice = ElizaBot(), AdviceBot()
    return [eliza, suffixed(eliza, "eliza+suffix"), advice, suffixed(advice, "advice+suffix"), mirror]


@pytest.mark.slow
def test_shipped_model_loads_and_describes_itself():
    model = ReactionModel()
    assert model.model_id.endswith("all-MiniLM-L6-v2") and model.version == "2.0.0"
    assert model.bank is not None and model.basis.shape[0] == 10 and 0 < model.threshold < 1
    assert all(model.fitted)


@pytest.mark.slow
def test_a_stock_phrase_carries_nothing_after_its_first_use_and_parroting_loses():
    from alliance.simulate import simulate

    persona = next(p for p in load_personas() if p.id == "low-mood-plain")
    meter = ReplyMeter(use_lenses=False, reaction=True)
    suffix = " It sounds like you feel that this is really hard."
    base = "What has the last week been like for you?"
    client_text = "I just feel flat all the time."

    def delta(reply, warm):
        c = ScriptedClient(persona, seed=0, meter=meter)
        c.open_session(0)
        if warm:  # the bot has already used its stock phrase once in this course
            c.respond("Thanks for coming." + suffix, "Hi.")
        return c.appraise(reply, meter.read(client_text, reply), client_text)[1]["reaction"]

    assert delta(base + suffix, warm=True) == pytest.approx(delta(base, warm=True))
    personas = [p for p in load_personas() if p.id in ("low-mood-plain", "anxiety-verbose", "grief-plain")]
    sim = simulate(_gaming_bots(), personas, sessions=1, max_exchanges=5, meter=meter)
    change = sim.table.groupby("bot")["sim_state_change"].mean()
    assert change["mirror"] < min(change["eliza"], 0.0)
    assert (sim.corpus.turn_meta("sim_events").dropna().map(lambda e: "parroted" in e)).any()
