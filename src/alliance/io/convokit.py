"""ConvoKit corpus folders (``utterances.jsonl``, ``conversations.json``, ``speakers.json``, ``corpus.json``,
``index.json``), read and written directly as JSON, without the ConvoKit package.

A conversation is a session, an utterance a turn. The speaker's role (client/counsellor) comes from the
utterance's or the speaker's ``role`` metadata, else from the speaker id itself, else from ``roles={speaker_id:
role}``. Conversation metadata becomes session metadata; the writer keeps course, session and turn keys in
metadata so that a written corpus reads back unchanged.

Format: Chang et al., "ConvoKit: A Toolkit for the Analysis of Conversations", SIGDIAL 2020
(convokit.cornell.edu/documentation/data_format.html).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import (
    InputError,
    Reader,
    ReadResult,
    RejectionLog,
    check_id,
    check_index,
    check_meta,
    normalise_role,
)
from alliance.io.jsonfile import iter_json_lines, load_json_file
from alliance.io.values import checked_text, to_bool, to_timestamp

#: Utterance metadata keys this package writes and reads back as corpus fields.
ROLE_KEYS = ("role", "speaker_role")
TURN_KEYS = ("turn_index", "counsellor_is_ai", *ROLE_KEYS)
SESSION_KEYS = ("course_id", "session_id", "session_index")
#: Speakers this package had to name itself (the corpus had no speaker id); read back as "no speaker id".
GENERATED_SPEAKER = "alliance_generated_id"


class ConvoKitReader(Reader):
    name = "convokit"
    description = "ConvoKit corpus folder (utterances.jsonl, conversations.json, speakers.json, ...)"

    def sniff(self, path: Path) -> float:
        folder = path if path.is_dir() else path.parent
        if path.is_file() and path.name not in ("utterances.jsonl", "utterances.json"):
            return 0.0
        if (folder / "utterances.jsonl").is_file() and (
                (folder / "conversations.json").is_file() or (folder / "index.json").is_file()):
            return 0.95
        return 0.0

    def read(self, path: Path, log: RejectionLog, roles: Mapping[str, str] | None = None,
             timestamp_unit: str = "auto", **options: Any) -> ReadResult:
        folder = path if path.is_dir() else path.parent
        utt_path = folder / "utterances.jsonl"
        if not utt_path.is_file():
            raise InputError(str(folder), "", "not a ConvoKit corpus folder: utterances.jsonl is missing")
        # Conversation metadata holds course and session keys and speaker metadata holds roles: without them an
        # utterance would land in the wrong session or with the wrong role, so it is rejected instead.
        conversations, conv_problem = _json_object(folder / "conversations.json", log)
        speakers, speaker_problem = _json_object(folder / "speakers.json", log)
        file_problem = conv_problem or speaker_problem
        source = str(utt_path)
        by_conv: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        seen_ids: dict[str, str] = {}
        for lineno, utt in iter_json_lines(utt_path, log):
            loc = f"line {lineno}"
            if not isinstance(utt, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(utt).__name__}", None, utt)
                continue
            if file_problem:
                log.reject(source, loc, file_problem, None, _short(utt))
                continue
            uid = utt.get("id")
            conv = utt.get("conversation_id", utt.get("root"))
            if uid is None or str(uid) == "":
                log.reject(source, loc, "utterance has no id", "id", utt)
                continue
            if conv is None or str(conv) == "":
                log.reject(source, loc, "utterance has no conversation_id", "conversation_id", utt)
                continue
            uid = check_id(uid, source, loc, log, "id")
            conv = None if uid is None else check_id(conv, source, loc, log, "conversation_id")
            if uid is None or conv is None:
                continue
            if uid in seen_ids:
                log.reject(source, loc, f"utterance id {uid!r} already used on {seen_ids[uid]}", "id", utt)
                continue
            seen_ids[uid] = loc
            by_conv[conv].append((loc, utt))
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        conv_source = str(folder / "conversations.json")
        key_of: dict[tuple[str, str], str] = {}
        for conv, utts in by_conv.items():
            entry = conversations.get(conv)
            keys = _session_keys(conv, entry, conv_source, log)
            if keys is None:
                for loc, utt in utts:
                    log.reject(source, loc, f"its conversation {conv!r} in conversations.json is unusable (see that "
                               "rejection)", "conversation_id", _short(utt))
                continue
            course_id, session_id, session_index, cmeta = keys
            if (course_id, session_id) in key_of:
                # Two conversations naming one session in their metadata would splice their turns together.
                for loc, utt in utts:
                    log.reject(source, loc, f"conversation {conv!r} names session {(course_id, session_id)}, which "
                               f"conversation {key_of[(course_id, session_id)]!r} already is", "conversation_id",
                               _short(utt))
                continue
            key_of[(course_id, session_id)] = conv
            for position, (loc, utt) in enumerate(utts):
                turn = _turn(utt, position, course_id, session_id, session_index, speakers, roles, source, loc, log,
                             timestamp_unit)
                if turn is not None:
                    turns.append(turn)
            cmeta["conversation_id"] = conv
            sessions.append(SessionInfo(course_id, session_id, session_index, source=str(folder), meta=cmeta))
        return ReadResult(turns, sessions)


def _json_object(path: Path, log: RejectionLog) -> tuple[dict[str, Any], str | None]:
    """A whole-file JSON object keyed by id, or ``({}, problem)`` after rejecting the file."""
    if not path.is_file():
        return {}, None
    try:
        doc = load_json_file(path, log)
    except InputError as e:
        log.reject(e.source, e.location, e.problem, e.field)
        return {}, f"not read: {path.name} is unreadable (see its rejection)"
    if not isinstance(doc, dict):
        log.reject(str(path), "", f"expected a JSON object keyed by id, got {type(doc).__name__}")
        return {}, f"not read: {path.name} is not a JSON object (see its rejection)"
    return doc, None


def _session_keys(conv: str, entry: Any, source: str,
                  log: RejectionLog) -> tuple[str, str, int, dict[str, Any]] | None:
    """Course, session, index and metadata of one conversation; None (after one rejection) when unusable."""
    loc = f"conversation {conv!r}"
    if entry is None:
        return conv, conv, 0, {}
    if not isinstance(entry, dict):
        log.reject(source, loc, f"expected an object, got {type(entry).__name__}", None, entry)
        return None
    cmeta = check_meta(entry.get("meta"), source, loc, log)
    if cmeta is None:
        return None
    session_id = conv if cmeta.get("session_id") is None else check_id(cmeta.pop("session_id"), source, loc, log,
                                                                      "meta.session_id")
    cmeta.pop("session_id", None)
    if session_id is None:
        return None
    course_id = session_id if cmeta.get("course_id") is None else check_id(cmeta.pop("course_id"), source, loc, log,
                                                                           "meta.course_id")
    cmeta.pop("course_id", None)
    if course_id is None:
        return None
    session_index = check_index(cmeta.pop("session_index", 0), source, loc, log, "meta.session_index")
    if session_index is None:
        return None
    return course_id, session_id, session_index, cmeta


def _meta_of(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        meta = entry.get("meta", {})
        return dict(meta) if isinstance(meta, dict) else {}
    return {}


def _short(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:500]


def _turn(utt: dict[str, Any], position: int, course_id: str, session_id: str, session_index: int,
          speakers: dict[str, Any], roles: Mapping[str, str] | None, source: str, loc: str,
          log: RejectionLog, timestamp_unit: str = "auto") -> Turn | None:
    meta = check_meta(utt.get("meta"), source, loc, log)
    if meta is None:
        return None
    speaker = utt.get("speaker", utt.get("user"))
    speaker_id = None
    if speaker is not None:
        speaker_id = check_id(speaker, source, loc, log, "speaker")
        if speaker_id is None:
            return None
    sentry = speakers.get(speaker_id) if speaker_id is not None else None
    if sentry is not None and (not isinstance(sentry, dict) or not isinstance(sentry.get("meta", {}), dict)):
        log.reject(source, loc, f"speaker {speaker_id!r} in speakers.json is not an object with a 'meta' object",
                   "speaker", _short(sentry))
        return None
    smeta = _meta_of(sentry)
    raw_role = next((m[k] for m in (meta, smeta) for k in ROLE_KEYS if m.get(k) not in (None, "")), None)
    if raw_role is None and roles and speaker_id in roles:
        raw_role = roles[speaker_id]
    if raw_role is None:
        raw_role = speaker_id
    role = normalise_role(raw_role, source, loc, log, mapping=roles, field="speaker")
    if role is None:
        return None
    text = checked_text(utt.get("text"), source, loc, log)
    if text is None:
        return None
    index = check_index(meta.pop("turn_index", position), source, loc, log, "meta.turn_index")
    if index is None:
        return None
    try:
        ai = to_bool(meta.pop("counsellor_is_ai", smeta.get("counsellor_is_ai")))
    except ValueError as e:
        log.reject(source, loc, str(e), "meta.counsellor_is_ai", _short(utt))
        return None
    try:
        stamp = to_timestamp(utt.get("timestamp"), unit=timestamp_unit)
    except ValueError as e:
        log.reject(source, loc, str(e), "timestamp", _short(utt))
        return None
    for k in ROLE_KEYS:
        meta.pop(k, None)
    meta["utterance_id"] = str(utt["id"])
    reply_to = utt.get("reply-to", utt.get("reply_to"))
    if reply_to is not None:
        meta["reply_to"] = str(reply_to)
    if smeta.get(GENERATED_SPEAKER):
        speaker_id = None
    return Turn(course_id=course_id, session_id=session_id, turn_index=index, session_index=session_index,
                speaker=role, speaker_id=speaker_id, text=text, counsellor_is_ai=ai, timestamp=stamp, meta=meta,
                source=source, location=loc)


def write_convokit(corpus: Any, folder: str | Path, name: str = "alliance-corpus") -> Path:
    """Write a corpus as a ConvoKit corpus folder; :class:`ConvoKitReader` reads it back unchanged.

    Utterance ids are ``<conversation>.<turn_index>`` and a conversation's id is its first utterance's id, as
    ConvoKit expects; course, session and turn keys are kept in metadata. Turns without a speaker id get one
    per course and role (``<course_id>:client``), marked as generated.
    """
    from alliance import __version__
    from alliance.corpus import SESSION_KEY

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    session_meta = {k: (m, i) for k, m, i in zip(corpus.sessions[SESSION_KEY].itertuples(index=False, name=None),
                                                 corpus.sessions["meta"], corpus.sessions["session_index"],
                                                 strict=True)}
    session_ids = corpus.sessions["session_id"]
    stems = _stems(list(corpus.sessions[SESSION_KEY].itertuples(index=False, name=None)),
                   unique_session_ids=not session_ids.duplicated().any())
    conversations: dict[str, Any] = {}
    speakers: dict[str, Any] = {}
    index: dict[str, dict[str, list[str]]] = {"utterances-index": {}, "speakers-index": {},
                                               "conversations-index": {}, "overall-index": {}}
    with open(out / "utterances.jsonl", "w", encoding="utf-8") as fh:
        for (course_id, session_id), grp in corpus.iter_sessions():
            stem = stems[(course_id, session_id)]
            first_id = f"{stem}.{int(grp['turn_index'].iat[0])}"
            previous = None
            for r in grp.itertuples(index=False):
                uid = f"{stem}.{int(r.turn_index)}"
                speaker = r.speaker_id if isinstance(r.speaker_id, str) else None
                generated = speaker is None
                speaker = speaker or f"{course_id}:{r.speaker}"
                speakers.setdefault(speaker, {"meta": {"role": r.speaker, **({GENERATED_SPEAKER: True}
                                                                              if generated else {})}, "vectors": []})
                meta = {**r.meta, "role": r.speaker, "turn_index": int(r.turn_index)}
                if r.counsellor_is_ai is not None and str(r.counsellor_is_ai) != "<NA>":
                    meta["counsellor_is_ai"] = bool(r.counsellor_is_ai)
                meta.pop("utterance_id", None)
                reply_to = meta.pop("reply_to", previous)
                stamp = None
                if r.timestamp is not None and str(r.timestamp) != "NaT":
                    stamp = r.timestamp.timestamp()
                    stamp = int(stamp) if float(stamp).is_integer() else stamp
                utt = {"id": uid, "conversation_id": first_id, "speaker": speaker, "reply-to": reply_to,
                       "timestamp": stamp, "text": r.text, "meta": meta, "vectors": []}
                _index_types(index["utterances-index"], meta)
                fh.write(json.dumps(utt, ensure_ascii=False, default=str) + "\n")
                previous = uid
            meta, sidx = session_meta.get((course_id, session_id), ({}, 0))
            cmeta = {**{k: v for k, v in meta.items() if k != "conversation_id"}, "course_id": course_id,
                     "session_id": session_id, "session_index": int(sidx)}
            _index_types(index["conversations-index"], cmeta)
            conversations[first_id] = {"meta": cmeta, "vectors": []}
    for entry in speakers.values():
        _index_types(index["speakers-index"], entry["meta"])
    overall = {"name": name, "written_by": f"alliance {__version__}"}
    _index_types(index["overall-index"], overall)
    for fname, doc in (("conversations.json", conversations), ("speakers.json", speakers),
                       ("corpus.json", overall), ("index.json", {**index, "version": 1, "vectors": []})):
        with open(out / fname, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, default=str)
    return out


def _stems(keys: list[tuple[str, str]], unique_session_ids: bool) -> dict[tuple[str, str], str]:
    """One distinct utterance-id stem per session: the session id, else ``course/session``, made unique with
    ``#n`` where two keys would spell the same stem (course ``a/b`` session ``c`` and course ``a`` session ``b/c``)."""
    out: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for course_id, session_id in keys:
        stem = session_id if unique_session_ids else f"{course_id}/{session_id}"
        n, candidate = 1, stem
        while candidate in used:
            n += 1
            candidate = f"{stem}#{n}"
        used.add(candidate)
        out[(course_id, session_id)] = candidate
    return out


def _index_types(index: dict[str, list[str]], meta: Mapping[str, Any]) -> None:
    """ConvoKit's index lists, per metadata key, the Python types seen, spelled as ``str(type)``."""
    for k, v in meta.items():
        t = str(type(v))
        if t not in index.setdefault(k, []):
            index[k].append(t)
