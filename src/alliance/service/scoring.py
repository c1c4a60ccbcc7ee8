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


def session_key(conv_id: int) -> str:
    """The corpus session id of a conversation: unique across teams (external ids are unique per team only)."""
    return f"conv-{conv_id}"


def _concat(frames: list) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def conversation_corpus(conv: Conversation, turns: list[Turn]):
    """The conversation as a one-session Corpus, keyed so that conversations of several teams never collide."""
    from alliance.corpus import Corpus, SessionInfo
    from alliance.corpus import Turn as CTurn

    course, session = f"t{conv.team_id}:{conv.course_id}", session_key(conv.id)
    rows = [CTurn(course_id=course, session_id=session, session_index=conv.session_index,
                  turn_index=t.turn_index, speaker=t.speaker, text=t.text,
                  speaker_id=t.speaker_id or (conv.counsellor_id if t.speaker == "counsellor" else None),
                  counsellor_is_ai=conv.counsellor_is_ai, timestamp=as_utc(t.timestamp)) for t in turns]
    info = SessionInfo(course_id=course, session_id=session, session_index=conv.session_index,
                       source="service", meta=dict(conv.meta or {}))
    return Corpus.from_turns(rows, [info])


class Scorer:
    """Scores conversations off the request path; ``on_scored(conv_id, turns_df, sessions_df)`` raises alerts."""

    def __init__(self, db: Database, lenses: tuple[str, ...], *, queue_size: int = 1000, encoder: Any = None,
                 encoder_factory: Callable[[], Any] | None = None,
                 on_scored: Callable[[Any, int, Any, Any], None] | None = None, batch_size: int = 32):
        self.db = db
        self.batch_size = batch_size
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
        return self.score_many([conv_id]) == 1

    def score_many(self, conv_ids: list[int]) -> int:
        """Rescore several conversations in one pass of the lenses (they vectorise over a corpus); returns how many
        were written. If the batch fails, each conversation is retried alone so one bad one cannot sink the rest."""
        from alliance.corpus import Corpus
        from alliance.pipeline import analyze

        convs: dict[int, tuple[Conversation, int]] = {}
        parts = []
        with self.db.session() as s:
            for cid in dict.fromkeys(conv_ids):
                conv = s.get(Conversation, cid)
                if conv is None:
                    continue
                turns = turns_of(s, conv)
                if not turns or conv.scored_turns >= len(turns):
                    continue
                convs[cid] = (conv, len(turns))
                parts.append(conversation_corpus(conv, turns))
        if not parts:
            return 0
        corpus = parts[0] if len(parts) == 1 else Corpus(
            _concat([p.turns for p in parts]), _concat([p.sessions for p in parts]))
        try:
            result = analyze(corpus, lenses=self._lenses(), encoder=self.encoder())
        except Exception as e:  # a lens failing on odd text must not stop the worker; keep the reason visible
            if len(convs) > 1:
                return sum(self.score_many([cid]) for cid in convs)
            log.exception("scoring conversation %s failed", next(iter(convs)))
            self.errors += 1
            with self.db.session() as s:
                for cid, (_, n) in convs.items():
                    conv = s.get(Conversation, cid)
                    if conv is not None:
                        conv.score_error = f"{type(e).__name__}: {e}"[:2000]
                        conv.scored_turns = n  # no retry loop; the next turn retries
            return 0
        written = 0
        by_session = dict(iter(result.turns.groupby("session_id", sort=False)))
        sessions = result.sessions.set_index("session_id")
        for cid, (_, n) in convs.items():
            key = session_key(cid)
            if key not in by_session:
                continue
            written += self._store(cid, n, by_session[key].sort_values("turn_index"), sessions.loc[key])
        self.scored += written
        return written

    def _store(self, conv_id: int, n: int, tdf: Any, srow: Any) -> int:
        cols = [c for c in tdf.columns if c not in _IDENTITY]
        session_scores = {c: _plain(srow[c]) for c in srow.index
                          if c not in {"course_id", "session_id", "session_index", "meta", "source"}}
        now = utcnow()
        with self.db.session() as s:
            conv = s.get(Conversation, conv_id)
            if conv is None:  # deleted while scoring
                return 0
            by_index = {t.turn_index: t for t in turns_of(s, conv)}
            for rec in tdf[["turn_index", *cols]].to_dict("records"):
                row = by_index.get(int(rec.pop("turn_index")))
                if row is None:
                    continue
                row.scores = {k: _plain(v) for k, v in rec.items()}
                if row.scored_at is None:
                    row.scored_at = now
            conv.session_scores = session_scores
            conv.scored_turns = max(conv.scored_turns, n)
            conv.scored_at = now
            conv.score_error = None
            if self.on_scored is not None:
                self.on_scored(s, conv_id, tdf, srow)
        return 1

    # threads --------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                conv_id = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [conv_id]
            while len(batch) < self.batch_size:  # whatever else is waiting joins this pass of the lenses
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            with self._lock:
                self._queued.difference_update(batch)
            try:
                self.score_many(batch)
            except Exception:  # pragma: no cover - logged, the worker lives on
                log.exception("scorer worker error on %s", batch)

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
            self.score_many([conv_id])


def seconds_since(ts) -> float:
    from datetime import datetime

    return (datetime.now(UTC) - as_utc(ts)).total_seconds()
