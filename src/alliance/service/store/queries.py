"""Team-scoped reads and writes: every query that can touch health data filters by the principal's teams.

An object of another team answers exactly like one that does not exist (None), so nothing can be inferred.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from alliance.service.principal import Principal
from alliance.service.store.models import Alert, AuditEvent, Conversation, Note, Turn, utcnow


class ConflictError(ValueError):
    """A retried turn id arrived with different content: never overwrite what was acknowledged."""


@dataclass(frozen=True)
class TurnIn:
    speaker: str
    text: str
    turn_id: str | None = None
    speaker_id: str | None = None
    timestamp: datetime | None = None


def as_utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def scoped(stmt: Select, p: Principal) -> Select:
    stmt = stmt.where(Conversation.team_id.in_(p.team_ids))
    if p.role == "counsellor" and not p.is_key:
        stmt = stmt.where(Conversation.counsellor_id == (p.counsellor_id or "\x00none"))
    return stmt


def get_conversation(s: Session, p: Principal, conv_id: int) -> Conversation | None:
    return s.execute(scoped(select(Conversation).where(Conversation.id == conv_id), p)).scalar_one_or_none()


def find_by_external(s: Session, team_id: int, external_id: str) -> Conversation | None:
    return s.execute(select(Conversation).where(Conversation.team_id == team_id,
                                                Conversation.external_id == external_id)).scalar_one_or_none()


def create_conversation(s: Session, team_id: int, external_id: str, *, course_id: str | None = None,
                        session_index: int = 0, counsellor_id: str | None = None,
                        counsellor_is_ai: bool | None = None, bot_version: str | None = None,
                        meta: dict[str, Any] | None = None) -> tuple[Conversation, bool]:
    """Create, or return the team's existing conversation with this external id (created=False)."""
    existing = find_by_external(s, team_id, external_id)
    if existing is not None:
        return existing, False
    conv = Conversation(team_id=team_id, external_id=external_id, course_id=course_id or external_id,
                        session_index=session_index, counsellor_id=counsellor_id, counsellor_is_ai=counsellor_is_ai,
                        bot_version=bot_version, meta=meta or {})
    s.add(conv)
    s.flush()
    return conv, True


def append_turns(s: Session, conv: Conversation, turns: Sequence[TurnIn]) -> tuple[list[Turn], int]:
    """Append turns in order; a turn whose id is already stored is skipped (same content) or refused (different).

    Returns the turns added and how many were duplicates. The caller commits; only then is a turn acknowledged.
    """
    ids = [t.turn_id for t in turns if t.turn_id is not None]
    known = {}
    if ids:
        rows = s.execute(select(Turn).where(Turn.conversation_id == conv.id, Turn.client_turn_id.in_(ids))).scalars()
        known = {r.client_turn_id: r for r in rows}
    # lock the conversation row's counter: concurrent appends to one conversation must not share an index
    fresh = s.execute(select(Conversation).where(Conversation.id == conv.id).with_for_update()).scalar_one()
    added: list[Turn] = []
    dup = 0
    seen: set[str] = set()
    for t in turns:
        tid = t.turn_id
        if tid is not None and (tid in known or tid in seen):
            prev = known.get(tid) or next(a for a in added if a.client_turn_id == tid)
            if prev.text != t.text or prev.speaker != t.speaker:
                raise ConflictError(f"turn_id {tid!r} was already stored with different "
                                    f"{'text' if prev.text != t.text else 'speaker'}")
            dup += 1
            continue
        idx = fresh.n_turns
        row = Turn(conversation_id=conv.id, team_id=conv.team_id, turn_index=idx,
                   client_turn_id=tid if tid is not None else f"auto:{idx}", speaker=t.speaker,
                   speaker_id=t.speaker_id, text=t.text, timestamp=t.timestamp)
        s.add(row)
        added.append(row)
        if tid is not None:
            seen.add(tid)
        fresh.n_turns = idx + 1
    if added:
        fresh.updated_at = utcnow()
    s.flush()
    return added, dup


