"""Shared machinery of the readers: the reader interface, bad-input errors and the rejection log.

Every reader turns one file (or folder) into turns and session records. Bad records are reported with the file,
the line or record, the field and the problem; under ``on_error="skip"`` they are collected, never dropped
silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from alliance.corpus import ROLES, Corpus, SessionInfo, Turn

OnError = Literal["fail", "skip"]

#: Lines (or records) longer than this are rejected rather than parsed: a multi-megabyte "turn" is almost
#: always a broken export (a whole file on one line), and parsing it would hide that.
MAX_RECORD_BYTES = 1_000_000
#: Turn and session indexes are stored as 64-bit integers.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: A lone UTF-16 surrogate (half of an emoji cut in two by a JavaScript export) cannot be written as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

ROLE_ALIASES: dict[str, str] = {
    **{k: "client" for k in ("client", "user", "seeker", "usr", "patient", "human", "customer")},
    **{
        k: "counsellor"
        for k in (
            "counsellor", "counselor", "therapist", "assistant", "sys", "system_reply", "supporter",
            "listener", "bot", "ai", "helper", "clinician",
        )
    },
}


class InputError(ValueError):
    """Bad input, located: ``file:line N: field 'x': problem``."""

    def __init__(self, source: str, location: str, problem: str, field: str | None = None):
        self.source, self.location, self.problem, self.field = source, location, problem, field
        where = f"{source}:{location}" if location else source
        what = f"field {field!r}: {problem}" if field else problem
        super().__init__(f"{where}: {what}")


class OptionError(InputError):
    """A reader option that is wrong for every file (an unknown field, time zone or unit): it always stops the
    read, even under ``skip``, since no record is to blame."""


@dataclass
class Rejection:
    source: str
    location: str
    field: str | None
    problem: str
    record: Any = None

    def to_json(self) -> str:
        d = asdict(self)
        rec = d.get("record")
        if isinstance(rec, (bytes, bytearray)):
            d["record"] = rec[:2000].decode("utf-8", errors="replace")
        elif isinstance(rec, str) and len(rec) > 2000:
            d["record"] = rec[:2000] + "..."
        text = json.dumps(d, ensure_ascii=False, default=str)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the record: JSON's own escapes keep it, readably
            return json.dumps(d, ensure_ascii=True, default=str)
        return text


@dataclass
class RejectionLog:
    """Collects bad records; under ``fail`` the first one raises :class:`InputError`."""

    on_error: OnError = "fail"
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, source: str, location: str, problem: str, field: str | None = None, record: Any = None):
        if self.on_error == "fail":
            raise InputError(source, location, problem, field)
        self.rejected.append(Rejection(source, location, field, problem, record))

    def write(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for r in self.rejected:
                fh.write(r.to_json() + "\n")


@dataclass
class ReadResult:
    turns: list[Turn]
    sessions: list[SessionInfo]


class Reader:
    """One input format. Subclasses set ``name`` and ``description`` and implement ``sniff`` and ``read``."""

    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, path: Path) -> float:
        """Confidence in [0, 1] that ``path`` is in this format (cheap: look at a few lines only)."""
        return 0.0

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        raise NotImplementedError


# shared helpers for readers --------------------------------------------------------------------------------
def normalise_role(raw: Any, source: str, location: str, log: RejectionLog, mapping: Mapping[str, str] | None = None,
                   field: str = "speaker") -> str | None:
    """Map a raw role onto ``client``/``counsellor``; reject (and return None) if unknown."""
    key = str(raw).strip().lower() if raw is not None else ""
    # Codes match case-insensitively, the same way as the built-in aliases ("T" and "t" are one code).
    custom = {str(k).strip().lower(): v for k, v in mapping.items()} if mapping else {}
    role = custom.get(key, ROLE_ALIASES.get(key))
    if role not in ROLES:
        table = {**ROLE_ALIASES, **custom}
        log.reject(source, location, f"unknown speaker role {raw!r}; known: {sorted(set(table))}", field, raw)
        return None
    return role


def clean_text(raw: Any, source: str, location: str, log: RejectionLog, field: str = "text") -> str | None:
    """Strip a turn's text; reject missing, non-string or empty text."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        log.reject(source, location, "text is missing", field, raw)
        return None
    if not isinstance(raw, str):
        log.reject(source, location, f"text must be a string, got {type(raw).__name__}", field, raw)
        return None
    text = raw.strip()
    if not text:
        log.reject(source, location, "text is empty", field, raw)
        return None
    bad = _LONE_SURROGATE.search(text)
    if bad:
        log.reject(source, location, surrogate_problem(text, bad.start()), field, _escaped(raw))
        return None
    return text


