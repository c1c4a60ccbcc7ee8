"""Alerts over the API: the team's queue, acknowledge and resolve (who and when are recorded)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException

from alliance.service.api.auth import DB, KeyPrincipal
from alliance.service.store.models import Alert, utcnow
from alliance.service.store.queries import alerts_for, audit, get_alert

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def alert_out(a: Alert) -> dict[str, Any]:
    return {"id": a.id, "conversation_id": a.conversation_id, "kind": a.kind, "level": a.level, "why": a.why,
            "turn_index": a.turn_index, "evidence": a.evidence, "status": a.status, "created_at": a.created_at,
            "latency_s": a.latency_s, "acknowledged_by": a.acknowledged_by, "acknowledged_at": a.acknowledged_at,
            "resolved_by": a.resolved_by, "resolved_at": a.resolved_at}


def transition(a: Alert, action: Literal["acknowledge", "resolve"], actor: str) -> None:
    if action == "acknowledge":
        if a.status == "open":
            a.status, a.acknowledged_by, a.acknowledged_at = "acknowledged", actor, utcnow()
    else:
        if a.status != "resolved":
            if a.acknowledged_at is None:
                a.acknowledged_by, a.acknowledged_at = actor, utcnow()
            a.status, a.resolved_by, a.resolved_at = "resolved", actor, utcnow()


@router.get("")
def queue(who: KeyPrincipal, s: DB, status: Literal["open", "acknowledged", "resolved"] | None = None
          ) -> list[dict[str, Any]]:
    items = alerts_for(s, who, status=status)
    audit(s, who, "read_alerts", f"alerts:{status or 'all'}", who.team_id)
    s.commit()
    return [alert_out(a) for a in items]


@router.post("/{alert_id}/{action}")
def act(alert_id: int, action: Literal["acknowledge", "resolve"], who: KeyPrincipal, s: DB) -> dict[str, Any]:
    a = get_alert(s, who, alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id}")
    transition(a, action, who.actor)
    audit(s, who, action, f"alert:{alert_id}", a.team_id)
    s.commit()
    return alert_out(a)
