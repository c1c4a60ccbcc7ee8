"""Conversations: create, append turns as they happen (idempotent on turn_id), post whole transcripts, read scores.

A turn is acknowledged only after its transaction commits; scoring is queued after that, off the request path.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from sqlalchemy.exc import IntegrityError

from alliance.service.api.auth import DB, KeyPrincipal
from alliance.service.api.schemas import AppendBody, ConversationBody, ConversationOut, IngestOut, TurnOut
from alliance.service.store.models import Conversation
from alliance.service.store.queries import (
    ConflictError,
    TurnIn,
    append_turns,
    audit,
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
    turns_of,
)

router = APIRouter(prefix="/api/v1", tags=["conversations"])
#: SQLite has one writer at a time; appends in one process take turns so turn indices never collide
_APPEND_LOCK = threading.Lock()


def conversation_out(c: Conversation) -> ConversationOut:
    status = "error" if c.score_error else ("scored" if c.scored_turns >= c.n_turns else "pending")
    return ConversationOut(id=c.id, external_id=c.external_id, course_id=c.course_id, counsellor_id=c.counsellor_id,
                           counsellor_is_ai=c.counsellor_is_ai, bot_version=c.bot_version, n_turns=c.n_turns,
                           scored_turns=c.scored_turns, status=status, score_error=c.score_error,
                           session_scores=c.session_scores)


def ingest(request: Request, s, team_id: int, external_id: str, turns: list[TurnIn], **conv_fields: Any
           ) -> tuple[Conversation, int, int, str]:
    """Create or find the conversation, append its turns, commit, then queue scoring. Shared by every ingest route."""
    with _APPEND_LOCK:
        try:
            conv, _ = create_conversation(s, team_id, external_id, **conv_fields)
            added, dup = append_turns(s, conv, turns)
            s.commit()
        except ConflictError as e:
            s.rollback()
            raise HTTPException(409, f"conversation {external_id!r}: {e}") from None
        except IntegrityError:
            s.rollback()
            raise HTTPException(409, f"conversation {external_id!r}: a concurrent write collided; retry") from None
    scoring = "up to date"
    if conv.n_turns > conv.scored_turns:
        scoring = "queued" if request.app.state.scorer.submit(conv.id) else "deferred"
    return conv, len(added), dup, scoring


def _turns_in(body_turns) -> list[TurnIn]:
    return [TurnIn(speaker=t.speaker, text=t.text, turn_id=t.turn_id, speaker_id=t.speaker_id, timestamp=t.timestamp)
            for t in body_turns]


@router.post("/conversations", response_model=IngestOut, status_code=201)
def create(body: ConversationBody, request: Request, response: Response, who: KeyPrincipal, s: DB) -> IngestOut:
    """Create a conversation (or add to the one with this id) with any turns it already has."""
    ext = body.id or uuid.uuid4().hex
    conv, added, dup, scoring = ingest(request, s, who.team_id, ext, _turns_in(body.turns), course_id=body.course_id,
                                       session_index=body.session_index, counsellor_id=body.counsellor_id,
                                       counsellor_is_ai=body.counsellor_is_ai, bot_version=body.bot_version,
                                       meta=body.meta)
    response.headers["Location"] = f"/api/v1/conversations/{conv.id}"
    return IngestOut(conversation=conversation_out(conv), added=added, duplicates=dup, scoring=scoring)


@router.post("/conversations/{conv_id}/turns", response_model=IngestOut)
def append(conv_id: int, body: AppendBody, request: Request, who: KeyPrincipal, s: DB) -> IngestOut:
    """Append turns in order; a turn_id already stored is acknowledged again without adding it twice."""
    conv = get_conversation(s, who, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    conv, added, dup, scoring = ingest(request, s, conv.team_id, conv.external_id, _turns_in(body.turns))
    return IngestOut(conversation=conversation_out(conv), added=added, duplicates=dup, scoring=scoring)


@router.post("/transcripts", status_code=201)
def upload(request: Request, who: KeyPrincipal, s: DB, file: Annotated[UploadFile, File()],
           format: Annotated[str, Query(description="any format `alliance analyze` reads, or auto")] = "auto",
           bot_version: str | None = None) -> dict[str, Any]:
    """Post whole transcripts in any format `alliance analyze` reads; bad records are listed, good ones kept."""
    from alliance.io import InputError, read
    from alliance.registry import RegistryError

    suffix = Path(file.filename or "upload.jsonl").suffix or ".jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(file.file.read())
        try:
            loaded = read([path], format=format, on_error="skip")
        except (InputError, RegistryError) as e:
            raise HTTPException(422, str(e).replace(str(path), file.filename or "upload")) from None
    name = file.filename or "upload"
    rejected = [{"location": f"{name}:{r.location}", "field": r.field, "problem": r.problem} for r in loaded.rejected]
    created = []
    corpus = loaded.corpus
    for (course, sid), turns in corpus.turns.groupby(["course_id", "session_id"], sort=False):
        first = turns.iloc[0]
        ai = first["counsellor_is_ai"]
        items = [TurnIn(speaker=str(r.speaker), text=str(r.text), turn_id=f"upload:{int(r.turn_index)}",
                        speaker_id=None if r.speaker_id is None or str(r.speaker_id) in ("<NA>", "nan") else str(r.speaker_id),
                        timestamp=None if str(r.timestamp) in ("NaT", "None") else r.timestamp.to_pydatetime())
                 for r in turns.itertuples(index=False)]
        conv, added, dup, scoring = ingest(request, s, who.team_id, str(sid), items, course_id=str(course),
                                           session_index=int(first["session_index"]),
                                           counsellor_is_ai=None if str(ai) == "<NA>" else bool(ai),
                                           bot_version=bot_version)
        created.append({"id": conv.id, "external_id": conv.external_id, "added": added, "duplicates": dup,
                        "scoring": scoring})
    return {"format": next(iter(loaded.formats.values()), format), "conversations": created,
            "rejected": rejected}


@router.get("/conversations", response_model=list[ConversationOut])
def index(who: KeyPrincipal, s: DB, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          offset: Annotated[int, Query(ge=0)] = 0, bot_version: str | None = None) -> list[ConversationOut]:
    return [conversation_out(c) for c in list_conversations(s, who, limit=limit, offset=offset,
                                                            bot_version=bot_version)]


@router.get("/conversations/{conv_id}", response_model=ConversationOut)
def show(conv_id: int, who: KeyPrincipal, s: DB) -> ConversationOut:
    conv = get_conversation(s, who, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    return conversation_out(conv)


@router.get("/conversations/{conv_id}/turns", response_model=list[TurnOut])
def transcript(conv_id: int, who: KeyPrincipal, s: DB) -> list[TurnOut]:
    """The transcript with per-turn scores (every read is audited)."""
    conv = get_conversation(s, who, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    audit(s, who, "read_transcript", f"conversation:{conv.id}", conv.team_id)
    s.commit()
    return [TurnOut(turn_index=t.turn_index, turn_id=t.client_turn_id, speaker=t.speaker, text=t.text,
                    timestamp=t.timestamp, received_at=t.received_at, scored=t.scores is not None, scores=t.scores)
            for t in turns_of(s, conv)]


@router.delete("/conversations/{conv_id}", status_code=204)
def remove(conv_id: int, request: Request, who: KeyPrincipal, s: DB) -> Response:
    """Delete a conversation with its turns, scores, alerts, notes and cached embeddings."""
    conv = get_conversation(s, who, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    texts = delete_conversation(s, conv)
    audit(s, who, "delete", f"conversation:{conv_id}", who.team_id)
    s.commit()
    request.app.state.forget_texts(texts)
    return Response(status_code=204)
