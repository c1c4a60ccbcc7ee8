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
from alliance.io.base import InputError, Reader, ReadResult, RejectionLog, iter_json_lines, load_json_file
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
             **options: Any) -> ReadResult:
        folder = path if path.is_dir() else path.parent
        utt_path = folder / "utterances.jsonl"
        if not utt_path.is_file():
            raise InputError(str(folder), "", "not a ConvoKit corpus folder: utterances.jsonl is missing")
        conversations = _json_object(folder / "conversations.json", log)
        speakers = _json_object(folder / "speakers.json", log)
        source = str(utt_path)
        by_conv: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        seen_ids: dict[str, str] = {}
        for lineno, utt in iter_json_lines(utt_path, log):
            loc = f"line {lineno}"
            if not isinstance(utt, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(utt).__name__}", None, utt)
                continue
            uid = utt.get("id")
            conv = utt.get("conversation_id", utt.get("root"))
            if uid is None or str(uid) == "":
                log.reject(source, loc, "utterance has no id", "id", utt)
                continue
            if conv is None or str(conv) == "":
                log.reject(source, loc, "utterance has no conversation_id", "conversation_id", utt)
                continue
            if str(uid) in seen_ids:
                log.reject(source, loc, f"utterance id {uid!r} already used on {seen_ids[str(uid)]}", "id", utt)
                continue
            seen_ids[str(uid)] = loc
            by_conv[str(conv)].append((loc, utt))
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        for conv, utts in by_conv.items():
            cmeta = _meta_of(conversations.get(conv))
            session_id = str(cmeta.pop("session_id", conv))
            course_id = str(cmeta.pop("course_id", session_id))
            try:
                session_index = int(cmeta.pop("session_index", 0))
            except (TypeError, ValueError):
                log.reject(str(folder / "conversations.json"), f"conversation {conv!r}",
                           "session_index must be an integer", "meta.session_index", None)
                continue
            for position, (loc, utt) in enumerate(utts):
                turn = _turn(utt, position, course_id, session_id, session_index, speakers, roles, source, loc, log)
                if turn is not None:
                    turns.append(turn)
            cmeta["conversation_id"] = conv
            sessions.append(SessionInfo(course_id, session_id, session_index, source=str(folder), meta=cmeta))
        return ReadResult(turns, sessions)


def _json_object(path: Path, log: RejectionLog) -> dict[str, Any]:
    if not path.is_file():
        return {}
    doc = load_json_file(path, log)
    if not isinstance(doc, dict):
        raise InputError(str(path), "", f"expected a JSON object keyed by id, got {type(doc).__name__}")
    return doc


def _meta_of(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        meta = entry.get("meta", {})
        return dict(meta) if isinstance(meta, dict) else {}
    return {}


def _turn(utt: dict[str, Any], position: int, course_id: str, session_id: str, session_index: int,
          speakers: dict[str, Any], roles: Mapping[str, str] | None, source: str, loc: str,
          log: RejectionLog) -> Turn | None:
    from alliance.io.base import normalise_role

    raw_meta = utt.get("meta") or {}
    if not isinstance(raw_meta, dict):
        log.reject(source, loc, f"meta must be an object, got {type(raw_meta).__name__}", "meta", utt)
        return None
    meta = dict(raw_meta)
    speaker = utt.get("speaker", utt.get("user"))
    speaker_id = None if speaker is None else str(speaker)
    smeta = _meta_of(speakers.get(speaker_id)) if speaker_id is not None else {}
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
    index = meta.pop("turn_index", position)
    if isinstance(index, bool) or not isinstance(index, int):
        log.reject(source, loc, f"turn_index must be an integer, got {index!r}", "meta.turn_index", utt)
        return None
    try:
        ai = to_bool(meta.pop("counsellor_is_ai", smeta.get("counsellor_is_ai")))
        stamp = to_timestamp(utt.get("timestamp"))
    except ValueError as e:
        log.reject(source, loc, str(e), "timestamp" if "time" in str(e) else "meta.counsellor_is_ai", utt)
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
                speaker=role, speaker_id=speaker_id, text=text, counsellor_is_ai=ai, timestamp=stamp, meta=meta)


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
    unique_session_ids = not session_ids.duplicated().any()
    conversations: dict[str, Any] = {}
    speakers: dict[str, Any] = {}
    index: dict[str, dict[str, list[str]]] = {"utterances-index": {}, "speakers-index": {},
                                               "conversations-index": {}, "overall-index": {}}
    with open(out / "utterances.jsonl", "w", encoding="utf-8") as fh:
        for (course_id, session_id), grp in corpus.iter_sessions():
            stem = session_id if unique_session_ids else f"{course_id}/{session_id}"
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


def _index_types(index: dict[str, list[str]], meta: Mapping[str, Any]) -> None:
    """ConvoKit's index lists, per metadata key, the Python types seen, spelled as ``str(type)``."""
    for k, v in meta.items():
        t = str(type(v))
        if t not in index.setdefault(k, []):
            index[k].append(t)
