"""Markers lens arithmetic on hand-made turns with known counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.lenses.base import LensContext
from alliance.lenses.markers import MarkersLens


def make_corpus(turns: list[tuple[str, str]], seconds: list[float] | None = None, source: str = "",
                session_meta: dict | None = None) -> Corpus:
    df = pd.DataFrame({"course_id": "c1", "session_id": "s1", "turn_index": range(len(turns)),
                       "speaker": [s for s, _ in turns], "text": [t for _, t in turns]})
    if seconds is not None:
        df["timestamp"] = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    sessions = pd.DataFrame({"course_id": ["c1"], "session_id": ["s1"], "source": [source],
                             "meta": [session_meta or {}]})
    return Corpus(df, sessions)


def run(corpus: Corpus, **opts) -> tuple[pd.DataFrame, pd.Series]:
    lens = MarkersLens(**opts)
    ctx = LensContext(corpus)
    turns = lens.score(corpus, ctx)
    return turns, lens.summarize(corpus, turns, ctx).iloc[0]


def test_first_person_cognitive_we_you_counts():
    corpus = make_corpus([("counsellor", "I think my plan helps me. We can try it, you and I."),
                          ("client", "Sure.")])
    turns, sess = run(corpus)
    row = turns.iloc[0]
    assert row["markers_words"] == 13
    assert row["markers_i"] == 4  # I, my, me, I
    assert row["markers_cognitive_i"] == 1  # "I think"
    assert row["markers_we"] == 1
    assert row["markers_you"] == 1
    assert sess["markers_counsellor_i_rate"] == pytest.approx(4 / 13)
    assert sess["markers_counsellor_we_rate"] == pytest.approx(1 / 13)


def test_fillers_only_where_they_are_fillers():
    corpus = make_corpus([("client", "I like tea. I mean it. Do you know him?"),
                          ("client", "Um, it was, like, hard, you know, and I mean... uh, I-I don't know."),
                          ("client", "Mm-hmm.")])
    turns, _ = run(corpus)
    assert turns["markers_discourse_filler"].tolist() == [0, 3, 0]
    assert turns["markers_filled_pause"].tolist() == [0, 2, 0]  # um, uh; "mm-hmm" is a backchannel
    assert turns["markers_hesitation"].tolist() == [0, 1, 0]
    assert turns["markers_repetition"].tolist() == [0, 1, 0]
    assert turns["markers_nonfluency"].iloc[1] == 7


def test_repetition_and_dash_restarts():
    corpus = make_corpus([("client", "The the thing is -- we, we tried.")])
    turns, _ = run(corpus)
    assert turns["markers_repetition"].iloc[0] == 2
    assert turns["markers_hesitation"].iloc[0] == 1


def test_open_and_closed_questions():
    corpus = make_corpus([
        ("counsellor", "What brings you here? Do you drink often? So how does that feel?"),
        ("counsellor", "Tell me more about that. You felt alone?"),
        ("counsellor", "Can you tell me what happened? Is that right? That sounds hard."),
        ("counsellor", "It sounds hard."),
    ])
    turns, sess = run(corpus)
    assert turns["markers_open_questions"].tolist() == [2, 1, 1, 0]
    assert turns["markers_closed_questions"].tolist() == [1, 1, 1, 0]
    assert sess["markers_counsellor_open_question_share"] == pytest.approx(4 / 7)
    assert sess["markers_counsellor_questions_per_turn"] == pytest.approx(7 / 4)


def test_latency_on_the_answering_turn_only():
    corpus = make_corpus([("counsellor", "Hello there."), ("client", "Hi."), ("client", "I am here."),
                          ("counsellor", "Good to meet you.")], seconds=[0, 12, 20, 50])
    turns, sess = run(corpus)
    lat = turns["markers_latency_s"].to_numpy()
    assert np.isnan(lat[0]) and np.isnan(lat[2])
    assert lat[1] == 12 and lat[3] == 30
    assert sess["markers_client_latency_median_s"] == 12
    assert sess["markers_counsellor_latency_median_s"] == 30


def test_no_timestamps_gives_no_latency():
    turns, _ = run(make_corpus([("counsellor", "Hello."), ("client", "Hi.")]))
    assert turns["markers_latency_s"].isna().all()


def test_minimal_responses_and_talk_share():
    corpus = make_corpus([("counsellor", "How was your week with your sister?"), ("client", "Fine."),
                          ("counsellor", "Just fine?"), ("client", "Yeah, I guess."),
                          ("counsellor", "Okay."), ("client", "I like my sister a lot actually.")])
    turns, sess = run(corpus)
    assert turns["markers_minimal"].tolist() == [0, 1, 0, 1, 1, 0]
    assert sess["markers_client_minimal_share"] == pytest.approx(2 / 3)
    client_words, counsellor_words = 1 + 3 + 7, 7 + 2 + 1
    assert sess["markers_client_talk_share"] == pytest.approx(client_words / (client_words + counsellor_words))
    assert sess["markers_counsellor_mean_words"] == pytest.approx(counsellor_words / 3)


def test_medium_from_option_meta_source_and_text():
    speechy = [("client", "Um, uh, mm-hmm, I don't, um, know."), ("counsellor", "Uh-huh.")]
    texty = [("client", "I don't know what to do."), ("counsellor", "That sounds hard.")]
    assert run(make_corpus(texty))[1]["markers_medium"] == "text"
    assert run(make_corpus(speechy))[1]["markers_medium"] == "speech"
    assert run(make_corpus(texty, source="annomi"))[1]["markers_medium"] == "speech"
    assert run(make_corpus(speechy, session_meta={"medium": "text"}))[1]["markers_medium"] == "text"
    assert run(make_corpus(speechy), medium="text")[1]["markers_medium"] == "text"
    with pytest.raises(ValueError, match="medium"):
        MarkersLens(medium="video")


def test_report_section_renders_from_columns():
    corpus = make_corpus([("counsellor", "What happened?"), ("client", "Um, nothing.")])
    turns, sess = run(corpus)
    section = MarkersLens.report_section(pd.concat([corpus.turns, turns], axis=1), sess, "s0-markers")
    assert section is not None and "s0-markers-talk" in section.specs
    assert "data-spec='s0-markers-talk'" in section.html
