"""Property-based tests of every reader (hypothesis): any input gives turns or rejections, never another exception;
every input record is either read or named in exactly one rejection; written corpora read back unchanged.

Inputs are generated record by record, mixing well-formed records with the kinds of damage seen in real exports
(wrong types, broken lines, bad bytes, lone surrogates, deep nesting, huge indexes). Each turn's text carries a
unique token (``t17x``), so the test knows which input record every turn of the corpus came from.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.corpus import Corpus, SessionInfo, Turn
from alliance.io import InputError, Loaded, RejectionLog, read
from alliance.io.convokit import write_convokit
from alliance.io.jsonl import write_jsonl

# Bounded and without deadlines: the suite runs on loaded two-core machines, where timing says nothing.
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOKEN = re.compile(r"t\d+x")


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


class Tokens:
    """Hands out unique text tokens for one example."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"t{self.n}x"


def _read_both(path: Path | list[Path], **options: Any) -> Loaded:
    """Read under ``skip`` (must not raise) and under ``fail`` (may raise only ``InputError``, and exactly when
    ``skip`` rejects something)."""
    loaded = read(path, on_error="skip", **options)
    try:
        strict = read(path, on_error="fail", **options)
    except InputError:
        assert loaded.rejected, "fail raised where skip rejected nothing"
    else:
        assert not loaded.rejected, "fail read what skip rejected"
        assert len(strict.corpus) == len(loaded.corpus)
    # What was read can be stored, and so can the list of what was not.
    with _folder() as out:
        loaded.corpus.to_parquet(out)
        RejectionLog("skip", loaded.rejected).write(out / "rejected.jsonl")
        assert (out / "rejected.jsonl").read_text(encoding="utf-8").count("\n") == len(loaded.rejected)
    return loaded


def _account(loaded: Loaded, candidates: list[tuple[str, str, str | None]]) -> None:
    """Every candidate ``(source name, location, token)`` is read (its token is in exactly one turn) or covered by
    exactly one rejection (at its location or a record around it), never both; no rejection names nothing."""
    found: dict[str, int] = {}
    for text in loaded.corpus.turns.text:
        tokens = TOKEN.findall(text)
        assert len(tokens) == 1, f"one turn holds {len(tokens)} records' texts: {text!r}"  # nothing swallowed
        found[tokens[0]] = found.get(tokens[0], 0) + 1
    assert all(n == 1 for n in found.values())
    rejections = [(Path(r.source).name, r.location) for r in loaded.rejected]

    def covers(rej: tuple[str, str], cand: tuple[str, str, str | None]) -> bool:
        return rej[0] == cand[0] and (rej[1] == cand[1] or cand[1].startswith(rej[1] + ","))

    for cand in candidates:
        accepted = cand[2] is not None and cand[2] in found
        n_cover = sum(covers(r, cand) for r in rejections)
        assert (accepted, n_cover) in ((True, 0), (False, 1)), (cand, accepted, n_cover, loaded.rejected)
    side_files = {"conversations.json", "speakers.json"}
    for r in rejections:
        assert r[0] in side_files or any(covers(r, c) or c[1].startswith(r[1]) for c in candidates), r
    assert sum(found.values()) == len(loaded.corpus)


# value strategies ----------------------------------------------------------------------------------------------

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
JSON = st.recursive(JSON_SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                        st.dictionaries(st.text(max_size=5), kids, max_size=3)),
                    max_leaves=8)
LONE = st.sampled_from(["\ud83d", "\ude00", "\udc80"])
DEEP = st.integers(60, 80).map(lambda n: json.loads("[" * n + "]" * n))

IDS = st.one_of(st.sampled_from(["a", "b", "1", " c "]), st.integers(0, 3), st.none(), st.just(""),
                st.lists(st.integers(), max_size=2), st.floats(allow_nan=False), LONE)
META = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "mood", "code"]), JSON, max_size=2),
                 st.text(max_size=4), st.lists(st.integers(), max_size=2), st.integers(), DEEP.map(lambda d: {"d": d}),
                 LONE.map(lambda s: {"k": s}))
STAMPS = st.one_of(st.none(), st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01 12:00", "not a time",
                                               "20240501", "3000-01-01", "1714557600"]),
                   st.integers(-(10**15), 10**15), st.floats(allow_nan=True), st.dictionaries(st.text(max_size=2),
                                                                                             st.integers(), max_size=1))
BOOLS = st.one_of(st.none(), st.booleans(), st.sampled_from(["false", "True", "yes", "maybe", ""]),
                  st.integers(-1, 2))
