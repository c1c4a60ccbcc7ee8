"""Request and response bodies of the API (pydantic), validated at the edge: a bad field is a 422 naming it.

Roles are the corpus's own (client, counsellor); OpenAI-style roles (user, assistant) are accepted and mapped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TEXT = 20_000
ROLE_MAP = {"client": "client", "user": "client", "counsellor": "counsellor", "counselor": "counsellor",
            "assistant": "counsellor", "therapist": "counsellor"}


class TurnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: str | None = Field(None, max_length=300, description="Your id for the turn: a retry never adds it twice.")
    speaker: str = Field(description="client or counsellor (user and assistant are accepted)")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    speaker_id: str | None = Field(None, max_length=200)
    timestamp: datetime | None = None

    @field_validator("speaker")
    @classmethod
    def _role(cls, v: str) -> str:
        role = ROLE_MAP.get(v.strip().lower())
        if role is None:
            raise ValueError(f"unknown speaker {v!r}; use client or counsellor")
        return role

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:  # lone surrogates from JavaScript exports
            raise ValueError(f"text is not valid Unicode at character {e.start}") from None
        return v


class ConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, min_length=1, max_length=300, description="Your conversation id (created if new).")
    course_id: str | None = Field(None, max_length=300)
    session_index: int = Field(0, ge=0, le=1_000_000)
    counsellor_id: str | None = Field(None, max_length=200)
    counsellor_is_ai: bool | None = None
    bot_version: str | None = Field(None, max_length=200)
    meta: dict[str, Any] = Field(default_factory=dict)
    turns: list[TurnBody] = Field(default_factory=list, max_length=5000)


class AppendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turns: list[TurnBody] = Field(min_length=1, max_length=5000)


class OpenAIMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class OpenAIConversation(BaseModel):
    id: str | None = Field(None, max_length=300)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=5000)
    bot_version: str | None = None
    counsellor_is_ai: bool = True
    counsellor_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TurnOut(BaseModel):
    turn_index: int
    turn_id: str
    speaker: str
    text: str
    timestamp: datetime | None
    received_at: datetime
    scored: bool
    scores: dict[str, Any] | None


class ConversationOut(BaseModel):
    id: int
    external_id: str
    course_id: str
    counsellor_id: str | None
    counsellor_is_ai: bool | None
    bot_version: str | None
    n_turns: int
    scored_turns: int
    status: Literal["scored", "pending", "error"]
    score_error: str | None = None
    session_scores: dict[str, Any] | None = None


class IngestOut(BaseModel):
    conversation: ConversationOut
    added: int
    duplicates: int
    scoring: Literal["queued", "deferred", "up to date"]
