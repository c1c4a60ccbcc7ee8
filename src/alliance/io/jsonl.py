"""Generic JSON Lines: one turn per line, or one session per line with a ``turns`` list.

Turn lines: ``{"session_id", "speaker", "text", "course_id"?, "turn_index"?, "timestamp"?, "counsellor_is_ai"?,
"meta"?}``; unknown keys go to the turn's metadata. Session lines: ``{"session_id", "turns": [...], ...}``;
unknown keys go to the session's metadata. This is also the format ``alliance`` writes transcripts in. Values are
checked, never coerced: ``"false"`` is False, a ``meta`` that is not an object or a repeated session is rejected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import (
    Reader,
    ReadResult,
    RejectionLog,
    check_id,
    check_index,
    check_meta,
    clean_text,
    normalise_role,
)
from alliance.io.jsonfile import head_json_objects, iter_json_lines
from alliance.io.values import to_bool, to_timestamp

TURN_FIELDS = {"course_id", "session_id", "session_index", "turn_index", "speaker", "role", "text", "content",
               "timestamp", "counsellor_is_ai", "speaker_id", "meta"}
SESSION_FIELDS = {"course_id", "session_id", "session_index", "turns", "meta", "source", "counsellor_is_ai"}


class JsonlReader(Reader):
    name = "jsonl"
    description = "JSON Lines, one turn per line or one session per line ({'session_id', 'turns': [...]})"

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
            return 0.0
        # The first readable objects decide, so one broken or over-long first line does not hide the format.
        for obj in head_json_objects(path):
            if not isinstance(obj, dict):
                continue
            if "turns" in obj and "session_id" in obj:
                return 0.9
            if "session_id" in obj and ("speaker" in obj or "role" in obj) and ("text" in obj or "content" in obj):
                return 0.9
            return 0.0
        return 0.0

    def read(self, path: Path, log: RejectionLog, timestamp_unit: str = "auto", **options: Any) -> ReadResult:
        return self.read_records(path, iter_json_lines(path, log), log, timestamp_unit)

    def read_records(self, path: Path, records: Iterable[tuple[int, Any]], log: RejectionLog,
                     timestamp_unit: str = "auto") -> ReadResult:
        """Turns and sessions from parsed ``(line number, object)`` records of ``path``: the whole file, or the
        stretches of it that hold some courses (:mod:`alliance.io.lazy`)."""
        source = str(path)
        state = _State(source, log, timestamp_unit)
        for lineno, obj in records:
            loc = f"line {lineno}"
            if not isinstance(obj, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(obj).__name__}", None, obj)
            elif "turns" in obj:
                state.session_line(obj, loc)
            else:
                state.turn_line(obj, loc)
        return ReadResult(state.turns, list(state.sessions.values()))


class _State:
    """What one file has given so far: turns, sessions, and where each session was first seen."""

    def __init__(self, source: str, log: RejectionLog, unit: str):
        self.source, self.log, self.unit = source, log, unit
        self.turns: list[Turn] = []
        self.sessions: dict[tuple[str, str], SessionInfo] = {}
        self.first_seen: dict[tuple[str, str], tuple[str, bool, int]] = {}  # key -> (location, whole, session_index)
        self.next_index: dict[tuple[str, str], int] = {}

    def _key(self, obj: dict, loc: str) -> tuple[str, str] | None:
        if obj.get("session_id") is None:
            self.log.reject(self.source, loc, "missing session_id", "session_id", obj)
            return None
        sid = check_id(obj["session_id"], self.source, loc, self.log, "session_id")
        if sid is None:
            return None
        # An absent or null course is the session itself: "null" must not join unrelated clients in a course "None".
        course = sid if obj.get("course_id") is None else check_id(obj["course_id"], self.source, loc, self.log,
                                                                    "course_id")
        return None if course is None else (course, sid)

    def session_line(self, obj: dict, loc: str) -> None:
        source, log = self.source, self.log
        key = self._key(obj, loc)
        if key is None:
            return
        if key in self.first_seen:
            log.reject(source, loc, f"session {key} was already given on {self.first_seen[key][0]}; a repeated "
                       "session is not merged (its turns and metadata are not read)", "session_id", _short(obj))
            return
        if not isinstance(obj["turns"], list):
            log.reject(source, loc, f"'turns' must be a list, got {type(obj['turns']).__name__}", "turns", _short(obj))
            return
        if not obj["turns"]:
            log.reject(source, loc, "the session has no turns", "turns", _short(obj))
            return
        sidx = check_index(obj.get("session_index", 0), source, loc, log, "session_index")
        meta = check_meta(obj.get("meta"), source, loc, log)
        if sidx is None or meta is None:
            return
        extra = {k: v for k, v in obj.items() if k not in SESSION_FIELDS}
        if not _merge(meta, extra, source, loc, log):
            return
        try:
            default_ai = to_bool(obj.get("counsellor_is_ai"))
        except ValueError as e:
            log.reject(source, loc, str(e), "counsellor_is_ai", obj.get("counsellor_is_ai"))
            return
        self.first_seen[key] = (loc, True, sidx)
        self.sessions[key] = SessionInfo(key[0], key[1], sidx, source=source, meta=meta)
        for j, tobj in enumerate(obj["turns"]):
            tloc = f"{loc}, turn {j}"
            if not isinstance(tobj, dict):
                log.reject(source, tloc, f"expected a JSON object, got {type(tobj).__name__}", None, tobj)
                continue
            if tobj.get("session_index", sidx) != sidx:
                log.reject(source, tloc, f"session_index {tobj['session_index']!r} differs from the session's "
                           f"{sidx}", "session_index", tobj)
                continue
            tobj = {"counsellor_is_ai": default_ai, **tobj, "session_index": sidx}
            t = _turn(tobj, key, j, source, tloc, log, self.unit)
            if t is not None:
                self.turns.append(t)

    def turn_line(self, obj: dict, loc: str) -> None:
        key = self._key(obj, loc)
        if key is None:
            return
        seen = self.first_seen.get(key)
        if seen is not None and seen[1]:
            self.log.reject(self.source, loc, f"session {key} was given whole (with 'turns') on {seen[0]}; a "
                            "turn line cannot add to it", "session_id", obj)
            return
        t = _turn(obj, key, self.next_index.get(key, 0), self.source, loc, self.log, self.unit)
        if t is None:
            return
        if seen is not None and t.session_index != seen[2]:
            self.log.reject(self.source, loc, f"session_index {t.session_index} differs from {seen[2]} given for "
                            f"this session on {seen[0]}", "session_index", obj)
            return
        self.next_index[key] = max(self.next_index.get(key, 0), t.turn_index + 1)
        self.turns.append(t)
        if seen is None:
            self.first_seen[key] = (loc, False, t.session_index)
            self.sessions[key] = SessionInfo(key[0], key[1], t.session_index, source=self.source)


def _merge(meta: dict, extra: dict, source: str, loc: str, log: RejectionLog) -> bool:
    """Add a record's unknown keys to its metadata; a key given both ways with different values is rejected."""
    clash = next((k for k, v in extra.items() if k in meta and meta[k] != v), None)
    if clash is not None:
        log.reject(source, loc, f"{clash!r} is given both as a key and in 'meta', with different values", clash,
                   {clash: extra[clash], "meta": meta[clash]})
        return False
    meta.update(extra)
    return True


