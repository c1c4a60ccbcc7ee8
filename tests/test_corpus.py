import pandas as pd
import pytest

from alliance.corpus import Corpus, CorpusError, SessionInfo, Turn
from tests.helpers import make_corpus


def test_turns_sorted_and_keyed():
    c = Corpus.from_turns([
        Turn("c1", "s2", 1, "client", "b", session_index=1),
        Turn("c1", "s1", 0, "client", "hello"),
        Turn("c1", "s2", 0, "counsellor", "a", session_index=1),
        Turn("c1", "s1", 1, "counsellor", "hi"),
    ])
    assert list(c.turns["session_id"]) == ["s1", "s1", "s2", "s2"]
    assert list(c.turns["turn_index"]) == [0, 1, 0, 1]
    assert list(c.sessions["session_id"]) == ["s1", "s2"]
    assert list(c.sessions["n_turns"]) == [2, 2]
    assert c.n_courses == 1


@pytest.mark.parametrize(
    ("turns", "message"),
    [
        ([Turn("c", "s", 0, "bot", "x")], "unknown speaker role 'bot'"),
        ([Turn("c", "s", 0, "client", "   ")], "empty text"),
        ([Turn("c", "s", 0, "client", "a"), Turn("c", "s", 0, "client", "b")], "duplicate turn key (c, s, 0)"),
    ],
)
def test_invalid_corpus_is_named(turns, message):
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Corpus.from_turns(turns)


def test_frame_round_trip_keeps_meta_and_session_labels(tmp_path):
    c = Corpus.from_turns(
        [Turn("c", "s", 0, "client", "hi", meta={"talk": "change"}), Turn("c", "s", 1, "counsellor", "hello")],
        [SessionInfo("c", "s", meta={"score": 73})],
    )
    df = c.to_frame()
    assert df["session_meta"].iloc[0] == {"score": 73}
    c.to_parquet(tmp_path)
    back = Corpus.read_parquet(tmp_path)
    assert back.turns["meta"].iloc[0] == {"talk": "change"}
    assert back.session_meta("score").loc[("c", "s")] == 73
    again = Corpus.from_frame(df.drop(columns="session_meta"), c.sessions)
    pd.testing.assert_frame_equal(again.turns, c.turns)


def test_exchanges_group_consecutive_turns():
    c = make_corpus({
        "a": [("counsellor", "welcome"), ("client", "x"), ("client", "y"), ("counsellor", "r"), ("client", "z")],
        "b": [("client", "p"), ("counsellor", "q")],
    })
    ex = c.exchanges()
    assert list(ex["block"]) == [0, 1, 1, 2, 3, 0, 1]
    assert list(ex["exchange"]) == [0, 1, 1, 1, 2, 0, 0]


def test_previous_turn_of_other_side_stays_in_session():
    c = make_corpus({
        "a": [("client", "x"), ("client", "y"), ("counsellor", "r")],
        "b": [("counsellor", "q"), ("client", "p")],
    })
    assert list(c.previous_turn_of_other_side()) == [-1, -1, 1, -1, 3]


def test_subset_sessions_keeps_only_those():
    c = make_corpus({"a": [("client", "x")], "b": [("client", "y")], "c": [("client", "z")]})
    sub = c.subset_sessions([("c", "c"), ("a", "a")])
    assert set(sub.turns["session_id"]) == {"a", "c"}
    assert len(sub.sessions) == 2
