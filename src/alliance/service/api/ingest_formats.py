"""Ingest routes for other producers' formats: OpenAI-style message lists and OpenTelemetry GenAI traces (OTLP/HTTP).

user -> client, assistant -> counsellor; system and tool messages are not turns and are counted, not stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from alliance.service.api.auth import DB, KeyPrincipal
from alliance.service.api.conversations import conversation_out, ingest
from alliance.service.api.schemas import MAX_TEXT, IngestOut, OpenAIConversation
from alliance.service.store.queries import TurnIn

router = APIRouter(tags=["ingest"])
ROLES = {"user": "client", "assistant": "counsellor"}


def _text(content: Any) -> str:
    """OpenAI content: a string, or parts [{type: text, text}] / GenAI parts [{type: text, content}]."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or p.get("content") or "") for p in content
                         if isinstance(p, dict) and p.get("type", "text") == "text").strip()
    return ""


def message_turns(messages: list[dict[str, Any]], where: str) -> tuple[list[TurnIn], int]:
    """Turns with content-derived ids, so a history sent again (every LLM call resends it) is never doubled."""
    turns: list[TurnIn] = []
    seen: dict[str, int] = {}
    skipped = 0
    for i, m in enumerate(messages):
        role = ROLES.get(str(m.get("role", "")).lower())
        text = _text(m.get("content", m.get("parts")))
        if role is None:
            skipped += 1
            continue
        if not text.strip():
            if m.get("tool_calls"):
                skipped += 1
                continue
            raise HTTPException(422, f"{where}: message {i} ({m.get('role')}) has no text")
        if len(text) > MAX_TEXT:
            raise HTTPException(422, f"{where}: message {i} is longer than {MAX_TEXT} characters")
        base = hashlib.sha256(f"{role}\x00{text}".encode()).hexdigest()[:24]
        n = seen.get(base, 0)
        seen[base] = n + 1
        turns.append(TurnIn(speaker=role, text=text, turn_id=f"m:{base}:{n}"))
    return turns, skipped


@router.post("/api/v1/openai", response_model=IngestOut, status_code=201)
def openai_messages(body: OpenAIConversation, request: Request, who: KeyPrincipal, s: DB) -> IngestOut:
    """An OpenAI-format message list (the whole conversation so far); resending it adds only the new messages."""
    msgs = [m.model_dump() for m in body.messages]
    turns, _ = message_turns(msgs, "messages")
    ext = body.id or hashlib.sha256(json.dumps(msgs[:2], sort_keys=True).encode()).hexdigest()[:16]
    conv, added, dup, scoring = ingest(request, s, who.team_id, ext, turns, bot_version=body.bot_version,
                                       counsellor_is_ai=body.counsellor_is_ai, counsellor_id=body.counsellor_id,
                                       meta=body.metadata)
    return IngestOut(conversation=conversation_out(conv), added=added, duplicates=dup, scoring=scoring)


def _attr_value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "boolValue", "intValue", "doubleValue"):
        if k in v:
            return int(v[k]) if k == "intValue" else v[k]
    if "arrayValue" in v:
        return [_attr_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a.get("key"): _attr_value(a.get("value") or {}) for a in items or [] if isinstance(a, dict)}


def _messages(v: Any, where: str) -> list[dict[str, Any]]:
    if v is None:
        return []
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as e:
            raise HTTPException(422, f"{where}: not JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(v, list):
        raise HTTPException(422, f"{where}: expected a list of messages")
    return [m for m in v if isinstance(m, dict)]


@router.post("/v1/traces")
def otlp_traces(payload: dict[str, Any], request: Request, who: KeyPrincipal, s: DB) -> dict[str, Any]:
    """OTLP/HTTP JSON traces following the GenAI semantic conventions: one conversation per
    ``gen_ai.conversation.id``; its input and output messages become turns (resent history is not doubled).
    ``alliance.counsellor.human = true`` marks a human counsellor; ``alliance.bot_version`` (or the resource's
    ``service.version``) names the bot version."""
    if not isinstance(payload.get("resourceSpans"), list):
        raise HTTPException(422, "body: expected OTLP JSON with resourceSpans")
    results: dict[str, dict[str, Any]] = {}
    spans_read = spans_skipped = 0
    for ri, rs in enumerate(payload["resourceSpans"]):
        res_attrs = _attrs((rs.get("resource") or {}).get("attributes"))
        for si, ss in enumerate(rs.get("scopeSpans") or []):
            for pi, span in enumerate(ss.get("spans") or []):
                where = f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]"
                a = _attrs(span.get("attributes"))
                conv_id = a.get("gen_ai.conversation.id")
                if not conv_id:
                    spans_skipped += 1
                    continue
                spans_read += 1
                msgs = _messages(a.get("gen_ai.input.messages"), f"{where}: gen_ai.input.messages")
                msgs += _messages(a.get("gen_ai.output.messages"), f"{where}: gen_ai.output.messages")
                turns, _ = message_turns(msgs, where)
                human = a.get("alliance.counsellor.human")
                conv, added, dup, scoring = ingest(
                    request, s, who.team_id, str(conv_id), turns,
                    bot_version=a.get("alliance.bot_version") or res_attrs.get("service.version")
                    or a.get("gen_ai.request.model"),
                    counsellor_is_ai=not bool(human) if human is not None else True)
                r = results.setdefault(str(conv_id), {"id": conv.id, "added": 0, "duplicates": 0})
                r["added"] += added
                r["duplicates"] += dup
                r["scoring"] = scoring
    return {"spans": spans_read, "spans_without_conversation_id": spans_skipped, "conversations": results}
