"""Chatbot logs in the OpenAI chat format: ``{"messages": [{"role", "content"}], ...}`` per conversation.

JSON Lines (one conversation per line), a JSON list of conversations, or one conversation object. ``user`` ->
client, ``assistant`` -> counsellor with ``counsellor_is_ai=True``. System/developer prompts and tool or function
messages are not turns: they are kept in the session's metadata. Content given as a list of parts keeps its
text parts. Other keys of a conversation (ids, model, labels) become session metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, Reader, ReadResult, RejectionLog, check_id, head_text, normalise_role
from alliance.io.jsonfile import head_json_objects, iter_json_records, load_json_file
from alliance.io.values import checked_text

CHAT_ROLES = {"user": "client", "assistant": "counsellor"}
INSTRUCTION_ROLES = ("system", "developer")
TOOL_ROLES = ("tool", "function", "ipython")
ID_KEYS = ("session_id", "conversation_id", "id")


class OpenAIChatReader(Reader):
    name = "openai"
    description = ("OpenAI-style chat logs: JSONL or JSON of {'messages': [{'role', 'content'}]} "
                   "(user -> client, assistant -> AI counsellor)")

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
            return 0.0
        # The first readable lines decide, so one broken or over-long first line does not hide the format.
        for obj in head_json_objects(path, n=3):
            if isinstance(obj, list) and obj:
                obj = obj[0]
            if isinstance(obj, dict) and isinstance(obj.get("messages"), list):
                msgs = obj["messages"]
                return 0.9 if not msgs or (isinstance(msgs[0], dict) and "role" in msgs[0]) else 0.5
            return 0.0
        # A pretty-printed list or object: look for the shape in the text instead.
        head = head_text(path, 16384)
        return 0.8 if '"messages"' in head and '"role"' in head and '"content"' in head else 0.0

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        source = str(path)
        if path.is_dir():
            raise InputError(source, "", "the openai reader takes a .jsonl or .json file, not a folder")
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        seen: dict[str, str] = {}  # session id -> where it was first read
        for n, loc, obj in _conversations(path, log):
            if not isinstance(obj, dict):
                log.reject(source, loc, f"expected a JSON object, got {type(obj).__name__}", None, obj)
                continue
            messages = obj.get("messages")
            if not isinstance(messages, list):
                log.reject(source, loc, "missing 'messages' list" if messages is None else
                           f"'messages' must be a list, got {type(messages).__name__}", "messages", _short(obj))
                continue
            if not messages:
                log.reject(source, loc, "the conversation has no messages", "messages", _short(obj))
                continue
            id_key = next((k for k in ID_KEYS if obj.get(k) not in (None, "")), None)
            if id_key is not None:
                session_id = check_id(obj[id_key], source, loc, log, id_key)
            else:
                session_id = f"{path.stem}-{n:04d}"
            course_id = session_id
            if session_id is not None and obj.get("course_id") not in (None, ""):
                course_id = check_id(obj["course_id"], source, loc, log, "course_id")
            if session_id is None or course_id is None:
                continue
            if session_id in seen:
                # Two conversations with one id (or 1 and "1") are two conversations: never merge them.
                log.reject(source, loc, f"conversation id {session_id!r} was already used on {seen[session_id]}; "
                           "this conversation is not read", id_key or "id", _short(obj))
                continue
            seen[session_id] = loc
            meta = {k: v for k, v in obj.items() if k not in ("messages", "course_id", *ID_KEYS)}
            if id_key is not None:
                meta["id"] = obj[id_key]
            instructions: list[str] = []
            tools: list[dict[str, Any]] = []
            n_rejected = len(log.rejected)
            n_turns = len(turns)
            for i, msg in enumerate(messages):
                mloc = f"{loc}, messages[{i}]"
                turn = _message(msg, i, course_id, session_id, source, mloc, log, instructions, tools)
                if turn is not None:
                    turns.append(turn)
            if len(turns) == n_turns:
                if len(log.rejected) == n_rejected:  # nothing to say for it: say so rather than drop it
                    log.reject(source, loc, "the conversation has no user or assistant message with text",
                               "messages", _short(obj))
                continue
            if instructions:
                meta["system"] = instructions
            if tools:
                meta["tool_messages"] = tools
            sessions.append(SessionInfo(course_id, session_id, 0, source=source, meta=meta))
        return ReadResult(turns, sessions)


def _short(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:500]


def _conversations(path: Path, log: RejectionLog) -> Iterator[tuple[int, str, Any]]:
    head = head_text(path, 4096).lstrip()
    if head.startswith("{") and path.suffix.lower() == ".json":
        try:
            first = json.loads(head.splitlines()[0])
        except (ValueError, RecursionError):
            first = None
        if first is None:  # a single pretty-printed conversation
            yield 0, "record 0", load_json_file(path, log)
            return
    yield from iter_json_records(path, log, "conversations")


def _message(msg: Any, i: int, course_id: str, session_id: str, source: str, loc: str, log: RejectionLog,
             instructions: list[str], tools: list[dict[str, Any]]) -> Turn | None:
    if not isinstance(msg, dict):
        log.reject(source, loc, f"expected a message object, got {type(msg).__name__}", None, msg)
        return None
    role = msg.get("role")
    role_key = role.strip().lower() if isinstance(role, str) else role
    parts = _content_text(msg.get("content"))
    if role_key in INSTRUCTION_ROLES:
        if parts.text:
            instructions.append(parts.text)
        return None
    if role_key in TOOL_ROLES:
        tools.append({"index": i, **{k: v for k, v in msg.items() if k != "index"}})
        return None
    if role_key == "assistant" and not parts.text and msg.get("tool_calls"):
        # A pure tool call says nothing to the client: metadata, not a turn.
        tools.append({"index": i, **{k: v for k, v in msg.items() if k != "index"}})
        return None
    speaker = normalise_role(role, source, loc, log, mapping=CHAT_ROLES, field="role")
    if speaker is None:
        return None
    if parts.error:
        log.reject(source, loc, parts.error, "content", msg.get("content"))
        return None
    text = checked_text(parts.text if parts.text is not None else msg.get("content"), source, loc, log,
                        field="content")
    if text is None:
        return None
    meta: dict[str, Any] = {k: v for k, v in msg.items() if k not in ("role", "content", "name")}
    if parts.other_types:
        meta["non_text_parts"] = parts.other_types
    name = msg.get("name")
    return Turn(course_id=course_id, session_id=session_id, turn_index=i, speaker=speaker, text=text,
                speaker_id=str(name) if isinstance(name, str) and name else None,
                counsellor_is_ai=True if speaker == "counsellor" else None, meta=meta, source=source, location=loc)


class _Parts:
    def __init__(self, text: str | None = None, other_types: list[str] | None = None, error: str | None = None):
        self.text, self.other_types, self.error = text, other_types or [], error


def _content_text(content: Any) -> _Parts:
    """Text of a message: a string, or the text parts of a list of parts (images and audio are noted, not read)."""
    if content is None or isinstance(content, str):
        return _Parts(content)
    if not isinstance(content, list):
        return _Parts(error=f"content must be a string or a list of parts, got {type(content).__name__}")
    texts: list[str] = []
    others: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("text"), dict) and isinstance(
                part["text"].get("value"), str):  # Assistants API shape: {"type": "text", "text": {"value": ...}}
            texts.append(part["text"]["value"])
        elif isinstance(part, dict):
            others.append(str(part.get("type", "unknown")))
        else:
            return _Parts(error=f"content part {j} must be an object or a string, got {type(part).__name__}")
    return _Parts("\n".join(t for t in texts if t.strip()), others)