def surrogate_problem(text: str, at: int) -> str:
    return (f"holds a lone UTF-16 surrogate {text[at]!r} at character {at} (a truncated emoji?); it cannot be "
            "stored as UTF-8")


def _escaped(text: str) -> str:
    return text[:200].encode("utf-8", "backslashreplace").decode("utf-8")


def find_lone_surrogate(value: Any, path: str = "") -> str | None:
    """Path (``meta.note``, ``meta.tags[2]``) of the first string or key in ``value`` holding a lone surrogate."""
    if isinstance(value, str):
        return (path or ".") if _LONE_SURROGATE.search(value) else None
    if isinstance(value, Mapping):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and _LONE_SURROGATE.search(k):
                return _escaped(sub)
            found = find_lone_surrogate(v, sub)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = find_lone_surrogate(v, f"{path}[{i}]")
            if found:
                return found
    return None


def check_id(raw: Any, source: str, location: str, log: RejectionLog, field: str) -> str | None:
    """An identifier: a non-empty string, or an integer written as its digits; anything else is rejected.

    Booleans, floats, lists and objects are rejected rather than spelled out (``str(1.0)`` or ``str({...})``
    would invent an id the source never had).
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        log.reject(source, location, f"must be a string or an integer, got {type(raw).__name__}", field, raw)
        return None
    value = str(raw).strip()
    if not value:
        log.reject(source, location, "is empty", field, raw)
        return None
    bad = _LONE_SURROGATE.search(value)
    if bad:
        log.reject(source, location, surrogate_problem(value, bad.start()), field, _escaped(value))
        return None
    return value


def check_index(raw: Any, source: str, location: str, log: RejectionLog, field: str) -> int | None:
    """A turn or session index: an integer (``3``, ``3.0`` or ``"3"``) within 64 bits; else rejected."""
    from alliance.io.values import to_number

    try:
        value = to_number(raw)
    except ValueError as e:
        log.reject(source, location, str(e), field, raw)
        return None
    if value is None or not isinstance(value, int):
        log.reject(source, location, f"must be an integer, got {raw!r}", field, raw)
        return None
    if not INT64_MIN <= value <= INT64_MAX:
        log.reject(source, location, f"{value} does not fit in a 64-bit integer", field, str(raw)[:200])
        return None
    return value


def check_meta(raw: Any, source: str, location: str, log: RejectionLog, field: str = "meta") -> dict | None:
    """A metadata object: absent/null -> {}; an object is copied; a string, list or number is rejected."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        log.reject(source, location, f"must be a JSON object, got {type(raw).__name__}", field, raw)
        return None
    return dict(raw)


def iter_lines(path: Path, log: RejectionLog, max_bytes: int = MAX_RECORD_BYTES, start: int = 0,
               end: int | None = None, first_lineno: int = 1) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of non-blank lines, rejecting non-UTF-8 and over-long lines one by one.

    ``start``/``end`` (byte offsets at line starts) and ``first_lineno`` read one stretch of the file, numbered as
    in the whole file (the lazy reader's second pass, :mod:`alliance.io.lazy`)."""
    source = str(path)
    with open(path, "rb") as fh:
        if start:
            fh.seek(start)
        pos = start
        for lineno, raw in enumerate(fh, start=first_lineno):
            if end is not None and pos >= end:
                break
            pos += len(raw)
            if len(raw) > max_bytes:
                log.reject(source, f"line {lineno}", f"line is {len(raw):,} bytes, over the {max_bytes:,}-byte limit",
                           None, raw[:200])
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                log.reject(source, f"line {lineno}", f"not valid UTF-8 (byte offset {e.start})", None, raw[:200])
                continue
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if line.strip():
                yield lineno, line


def head_text(path: Path, n_bytes: int = 65536) -> str:
    """First bytes of a file as text, for sniffing."""
    try:
        with open(path, "rb") as fh:
            return fh.read(n_bytes).decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError:
        return ""


def dedupe_turn_keys(turns: list[Turn], log: RejectionLog, source: str) -> list[Turn]:
    """Reject later turns whose (course, session, turn_index) key was already seen."""
    seen: set[tuple[str, str, int]] = set()
    out: list[Turn] = []
    for t in turns:
        k = (t.course_id, t.session_id, t.turn_index)
        if k in seen:
            log.reject(t.source or source, t.location or f"turn {k}", f"duplicate turn key {k} (course_id, "
                       "session_id, turn_index): the later turn is not read", "turn_index", t.text[:200])
            continue
        seen.add(k)
        out.append(t)
    return out


def to_corpus(result: ReadResult) -> Corpus:
    return Corpus.from_turns(result.turns, result.sessions)