def _turn(obj: dict, key: tuple[str, str], default_index: int, source: str, loc: str, log: RejectionLog,
          unit: str = "auto") -> Turn | None:
    role = normalise_role(obj.get("speaker", obj.get("role")), source, loc, log)
    if role is None:
        return None
    text = clean_text(obj.get("text", obj.get("content")), source, loc, log)
    if text is None:
        return None
    idx = check_index(obj.get("turn_index", default_index), source, loc, log, "turn_index")
    if idx is None:
        return None
    sidx = check_index(obj.get("session_index", 0), source, loc, log, "session_index")
    if sidx is None:
        return None
    meta = check_meta(obj.get("meta"), source, loc, log)
    if meta is None or not _merge(meta, {k: v for k, v in obj.items() if k not in TURN_FIELDS}, source, loc, log):
        return None
    speaker_id = None
    if obj.get("speaker_id") is not None:
        speaker_id = check_id(obj["speaker_id"], source, loc, log, "speaker_id")
        if speaker_id is None:
            return None
    values: dict[str, Any] = {}
    for f, convert in (("counsellor_is_ai", to_bool), ("timestamp", lambda v: to_timestamp(v, unit=unit))):
        try:
            values[f] = convert(obj.get(f))
        except ValueError as e:
            log.reject(source, loc, str(e), f, obj.get(f))
            return None
    return Turn(course_id=key[0], session_id=key[1], turn_index=idx, session_index=sidx, speaker=role, text=text,
                speaker_id=speaker_id, counsellor_is_ai=values["counsellor_is_ai"], timestamp=values["timestamp"],
                meta=meta, source=source, location=loc)


def _short(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:500]


def write_jsonl(corpus: Any, path: str | Path) -> None:
    """Write a corpus as one session per line (the format this reader reads back)."""
    from alliance.corpus import SESSION_KEY

    smeta = {k: (m, i) for k, m, i in zip(corpus.sessions[SESSION_KEY].itertuples(index=False, name=None),
                                          corpus.sessions["meta"], corpus.sessions["session_index"], strict=True)}
    with open(path, "w", encoding="utf-8") as fh:
        for key, grp in corpus.iter_sessions():
            meta, sidx = smeta.get(key, ({}, 0))
            turns = []
            for r in grp.itertuples(index=False):
                t: dict[str, Any] = {"turn_index": int(r.turn_index), "speaker": r.speaker, "text": r.text}
                if isinstance(r.speaker_id, str):
                    t["speaker_id"] = r.speaker_id
                if r.timestamp is not None and str(r.timestamp) != "NaT":
                    t["timestamp"] = r.timestamp.isoformat()
                if r.counsellor_is_ai is not None and str(r.counsellor_is_ai) != "<NA>":
                    t["counsellor_is_ai"] = bool(r.counsellor_is_ai)
                if r.meta:
                    t["meta"] = r.meta
                turns.append(t)
            fh.write(json.dumps({"course_id": key[0], "session_id": key[1], "session_index": int(sidx),
                                 "meta": meta, "turns": turns}, ensure_ascii=False, default=str) + "\n")
