"""The incremental scorer: after new turns arrive, rescore their session with the same core as `alliance analyze`.

A worker thread takes conversation ids from a bounded queue (duplicates collapse); what does not fit stays marked
unscored in the database and a sweep picks it up, so ingestion never blocks and a restart loses nothing.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from alliance.service.store.db import Database
from alliance.service.store.models import Conversation, Turn, utcnow
from alliance.service.store.queries import as_utc, pending_conversations, turns_of

log = logging.getLogger("alliance.service.scoring")

#: turn columns kept per turn (the lenses' own columns, not the transcript)
_IDENTITY = {"course_id", "session_id", "session_index", "turn_index", "speaker", "speaker_id", "counsellor_is_ai",
             "text", "timestamp", "meta"}


def _plain(v: Any) -> Any:
    """A JSON-safe value: NaN/NA -> None, numpy scalars -> Python."""
    if v is None:
        return None
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def conversation_corpus(conv: Conversation, turns: list[Turn]):
    """The conversation as a one-session Corpus, exactly as a reader would produce it."""
    from alliance.corpus import Corpus, SessionInfo
    from alliance.corpus import Turn as CTurn

    rows = [CTurn(course_id=conv.course_id, session_id=conv.external_id, session_index=conv.session_index,
                  turn_index=t.turn_index, speaker=t.speaker, text=t.text,
                  speaker_id=t.speaker_id or (conv.counsellor_id if t.speaker == "counsellor" else None),
                  counsellor_is_ai=conv.counsellor_is_ai, timestamp=as_utc(t.timestamp)) for t in turns]
    info = SessionInfo(course_id=conv.course_id, session_id=conv.external_id, session_index=conv.session_index,
                       source="service", meta=dict(conv.meta or {}))
    return Corpus.from_turns(rows, [info])


class Scorer:
    """Scores conversations off the request path; ``on_scored(conv_id, turns_df, sessions_df)`` raises alerts."""

    def __init__(self, db: Database, lenses: tuple[str, ...], *, queue_size: int = 1000, encoder: Any = None,
                 encoder_factory: Callable[[], Any] | None = None,
                 on_scored: Callable[[Any, int, Any, Any], None] | None = None):
        self.db = db
        self.lenses = lenses
        self.queue: queue.Queue[int] = queue.Queue(maxsize=queue_size)
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._encoder = encoder
        self._encoder_factory = encoder_factory
        # built now, so a bad lens list fails at start-up rather than on the first turn
        from alliance.pipeline import build_lenses

        self._built: list = build_lenses(list(lenses))
        self.on_scored = on_scored
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.deferred = 0
        self.scored = 0
        self.errors = 0

    # queueing -------------------------------------------------------------------------------------------
    def submit(self, conv_id: int) -> bool:
        """Queue a conversation for scoring; False when the queue is full (it stays pending in the database)."""
        with self._lock:
            if conv_id in self._queued:
                return True
            try:
                self.queue.put_nowait(conv_id)
            except queue.Full:
                self.deferred += 1
                return False
            self._queued.add(conv_id)
            return True

    def backlog(self) -> int:
        return self.queue.qsize()

    def sweep(self) -> int:
        """Queue every conversation whose turns are not all scored (after a restart, or after backpressure)."""
        with self.db.session() as s:
            ids = pending_conversations(s, limit=self.queue.maxsize)
        return sum(self.submit(i) for i in ids)

    # the work -------------------------------------------------------------------------------------------
    def _lenses(self) -> list:
        return self._built

    def encoder(self) -> Any:
        if self._encoder is None and any(lens.needs_encoder for lens in self._lenses()):
            if self._encoder_factory is not None:
                self._encoder = self._encoder_factory()
            else:
                from alliance.encoders import load_encoder

                self._encoder = load_encoder()
        return self._encoder

    def score(self, conv_id: int) -> bool:
        """Rescore one conversation now; True when scores were written."""
        from alliance.pipeline import analyze

        with self.db.session() as s:
            conv = s.get(Conversation, conv_id)
            if conv is None:
                return False
            turns = turns_of(s, conv)
            n = len(turns)
            if n == 0 or conv.scored_turns >= n:
                return False
            corpus = conversation_corpus(conv, turns)
        try:
            result = analyze(corpus, lenses=self._lenses(), encoder=self.encoder())
        except Exception as e:  # a lens failing on odd text must not stop the worker; keep the reason visible
            log.exception("scoring conversation %s failed", conv_id)
            self.errors += 1
            with self.db.session() as s:
                conv = s.get(Conversation, conv_id)
                if conv is not None:
                    conv.score_error = f"{type(e).__name__}: {e}"[:2000]
                    conv.scored_turns = n  # do not retry forever; a new turn retries
            return False
        tdf = result.turns.sort_values("turn_index")
        cols = [c for c in tdf.columns if c not in _IDENTITY]
        srow = result.sessions.iloc[0]
        session_scores = {c: _plain(srow[c]) for c in result.sessions.columns
                          if c not in {"course_id", "session_id", "session_index", "meta", "source"}}
        now = utcnow()
        with self.db.session() as s:
            conv = s.get(Conversation, conv_id)
            if conv is None:  # deleted while scoring
                return False
            by_index = {t.turn_index: t for t in turns_of(s, conv)}
            for rec in tdf[["turn_index", *cols]].to_dict("records"):
                row = by_index.get(int(rec.pop("turn_index")))
                if row is None:
                    continue
                row.scores = {k: _plain(v) for k, v in rec.items()}
                if row.scored_at is None:
                    row.scored_at = now
            conv.session_scores = session_scores
            conv.scored_turns = n
            conv.scored_at = now
            conv.score_error = None
            if self.on_scored is not None:
                self.on_scored(s, conv_id, tdf, srow)
        self.scored += 1
        return True

    # threads --------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                conv_id = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard(conv_id)
            try:
                self.score(conv_id)
            except Exception:  # pragma: no cover - logged, the worker lives on
                log.exception("scorer worker error on %s", conv_id)

    def _sweeper(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.sweep()
            except Exception:  # pragma: no cover
                log.exception("sweep failed")

    def start(self, sweep_every: float = 2.0) -> None:
        self.sweep()
        for target, args in ((self._work, ()), (self._sweeper, (sweep_every,))):
            t = threading.Thread(target=target, args=args, daemon=True, name=f"alliance-{target.__name__}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def drain(self, timeout: float = 60.0) -> None:
        """Score everything pending in this thread (tests and the one-shot loader)."""
        deadline = time.time() + timeout
        self.sweep()
        while time.time() < deadline:
            try:
                conv_id = self.queue.get_nowait()
            except queue.Empty:
                with self.db.session() as s:
                    if not pending_conversations(s, limit=1):
                        return
                self.sweep()
                continue
            with self._lock:
                self._queued.discard(conv_id)
            self.score(conv_id)


def seconds_since(ts) -> float:
    from datetime import datetime

    return (datetime.now(UTC) - as_utc(ts)).total_seconds()
