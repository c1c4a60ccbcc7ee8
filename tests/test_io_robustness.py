"""One bad record never aborts a read or silently changes data (issue 13, section 1): each case found by probing
the readers with malformed input, on invented files; under ``skip`` a located rejection, under ``fail`` an error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.io import InputError, detect_format, read

OK = {"session_id": "s", "speaker": "client", "text": "fine"}


def _jsonl(path: Path, *records: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _where(loaded) -> list[tuple[str, str | None]]:
    return [(r.location, r.field) for r in loaded.rejected]


# meta that is not an object ----------------------------------------------------------------------------------


@pytest.mark.parametrize("meta", ["a string", [1, 2], 7])
def test_meta_not_an_object_is_rejected(tmp_path: Path, meta):
    f = _jsonl(tmp_path / "t.jsonl", OK, {**OK, "turn_index": 1, "meta": meta},
               {"session_id": "w", "meta": meta, "turns": [{"speaker": "client", "text": "hi"}]},
               {"session_id": "x", "turns": [{"speaker": "client", "text": "hi", "meta": meta}]})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", "meta"), ("line 3", "meta"), ("line 4, turn 0", "meta")]
    assert list(loaded.corpus.turns.text) == ["fine"]
    with pytest.raises(InputError, match=r"t\.jsonl:line 2: field 'meta': must be a JSON object"):
        read(f)


def test_convokit_utterance_and_conversation_meta_not_an_object(tmp_path: Path):
    d = tmp_path / "ck"
    d.mkdir()
    _jsonl(d / "utterances.jsonl",
           {"id": "a1", "conversation_id": "a1", "speaker": "client", "text": "hi", "meta": {}},
           {"id": "b1", "conversation_id": "b1", "speaker": "client", "text": "hi", "meta": {}},
           {"id": "b2", "conversation_id": "b1", "speaker": "therapist", "text": "hello", "meta": "oops"})
    (d / "conversations.json").write_text(json.dumps({"a1": {"meta": "not an object"}, "b1": {"meta": {}}}))
    loaded = read(d, on_error="skip")
    assert [(r.source.rsplit("/", 1)[-1], r.location, r.field) for r in loaded.rejected] == [
        ("conversations.json", "conversation 'a1'", "meta"), ("utterances.jsonl", "line 1", "conversation_id"),
        ("utterances.jsonl", "line 3", "meta")]
    assert list(loaded.corpus.turns.text) == ["hi"] and list(loaded.corpus.turns.session_id) == ["b1"]


# timestamps --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", ["not a time", {"t": 1}, [2024, 1, 1], True, 1e17, "3000-01-01T00:00:00Z"])
def test_unreadable_jsonl_timestamp_is_rejected(tmp_path: Path, stamp):
    f = _jsonl(tmp_path / "t.jsonl", OK, {**OK, "turn_index": 1, "timestamp": stamp})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", "timestamp")]
    with pytest.raises(InputError, match=r"t\.jsonl:line 2: field 'timestamp'"):
        read(f)


def test_numeric_timestamps_are_unix_seconds_or_milliseconds(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl", {**OK, "timestamp": 1714557600},
               {**OK, "turn_index": 1, "timestamp": 1714557600250},
               {**OK, "turn_index": 2, "timestamp": "1714557601"},
               {**OK, "turn_index": 3, "timestamp": 1714557601.5})
    t = read(f).corpus.turns.timestamp
    assert list(t) == [pd.Timestamp("2024-05-01T10:00:00Z"), pd.Timestamp("2024-05-01T10:00:00.250Z"),
                       pd.Timestamp("2024-05-01T10:00:01Z"), pd.Timestamp("2024-05-01T10:00:01.5Z")]
    # The unit can be given explicitly; then a seconds value read as milliseconds is simply 1970.
    g = _jsonl(tmp_path / "ms.jsonl", {**OK, "timestamp": 1714557600250})
    assert read(g, timestamp_unit="ms").corpus.turns.timestamp[0] == pd.Timestamp("2024-05-01T10:00:00.250Z")
    # CSV has no numbers: digits are Unix time too, but an 8-digit compact date is ambiguous and refused.
    h = tmp_path / "t.csv"
    h.write_text("session_id,speaker,text,timestamp\ns,client,a,1714557600\ns,client,b,20240501\n")
    loaded = read(h, on_error="skip")
    assert loaded.corpus.turns.timestamp[0] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert _where(loaded) == [("line 3 (row 2)", "timestamp")] and "ambiguous" in loaded.rejected[0].problem


# text that cannot be stored ----------------------------------------------------------------------------------


def test_lone_surrogate_is_rejected_where_it_sits(tmp_path: Path):
    # "\ud83d" is the first half of an emoji; JSON allows the escape, UTF-8 cannot hold it.
    f = _jsonl(tmp_path / "t.jsonl", OK,
               '{"session_id": "s", "speaker": "client", "text": "cut \\ud83d", "turn_index": 1}',
               '{"session_id": "s", "speaker": "client", "text": "ok", "turn_index": 2, "meta": {"n": "\\ud83d"}}',
               '{"session_id": "\\udc00", "speaker": "client", "text": "ok"}',
               {**OK, "turn_index": 3, "text": "whole \U0001f600 emoji"})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", "text"), ("line 4", "session_id"), ("line 3", "meta.n")]
    assert all("surrogate" in r.problem for r in loaded.rejected)
    assert list(loaded.corpus.turns.text) == ["fine", "whole \U0001f600 emoji"]
    with pytest.raises(InputError, match=r"line 2: field 'text': holds a lone UTF-16 surrogate"):
        read(f)
    g = _jsonl(tmp_path / "chat.jsonl", {"id": "c", "messages": [{"role": "user", "content": "a \ud83d"},
                                                                 {"role": "assistant", "content": "b"}]})
    assert _where(read(g, on_error="skip")) == [("line 1, messages[0]", "content")]


# JSON nested ~1,000 deep -------------------------------------------------------------------------------------


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def test_deeply_nested_json_is_one_rejection(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl", OK, '{"session_id": "s", "speaker": "client", "text": "x", "meta": {"a": '
               + _deep(1000) + "}}", {**OK, "turn_index": 2, "meta": {"a": json.loads(_deep(100))}})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", None), ("line 3", None)]
    assert all("nested too deeply" in r.problem for r in loaded.rejected)
    assert list(loaded.corpus.turns.text) == ["fine"]


def test_one_deep_kokorochat_file_leaves_the_others_readable(tmp_path: Path):
    d = tmp_path / "English"
    d.mkdir()
    good = {"dialogue": [{"role": "client", "time": "2020-01-01T10:00:00", "origin": "x", "content": "hi"}],
            "review_by_client": {"client_id": 1, "counselor_id": 2, "score": 70}}
    (d / "en1.json").write_text(json.dumps(good))
    (d / "en2.json").write_text('{"dialogue": [{"role": "client", "origin": "x", "content": "hi", "x": '
                                + _deep(1500) + "}], \"review_by_client\": {}}")
    (d / "en3.json").write_text(json.dumps(good))
    assert detect_format(d)[0] == "kokorochat"
    loaded = read(d, on_error="skip")
    assert [r.source.rsplit("/", 1)[-1] for r in loaded.rejected] == ["en2.json"]
    assert sorted(loaded.corpus.sessions.session_id) == ["en1", "en3"]
    with pytest.raises(InputError, match=r"en2\.json: JSON nested too deeply"):
        read(d)


# indexes beyond int64 ----------------------------------------------------------------------------------------


def test_turn_index_beyond_int64_is_rejected(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl", OK, {**OK, "turn_index": 2**63}, {**OK, "turn_index": -(2**70)},
               {"session_id": "w", "session_index": 10**30, "turns": [{"speaker": "client", "text": "hi"}]})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", "turn_index"), ("line 3", "turn_index"), ("line 4", "session_index")]
    assert "64-bit" in loaded.rejected[0].problem
    g = tmp_path / "t.csv"
    g.write_text(f"session_id,speaker,text,turn_index\ns,client,a,0\ns,client,b,{2**64}\n")
    assert _where(read(g, on_error="skip")) == [("line 3 (row 2)", "turn_index")]


# ConvoKit side files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,content", [("conversations.json", "{broken"), ("speakers.json", "[1, 2]"),
                                          ("conversations.json", "\"text\"")])
def test_malformed_convokit_side_file_rejects_not_aborts(tmp_path: Path, name: str, content: str):
    d = tmp_path / "ck"
    d.mkdir()
    _jsonl(d / "utterances.jsonl", {"id": "u1", "conversation_id": "u1", "speaker": "client", "text": "hi"},
           {"id": "u2", "conversation_id": "u1", "speaker": "therapist", "text": "hello"})
    for side in ("conversations.json", "speakers.json"):
        (d / side).write_text("{}")
    (d / name).write_text(content)
    other = _jsonl(tmp_path / "other.jsonl", OK)
    loaded = read([d, other], on_error="skip")
    # One rejection for the side file, one per utterance it leaves unreadable; the other input is read.
    assert [(r.source.rsplit("/", 1)[-1], r.location) for r in loaded.rejected] == [
        (name, r.location) for r in loaded.rejected[:1]] + [("utterances.jsonl", "line 1"),
                                                            ("utterances.jsonl", "line 2")]
    assert list(loaded.corpus.turns.text) == ["fine"]
    with pytest.raises(InputError, match=name.replace(".", r"\.")):
        read(d)


# detection past a bad first line -----------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["{broken", '{"text": "' + "x" * 70_000 + '"', "[" * 1200])
def test_bad_first_line_does_not_defeat_detection(tmp_path: Path, first: str):
    f = _jsonl(tmp_path / "t.jsonl", first, OK, {**OK, "turn_index": 1})
    assert detect_format(f)[0] == "jsonl"
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 1", None)] and len(loaded.corpus) == 2
    g = _jsonl(tmp_path / "chat.jsonl", first, {"messages": [{"role": "user", "content": "hi"}]})
    assert detect_format(g)[0] == "openai"
    assert len(read(g, on_error="skip").corpus) == 1
    h = _jsonl(tmp_path / "train.json", first, {"emotion_type": "x", "dialog": [{"speaker": "usr", "text": "hi"}]})
    assert detect_format(h)[0] == "esconv"
    assert len(read(h, on_error="skip").corpus) == 1


# booleans ----------------------------------------------------------------------------------------------------


def test_counsellor_is_ai_strings_are_read_not_truthy(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl", {**OK, "speaker": "counsellor", "counsellor_is_ai": "false"},
               {**OK, "speaker": "counsellor", "turn_index": 1, "counsellor_is_ai": "True"},
               {**OK, "speaker": "counsellor", "turn_index": 2, "counsellor_is_ai": "maybe"},
               {"session_id": "w", "counsellor_is_ai": "no", "turns": [{"speaker": "counsellor", "text": "hi"}]})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 3", "counsellor_is_ai")]
    assert [bool(v) for v in loaded.corpus.turns.counsellor_is_ai] == [False, True, False]


# ids ---------------------------------------------------------------------------------------------------------


def test_null_course_id_is_the_session_not_a_course_named_none(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl", {**OK, "session_id": "a", "course_id": None},
               {**OK, "session_id": "b", "course_id": None},
               {"session_id": "c", "course_id": None, "turns": [{"speaker": "client", "text": "hi"}]},
               {**OK, "session_id": "d", "course_id": {"x": 1}})
    loaded = read(f, on_error="skip")
    assert sorted(loaded.corpus.turns.course_id) == ["a", "b", "c"]
    assert _where(loaded) == [("line 4", "course_id")]


def test_openai_same_id_twice_and_empty_conversations(tmp_path: Path):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    f = _jsonl(tmp_path / "chat.jsonl", {"id": 1, "messages": msgs}, {"id": "1", "messages": msgs[:1]},
               {"id": "e", "messages": []}, {"id": "sys", "messages": [{"role": "system", "content": "be kind"}]},
               {"id": "2", "messages": msgs})
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2", "id"), ("line 3", "messages"), ("line 4", "messages")]
    assert "already used on line 1" in loaded.rejected[0].problem
    c = loaded.corpus
    assert list(c.sessions.session_id) == ["1", "2"] and list(c.turns.groupby("session_id").size()) == [2, 2]
    # Five conversations in: two sessions read, three rejected.
    assert len(c.sessions) + len(loaded.rejected) == 5


def test_same_session_in_two_files_is_not_merged(tmp_path: Path):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "third"}]
    a = _jsonl(tmp_path / "a.jsonl", {"id": "1", "messages": msgs[:2]})
    b = _jsonl(tmp_path / "b.jsonl", {"id": "1", "messages": msgs})
    loaded = read([a, b], on_error="skip")
    assert list(loaded.corpus.turns.text) == ["hi", "hello"]
    assert [(r.source.rsplit("/", 1)[-1], r.location) for r in loaded.rejected] == [
        ("b.jsonl", "line 1, messages[0]"), ("b.jsonl", "line 1, messages[1]"), ("b.jsonl", "line 1, messages[2]")]


# CSV ---------------------------------------------------------------------------------------------------------


def test_unterminated_csv_quote_is_rejected_not_swallowing_rows(tmp_path: Path):
    f = tmp_path / "t.csv"
    f.write_text('session_id,speaker,text,turn_index\n'
                 's,client,"I said hi,0\n'
                 's,counsellor,"Hello",1\n'
                 's,client,fine,2\n')
    with pytest.raises(InputError, match=r"t\.csv:line 2 \(row 1\): malformed CSV.*not closed"):
        read(f)
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 2 (row 1)", None)] and "lines 2-3" in loaded.rejected[0].problem
    assert list(loaded.corpus.turns.text) == ["fine"]
    g = tmp_path / "u.csv"
    g.write_text('session_id,speaker,text\ns,client,ok\ns,client,"never closed\ns,client,swallowed\n')
    loaded = read(g, on_error="skip")
    assert _where(loaded) == [("line 3 (row 2)", None)] and list(loaded.corpus.turns.text) == ["ok"]
    # A quoted field may still hold line breaks.
    h = tmp_path / "v.csv"
    h.write_text('session_id,speaker,text\ns,client,"two\nlines, fine"\ns,counsellor,ok\n')
    assert list(read(h).corpus.turns.text) == ["two\nlines, fine", "ok"]


def test_csv_duplicate_header_names_are_rejected(tmp_path: Path):
    f = tmp_path / "t.csv"
    f.write_text("session_id,speaker,text,text\ns,client,first,second\n")
    loaded = read(f, on_error="skip")
    assert _where(loaded) == [("line 1 (header)", "text")] and "columns 3, 4" in loaded.rejected[0].problem
    assert len(loaded.corpus) == 0
    with pytest.raises(InputError, match="duplicate column name"):
        read(f)
    g = tmp_path / "explorations.csv"
    g.write_text("sp_id,rp_id,seeker_post,response_post,level,rationales,level\np,r,a,b,0,,2\n")
    assert "duplicate column" in read(g, format="epitome", on_error="skip").rejected[0].problem


# JSONL session line repeated ---------------------------------------------------------------------------------


def test_repeated_jsonl_session_line_does_not_replace_the_first(tmp_path: Path):
    f = _jsonl(tmp_path / "t.jsonl",
               {"session_id": "s", "meta": {"score": 1}, "turns": [{"speaker": "client", "text": "one"}]},
               {"session_id": "s", "meta": {"score": 99}, "turns": [{"speaker": "client", "text": "two"}]},
               {"session_id": "s", "speaker": "client", "text": "three", "turn_index": 5})
    loaded = read(f, on_error="skip")
    assert loaded.corpus.sessions.meta[0] == {"score": 1} and list(loaded.corpus.turns.text) == ["one"]
    assert _where(loaded) == [("line 2", "session_id"), ("line 3", "session_id")]
    assert "already given on line 1" in loaded.rejected[0].problem
    with pytest.raises(InputError, match="line 2: field 'session_id'"):
        read(f)


def test_unplaceable_file_under_skip_is_one_rejection(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    ok = _jsonl(tmp_path / "t.jsonl", OK)
    loaded = read([tmp_path / "notes.txt", ok], on_error="skip")
    assert [r.problem.split(";")[0] for r in loaded.rejected] == ["could not detect the format"]
    assert len(loaded.corpus) == 1
    with pytest.raises(InputError, match="could not detect"):
        read([tmp_path / "notes.txt", ok])
    # A path that does not exist is a mistake in the command, not a bad record: it always stops the read.
    with pytest.raises(InputError, match="no such file"):
        read([ok, tmp_path / "missing.jsonl"], on_error="skip")


def test_wrong_options_stop_the_read_even_under_skip(tmp_path: Path):
    ok = _jsonl(tmp_path / "t.jsonl", OK)
    with pytest.raises(InputError, match="unknown timestamp unit 'sec'"):
        read(ok, on_error="skip", timestamp_unit="sec")
    g = tmp_path / "t.csv"
    g.write_text("session_id,speaker,text\ns,client,hi\n")
    with pytest.raises(InputError, match="unknown field"):
        read(g, on_error="skip", columns={"words": "text"})
    # A mapped column missing from one file is that file's problem: under skip the other files are read.
    h = tmp_path / "u.csv"
    h.write_text("session_id,speaker,said\ns,client,hi\n")
    loaded = read([g, h], on_error="skip", columns={"text": "said"})
    assert len(loaded.corpus) == 1 and _where(loaded) == [("line 1 (header)", "text")]


def test_convokit_writer_keeps_sessions_whose_ids_spell_alike(tmp_path: Path):
    from alliance.corpus import Corpus, Turn
    from alliance.io.convokit import write_convokit

    c = Corpus.from_turns([Turn("c/s", "x", 0, "client", "one"), Turn("c", "s/x", 0, "client", "two"),
                           Turn("c", "x", 0, "client", "three")])
    loaded = read(write_convokit(c, tmp_path / "ck"))
    assert not loaded.rejected
    t = loaded.corpus.turns
    got = sorted(zip(t.course_id, t.session_id, t.text, strict=True))
    assert got == [("c", "s/x", "two"), ("c", "x", "three"), ("c/s", "x", "one")]


def test_convokit_two_conversations_naming_one_session_are_not_merged(tmp_path: Path):
    d = tmp_path / "ck"
    d.mkdir()
    _jsonl(d / "utterances.jsonl",
           {"id": "a0", "conversation_id": "a0", "speaker": "client", "text": "first", "meta": {"turn_index": 0}},
           {"id": "b1", "conversation_id": "b1", "speaker": "client", "text": "second", "meta": {"turn_index": 1}})
    (d / "conversations.json").write_text(json.dumps({"a0": {"meta": {"session_id": "s"}},
                                                      "b1": {"meta": {"session_id": "s"}}}))
    loaded = read(d, on_error="skip")
    assert list(loaded.corpus.turns.text) == ["first"] and _where(loaded) == [("line 2", "conversation_id")]


def test_kokorochat_same_file_name_in_two_folders_is_not_spliced(tmp_path: Path):
    review = {"client_id": 1, "counselor_id": 2}
    for folder, n in (("a", 1), ("b", 3)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "en1.json").write_text(json.dumps({"review_by_client": review, "dialogue": [
            {"role": "client", "time": f"2020-01-0{n}T10:00:0{i}", "origin": "x", "content": f"{folder}{i}"}
            for i in range(n)]}))
    loaded = read([tmp_path / "a", tmp_path / "b"], on_error="skip")
    assert list(loaded.corpus.turns.text) == ["a0"]
    assert [(Path(r.source).parent.name, r.field) for r in loaded.rejected] == [("b", "session_id")]


def test_table_ids_are_never_spelled_from_floats_or_objects(tmp_path: Path):
    df = pd.DataFrame({"session_id": [1.0, 2.0, None, 2.5], "speaker": ["client"] * 4, "text": ["a", "b", "c", "d"]})
    df.to_parquet(tmp_path / "t.parquet")
    loaded = read(tmp_path / "t.parquet", on_error="skip")
    assert list(loaded.corpus.turns.session_id) == ["1", "2"]
    assert _where(loaded) == [("row 3", "session_id"), ("row 4", "session_id")]
