"""KokoroChat (Japanese text counselling role-play by trained counsellors; Multilingual KokoroChat translations).

One JSON file per session: ``{"dialogue": [{"role", "time", "origin", "content"}], "topic": {...},
"review_by_client": {...}}``. The client's review (score 0-100, 20 items 0-5, three check-box flags) becomes
session metadata; the Japanese ``origin`` of each translated turn stays in the turn's metadata.

Sources: Qi et al., "KokoroChat: A Japanese Psychological Counseling Dialogue Dataset Collected via Role-Playing
by Trained Counselors", ACL 2025; Suzuki et al., "Multilingual KokoroChat", LREC 2026.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, OptionError, Reader, ReadResult, RejectionLog, head_text, normalise_role
from alliance.io.jsonfile import load_json_file
from alliance.io.values import checked_text, natural_key, to_number

#: Review flags are check boxes: the source writes a marker (e.g. "チェックあり", "checked") when ticked, null
#: when not.
REVIEW_FLAGS = ("harmful_due_to_ignorance", "other_potentially_unethical", "unwilling_to_continue")
#: Review fields that are identifiers or dates rather than ratings.
REVIEW_TEXT_FIELDS = ("evaluation_created_at",)
REVIEW_ID_FIELDS = ("evaluation_id", "client_id", "counselor_id")

#: The sessions were held in Japan and ``time`` carries no zone; it is read as Japan time and stored in UTC.
DEFAULT_TIMEZONE = "Asia/Tokyo"
#: One session file larger than this is not a KokoroChat session (they are tens of kilobytes).
MAX_SESSION_FILE_BYTES = 50_000_000


class KokoroChatReader(Reader):
    name = "kokorochat"
    description = ("KokoroChat sessions: a folder of <id>.json files (or one file) with 'dialogue' and "
                   "'review_by_client'")

    def sniff(self, path: Path) -> float:
        files = _session_files(path)[:3] if path.is_dir() else [path]
        if not files:
            return 0.0
        hits = sum(_looks_like_session(f) for f in files)
        return 0.95 * hits / len(files)

    def read(self, path: Path, log: RejectionLog, timezone: str = DEFAULT_TIMEZONE, **options: Any) -> ReadResult:
        return self.read_many([path], log, timezone=timezone)

    def read_many(self, paths: list[Path], log: RejectionLog, timezone: str = DEFAULT_TIMEZONE,
                  **options: Any) -> ReadResult:
        """Read files and folders together, so a course's sessions are numbered across all of them."""
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptionError(str(paths[0]), "", f"unknown time zone {timezone!r}", "timezone") from None
        files: list[Path] = []
        for path in paths:
            found = _session_files(path) if path.is_dir() else [path]
            if path.is_dir() and not found:
                raise InputError(str(path), "", "no .json session files in this folder")
            files.extend(found)
        parsed: list[tuple[Path, list[dict[str, Any]], dict[str, Any], str]] = []
        first: dict[tuple[str, str], Path] = {}
        for f in files:
            one = self._read_session(f, log, tz)
            if one is None:
                continue
            key = (one[2], f.stem)
            if key in first:  # the same session file name in two folders: two sessions, never one spliced
                log.reject(str(f), "", f"session {f.stem!r} of course {one[2]!r} was already read from {first[key]}",
                           "session_id", None)
                continue
            first[key] = f
            parsed.append((f, *one))
        return _assign_session_order(parsed)

    def _read_session(self, f: Path, log: RejectionLog,
                      tz: ZoneInfo) -> tuple[list[dict[str, Any]], dict[str, Any], str] | None:
        source = str(f)
        try:
            doc = load_json_file(f, log, max_bytes=MAX_SESSION_FILE_BYTES)
        except InputError as e:  # a broken file is one bad record; the folder's other sessions still count
            log.reject(source, e.location, e.problem, e.field)
            return None
        if not isinstance(doc, dict):
            log.reject(source, "", f"expected a JSON object, got {type(doc).__name__}", None, None)
            return None
        dialogue = doc.get("dialogue")
        if not isinstance(dialogue, list):
            log.reject(source, "", "missing 'dialogue' list" if dialogue is None else
                       f"'dialogue' must be a list, got {type(dialogue).__name__}", "dialogue", None)
            return None
        review = doc.get("review_by_client")
        if review is not None and not isinstance(review, dict):
            log.reject(source, "", f"'review_by_client' must be an object, got {type(review).__name__}",
                       "review_by_client", review)
            return None
        meta = _review_meta(review or {}, source, log)
        if meta is None:
            return None
        if not dialogue:
            log.reject(source, "", "the session has no turns ('dialogue' is empty)", "dialogue", None)
            return None
        topic = doc.get("topic")
        if isinstance(topic, dict):
            for key, name in (("main_en", "topic"), ("main_jp", "topic_ja"), ("sub", "subtopic_ja")):
                if topic.get(key) not in (None, ""):
                    meta[name] = topic[key]
        elif isinstance(topic, str) and topic.strip():
            meta["topic"] = topic.strip()

        session_id = f.stem
        client_id, counsellor_id = meta.get("client_id"), meta.get("counselor_id")
        # A course of care is one client with one counsellor; without both ids the session stands alone.
        course_id = (f"client{client_id}-counselor{counsellor_id}"
                     if client_id is not None and counsellor_id is not None else session_id)
        turns: list[dict[str, Any]] = []
        for i, t in enumerate(dialogue):
            loc = f"dialogue[{i}]"
            if not isinstance(t, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(t).__name__}", None, t)
                continue
            role = normalise_role(t.get("role"), source, loc, log, field="role")
            if role is None:
                continue
            text = checked_text(t.get("content"), source, loc, log, field="content")
            if text is None:
                continue
            stamp = _timestamp(t.get("time"), tz)
            if stamp is False:
                log.reject(source, loc, f"unreadable time {t.get('time')!r}; expected ISO 8601", "time", t)
                continue
            tmeta = {"origin": t["origin"]} if isinstance(t.get("origin"), str) else {}
            who = client_id if role == "client" else counsellor_id
            speaker_id = None if who is None else f"{'client' if role == 'client' else 'counselor'}{who}"
            # Plain dicts until the session's index within its course is known (building Turns twice is slow).
            turns.append({"course_id": course_id, "session_id": session_id, "turn_index": i, "speaker": role,
                          "text": text, "speaker_id": speaker_id, "counsellor_is_ai": False, "timestamp": stamp,
                          "meta": tmeta, "source": source, "location": loc})
        return turns, meta, course_id