def list_conversations(s: Session, p: Principal, *, limit: int = 100, offset: int = 0,
                       bot_version: str | None = None, counsellor_id: str | None = None) -> list[Conversation]:
    stmt = scoped(select(Conversation), p)
    if bot_version:
        stmt = stmt.where(Conversation.bot_version == bot_version)
    if counsellor_id:
        stmt = stmt.where(Conversation.counsellor_id == counsellor_id)
    stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit).offset(offset)
    return list(s.execute(stmt).scalars())


def count_conversations(s: Session, p: Principal) -> int:
    return int(s.execute(scoped(select(func.count(Conversation.id)), p)).scalar_one())


def turns_of(s: Session, conv: Conversation) -> list[Turn]:
    return list(s.execute(select(Turn).where(Turn.conversation_id == conv.id).order_by(Turn.turn_index)).scalars())


def pending_conversations(s: Session, limit: int = 1000) -> list[int]:
    """Conversations with turns not yet scored (what a restarted server must catch up on)."""
    stmt = (select(Conversation.id).where(Conversation.scored_turns < Conversation.n_turns)
            .order_by(Conversation.updated_at).limit(limit))
    return list(s.execute(stmt).scalars())


def alerts_for(s: Session, p: Principal, *, status: str | None = None, limit: int = 200) -> list[Alert]:
    stmt = select(Alert).join(Conversation, Conversation.id == Alert.conversation_id)
    stmt = scoped(stmt, p)
    if status:
        stmt = stmt.where(Alert.status == status)
    return list(s.execute(stmt.order_by(Alert.created_at.desc()).limit(limit)).scalars())


def get_alert(s: Session, p: Principal, alert_id: int) -> Alert | None:
    stmt = scoped(select(Alert).join(Conversation, Conversation.id == Alert.conversation_id)
                  .where(Alert.id == alert_id), p)
    return s.execute(stmt).scalar_one_or_none()


def notes_of(s: Session, conv: Conversation) -> list[Note]:
    return list(s.execute(select(Note).where(Note.conversation_id == conv.id).order_by(Note.created_at)).scalars())


def audit(s: Session, p: Principal | str, action: str, obj: str, team_id: int | None = None) -> None:
    actor = p if isinstance(p, str) else p.actor
    team = team_id if team_id is not None else (None if isinstance(p, str) else p.team_id)
    s.add(AuditEvent(actor=actor, action=action, object=obj, team_id=team))


def delete_conversation(s: Session, conv: Conversation) -> list[str]:
    """Remove a conversation with its turns, scores, alerts and notes; returns its texts (to purge caches)."""
    texts = [t for (t,) in s.execute(select(Turn.text).where(Turn.conversation_id == conv.id))]
    for model in (Alert, Note, Turn):
        s.execute(delete(model).where(model.conversation_id == conv.id))
    s.delete(conv)
    return texts


def expired_conversations(s: Session, days: int, now: datetime | None = None) -> list[Conversation]:
    if days <= 0:
        return []
    cutoff = (now or utcnow()) - timedelta(days=days)
    return list(s.execute(select(Conversation).where(Conversation.created_at < cutoff)).scalars())


def sessions_table(convs: Iterable[Conversation]) -> list[dict[str, Any]]:
    """One row per conversation: identity columns plus the stored session scores (for trends and exports)."""
    rows = []
    for c in convs:
        rows.append({"conversation_id": c.id, "course_id": c.course_id, "session_id": c.external_id,
                     "session_index": c.session_index, "counsellor_id": c.counsellor_id, "bot_version": c.bot_version,
                     "counsellor_is_ai": c.counsellor_is_ai, "created_at": as_utc(c.created_at),
                     "n_turns": c.n_turns, "scored_turns": c.scored_turns, **(c.session_scores or {})})
    return rows
