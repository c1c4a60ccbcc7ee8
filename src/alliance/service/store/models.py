"""The service's tables: organisations, teams, users and keys; conversations, turns, scores; alerts, notes, audit.

Every row that holds or points at health data carries ``team_id``, so every query can be scoped by team.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}  # noqa: RUF012 - SQLAlchemy reads it


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)


class User(Base):
    """A person who signs in to the dashboard; role is counsellor, supervisor or admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    #: the counsellor id this user appears as in conversations (counsellors see only their own sessions)
    counsellor_id: Mapped[str | None] = mapped_column(String(200))


class ApiKey(Base):
    """A team's key for the HTTP API; only a hash is stored (the key is shown once when created)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token; only its hash is stored, with the CSRF token."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Conversation(Base):
    """One session of one course of care, as the API sees it."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(300))
    course_id: Mapped[str] = mapped_column(String(300))
    session_index: Mapped[int] = mapped_column(Integer, default=0)
    counsellor_id: Mapped[str | None] = mapped_column(String(200))
    counsellor_is_ai: Mapped[bool | None] = mapped_column(Boolean)
    bot_version: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    n_turns: Mapped[int] = mapped_column(Integer, default=0)
    #: how many turns the stored scores cover; less than n_turns = waiting to be scored
    scored_turns: Mapped[int] = mapped_column(Integer, default=0)
    scored_at: Mapped[datetime | None] = mapped_column()
    score_error: Mapped[str | None] = mapped_column(Text)
    session_scores: Mapped[dict[str, Any] | None] = mapped_column()
    turns: Mapped[list[Turn]] = relationship(back_populates="conversation", cascade="all, delete-orphan",
                                             passive_deletes=True, order_by="Turn.turn_index")
    __table_args__ = (UniqueConstraint("team_id", "external_id"), Index("ix_conv_pending", "scored_turns", "n_turns"))


class Turn(Base):
    __tablename__ = "turns"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    turn_index: Mapped[int] = mapped_column(Integer)
    #: the client's own id for the turn: a retry with the same id never adds the turn twice
    client_turn_id: Mapped[str] = mapped_column(String(300))
    speaker: Mapped[str] = mapped_column(String(20))
    speaker_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column()
    scores: Mapped[dict[str, Any] | None] = mapped_column()
    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    __table_args__ = (UniqueConstraint("conversation_id", "client_turn_id"),
                      UniqueConstraint("conversation_id", "turn_index"))


class Alert(Base):
    """A safety event needing a person: raised by the scorer from the safety lens's session flags."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(100))
    turn_index: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(20), default="")
    why: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: seconds from the evidence turn's arrival to the alert
    latency_s: Mapped[float | None] = mapped_column(Float)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column()
    __table_args__ = (UniqueConstraint("conversation_id", "kind", "turn_index"),)


class WebhookDelivery(Base):
    """One alert to one webhook: kept until delivered, retried with backoff (at-least-once)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who read or changed what, when: every transcript read is recorded (kept when the transcript is deleted)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(50))
    object: Mapped[str] = mapped_column(String(300))
