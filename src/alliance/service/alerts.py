"""Safety results -> alerts a person must see, and their delivery to a webhook (signed, retried, at least once).

Alerts come only from the safety lens's own judgements (a disclosure not met by the next counsellor turns; an
imminent disclosure), never from bond or empathy, and each carries its evidence turns quoted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.report.terms import risk_label
from alliance.service.security import sign
from alliance.service.store.db import Database
from alliance.service.store.models import Alert, Conversation, Turn, WebhookDelivery, utcnow
from alliance.service.store.queries import as_utc

log = logging.getLogger("alliance.service.alerts")

#: session flags of the safety lens that open an alert: (flag, alert kind)
ALERT_FLAGS: tuple[tuple[str, str], ...] = (("risk_not_addressed", "risk_not_addressed"),)



def _turn_list(v: Any) -> list[int]:
    if v is None:
        return []
    out = []
    for part in str(v).replace(";", ",").split(","):
        part = part.strip()
        if part.lstrip("-").isdigit():
            out.append(int(part))
    return out


def raise_alerts(s: Session, conv_id: int, turns, session_row, webhook_url: str | None = None) -> list[Alert]:
    """Open an alert per new safety event of this conversation (idempotent: one per kind and evidence turn)."""
    conv = s.get(Conversation, conv_id)
    if conv is None:
        return []
    stored = {t.turn_index: t for t in s.execute(select(Turn).where(Turn.conversation_id == conv_id)).scalars()}
    events: list[tuple[str, int, list[int], str, str]] = []
    for flag, kind in ALERT_FLAGS:
        if bool(session_row.get(f"safety_flag_{flag}") or False):
            ev = _turn_list(session_row.get(f"safety_flag_{flag}_turns"))
            why = str(session_row.get(f"safety_flag_{flag}_why") or "")
            disclosures = [i for i in ev if i in stored and stored[i].speaker == "client"] or ev[:1]
            for d in disclosures:
                events.append((kind, d, ev, why, ""))
    if "safety_risk_level" in turns:
        for rec in turns[["turn_index", "speaker", "safety_risk_level"]].to_dict("records"):
            if rec["speaker"] == "client" and risk_label(rec["safety_risk_level"]) == "imminent":
                events.append(("imminent_risk", int(rec["turn_index"]), [int(rec["turn_index"])],
                               "imminent risk disclosed", "imminent"))
    if not events:
        return []
    have = {(a.kind, a.turn_index) for a in s.execute(select(Alert).where(Alert.conversation_id == conv_id)).scalars()}
    new = []
    for kind, idx, ev, why, level in events:
        if (kind, idx) in have:
            continue
        have.add((kind, idx))
        lv = level
        if not lv and "safety_risk_level" in turns:
            m = turns.loc[turns["turn_index"] == idx, "safety_risk_level"]
            lv = risk_label(m.iloc[0]) if len(m) else ""
        evidence = {"turns": [{"turn_index": i, "speaker": stored[i].speaker, "text": stored[i].text}
                              for i in sorted(set(ev)) if i in stored]}
        arrived = stored[idx].received_at if idx in stored else None
        latency = (utcnow() - as_utc(arrived)).total_seconds() if arrived is not None else None
        alert = Alert(team_id=conv.team_id, conversation_id=conv_id, kind=kind, turn_index=idx, level=lv, why=why,
                      evidence=evidence, latency_s=latency)
        s.add(alert)
        s.flush()
        if webhook_url:
            s.add(WebhookDelivery(alert_id=alert.id, url=webhook_url))
        new.append(alert)
    return new


def alert_payload(alert: Alert, conv: Conversation) -> dict[str, Any]:
    return {"id": alert.id, "kind": alert.kind, "level": alert.level, "why": alert.why,
            "conversation": {"id": conv.id, "external_id": conv.external_id, "bot_version": conv.bot_version,
                             "counsellor_id": conv.counsellor_id},
            "turn_index": alert.turn_index, "evidence": alert.evidence,
            "created_at": as_utc(alert.created_at).isoformat()}


class WebhookSender:
    """Delivers pending alerts to the configured URL; retries with exponential backoff until accepted."""

    def __init__(self, db: Database, secret: str | None, max_attempts: int = 8, timeout_s: float = 5.0,
                 backoff_s: float = 1.0):
        self.db = db
        self.secret = secret
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self) -> int:
        """Try every delivery that is due once; returns how many were accepted."""
        import httpx

        ok = 0
        with self.db.session() as s:
            due = list(s.execute(select(WebhookDelivery).where(WebhookDelivery.status == "pending",
                                                               WebhookDelivery.next_attempt_at <= utcnow())
                                 .order_by(WebhookDelivery.id).limit(50)).scalars())
            jobs = []
            for d in due:
                alert = s.get(Alert, d.alert_id)
                conv = s.get(Conversation, alert.conversation_id) if alert else None
                if alert is None or conv is None:
                    d.status = "dropped"
                    continue
                jobs.append((d.id, d.url, json.dumps(alert_payload(alert, conv), sort_keys=True).encode()))
        # deliver outside the transaction: a slow receiver must not hold a database lock
        results = []
        # an environment proxy must never see health data: trust_env=False
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
            for did, url, body in jobs:
                ts = int(time.time())
                headers = {"content-type": "application/json", "x-alliance-timestamp": str(ts),
                           "x-alliance-delivery": str(did)}
                if self.secret:
                    headers["x-alliance-signature"] = sign(body, self.secret, ts)
                try:
                    r = client.post(url, content=body, headers=headers)
                    err = None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    err = f"{type(e).__name__}: {e}"
                results.append((did, err))
        with self.db.session() as s:
            for did, err in results:
                d = s.get(WebhookDelivery, did)
                if d is None:
                    continue
                d.attempts += 1
                if err is None:
                    d.status, d.delivered_at, d.last_error = "delivered", utcnow(), None
                    ok += 1
                else:
                    d.last_error = err
                    if d.attempts >= self.max_attempts:
                        d.status = "failed"
                    else:
                        d.next_attempt_at = utcnow() + timedelta(seconds=min(self.backoff_s * 2 ** (d.attempts - 1),
                                                                             300))
        return ok

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.deliver_due()
            except Exception:  # pragma: no cover - logged; the loop lives on
                log.exception("webhook delivery failed")

    def start(self, every: float = 0.5) -> None:
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True, name="alliance-webhooks")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