INDEX = st.one_of(st.integers(0, 5), st.integers(2**62, 2**66), st.sampled_from(["3", "x", 1.5, 2.0, True]))
ROLES = st.one_of(st.sampled_from(["client", "counsellor", "user", "therapist", "wizard", ""]), st.none(),
                  st.integers())


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A field that is absent (the marker ``...``) most of the time, else a value from ``strategy``."""
    return st.one_of(st.just(...), st.just(...), strategy)


@st.composite
def _text(draw: st.DrawFn, tokens: Tokens) -> tuple[Any, str | None]:
    """A turn text carrying a fresh token, or damaged text that can never be read as a turn."""
    kind = draw(st.sampled_from(["ok", "ok", "ok", "ok", "bad"]))
    token = tokens()
    if kind == "ok":
        body = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="t"),
                            max_size=12))
        sep = draw(st.sampled_from([" ", "\n", ", ", '"']))
        return f" {token}{sep}{body}", token
    return draw(st.one_of(st.none(), st.integers(), st.just("   "), st.just(""), st.just([3]),
                          LONE.map(lambda s: f"{token} {s}"))), None


def _csv_text(text: Any) -> str:
    """A damaged text as a CSV cell can hold it (CSV has no types, and a surrogate cannot be written)."""
    return text if isinstance(text, str) and not re.search("[\ud800-\udfff]", text) else ""


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value is not ...:
        d[key] = value


@st.composite
def jsonl_turn(draw: st.DrawFn, tokens: Tokens, in_session: bool = False) -> tuple[dict[str, Any], str | None]:
    text, token = draw(_text(tokens))
    rec: dict[str, Any] = {"speaker": draw(st.one_of(st.sampled_from(["client", "counsellor"]), ROLES)),
                           "text": text}
    if not in_session:
        rec["session_id"] = draw(st.one_of(st.sampled_from(["a", "b"]), IDS))
        _put(rec, "course_id", draw(_maybe(IDS)))
    for key, strategy in (("turn_index", INDEX), ("session_index", INDEX), ("timestamp", STAMPS),
                          ("counsellor_is_ai", BOOLS), ("meta", META), ("speaker_id", IDS), ("mood", JSON)):
        _put(rec, key, draw(_maybe(strategy)))
    return rec, token


@st.composite
def jsonl_file(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str | None]]]:
    """Lines of a JSON Lines file and its candidates ``(location, token)``."""
    tokens = Tokens()
    lines: list[bytes] = []
    candidates: list[tuple[str, str | None]] = []
    for i in range(1, draw(st.integers(1, 8)) + 1):
        kind = draw(st.sampled_from(["turn", "turn", "session", "junk"]))
        if kind == "turn":
            rec, token = draw(jsonl_turn(tokens))
            lines.append(json.dumps(rec).encode())
            candidates.append((f"line {i}", token))
        elif kind == "session":
            turns = draw(st.lists(jsonl_turn(tokens, in_session=True), max_size=3))
            rec = {"session_id": draw(st.one_of(st.sampled_from(["a", "s"]), IDS)),
                   "turns": [t for t, _ in turns] if draw(st.integers(0, 9)) else "not a list"}
            for key, strategy in (("course_id", IDS), ("session_index", INDEX), ("meta", META),
                                  ("counsellor_is_ai", BOOLS), ("site", JSON)):
                _put(rec, key, draw(_maybe(strategy)))
            lines.append(json.dumps(rec).encode())
            if isinstance(rec["turns"], list) and rec["turns"]:
                candidates.extend((f"line {i}, turn {j}", tok) for j, (_, tok) in enumerate(turns))
            else:
                candidates.append((f"line {i}", None))
        else:
            junk = draw(st.sampled_from([b"{broken", b"[1, 2]", b"null", b'"text"', b"  ", b"\xff\xfe{}",
                                         b"[" * 1000 + b"]" * 1000, b'{"session_id": "a", "speaker": "client", '
                                         b'"text": "t0x \\ud83d"}']))
            lines.append(junk)
            if junk.strip():
                candidates.append((f"line {i}", None))
    return b"\n".join(lines) + b"\n", candidates


@SETTINGS
@given(jsonl_file())
def test_jsonl_any_input_is_read_or_rejected(case):
    content, candidates = case
    with _folder() as d:
        f = d / "in.jsonl"
        f.write_bytes(content)
        loaded = _read_both(f, format="jsonl")
        _account(loaded, [("in.jsonl", loc, tok) for loc, tok in candidates])
        assert not any(m is None for m in loaded.corpus.turns.meta)
        assert "None" not in set(loaded.corpus.turns.course_id)


# OpenAI chat logs ----------------------------------------------------------------------------------------------


@st.composite
def openai_file(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str | None]]]:
    tokens = Tokens()
    lines: list[bytes] = []
    candidates: list[tuple[str, str | None]] = []
    for i in range(1, draw(st.integers(1, 6)) + 1):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from([b"{broken", b"[]", b'{"no_messages": 1}', b'{"messages": []}',
                                               b'{"messages": "x"}', b"\xff"])))
            candidates.append((f"line {i}", None))
            continue
        conv: dict[str, Any] = {"messages": []}
        _put(conv, draw(st.sampled_from(["id", "conversation_id", "session_id"])),
             draw(_maybe(st.one_of(st.sampled_from(["1", "2"]), st.integers(1, 2), IDS))))
        _put(conv, "course_id", draw(_maybe(IDS)))
        _put(conv, "model", draw(_maybe(JSON)))
        readable: list[tuple[int, str | None]] = []
        for j in range(draw(st.integers(0, 4))):
            role = draw(st.sampled_from(["user", "assistant", "user", "assistant", "system", "tool", "narrator"]))
            text, token = draw(_text(tokens))
            if draw(st.integers(0, 4)) == 0 and isinstance(text, str):
                text = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {}}]
            conv["messages"].append({"role": role, "content": text})
            if role in ("user", "assistant", "narrator"):
                readable.append((j, token))
        lines.append(json.dumps(conv).encode())
        if readable:
            candidates.extend((f"line {i}, messages[{j}]", tok) for j, tok in readable)
        else:  # nothing in it can become a turn: the conversation itself must be rejected
            candidates.append((f"line {i}", None))
    return b"\n".join(lines) + b"\n", candidates


@SETTINGS
@given(openai_file())
def test_openai_any_input_is_read_or_rejected(case):
    content, candidates = case
    with _folder() as d:
        f = d / "chat.jsonl"
        f.write_bytes(content)
        loaded = _read_both(f, format="openai")
        _account(loaded, [("chat.jsonl", loc, tok) for loc, tok in candidates])
        # A session is one conversation: no two input lines end up in one session.
        for _, grp in loaded.corpus.turns.groupby("session_id"):
            assert len({c[0].split(",")[0] for c in candidates if c[1] and any(c[1] in t for t in grp.text)}) <= 1


# ConvoKit ------------------------------------------------------------------------------------------------------


@st.composite
def convokit_folder(draw: st.DrawFn) -> tuple[dict[str, bytes], list[tuple[str, str | None]]]:
    tokens = Tokens()
    lines: list[bytes] = []
    candidates: list[tuple[str, str | None]] = []
    convs = ["c1", "c2"]
    for i in range(1, draw(st.integers(1, 6)) + 1):
        if draw(st.integers(0, 6)) == 0:
            lines.append(draw(st.sampled_from([b"{broken", b"[1]", b"\xff"])))
            candidates.append((f"line {i}", None))
            continue
        text, token = draw(_text(tokens))
        utt: dict[str, Any] = {"id": draw(st.one_of(st.just(f"u{i}"), st.sampled_from(["u1", ""]), IDS)),
                               "conversation_id": draw(st.one_of(st.sampled_from(convs), IDS)),
                               "speaker": draw(st.one_of(st.sampled_from(["client", "therapist", "alice"]), IDS)),
                               "text": text}
        for key, strategy in (("timestamp", STAMPS), ("meta", st.one_of(META, st.fixed_dictionaries(
                {"turn_index": INDEX}), st.fixed_dictionaries({"counsellor_is_ai": BOOLS}))), ("reply-to", IDS)):
            _put(utt, key, draw(_maybe(strategy)))
        lines.append(json.dumps(utt).encode())
        candidates.append((f"line {i}", token))
    conversations = draw(st.one_of(
        st.just({c: {"meta": {"topic": "x"}} for c in convs}),
        st.dictionaries(st.sampled_from(convs), st.one_of(st.fixed_dictionaries({"meta": META}), JSON), max_size=2)))
    speakers = draw(st.one_of(st.just({"alice": {"meta": {"role": "client"}}}),
                              st.dictionaries(st.sampled_from(["alice", "client"]), JSON, max_size=2)))
    files = {"utterances.jsonl": b"\n".join(lines) + b"\n",
             "conversations.json": draw(st.one_of(st.just(json.dumps(conversations).encode()),
                                                  st.sampled_from([b"{broken", b"[]", b"[" * 1000 + b"]" * 1000]))),
             "speakers.json": json.dumps(speakers).encode()}
    return files, candidates


@SETTINGS
@given(convokit_folder())
def test_convokit_any_input_is_read_or_rejected(case):
    files, candidates = case
    with _folder() as d:
        for name, content in files.items():
            (d / name).write_bytes(content)
        loaded = _read_both(d, format="convokit")
        _account(loaded, [("utterances.jsonl", loc, tok) for loc, tok in candidates])


# Tables (CSV) --------------------------------------------------------------------------------------------------

CSV_HEADER = ["session_id", "speaker", "text", "turn_index", "timestamp", "counsellor_is_ai", "note"]


@st.composite
def csv_file(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str | None]], bool]:
    """A CSV written by the ``csv`` module (so its quoting is right), then perhaps damaged on purpose."""
    tokens = Tokens()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    line = 2
    candidates: list[tuple[str, str | None]] = []
    for row_no in range(1, draw(st.integers(1, 8)) + 1):
        text, token = draw(_text(tokens))
        if _csv_text(text) != text:
            text, token = "", None
        row = [draw(st.sampled_from(["a", "b", ""])), draw(st.sampled_from(["client", "counsellor", "T", ""])),
               text, draw(st.sampled_from(["", "0", "1", "2", "x", str(2**64), "1.5"])),
               draw(st.sampled_from(["", "2024-05-01T10:00:00Z", "1714557600", "20240501", "soon"])),
               draw(st.sampled_from(["", "false", "True", "maybe"])), draw(st.text(max_size=6).filter(
                   lambda s: not re.search("[\ud800-\udfff]", s)))]
        before = buf.tell()
        writer.writerow(row)
        candidates.append((f"line {line} (row {row_no})", token))
        line += buf.getvalue()[before:].count("\n")
    data = buf.getvalue().encode("utf-8")
    damage = draw(st.sampled_from(["none", "none", "quote", "byte", "dup-header"]))
    if damage == "quote":  # a quote that opens a field and never closes: rows after it may be unreadable
        lines = data.split(b"\n")
        k = draw(st.integers(1, max(1, len(lines) - 2)))
        lines[k] = lines[k].replace(b",", b',"', 1)
        data = b"\n".join(lines)
    elif damage == "byte":
        lines = data.split(b"\n")
        k = draw(st.integers(1, max(1, len(lines) - 2)))
        lines[k] += b"\xff"
        data = b"\n".join(lines)
    elif damage == "dup-header":
        data = data.replace(b"note", b"text", 1)
    return data, candidates, damage == "none"


@SETTINGS
@given(csv_file())
def test_csv_table_any_input_is_read_or_rejected(case):
    content, candidates, intact = case
    with _folder() as d:
        f = d / "t.csv"
        f.write_bytes(content)
        loaded = _read_both(f, format="table")
        if intact:
            _account(loaded, [("t.csv", loc, tok) for loc, tok in candidates])
        else:
            # Damaged quoting can make the row boundaries unknowable, but no row is ever swallowed into another
            # row's text, and every row not read is covered by a rejection.
            for text in loaded.corpus.turns.text:
                assert len(TOKEN.findall(text)) == 1, text
            read_tokens = {TOKEN.findall(t)[0] for t in loaded.corpus.turns.text}
            lost = [c for c in candidates if c[1] is not None and c[1] not in read_tokens]
            assert not lost or loaded.rejected


# Corpus readers (robustness: any damage is a rejection, never a crash) ---------------------------------------


@st.composite
def esconv_record(draw: st.DrawFn, tokens: Tokens) -> Any:
    dialog = []
    for _ in range(draw(st.integers(0, 3))):
        text, _tok = draw(_text(tokens))
        turn = draw(st.sampled_from([{"speaker": "usr", "text": text}, {"speaker": "sys", "text": text,
                                                                        "strategy": "Question"},
                                     {"speaker": "speaker", "content": text, "annotation": {"feedback": "4"}},
                                     {"speaker": "listener", "content": text, "annotation": "x"}]))
        dialog.append(turn)
    rec = {"emotion_type": "anxiety", "situation": "s", "dialog": dialog}
    _put(rec, "survey_score", draw(_maybe(st.one_of(JSON, st.just({"seeker": {"empathy": "4"}})))))
    return draw(st.one_of(st.just(rec), JSON))


@SETTINGS
@given(st.data())
def test_esconv_any_input(data):
    tokens = Tokens()
    records = data.draw(st.lists(esconv_record(tokens), min_size=1, max_size=4))
    as_list = data.draw(st.booleans())
    with _folder() as d:
        f = d / "train.json"
        f.write_text(json.dumps(records) if as_list else "\n".join(json.dumps(r) for r in records) + "\n")
        loaded = _read_both(f, format="esconv")
        # Every dialogue is a session or rejected, with its own record number.
        n_read = len(loaded.corpus.sessions)
        n_rejected = len({r.location.split(",")[0] for r in loaded.rejected if "," not in r.location})
        assert n_read + n_rejected <= len(records)
        assert n_read == len({m["record"] for m in loaded.corpus.sessions.meta})


@SETTINGS
@given(st.data())
def test_kokorochat_any_input(data):
    tokens = Tokens()
    with _folder() as d:
        n_files = data.draw(st.integers(1, 3))
        for k in range(n_files):
            dialogue = []
            for _ in range(data.draw(st.integers(0, 3))):
                text, _tok = data.draw(_text(tokens))
                dialogue.append({"role": data.draw(ROLES), "time": data.draw(STAMPS), "origin": "x",
                                 "content": text})
            doc = {"dialogue": dialogue, "review_by_client": data.draw(st.one_of(
                st.just({"client_id": 1, "counselor_id": 2, "score": "70", "unwilling_to_continue": None}), JSON))}
            raw = data.draw(st.one_of(st.just(json.dumps(doc)), st.sampled_from(["{broken", "[" * 1000,
                                                                                 json.dumps([doc])])))
            (d / f"en{k}.json").write_text(raw)
        loaded = _read_both(d, format="kokorochat")
        # Each file is a session or named in a rejection.
        named = {Path(r.source).stem for r in loaded.rejected}
        assert set(loaded.corpus.sessions.session_id) | named == {f"en{k}" for k in range(n_files)}


@SETTINGS
@given(st.data())
def test_csv_corpus_readers_any_input(data):
    """AnnoMI, EPITOME and PAIR files with damaged cells: every row is read or rejected."""
    tokens = Tokens()
    cell = st.one_of(st.sampled_from(["", "n/a", "0", "1", "2", "high", "client", "therapist", "x", str(2**64)]),
                     st.text(max_size=5).filter(lambda s: not re.search("[\ud800-\udfff]", s)))
    with _folder() as d:
        rows = data.draw(st.lists(st.tuples(cell, cell, cell, cell), min_size=1, max_size=5))
        annomi = io.StringIO(newline="")
        w = csv.writer(annomi)
        w.writerow(["transcript_id", "mi_quality", "utterance_id", "interlocutor", "timestamp", "utterance_text",
                    "main_therapist_behaviour"])
        for n, (a, b, c, e) in enumerate(rows):
            w.writerow([a or "1", b, n if data.draw(st.booleans()) else c, e, data.draw(st.sampled_from(
                ["00:00:01", "x", ""])), _csv_text(data.draw(_text(tokens))[0]), "reflection"])
        (d / "annomi.csv").write_text(annomi.getvalue())
        loaded = _read_both(d / "annomi.csv", format="annomi")
        assert len(loaded.corpus) + len(loaded.rejected) >= 1

        epi = io.StringIO(newline="")
        w = csv.writer(epi)
        w.writerow(["sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales"])
        for n, (a, b, c, _e) in enumerate(rows):
            w.writerow([f"p{n}" if a else "", f"r{n}", _csv_text(data.draw(_text(tokens))[0]), "reply", b, c])
        (d / "explorations.csv").write_text(epi.getvalue())
        loaded = _read_both(d / "explorations.csv", format="epitome")
        assert len(loaded.corpus.sessions) + len(loaded.rejected) == len(rows)

        pair = io.StringIO(newline="")
        w = csv.writer(pair)
        w.writerow(["prompt", "hq1", "hq2", "mq1", "lq1", "lq2", "lq3", "lq4", "lq5"])
        for a, b, c, e in rows:
            w.writerow([a, b, c, e, "r", "r", "r", "r", "r"])
        (d / "pair_data.csv").write_text(pair.getvalue())
        loaded = _read_both(d / "pair_data.csv", format="pair")
        bad_prompts = sum(1 for a, *_ in rows if not a.strip())
        good_rows = len(rows) - bad_prompts
        # 8 responses per readable prompt: each a session or a rejection.
        assert len(loaded.corpus.sessions) + len(loaded.rejected) == 8 * good_rows + bad_prompts


# write-then-read round trips -----------------------------------------------------------------------------------

SAFE_ID = st.text(alphabet="abcxyz019-_./#", min_size=1, max_size=6)
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1,
                    max_size=10).map(str.strip).filter(bool)
SAFE_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                                   st.floats(allow_nan=False, allow_infinity=False), st.text(
                                       alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)),
                         lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(SAFE_ID, kids, max_size=3)),
                         max_leaves=6)
#: Keys the ConvoKit writer uses itself in utterance and conversation metadata.
RESERVED = {"role", "turn_index", "counsellor_is_ai", "utterance_id", "reply_to", "course_id", "session_id",
            "session_index", "conversation_id", "speaker_role"}
META_SAFE = st.dictionaries(SAFE_ID.filter(lambda k: k not in RESERVED), SAFE_JSON, max_size=3)


@st.composite
def corpora(draw: st.DrawFn, whole_seconds: bool = False) -> Corpus:
    turns: list[Turn] = []
    sessions: list[SessionInfo] = []
    keys = draw(st.lists(st.tuples(SAFE_ID, SAFE_ID), min_size=1, max_size=4, unique=True))
    for course, session in keys:
        sidx = draw(st.integers(0, 3))
        sessions.append(SessionInfo(course, session, sidx, meta=draw(META_SAFE)))
        for idx in draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=4, unique=True)):
            stamp = draw(st.one_of(st.none(), st.datetimes(
                min_value=pd.Timestamp("1980-01-01").to_pydatetime(), max_value=pd.Timestamp(
                    "2200-01-01").to_pydatetime())))
            if stamp is not None:
                stamp = pd.Timestamp(stamp, tz="UTC")
                stamp = stamp.floor("s") if whole_seconds else stamp
            turns.append(Turn(course, session, idx, draw(st.sampled_from(["client", "counsellor"])), draw(SAFE_TEXT),
                              session_index=sidx, speaker_id=draw(st.one_of(st.none(), SAFE_ID)),
                              counsellor_is_ai=draw(st.one_of(st.none(), st.booleans())), timestamp=stamp,
                              meta=draw(META_SAFE)))
    return Corpus.from_turns(turns, sessions)


def _assert_same(a: Corpus, b: Corpus, ignore: tuple[str, ...] = ()) -> None:
    cols = ["course_id", "session_id", "session_index", "turn_index", "speaker", "speaker_id", "counsellor_is_ai",
            "text"]
    pd.testing.assert_frame_equal(a.turns[cols], b.turns[cols])
    stamps = [(x, y) for x, y in zip(a.turns.timestamp, b.turns.timestamp, strict=True)]
    assert all((pd.isna(x) and pd.isna(y)) or x == y for x, y in stamps)

    def strip(ms: Any) -> list[dict]:
        return [{k: v for k, v in m.items() if k not in ignore} for m in ms]

    assert strip(a.turns.meta) == strip(b.turns.meta)
    assert strip(a.sessions.meta) == strip(b.sessions.meta)
    assert list(a.sessions.session_index) == list(b.sessions.session_index)


@SETTINGS
@given(corpora())
def test_jsonl_round_trip(corpus: Corpus):
    with _folder() as d:
        write_jsonl(corpus, d / "c.jsonl")
        loaded = read(d / "c.jsonl")  # format="auto": the written file is recognised too
        assert loaded.formats[str(d / "c.jsonl")] == "jsonl" and not loaded.rejected
        _assert_same(corpus, loaded.corpus)


@SETTINGS
@given(corpora())
def test_parquet_and_frame_round_trip(corpus: Corpus):
    with _folder() as d:
        corpus.to_parquet(d)
        _assert_same(corpus, Corpus.read_parquet(d))
    frame = corpus.to_frame()
    _assert_same(corpus, Corpus.from_frame(frame.drop(columns="session_meta"), corpus.sessions))


@SETTINGS
@given(corpora(whole_seconds=True))
def test_convokit_round_trip(corpus: Corpus):
    with _folder() as d:
        write_convokit(corpus, d / "ck")
        loaded = read(d / "ck")
        assert not loaded.rejected
        _assert_same(corpus, loaded.corpus, ignore=("utterance_id", "reply_to", "conversation_id"))


def test_properties_use_bounded_examples():
    """The settings above keep this file fast on a loaded machine; say so if someone raises them."""
    assert SETTINGS.max_examples <= 50 and SETTINGS.deadline is None


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
