"""Readers and writers: one module per input format, all producing the same turn table.

``read(paths, format="auto")`` picks a reader per file by sniffing and says which it chose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alliance.corpus import Corpus, SessionInfo, Turn
from alliance.io.base import (
    InputError,
    OnError,
    OptionError,
    Reader,
    ReadResult,
    Rejection,
    RejectionLog,
    dedupe_turn_keys,
    find_lone_surrogate,
)
from alliance.io.values import TIMESTAMP_UNITS
from alliance.registry import readers

__all__ = ["InputError", "Loaded", "OptionError", "Reader", "Rejection", "RejectionLog", "assemble", "detect_format", "parquet_dataset", "read", "readers"]


@dataclass
class Loaded:
    """What :func:`read` returns: the corpus, the rejected records and the format chosen per file."""

    corpus: Corpus
    rejected: list[Rejection] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)


def detect_format(path: Path) -> tuple[str, float]:
    """Best-matching reader name and its confidence for ``path``."""
    best, best_score = "", 0.0
    for name in readers.names():
        try:
            score = float(readers.create(name).sniff(path))
        except Exception:  # a reader's sniff must never break detection for the others
            score = 0.0
        if score > best_score:
            best, best_score = name, score
    if not best or best_score < 0.3:
        raise InputError(str(path), "", "could not detect the format; pass --format (see `alliance formats`)")
    return best, best_score


def read(
    paths: str | Path | Sequence[str | Path],
    format: str = "auto",
    on_error: OnError = "fail",
    log: RejectionLog | None = None,
    **options: Any,
) -> Loaded:
    """Read one or more files (or folders) into one :class:`Corpus`.

    ``on_error="fail"`` raises :class:`InputError` at the first bad record; ``"skip"`` keeps every good
    record and returns the bad ones in ``Loaded.rejected``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    unit = options.get("timestamp_unit", "auto")
    if unit not in TIMESTAMP_UNITS:
        raise OptionError(", ".join(map(str, paths)), "", f"unknown timestamp unit {unit!r}; one of "
                          f"{list(TIMESTAMP_UNITS)}", "timestamp_unit")
    log = log or RejectionLog(on_error)
    results: list[ReadResult] = []
    formats: dict[str, str] = {}
    by_format: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if not p.exists():  # a mistyped path is a usage error, not a bad record: it stops the read
            raise InputError(str(p), "", "no such file or folder")
        dataset = parquet_dataset(p) if format in ("auto", "table") else None
        if dataset is not None:  # a Parquet dataset folder: its files, one table each
            for f in dataset:
                formats[str(f)] = "table"
                by_format.setdefault("table", []).append(f)
            continue
        try:
            fmt = detect_format(p)[0] if format == "auto" else format
        except InputError as e:  # under skip a file we cannot place is one rejection; the others are read
            log.reject(e.source, e.location, e.problem, e.field)
            continue
        formats[str(p)] = fmt
        by_format.setdefault(fmt, []).append(p)
    for fmt, fmt_paths in by_format.items():
        reader = readers.create(fmt)
        # Readers whose records span files (KokoroChat orders a course's sessions across files) read all their
        # paths at once.
        batches = [fmt_paths] if len(fmt_paths) > 1 and hasattr(reader, "read_many") else [[p] for p in fmt_paths]
        for batch in batches:
            try:
                result = reader.read_many(batch, log, **options) if len(batch) > 1 else reader.read(batch[0], log,
                                                                                                     **options)
            except OptionError:
                raise
            except InputError as e:  # a whole file (or its header) is unreadable: under skip, that file only
                log.reject(e.source, e.location, e.problem, e.field)
                continue
            results.append(result)
    return Loaded(assemble(results, log, ", ".join(formats)), list(log.rejected), formats)


def assemble(results: list[ReadResult], log: RejectionLog, source: str) -> Corpus:
    """One corpus from the readers' results (in input order), with the checks that span records: a session met in
    two files, ids or metadata that cannot be stored, repeated turn keys and repeated sessions. The lazy reader
    (:mod:`alliance.io.lazy`) calls it once per chunk of whole courses; every check is within a course."""
    turns, sessions = _one_source_per_session(results, log)
    turns, sessions = _storable(turns, sessions, log)
    turns = dedupe_turn_keys(turns, log, source)
    _reject_duplicate_sessions(sessions, log)
    return Corpus.from_turns(turns, _unique_sessions(sessions))


