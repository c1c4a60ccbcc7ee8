"""Generic readers and writers (JSONL, tables, OpenAI chat logs, ConvoKit) and the EPITOME and PAIR corpus readers,
on invented fixture files; auto-detection across every format; the real EPITOME and PAIR files when present."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.corpus import Corpus, Turn
from alliance.io import InputError, detect_format, read
from alliance.io.convokit import write_convokit
from alliance.io.jsonl import write_jsonl

# JSONL -------------------------------------------------------------------------------------------------------


def _sample_corpus() -> Corpus:
    t0 = pd.Timestamp("2024-05-01T10:00:00Z")
    turns = [
        Turn("c1", "s1", 0, "client", "I could not sleep again.", session_index=0, speaker_id="p1",
             timestamp=t0, meta={"label": "sleep"}),
        Turn("c1", "s1", 1, "counsellor", "That sounds exhausting.", session_index=0, speaker_id="t1",
             counsellor_is_ai=False, timestamp=t0 + pd.Timedelta(seconds=30), meta={"code": ["reflection"]}),
        Turn("c1", "s2", 0, "counsellor", "How has the week been?", session_index=1, counsellor_is_ai=False),
        Turn("c1", "s2", 3, "client", "A bit better, thanks.", session_index=1),
        Turn("bot", "chat-9", 0, "client", "hello bot", counsellor_is_ai=None),
        Turn("bot", "chat-9", 1, "counsellor", "Hello! How can I help?", counsellor_is_ai=True),
    ]
    from alliance.corpus import SessionInfo

    sessions = [SessionInfo("c1", "s1", 0, meta={"score": 4}), SessionInfo("c1", "s2", 1, meta={"score": 5.5}),
                SessionInfo("bot", "chat-9", 0, meta={"model": "x"})]
    return Corpus.from_turns(turns, sessions)


def _same_corpus(a: Corpus, b: Corpus, ignore_meta: tuple[str, ...] = ()) -> None:
    cols = ["course_id", "session_id", "session_index", "turn_index", "speaker", "speaker_id", "counsellor_is_ai",
            "text", "timestamp"]
    pd.testing.assert_frame_equal(a.turns[cols], b.turns[cols])
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ignore_meta} for m in ms]  # noqa: E731
    assert strip(a.turns["meta"]) == strip(b.turns["meta"])
    assert strip(a.sessions["meta"]) == strip(b.sessions["meta"])
    assert list(a.sessions["session_index"]) == list(b.sessions["session_index"])


def test_jsonl_write_read_round_trip(tmp_path: Path):
    corpus = _sample_corpus()
    write_jsonl(corpus, tmp_path / "out.jsonl")
    loaded = read(tmp_path / "out.jsonl")
    assert loaded.formats[str(tmp_path / "out.jsonl")] == "jsonl"
    _same_corpus(corpus, loaded.corpus)


def test_jsonl_bad_lines(tmp_path: Path):
    f = tmp_path / "turns.jsonl"
    ok = {"session_id": "a", "speaker": "client", "text": "fine"}
    f.write_bytes(b"\n".join([
        json.dumps(ok).encode(),
        b'{"session_id": "a", "speaker": "wizard", "text": "who?"}',
        b'{"session_id": "a", "speaker": "counsellor", "text": ""}',
        b"[1, 2]",
        b'{"session_id": "a", "speaker": "counsellor", "text": "bad \xff"}',
        b'{"speaker": "client", "text": "no session"}',
        b'{"session_id": "a", "speaker": "counsellor", "text": "dup", "turn_index": 0}',
        b'{"session_id": "a", "speaker": "counsellor", "text": "' + b"x" * 1_100_000 + b'"}',
        json.dumps({**ok, "text": "last"}).encode(),
    ]) + b"\n")
    with pytest.raises(InputError, match=r"turns\.jsonl:line 2: field 'speaker': unknown speaker role 'wizard'"):
        read(f)
    loaded = read(f, on_error="skip")
    got = [(r.location, r.field) for r in loaded.rejected]
    assert got[:6] == [("line 2", "speaker"), ("line 3", "text"), ("line 4", None), ("line 5", None),
                       ("line 6", "session_id"), ("line 8", None)]
    assert "UTF-8" in loaded.rejected[3].problem and "limit" in loaded.rejected[5].problem
    assert "duplicate turn key" in loaded.rejected[6].problem
    assert list(loaded.corpus.turns.text) == ["fine", "last"]


# Tables ------------------------------------------------------------------------------------------------------


def test_table_csv_with_column_and_role_map(tmp_path: Path):
    f = tmp_path / "coded.csv"
    f.write_text("conv,who,utterance,when,site,code\n"
                 "k1,T,Hello there.,2024-01-01T09:00:00,north,greet\n"
                 "k1,C,Hi.,2024-01-01T09:00:05,north,\n"
                 "k2,C,Help me.,,south,ask\n", encoding="utf-8")
    assert detect_format(f)[0] == "table"
    loaded = read(f, columns={"session_id": "conv", "speaker": "who", "text": "utterance", "timestamp": "when"},
                  roles={"T": "counsellor", "C": "client"}, session_columns=["site"])
    c = loaded.corpus
    assert len(c) == 3 and list(c.sessions.session_id) == ["k1", "k2"]
    t = c.turns
    assert list(t.speaker) == ["counsellor", "client", "client"] and list(t.turn_index) == [0, 1, 0]
    assert t.timestamp[0] == pd.Timestamp("2024-01-01T09:00:00Z") and pd.isna(t.timestamp[2])
    assert t.meta[0] == {"code": "greet"} and t.meta[1] == {}
    assert c.sessions.meta[0] == {"site": "north"} and c.sessions.meta[1] == {"site": "south"}


def test_table_default_names_parquet_and_tsv(tmp_path: Path):
    df = pd.DataFrame({"course_id": ["x", "x"], "session_id": ["s", "s"], "turn_index": [5, 7],
                       "speaker": ["client", "counsellor"], "text": ["one", "two"],
                       "counsellor_is_ai": [None, True], "mood": [1.5, None]})
    df.to_parquet(tmp_path / "t.parquet")
    assert detect_format(tmp_path / "t.parquet") == ("table", 0.6)
    c = read(tmp_path / "t.parquet").corpus
    assert list(c.turns.turn_index) == [5, 7] and bool(c.turns.counsellor_is_ai[1]) is True
    assert c.turns.meta[0] == {"mood": 1.5} and c.turns.meta[1] == {}
    (tmp_path / "t.tsv").write_text("speaker\ttext\nclient\tjust one conversation\n")
    c = read(tmp_path / "t.tsv").corpus
    assert c.turns.session_id[0] == "t" and c.turns.text[0] == "just one conversation"


def test_table_errors(tmp_path: Path):
    f = tmp_path / "x.csv"
    f.write_text("sid,who,said\n1,client,hi\n")
    with pytest.raises(InputError, match=r"line 1 \(header\).*no column for \['text', 'speaker'\].*--map text="):
        read(f)
    with pytest.raises(InputError, match="mapped column 'nope'"):
        read(f, columns={"text": "said", "speaker": "nope"})
    with pytest.raises(InputError, match="unknown field"):
        read(f, columns={"words": "said"})
    with pytest.raises(InputError, match="role mapping"):
        read(f, format="table", columns={"text": "said", "speaker": "who"}, roles={"T": "doctor"})
    g = tmp_path / "y.csv"
    g.write_bytes(b"session_id,speaker,text,turn_index\n"
                  b"a,client,ok,0\n"
                  b"a,robot,who,1\n"
                  b"a,client,,2\n"
                  b"a,client,\"unterminated,3\n")
    loaded = read(g, on_error="skip")
    assert [(r.location, r.field) for r in loaded.rejected] == [("line 3 (row 2)", "speaker"),
                                                                ("line 4 (row 3)", "text"),
                                                                ("line 5 (row 4)", None)]
    huge = tmp_path / "huge.csv"
    huge.write_text("session_id,speaker,text\na,client,short\na,client,\"" + "word " * 250_000 + "\"\na,counsellor,ok\n")
    loaded = read(huge, on_error="skip")
    assert [(r.location, r.field) for r in loaded.rejected] == [("line 3 (row 2)", None)]
    assert "limit" in loaded.rejected[0].problem and list(loaded.corpus.turns.text) == ["short", "ok"]
    h = tmp_path / "z.csv"
    h.write_text("session_id,speaker,text,turn_index,timestamp\na,client,ok,one,\na,client,ok,1,not a time\n")
    loaded = read(h, on_error="skip")
    assert [(r.location, r.field) for r in loaded.rejected] == [("line 2 (row 1)", "turn_index"),
                                                                ("line 3 (row 2)", "timestamp")]


# OpenAI chat logs --------------------------------------------------------------------------------------------


def _chat(**extra) -> dict:
    return {"messages": [
        {"role": "system", "content": "You are a supportive listener."},
        {"role": "user", "content": "I feel stuck at work."},
        {"role": "assistant", "content": [{"type": "text", "text": "That sounds hard."},
                                          {"type": "text", "text": "What feels most stuck?"}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\": true}"},
        {"role": "user", "content": [{"type": "text", "text": "My boss."}, {"type": "image_url", "image_url": {}}],
         "name": "sam"},
    ], **extra}


def test_openai_jsonl(tmp_path: Path):
    f = tmp_path / "logs.jsonl"
    f.write_text(json.dumps(_chat(id="conv-1", model="m1", rating=4)) + "\n" + json.dumps(_chat()) + "\n")
    assert detect_format(f)[0] == "openai"
    c = read(f).corpus
    assert sorted(c.sessions.session_id) == ["conv-1", "logs-0001"]
    s = c.sessions.set_index("session_id").loc["conv-1", "meta"]
    assert s["model"] == "m1" and s["rating"] == 4 and s["id"] == "conv-1"
    assert s["system"] == ["You are a supportive listener."]
    assert [m["index"] for m in s["tool_messages"]] == [3, 4] and s["tool_messages"][1]["role"] == "tool"
    t = c.turns[c.turns.session_id == "conv-1"].reset_index(drop=True)
    assert list(t.turn_index) == [1, 2, 5] and list(t.speaker) == ["client", "counsellor", "client"]
    assert t.text[1] == "That sounds hard.\nWhat feels most stuck?"
    assert bool(t.counsellor_is_ai[1]) is True and pd.isna(t.counsellor_is_ai[0])
    assert t.speaker_id[2] == "sam" and t.meta[2] == {"non_text_parts": ["image_url"]}


def test_openai_json_list_and_single_object(tmp_path: Path):
    f = tmp_path / "list.json"
    f.write_text(json.dumps([_chat(), _chat()], indent=2))
    assert detect_format(f)[0] == "openai"
    assert len(read(f).corpus.sessions) == 2
    g = tmp_path / "one.json"
    g.write_text(json.dumps(_chat(session_id="solo"), indent=2))
    assert detect_format(g)[0] == "openai"
    assert list(read(g).corpus.sessions.session_id) == ["solo"]


def test_openai_bad_messages(tmp_path: Path):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join([
        json.dumps({"messages": [{"role": "user", "content": "ok"}, {"role": "narrator", "content": "x"},
                                 {"role": "assistant", "content": "   "}, {"role": "assistant", "content": 42},
                                 {"role": "assistant", "content": [3]}, "just a string"]}),
        json.dumps({"no_messages": True}),
        "{broken",
    ]) + "\n")
    loaded = read(f, format="openai", on_error="skip")
    got = [(r.location, r.field) for r in loaded.rejected]
    assert got == [("line 1, messages[1]", "role"), ("line 1, messages[2]", "content"),
                   ("line 1, messages[3]", "content"), ("line 1, messages[4]", "content"),
                   ("line 1, messages[5]", None), ("line 2", "messages"), ("line 3", None)]
    assert list(loaded.corpus.turns.text) == ["ok"]


# ConvoKit ----------------------------------------------------------------------------------------------------


def test_convokit_round_trip(tmp_path: Path):
    corpus = _sample_corpus()
    folder = write_convokit(corpus, tmp_path / "ck")
    assert {p.name for p in folder.iterdir()} == {"utterances.jsonl", "conversations.json", "speakers.json",
                                                  "corpus.json", "index.json"}
    index = json.loads((folder / "index.json").read_text())
    assert index["version"] == 1 and index["utterances-index"]["role"] == ["<class 'str'>"]
    first = json.loads((folder / "utterances.jsonl").read_text().splitlines()[0])
    assert {"id", "conversation_id", "speaker", "reply-to", "timestamp", "text", "meta"} <= set(first)
    assert detect_format(folder)[0] == "convokit"
    back = read(folder).corpus
    _same_corpus(corpus, back, ignore_meta=("utterance_id", "reply_to", "conversation_id"))
    # Writing what was read gives the same files again.
    write_convokit(back, tmp_path / "ck2")
    for name in ("utterances.jsonl", "conversations.json", "speakers.json"):
        assert (folder / name).read_text() == (tmp_path / "ck2" / name).read_text()


def test_convokit_foreign_corpus_roles_from_speakers(tmp_path: Path):
    d = tmp_path / "foreign"
    d.mkdir()
    utts = [{"id": "u1", "conversation_id": "u1", "speaker": "alice", "reply-to": None, "timestamp": 1700000000,
             "text": "Can we talk?", "meta": {"act": "request"}},
            {"id": "u2", "conversation_id": "u1", "speaker": "dr_b", "reply-to": "u1", "timestamp": 1700000060,
             "text": "Of course.", "meta": {}},
            {"id": "u3", "root": "u1", "user": "mystery", "reply_to": "u2", "timestamp": None, "text": "?",
             "meta": {}},
            {"id": "u1", "conversation_id": "u1", "speaker": "alice", "text": "dup id", "meta": {}}]
    (d / "utterances.jsonl").write_text("\n".join(json.dumps(u) for u in utts) + "\n")
    (d / "speakers.json").write_text(json.dumps({"alice": {"meta": {"role": "client"}},
                                                 "dr_b": {"meta": {"role": "therapist"}}}))
    (d / "conversations.json").write_text(json.dumps({"u1": {"meta": {"topic": "grief"}, "vectors": []}}))
    loaded = read(d, on_error="skip")
    assert sorted((r.location, r.field) for r in loaded.rejected) == [("line 3", "speaker"), ("line 4", "id")]
    c = loaded.corpus
    assert list(c.turns.speaker) == ["client", "counsellor"] and list(c.turns.speaker_id) == ["alice", "dr_b"]
    assert c.turns.timestamp[1] == pd.Timestamp(1700000060, unit="s", tz="UTC")
    assert c.turns.meta[0] == {"act": "request", "utterance_id": "u1"}
    assert c.turns.meta[1]["reply_to"] == "u1"
    assert c.sessions.meta[0] == {"topic": "grief", "conversation_id": "u1"}
    # A roles map names the speakers that carry no role.
    c2 = read(d, on_error="skip", roles={"mystery": "client"}).corpus
    assert list(c2.turns.speaker) == ["client", "counsellor", "client"]


# EPITOME -----------------------------------------------------------------------------------------------------

EPI_HEADER = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"


def _epitome(folder: Path, rows: dict[str, list[str]]) -> Path:
    folder.mkdir()
    for name, lines in rows.items():
        (folder / f"{name}-reddit.csv").write_text(EPI_HEADER + "".join(lines), encoding="utf-8")
    return folder


def test_epitome_folder(tmp_path: Path):
    d = _epitome(tmp_path / "epi", {
        "emotional-reactions": ["p1,r1,I lost my job.,So sorry to hear that. What happened?,1,So sorry|\n",
                                "p2,r2,Nobody calls me.,Same here honestly.,0,\n",
                                "p2,r2,Nobody calls me.,Same here honestly.,1,Same here|\n"],
        "interpretations": ["p1,r1,I lost  my job.,So sorry to hear that. What happened?,0,\n",
                            "p2,r2,Nobody calls me.,Same here honestly.,2,Same here honestly|\n",
                            "p2,r2,Nobody calls me.,Same here honestly.,2,Same here|\n"],
        "explorations": ["p1,r1,I lost  my job.,So sorry to hear that. What happened?,2,What happened?|\n",
                         "p2,r2,Nobody calls me.,Same here honestly.,0,\n",
                         "p2,r2,Nobody calls me.,Same here honestly.,0,\n"],
    })
    assert detect_format(d)[0] == "epitome"
    assert detect_format(d / "explorations-reddit.csv")[0] == "epitome"
    c = read(d).corpus
    assert len(c.sessions) == 2 and len(c) == 4
    s = c.sessions.set_index("session_id")
    assert s.loc["epitome-p1-r1", "meta"] == {"sp_id": "p1", "rp_id": "r1", "n_annotations": 1}
    assert s.loc["epitome-p2-r2", "meta"]["n_annotations"] == 2
    t = c.turns[c.turns.session_id == "epitome-p1-r1"].reset_index(drop=True)
    assert list(t.speaker) == ["client", "counsellor"]
    assert t.text[0] == "I lost  my job."  # text as the interpretations file spells it
    assert t.meta[0] == {"post_id": "p1"}
    assert t.meta[1] == {"post_id": "r1", "interpretations": 0, "interpretations_rationales": [],
                         "explorations": 2, "explorations_rationales": ["What happened?"],
                         "emotional_reactions": 1, "emotional_reactions_rationales": ["So sorry"]}
    m = c.turns[c.turns.session_id == "epitome-p2-r2"].meta.iloc[1]
    assert m["emotional_reactions"] == 0 and m["other_annotations"] == [
        {"interpretations": 2, "interpretations_rationales": ["Same here"], "explorations": 0,
         "explorations_rationales": [], "emotional_reactions": 1, "emotional_reactions_rationales": ["Same here"]}]


def test_epitome_single_file_and_bad_rows(tmp_path: Path):
    f = tmp_path / "my-explorations.csv"
    f.write_text(EPI_HEADER + "p1,r1,Hard day.,Want to say more?,2,say more\n"
                 "p2,r2,Hard week.,ok,high,\n"
                 "p3,r3,,Hello,0,\n"
                 ",r4,Post,Reply,0,\n"
                 "p5,r5,Post,Reply,1,\n")
    with pytest.raises(InputError, match=r"my-explorations\.csv:line 3 \(row 2\): field 'level'"):
        read(f, format="epitome")
    loaded = read(f, format="epitome", on_error="skip")
    assert [(r.location, r.field) for r in loaded.rejected] == [("line 3 (row 2)", "level"),
                                                                ("line 4 (row 3)", "seeker_post"),
                                                                ("line 5 (row 4)", "sp_id")]
    assert loaded.corpus.turns.meta[1]["explorations"] == 2
    g = tmp_path / "unknown.csv"
    g.write_text(EPI_HEADER + "p1,r1,a,b,0,\n")
    with pytest.raises(InputError, match="mechanism"):
        read(g, format="epitome")
    assert read(g, format="epitome", mechanism="interpretations").corpus.turns.meta[1]["interpretations"] == 0


# PAIR --------------------------------------------------------------------------------------------------------

PAIR_HEADER = "prompt,hq1,hq2,mq1,lq1,lq2,lq3,lq4,lq5\n"


def test_pair(tmp_path: Path):
    f = tmp_path / "pair_data.csv"
    f.write_text(PAIR_HEADER + '"I drink too much, I know.",You see it,You worry,Drinking,Stop,Why,No,Meh,Hm\n'
                 "  ,a,b,c,d,e,f,g,h\n"
                 "I hate gyms.,Gyms feel bad,Not for you,Exercise,Go anyway,,Lol,Try,Ok\n", encoding="utf-8")
    assert detect_format(f)[0] == "pair"
    loaded = read(f, on_error="skip")
    assert [(r.location, r.field) for r in loaded.rejected] == [("line 3 (row 2)", "prompt"),
                                                                ("line 4 (row 3)", "lq2")]
    c = loaded.corpus
    assert len(c.sessions) == 8 + 7 and len(c) == 2 * 15
    s = c.sessions.set_index("session_id")
    assert s.loc["pair-000-hq2", "meta"] == {"prompt_id": 0, "response_slot": "hq2", "quality": "high"}
    assert s.loc["pair-002-mq1", "meta"]["quality"] == "medium" and s.loc["pair-002-lq5", "meta"]["quality"] == "low"
    t = c.turns[c.turns.session_id == "pair-000-lq1"].reset_index(drop=True)
    assert list(t.speaker) == ["client", "counsellor"] and list(t.text) == ["I drink too much, I know.", "Stop"]


# Auto-detection ----------------------------------------------------------------------------------------------


def test_auto_detection_picks_each_format(tmp_path: Path):
    corpus = _sample_corpus()
    write_jsonl(corpus, tmp_path / "a.jsonl")
    write_convokit(corpus, tmp_path / "ck")
    (tmp_path / "chat.jsonl").write_text(json.dumps(_chat()) + "\n")
    (tmp_path / "t.csv").write_text("session_id,speaker,text\na,client,hi\n")
    (tmp_path / "odd.csv").write_text("x,y\n1,2\n")
    (tmp_path / "pair_data.csv").write_text(PAIR_HEADER + "p,a,b,c,d,e,f,g,h\n")
    (tmp_path / "explorations.csv").write_text(EPI_HEADER + "p,r,a,b,0,\n")
    (tmp_path / "AnnoMI-simple.csv").write_text(
        "transcript_id,mi_quality,video_title,video_url,topic,utterance_id,interlocutor,timestamp,utterance_text,"
        "main_therapist_behaviour,client_talk_type\n1,high,t,u,x,0,client,00:00:01,hi,n/a,neutral\n")
    (tmp_path / "train.json").write_text(json.dumps({"emotion_type": "x", "situation": "y", "dialog": [
        {"speaker": "usr", "text": "hi"}]}) + "\n")
    (tmp_path / "en1.json").write_text(json.dumps({"dialogue": [{"role": "client", "time": "2020-01-01T00:00:00",
                                                                 "origin": "x", "content": "hi"}],
                                                   "review_by_client": {"client_id": 1, "counselor_id": 2}}))
    expected = {"a.jsonl": "jsonl", "ck": "convokit", "chat.jsonl": "openai", "t.csv": "table", "odd.csv": "table",
                "pair_data.csv": "pair", "explorations.csv": "epitome", "AnnoMI-simple.csv": "annomi",
                "train.json": "esconv", "en1.json": "kokorochat"}
    got = {name: detect_format(tmp_path / name)[0] for name in expected}
    assert got == expected
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="could not detect"):
        detect_format(tmp_path / "notes.txt")


# Real corpora (skipped without ../shared/data) ---------------------------------------------------------------


@pytest.mark.data
def test_real_epitome(shared_data: Path):
    folder = shared_data / "epitome"
    assert detect_format(folder)[0] == "epitome"
    c = read(folder).corpus
    # 2,457 annotated rows per mechanism; 51 of them re-annotate a pair already seen.
    n_annotations = c.session_meta("n_annotations")
    assert n_annotations.sum() == 2457 and len(c.sessions) == 2457 - 51
    responses = c.turns[c.turns.speaker == "counsellor"]
    for mech in ("emotional_reactions", "interpretations", "explorations"):
        levels = responses.meta.map(lambda m, k=mech: m[k])
        assert set(levels) == {0, 1, 2}


@pytest.mark.data
def test_real_pair(shared_data: Path):
    f = shared_data / "pair" / "pair_data.csv"
    assert detect_format(f)[0] == "pair"
    c = read(f).corpus
    assert len(c.sessions) == 318 * 8
    assert c.session_meta("prompt_id").nunique() == 318
    assert c.session_meta("quality").value_counts().to_dict() == {"low": 318 * 5, "high": 318 * 2, "medium": 318}


# CLI ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_skip_writes_rejected_jsonl_and_maps_columns(tmp_path: Path):
    from typer.testing import CliRunner

    from alliance.cli import app

    f = tmp_path / "coded.csv"
    f.write_bytes(b"conv,who,utterance\n"
                  b"k1,T,How have things been since we last met?\n"
                  b"k1,C,Honestly a bit better this week.\n"
                  b"k1,X,Nobody knows who said this.\n"
                  b"k1,C,\n"
                  b"k1,C,Bad byte \xff here.\n"
                  b"k1,T,What made the difference?\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(f), "--out", str(out), "--on-error", "skip", "--lens",
                                      "alliance", "--map", "session_id=conv", "--map", "speaker=who", "--map",
                                      "text=utterance", "--role", "T=counsellor", "--role", "C=client"])
    assert result.exit_code == 0, result.output
    assert "table" in result.output and "skipped 3 bad record(s)" in result.output
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [(r["location"], r["field"]) for r in rejected] == [("line 4 (row 3)", "who"),
                                                                ("line 5 (row 4)", "utterance"),
                                                                ("line 6 (row 5)", "utterance")]
    assert "unknown speaker role" in rejected[0]["problem"] and "UTF-8" in rejected[2]["problem"]
    turns = pd.read_parquet(out / "turns.parquet")
    assert len(turns) == 3 and list(turns.speaker) == ["counsellor", "client", "counsellor"]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["rejected_records"] == 3

    bad = CliRunner().invoke(app, ["analyze", str(f), "--out", str(tmp_path / "o2"), "--map", "text"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


@pytest.mark.data
def test_real_auto_detection(shared_data: Path):
    d = shared_data
    expected = {
        d / "annomi" / "AnnoMI-simple.csv": "annomi", d / "annomi" / "AnnoMI-full.csv": "annomi",
        d / "esconv" / "hf_format" / "train.json": "esconv", d / "esconv" / "hf_format" / "valid.json": "esconv",
        d / "esconv" / "hf_format" / "test.json": "esconv", d / "esconv" / "thu-coai" / "FailedESConv.json": "esconv",
        d / "kokorochat_en" / "English": "kokorochat", d / "epitome": "epitome",
        d / "epitome" / "emotional-reactions-reddit.csv": "epitome", d / "pair" / "pair_data.csv": "pair",
    }
    first_kokoro = min((d / "kokorochat_en" / "English").glob("*.json"))
    expected[first_kokoro] = "kokorochat"
    assert {p: detect_format(p)[0] for p in expected} == expected
    # Files that are not transcripts are not mistaken for one.
    with pytest.raises(InputError, match="could not detect"):
        detect_format(d / "esconv" / "thu-coai" / "strategy.json")
