"""Readers and writers: one module per input format, all producing the same turn table.

``read(paths, format="auto")`` picks a reader per file by sniffing and says which it chose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alliance.corpus import Corpus, SessionInfo, Turn
from alliance.io.base import (
    InputError,
    OnError,
    Reader,
    ReadResult,
    Rejection,
    RejectionLog,
    dedupe_turn_keys,
)
from alliance.registry import readers

__all__ = ["InputError", "Loaded", "Reader", "Rejection", "RejectionLog", "detect_format", "read", "readers"]


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
    log = log or RejectionLog(on_error)
    turns: list[Turn] = []
    sessions: list[SessionInfo] = []
    formats: dict[str, str] = {}
    by_format: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(str(p), "", "no such file or folder")
        fmt = detect_format(p)[0] if format == "auto" else format
        formats[str(p)] = fmt
        by_format.setdefault(fmt, []).append(p)
    for fmt, fmt_paths in by_format.items():
        reader = readers.create(fmt)
        # Readers whose records span files (KokoroChat orders a course's sessions across files) read all their
        # paths at once.
        if len(fmt_paths) > 1 and hasattr(reader, "read_many"):
            results: list[ReadResult] = [reader.read_many(fmt_paths, log, **options)]
        else:
            results = [reader.read(p, log, **options) for p in fmt_paths]
        for result in results:
            turns.extend(result.turns)
            sessions.extend(result.sessions)
    turns = dedupe_turn_keys(turns, log, ", ".join(formats))
    _reject_duplicate_sessions(sessions, log)
    return Loaded(Corpus.from_turns(turns, _unique_sessions(sessions)), list(log.rejected), formats)


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