def parquet_dataset(path: Path) -> list[Path] | None:
    """The files of a Parquet dataset folder (every visible file under it ends in .parquet/.pq; names starting with
    ``.`` or ``_``, such as ``_SUCCESS``, are skipped), in natural order; None for anything else."""
    if not path.is_dir():
        return None
    files = [f for f in path.rglob("*") if f.is_file()
             and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)]
    if not files or any(f.suffix.lower() not in (".parquet", ".pq") for f in files):
        return None
    from alliance.io.values import natural_key

    return sorted(files, key=lambda f: natural_key(str(f.relative_to(path))))


def _one_source_per_session(results: list[ReadResult], log: RejectionLog) -> tuple[list[Turn], list[SessionInfo]]:
    """A session key met in two files is two sessions, not one: the later file's copy is rejected whole.

    Merging would splice one conversation's turns into another's (two chat exports that both number their
    conversations from 1); within one file (or one KokoroChat folder) the reader decides what belongs together.
    """
    owner: dict[tuple[str, str], int] = {}
    first_source: dict[tuple[str, str], str] = {}
    turns: list[Turn] = []
    sessions: list[SessionInfo] = []
    for n, result in enumerate(results):
        for s in result.sessions:
            key = (s.course_id, s.session_id)
            owner.setdefault(key, n)
            first_source.setdefault(key, s.source)
        for t in result.turns:
            key = (t.course_id, t.session_id)
            owner.setdefault(key, n)
            first_source.setdefault(key, t.source)
            if owner[key] != n:
                log.reject(t.source, t.location, f"session {key} was already read from {first_source[key]}; "
                           "sessions from different files are not merged", "session_id", t.text[:200])
                continue
            turns.append(t)
        sessions.extend(s for s in result.sessions if owner[(s.course_id, s.session_id)] == n)
    return turns, sessions


def _storable(turns: list[Turn], sessions: list[SessionInfo],
              log: RejectionLog) -> tuple[list[Turn], list[SessionInfo]]:
    """Reject turns whose ids or metadata (or whose session's) cannot be stored: a lone UTF-16 surrogate (half an
    emoji) cannot be written as UTF-8, and would fail the run at its first write rather than here, at its record."""
    bad_sessions: dict[tuple[str, str], str] = {}
    for s in sessions:
        where = _unstorable({"meta": dict(s.meta)})
        if where is not None:
            bad_sessions[(s.course_id, s.session_id)] = where
    by_session: dict[tuple[str, str], list[Turn]] = {}
    for t in turns:
        by_session.setdefault((t.course_id, t.session_id), []).append(t)
    # One check per session finds nothing in almost every corpus; only a session that fails is checked turn by turn.
    suspect = {k for k, ts in by_session.items() if k in bad_sessions or _unstorable(
        [k, [(t.speaker_id, t.meta) for t in ts]]) is not None}
    if not suspect:
        return turns, sessions
    kept: list[Turn] = []
    for t in turns:
        if (t.course_id, t.session_id) not in suspect:
            kept.append(t)
            continue
        location = t.location or f"turn ({_safe(t.course_id)}, {_safe(t.session_id)}, {t.turn_index})"
        session_where = bad_sessions.get((t.course_id, t.session_id))
        if session_where is not None:
            log.reject(t.source, location, "the session's metadata holds a lone UTF-16 surrogate (a truncated "
                       "emoji?); it cannot be stored as UTF-8", f"session {session_where}", _safe(t.text[:200]))
            continue
        where = _unstorable({"course_id": t.course_id, "session_id": t.session_id, "speaker_id": t.speaker_id,
                             "meta": dict(t.meta)})
        if where is not None:
            log.reject(t.source, location, "holds a lone UTF-16 surrogate (a truncated emoji?); it cannot be stored "
                       "as UTF-8", where, _safe(t.text[:200]))
            continue
        kept.append(t)
    return kept, [s for s in sessions if (s.course_id, s.session_id) not in bad_sessions]


def _unstorable(fields: Any) -> str | None:
    try:  # fast path: the C encoder finds no surrogate in almost every record
        json.dumps(fields, ensure_ascii=False, default=str).encode("utf-8")
        return None
    except UnicodeEncodeError:
        return find_lone_surrogate(fields) or "?"


def _safe(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _reject_duplicate_sessions(sessions: Iterable[SessionInfo], log: RejectionLog) -> None:
    seen: set[tuple[str, str]] = set()
    for s in sessions:
        k = (s.course_id, s.session_id)
        if k in seen:
            log.reject(s.source or "input", f"session {k}", "the same session appears twice", "session_id")
        seen.add(k)


def _unique_sessions(sessions: Iterable[SessionInfo]) -> list[SessionInfo]:
    out: dict[tuple[str, str], SessionInfo] = {}
    for s in sessions:
        out.setdefault((s.course_id, s.session_id), s)
    return list(out.values())
