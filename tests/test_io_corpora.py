"""Corpus readers (KokoroChat, ESConv, AnnoMI) on invented fixture files, and on the real corpora when present."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.io import InputError, detect_format, read

# KokoroChat --------------------------------------------------------------------------------------------------


def _review(client: int, counsellor: int, score: int = 70, **extra) -> dict:
    r = {"evaluation_id": 1, "evaluation_created_at": "2021-01-02T10:00:00", "client_id": client,
         "counselor_id": counsellor, "score": score, "felt_heard_and_understood": 4, "helped_identify_goals": "3",
         "harmful_due_to_ignorance": None, "other_potentially_unethical": None, "unwilling_to_continue": None}
    r.update(extra)
    return r


def _kokoro(path: Path, turns: list[dict], review: dict | None, topic: dict | None = None) -> Path:
    doc: dict = {"dialogue": turns, "topic": topic or {"main_jp": "職場", "main_en": "Workplace", "sub": "残業"}}
    if review is not None:
        doc["review_by_client"] = review
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _kturn(role: str, time: str, content: str, origin: str = "こんにちは") -> dict:
    return {"role": role, "time": time, "origin": origin, "content": content}


@pytest.fixture
def kokoro_dir(tmp_path: Path) -> Path:
    d = tmp_path / "kokoro"
    d.mkdir()
    # Two sessions of the same client and counsellor; en20 happened first although its file sorts later.
    _kokoro(d / "en10.json", [_kturn("counselor", "2021-03-05T20:00:00", "Hello again, how was the week?"),
                              _kturn("client", "2021-03-05T20:01:30", "Better than last time.")],
            _review(7, 3, score=80, unwilling_to_continue="チェックあり"))
    _kokoro(d / "en20.json", [_kturn("counselor", "2021-02-01T19:00:00", "Welcome. What brings you here?"),
                              _kturn("client", "2021-02-01T19:00:40", "My job is wearing me out.", "仕事が辛い"),
                              _kturn("client", "2021-02-01T19:01:00", "Every single day.")],
            _review(7, 3, score=55))
    _kokoro(d / "en3.json", [_kturn("counselor", "2021-01-01T09:00:00", "Good morning."),
                             _kturn("client", "2021-01-01T09:00:10", "Morning.")], _review(8, 3))
    return d


def test_kokorochat_reads_courses_sessions_and_review(kokoro_dir: Path):
    loaded = read(kokoro_dir)
    assert loaded.formats == {str(kokoro_dir): "kokorochat"}
    c = loaded.corpus
    assert len(c.sessions) == 3 and len(c) == 7 and c.n_courses == 2
    s = c.sessions.set_index("session_id")
    assert s.loc["en20", "course_id"] == "client7-counselor3"
    assert s.loc["en20", "session_index"] == 0 and s.loc["en10", "session_index"] == 1
    assert s.loc["en3", "course_id"] == "client8-counselor3" and s.loc["en3", "session_index"] == 0
    meta = s.loc["en10", "meta"]
    assert meta["score"] == 80 and meta["felt_heard_and_understood"] == 4
    assert meta["helped_identify_goals"] == 3  # the string "3" arrives as a number
    assert meta["unwilling_to_continue"] is True and meta["harmful_due_to_ignorance"] is False
    assert meta["topic"] == "Workplace" and meta["topic_ja"] == "職場" and meta["subtopic_ja"] == "残業"
    assert meta["client_id"] == 7 and meta["counselor_id"] == 3
    assert s.loc["en20", "meta"]["unwilling_to_continue"] is False
    t = c.turns[c.turns.session_id == "en20"].reset_index(drop=True)
    assert list(t.speaker) == ["counsellor", "client", "client"]
    assert list(t.turn_index) == [0, 1, 2]
    assert list(t.speaker_id) == ["counselor3", "client7", "client7"]
    assert not t.counsellor_is_ai.any()
    assert t.text[1] == "My job is wearing me out." and t.meta[1] == {"origin": "仕事が辛い"}
    # Japan time without a zone in the file: 19:00 JST is 10:00 UTC.
    assert t.timestamp[0] == pd.Timestamp("2021-02-01T10:00:00", tz="UTC")


def test_kokorochat_files_read_together_keep_session_order(kokoro_dir: Path):
    loaded = read(sorted(kokoro_dir.glob("*.json")), format="kokorochat")
    s = loaded.corpus.sessions.set_index("session_id")
    assert s.loc["en20", "session_index"] == 0 and s.loc["en10", "session_index"] == 1


def test_kokorochat_single_file_and_timezone_option(kokoro_dir: Path):
    c = read(kokoro_dir / "en3.json", timezone="UTC").corpus
    assert len(c) == 2 and c.turns.timestamp[0] == pd.Timestamp("2021-01-01T09:00:00", tz="UTC")
    with pytest.raises(InputError, match="time zone"):
        read(kokoro_dir / "en3.json", timezone="Mars/Olympus")


def test_kokorochat_without_review_is_its_own_course(tmp_path: Path):
    f = _kokoro(tmp_path / "en5.json", [_kturn("counselor", "2021-01-01T09:00:00", "Hi."),
                                        _kturn("client", "2021-01-01T09:00:10", "Hi.")], None)
    c = read(f, format="kokorochat").corpus
    assert c.sessions.course_id[0] == "en5" and c.turns.speaker_id.isna().all()


@pytest.fixture
def bad_kokoro_dir(kokoro_dir: Path) -> Path:
    _kokoro(kokoro_dir / "en30.json", [_kturn("counselor", "2021-04-01T09:00:00", "Fine turn."),
                                       _kturn("client", "2021-04-01T09:00:10", "   "),
                                       _kturn("therapist-bot", "2021-04-01T09:00:20", "Who am I?"),
                                       _kturn("client", "yesterday", "Odd time."),
                                       _kturn("client", "2021-04-01T09:00:40", "Last good one.")], _review(9, 4))
    (kokoro_dir / "en40.json").write_text('{"dialogue": [ {"role": ', encoding="utf-8")
    (kokoro_dir / "en50.json").write_bytes(b'{"dialogue": [], "topic": "\xff\xfe"}')
    _kokoro(kokoro_dir / "en60.json", [_kturn("client", "2021-04-01T09:00:00", "Hi")],
            _review(9, 4, score="very good"))
    (kokoro_dir / "en70.json").write_text(json.dumps({"topic": "x", "review_by_client": _review(9, 4)}))
    (kokoro_dir / "en80.json").write_text(json.dumps({"dialogue": [], "review_by_client": [1, 2]}))
    return kokoro_dir


def test_kokorochat_bad_input_fail_names_file_record_field(bad_kokoro_dir: Path):
    with pytest.raises(InputError) as e:
        read(bad_kokoro_dir)
    msg = str(e.value)
    assert "en30.json" in msg and "dialogue[1]" in msg and "'content'" in msg and "empty" in msg


def test_kokorochat_bad_input_skip_lists_every_bad_record(bad_kokoro_dir: Path):
    loaded = read(bad_kokoro_dir, on_error="skip")
    reasons = {(Path(r.source).name, r.location, r.field): r.problem for r in loaded.rejected}
    assert len(loaded.rejected) == 8
    assert "empty" in reasons[("en30.json", "dialogue[1]", "content")]
    assert "unknown speaker role" in reasons[("en30.json", "dialogue[2]", "role")]
    assert "time" in reasons[("en30.json", "dialogue[3]", "time")]
    assert "invalid JSON" in reasons[("en40.json", "line 1", None)]
    assert "UTF-8" in reasons[("en50.json", "byte 27", None)]
    assert "number" in reasons[("en60.json", "review_by_client", "score")]
    assert "missing 'dialogue'" in reasons[("en70.json", "", "dialogue")]
    assert "must be an object" in reasons[("en80.json", "", "review_by_client")]
    c = loaded.corpus
    # Every good record is kept: the three good sessions whole, and the two good turns of en30.
    assert len(c.sessions) == 4 and len(c) == 9
    assert list(c.turns[c.turns.session_id == "en30"].turn_index) == [0, 4]


# ESConv ------------------------------------------------------------------------------------------------------


def _hf_dialogue(**over) -> dict:
    d = {"experience_type": "Current Experience", "emotion_type": "anxiety", "problem_type": "job crisis",
         "situation": "Worried about an exam.",
         "survey_score": {"seeker": {"initial_emotion_intensity": "4", "empathy": "5", "relevance": "",
                                     "final_emotion_intensity": "2"}, "supporter": {"relevance": "3"}},
         "dialog": [{"text": "hi there", "speaker": "usr"},
                    {"text": "Hello, what is on your mind?", "speaker": "sys", "strategy": "Question"},
                    {"text": "My exam is tomorrow.", "speaker": "usr"}],
         "seeker_question1": "Kind helper.", "seeker_question2": "", "supporter_question1": "ok",
         "supporter_question2": "N.A"}
    d.update(over)
    return d


def _original_dialogue() -> dict:
    return {"experience_type": "Previous Experience", "emotion_type": "sadness", "problem_type": "breakup",
            "situation": "Partner left.",
            "survey_score": {"seeker": {"initial_emotion_intensity": "5"}, "supporter": {}},
            "dialog": [{"speaker": "speaker", "annotation": {}, "content": "hello\n"},
                       {"speaker": "listener", "annotation": {"strategy": "Questions"}, "content": "Hi, how are you?"},
                       {"speaker": "speaker", "annotation": {"feedback": "2"}, "content": "Not great.\n"}]}


def test_esconv_hf_schema(tmp_path: Path):
    f = tmp_path / "valid.json"
    f.write_text("\n".join(json.dumps(d) for d in (_hf_dialogue(), _hf_dialogue(emotion_type="anger"))) + "\n")
    assert detect_format(f)[0] == "esconv"
    c = read(f).corpus
    assert len(c.sessions) == 2 and len(c) == 6
    s = c.sessions.set_index("session_id")
    meta = s.loc["esconv-valid-0000", "meta"]
    assert meta["empathy"] == 5 and meta["initial_emotion_intensity"] == 4 and meta["final_emotion_intensity"] == 2
    assert "relevance" not in meta  # empty survey answer -> absent, not 0
    assert meta["supporter_relevance"] == 3
    assert meta["split"] == "valid" and meta["schema"] == "hf" and "failed" not in meta
    assert meta["emotion_type"] == "anxiety" and meta["situation"] == "Worried about an exam."
    assert meta["seeker_question1"] == "Kind helper." and "seeker_question2" not in meta
    assert s.loc["esconv-valid-0001", "meta"]["emotion_type"] == "anger"
    t = c.turns[c.turns.session_id == "esconv-valid-0000"].reset_index(drop=True)
    assert list(t.speaker) == ["client", "counsellor", "client"]
    assert t.meta[1] == {"strategy": "Question"} and t.meta[0] == {}
    assert not t.counsellor_is_ai.any() and t.counsellor_is_ai.notna().all()


def test_esconv_original_schema_failed(tmp_path: Path):
    f = tmp_path / "FailedESConv.json"
    f.write_text(json.dumps([_original_dialogue(), _original_dialogue()], indent=1))
    assert detect_format(f)[0] == "esconv"
    c = read(f).corpus
    assert len(c.sessions) == 2 and len(c) == 6
    meta = c.sessions.meta[0]
    assert meta["failed"] is True and meta["schema"] == "original" and meta["initial_emotion_intensity"] == 5
    assert "empathy" not in meta
    t = c.turns[c.turns.session_id == "esconv-FailedESConv-0000"].reset_index(drop=True)
    assert list(t.speaker) == ["client", "counsellor", "client"]
    assert t.text[0] == "hello"  # trailing newline of the source stripped
    assert t.meta[1] == {"strategy": "Questions"} and t.meta[2] == {"feedback": 2}


def test_esconv_bad_lines(tmp_path: Path):
    f = tmp_path / "train.json"
    good = json.dumps(_hf_dialogue())
    bad_role = _hf_dialogue()
    bad_role["dialog"][1]["speaker"] = "moderator"
    bad_survey = _hf_dialogue(survey_score={"seeker": {"empathy": "high"}, "supporter": {}})
    lines = [good.encode(), b"{not json", json.dumps(bad_role).encode(), b'{"dialog": "none"}',
             json.dumps(bad_survey).encode(), b'{"dialog": [], "situation": "\xc3("}', good.encode()]
    f.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InputError, match=r"train\.json:line 2: invalid JSON"):
        read(f, format="esconv")
    loaded = read(f, format="esconv", on_error="skip")
    got = [(r.location, r.field) for r in loaded.rejected]
    assert got == [("line 2", None), ("line 3, dialog[1]", "speaker"), ("line 4", "dialog"),
                   ("line 5", "survey_score.seeker.empathy"), ("line 6", None)]
    assert "UTF-8" in loaded.rejected[-1].problem
    c = loaded.corpus
    # Line 3 keeps its two good turns; ids follow line numbers, so they do not shift after bad lines.
    assert sorted(c.sessions.session_id) == ["esconv-train-0000", "esconv-train-0002", "esconv-train-0006"]
    assert len(c) == 3 + 2 + 3


# AnnoMI ------------------------------------------------------------------------------------------------------

SIMPLE_HEADER = ("transcript_id,mi_quality,video_title,video_url,topic,utterance_id,interlocutor,timestamp,"
                 "utterance_text,main_therapist_behaviour,client_talk_type")
FULL_HEADER = ("mi_quality,transcript_id,video_title,video_url,topic,utterance_id,interlocutor,timestamp,"
               "utterance_text,annotator_id,therapist_input_exists,therapist_input_subtype,reflection_exists,"
               "reflection_subtype,question_exists,question_subtype,main_therapist_behaviour,client_talk_type")


def test_annomi_simple(tmp_path: Path):
    f = tmp_path / "AnnoMI-simple.csv"
    f.write_text("\n".join([
        SIMPLE_HEADER,
        '5,high,"A ""good"" talk",https://example.org/v1,smoking,0,therapist,00:00:05,How are things?,question,n/a',
        "5,high,\"A \"\"good\"\" talk\",https://example.org/v1,smoking,1,client,00:01:02,\"Fine, I guess.\",n/a,neutral",
        "9,low,Bad talk,https://example.org/v2,drinking,0,therapist,00:00:00,You must stop.,therapist_input,n/a",
    ]) + "\n", encoding="utf-8")
    assert detect_format(f)[0] == "annomi"
    c = read(f).corpus
    assert len(c.sessions) == 2 and len(c) == 3
    s = c.sessions.set_index("session_id")
    assert s.loc["annomi-5", "meta"] == {"transcript_id": 5, "mi_quality": "high", "topic": "smoking",
                                          "video_title": 'A "good" talk', "video_url": "https://example.org/v1"}
    assert s.loc["annomi-9", "meta"]["mi_quality"] == "low"
    t = c.turns[c.turns.session_id == "annomi-5"].reset_index(drop=True)
    assert list(t.speaker) == ["counsellor", "client"] and t.text[1] == "Fine, I guess."
    assert t.meta[0] == {"main_therapist_behaviour": "question", "video_timestamp": "00:00:05", "offset_s": 5}
    assert t.meta[1] == {"client_talk_type": "neutral", "video_timestamp": "00:01:02", "offset_s": 62}
    assert t.timestamp.isna().all()


def test_annomi_full_keeps_first_annotator_and_others(tmp_path: Path):
    f = tmp_path / "AnnoMI-full.csv"
    row = "high,3,T,https://example.org/v,t,{uid},{who},00:00:0{uid},{text},{ann},{rest}"
    ther = "False,n/a,True,{sub},False,n/a,reflection,n/a"
    f.write_text("\n".join([
        FULL_HEADER,
        row.format(uid=0, who="therapist", text="So you want to cut down.", ann=2, rest=ther.format(sub="complex")),
        row.format(uid=0, who="therapist", text="So you want to cut down.", ann=0, rest=ther.format(sub="simple")),
        row.format(uid=0, who="therapist", text="So you want to cut down.", ann=1, rest=ther.format(sub="simple")),
        row.format(uid=1, who="client", text="Yes.", ann=0, rest="n/a,n/a,n/a,n/a,n/a,n/a,n/a,change"),
    ]) + "\n", encoding="utf-8")
    c = read(f).corpus
    assert len(c) == 2
    m0 = c.turns.meta[0]
    assert m0["annotator_id"] == 0 and m0["reflection_subtype"] == "simple" and m0["reflection_exists"] is True
    assert m0["therapist_input_exists"] is False and "therapist_input_subtype" not in m0
    assert [o["annotator_id"] for o in m0["other_annotations"]] == [1, 2]
    assert m0["other_annotations"][1]["reflection_subtype"] == "complex"
    assert "offset_s" not in m0["other_annotations"][0]
    assert c.turns.meta[1] == {"client_talk_type": "change", "annotator_id": 0, "video_timestamp": "00:00:01",
                               "offset_s": 1}


def test_annomi_bad_rows(tmp_path: Path):
    f = tmp_path / "AnnoMI-simple.csv"
    rows = [SIMPLE_HEADER.encode(),
            b"1,high,T,u,t,0,therapist,00:00:01,Hello there.,other,n/a",
            b"1,high,T,u,t,1,nurse,00:00:02,Who speaks?,n/a,n/a",
            b"1,high,T,u,t,2,client,00:00:03,   ,n/a,neutral",
            b"1,high,T,u,t,x3,client,00:00:04,Hm.,n/a,neutral",
            b"1,high,T,u,t,4,client,00:00:05,Bad \xff byte,n/a,neutral",
            b"1,high,T,u,t,5,client,00:00:06,Too few fields",
            b"1,high,T,u,t,0,therapist,00:00:07,Hello again.,other,n/a",
            b"1,high,T,u,t,6,client,soon,Odd time.,n/a,neutral",
            b"1,high,T,u,t,7,client,00:00:08,Good bye.,n/a,neutral"]
    f.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(InputError) as e:
        read(f)
    assert "AnnoMI-simple.csv:line 3 (row 2)" in str(e.value) and "'interlocutor'" in str(e.value)
    loaded = read(f, on_error="skip")
    got = [(r.location, r.field) for r in loaded.rejected]
    assert got == [("line 3 (row 2)", "interlocutor"), ("line 4 (row 3)", "utterance_text"),
                   ("line 5 (row 4)", "utterance_id"), ("line 6 (row 5)", "utterance_text"),
                   ("line 7 (row 6)", None), ("line 9 (row 8)", "timestamp"), ("line 8 (row 7)", "utterance_text")]
    assert "UTF-8" in loaded.rejected[3].problem and "fields" in loaded.rejected[4].problem
    assert "different text" in loaded.rejected[-1].problem
    assert list(loaded.corpus.turns.turn_index) == [0, 7]


def test_annomi_missing_column(tmp_path: Path):
    f = tmp_path / "a.csv"
    f.write_text("transcript_id,mi_quality,utterance_id,interlocutor\n1,high,0,client\n")
    with pytest.raises(InputError, match=r"line 1 \(header\).*utterance_text"):
        read(f, format="annomi")


# Real corpora (skipped without ../shared/data) ---------------------------------------------------------------


@pytest.mark.data
def test_real_kokorochat(shared_data: Path):
    folder = shared_data / "kokorochat_en" / "English"
    assert detect_format(folder)[0] == "kokorochat"
    loaded = read(folder, on_error="skip")
    c = loaded.corpus
    assert len(c.sessions) == 2120
    # The English translation left a few turns empty (merged into a neighbour); each is listed, none is lost.
    assert loaded.rejected and all(r.problem == "text is empty" and r.field == "content" for r in loaded.rejected)
    assert c.session_meta("score").notna().all()
    assert c.session_meta("unwilling_to_continue").map(type).eq(bool).all()
    assert c.turn_meta("origin").notna().all()
    assert c.turns.timestamp.notna().all()


@pytest.mark.data
def test_real_esconv(shared_data: Path):
    files = sorted((shared_data / "esconv" / "hf_format").glob("*.json"))
    assert [detect_format(f)[0] for f in files] == ["esconv"] * 3
    c = read(files).corpus
    assert len(c.sessions) == 1300
    assert set(c.session_meta("split")) == {"train", "valid", "test"}
    assert c.session_meta("empathy").dropna().map(lambda v: isinstance(v, int)).all()
    assert c.turn_meta("strategy")[c.turns.speaker == "counsellor"].notna().all()
    failed = shared_data / "esconv" / "thu-coai" / "FailedESConv.json"
    assert detect_format(failed)[0] == "esconv"
    cf = read(failed).corpus
    assert len(cf.sessions) == 196 and cf.session_meta("failed").all()
    assert cf.turn_meta("feedback").dropna().between(1, 5).all()


@pytest.mark.data
def test_real_annomi(shared_data: Path):
    simple = read(shared_data / "annomi" / "AnnoMI-simple.csv")
    assert simple.formats[str(shared_data / "annomi" / "AnnoMI-simple.csv")] == "annomi"
    c = simple.corpus
    assert len(c.sessions) == 133 and len(c) == 9699
    assert c.session_meta("mi_quality").value_counts().to_dict() == {"high": 110, "low": 23}
    full = read(shared_data / "annomi" / "AnnoMI-full.csv").corpus
    assert len(full) == 9699
    multi = full.turn_meta("other_annotations").dropna()
    assert multi.index.map(lambda i: full.turns.session_id[i]).nunique() == 7
    assert full.turn_meta("reflection_exists").dropna().map(type).eq(bool).all()


def test_esconv_unreadable_json_list_is_one_rejection(tmp_path: Path):
    bad = tmp_path / "ESConv.json"
    bad.write_text('[{"dialog": [], "situation": "x"},')
    good = tmp_path / "valid.json"
    good.write_text(json.dumps(_hf_dialogue()) + "\n")
    with pytest.raises(InputError, match=r"ESConv\.json:line 1: invalid JSON"):
        read([bad, good], format="esconv")
    loaded = read([bad, good], format="esconv", on_error="skip")
    assert [(Path(r.source).name, r.location) for r in loaded.rejected] == [("ESConv.json", "line 1")]
    assert len(loaded.corpus.sessions) == 1
