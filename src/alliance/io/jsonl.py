"""Generic JSON Lines: one turn per line, or one session per line with a ``turns`` list.

Turn lines: ``{"session_id", "speaker", "text", "course_id"?, "turn_index"?, "timestamp"?, "counsellor_is_ai"?,
"meta"?}``; unknown keys go to the turn's metadata. Session lines: ``{"session_id", "turns": [...], ...}``;
unknown keys go to the session's metadata. This is also the format ``alliance`` writes transcripts in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import (
    Reader,
    ReadResult,
    RejectionLog,
    clean_text,
    head_text,
    iter_json_lines,
    normalise_role,
)

TURN_FIELDS = {"course_id", "session_id", "session_index", "turn_index", "speaker", "role", "text", "content",
               "timestamp", "counsellor_is_ai", "speaker_id", "meta"}
SESSION_FIELDS = {"course_id", "session_id", "session_index", "turns", "meta", "source", "counsellor_is_ai"}


class JsonlReader(Reader):
    name = "jsonl"
    description = "JSON Lines, one turn per line or one session per line ({'session_id', 'turns': [...]})"

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
            return 0.0
        first = head_text(path).splitlines()[:1]
        try:
            obj = json.loads(first[0]) if first else None
        except json.JSONDecodeError:
            return 0.0
        if not isinstance(obj, dict):
            return 0.0
        if "turns" in obj and "session_id" in obj:
            return 0.9
        if "session_id" in obj and ("speaker" in obj or "role" in obj) and ("text" in obj or "content" in obj):
            return 0.9
        return 0.0

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        source = str(path)
        turns: list[Turn] = []
        sessions: dict[tuple[str, str], SessionInfo] = {}
        next_index: dict[tuple[str, str], int] = {}
        for lineno, obj in iter_json_lines(path, log):
            loc = f"line {lineno}"
            if not isinstance(obj, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(obj).__name__}", None, obj)
                continue
            if "turns" in obj:
                self._session_line(obj, source, loc, log, turns, sessions)
                continue
            sid = obj.get("session_id")
            if sid is None or str(sid).strip() == "":
                log.reject(source, loc, "missing session_id", "session_id", obj)
                continue
            course = str(obj.get("course_id", sid))
            key = (course, str(sid))
            t = _turn(obj, course, str(sid), next_index.get(key, 0), source, loc, log)
            if t is None:
                continue
            next_index[key] = max(next_index.get(key, 0), t.turn_index + 1)
            turns.append(t)
            sessions.setdefault(key, SessionInfo(course, str(sid), t.session_index, source=source))
        return ReadResult(turns, list(sessions.values()))

    def _session_line(self, obj: dict, source: str, loc: str, log: RejectionLog, turns: list[Turn],
                      sessions: dict[tuple[str, str], SessionInfo]) -> None:
        sid = obj.get("session_id")
        if sid is None or str(sid).strip() == "":
            log.reject(source, loc, "missing session_id", "session_id", obj)
            return
        if not isinstance(obj["turns"], list):
            log.reject(source, loc, "'turns' must be a list", "turns", obj)
            return
        course = str(obj.get("course_id", sid))
        sidx = _int(obj.get("session_index", 0), source, loc, log, "session_index")
        if sidx is None:
            return
        meta = dict(obj.get("meta") or {})
        meta.update({k: v for k, v in obj.items() if k not in SESSION_FIELDS})
        sessions[(course, str(sid))] = SessionInfo(course, str(sid), sidx, source=source, meta=meta)
        default_ai = obj.get("counsellor_is_ai")
        for j, tobj in enumerate(obj["turns"]):
            tloc = f"{loc}, turn {j}"
            if not isinstance(tobj, dict):
                log.reject(source, tloc, f"expected a JSON object, got {type(tobj).__name__}", None, tobj)
                continue
            tobj = {"session_index": sidx, "counsellor_is_ai": default_ai, **tobj}
            t = _turn(tobj, course, str(sid), j, source, tloc, log)
            if t is not None:
                turns.append(t)


def _int(v: Any, source: str, loc: str, log: RejectionLog, field: str) -> int | None:
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        return int(v)
    except (TypeError, ValueError):
        log.reject(source, loc, f"must be an integer, got {v!r}", field, v)
        return None


def _turn(obj: dict, course: str, sid: str, default_index: int, source: str, loc: str,
          log: RejectionLog) -> Turn | None:
    role = normalise_role(obj.get("speaker", obj.get("role")), source, loc, log)
    if role is None:
        return None
    text = clean_text(obj.get("text", obj.get("content")), source, loc, log)
    if text is None:
        return None
    idx = _int(obj.get("turn_index", default_index), source, loc, log, "turn_index")
    sidx = _int(obj.get("session_index", 0), source, loc, log, "session_index")
    if idx is None or sidx is None:
        return None
    meta = dict(obj.get("meta") or {})
    meta.update({k: v for k, v in obj.items() if k not in TURN_FIELDS})
    ai = obj.get("counsellor_is_ai")
    return Turn(
        course_id=course, session_id=sid, turn_index=idx, session_index=sidx, speaker=role, text=text,
        speaker_id=obj.get("speaker_id"), counsellor_is_ai=None if ai is None else bool(ai),
        timestamp=obj.get("timestamp"), meta=meta,
    )


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