def _session_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("*.json") if p.is_file()), key=lambda p: natural_key(p.name))


def _looks_like_session(f: Path) -> bool:
    if f.suffix.lower() != ".json":
        return False
    head = head_text(f, 4096).lstrip()
    return head.startswith("{") and '"dialogue"' in head and '"role"' in head and (
        '"review_by_client"' in head_text(f, 1 << 20) or '"origin"' in head)


def _timestamp(raw: Any, tz: ZoneInfo) -> datetime | bool | None:
    """An aware datetime, None when absent, False when present but unreadable."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        return False
    try:
        dt = datetime.fromisoformat(raw.strip())
    except ValueError:
        return False
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


def _review_meta(review: dict[str, Any], source: str, log: RejectionLog) -> dict[str, Any] | None:
    meta: dict[str, Any] = {}
    for key, value in review.items():
        if key in REVIEW_FLAGS:
            meta[key] = value is not None and value is not False and value != ""
        elif key in REVIEW_TEXT_FIELDS:
            if value is not None:
                meta[key] = value
        else:
            try:
                number = to_number(value)
            except ValueError as e:
                log.reject(source, "review_by_client", str(e), key, value)
                return None
            if number is not None:
                meta[key] = number
    return meta


def _assign_session_order(parsed: list[tuple[Path, list[dict[str, Any]], dict[str, Any], str]]) -> ReadResult:
    """Number each course's sessions by the time of their first turn (file name where there is no time)."""
    by_course: dict[str, list[tuple[Any, tuple, int]]] = defaultdict(list)
    for n, (f, turns, _meta, course) in enumerate(parsed):
        first = min((t["timestamp"] for t in turns if t["timestamp"] is not None), default=None)
        # Sessions without any time go after timed ones, in file-name order.
        by_course[course].append(((0, first) if first is not None else (1, None), natural_key(f.stem), n))
    order: dict[int, int] = {}
    for items in by_course.values():
        items.sort(key=lambda x: (x[0][0], x[0][1] or datetime.min.replace(tzinfo=ZoneInfo("UTC")), x[1]))
        for index, (_, _, n) in enumerate(items):
            order[n] = index
    turns_out: list[Turn] = []
    sessions: list[SessionInfo] = []
    for n, (f, turns, meta, course) in enumerate(parsed):
        sidx = order[n]
        turns_out.extend(Turn(session_index=sidx, **t) for t in turns)
        sessions.append(SessionInfo(course, f.stem, sidx, source=str(f), meta=meta))
    return ReadResult(turns_out, sessions)
