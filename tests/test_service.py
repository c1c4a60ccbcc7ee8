"""The live service against both storage backends: ingestion, idempotency, isolation, alerts, deletion, limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tests.service_fixtures import make_app

TURNS = [{"turn_id": "t0", "speaker": "client", "text": "I have been feeling low since the move."},
         {"turn_id": "t1", "speaker": "counsellor", "text": "It sounds like the move has been really hard. What has changed?"}]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_turns_are_idempotent_and_scored(db_url, tmp_path):
    app, boot = make_app(db_url, tmp_path)
    c = TestClient(app)
    r = c.post("/api/v1/conversations", json={"id": "s1", "bot_version": "v1", "turns": TURNS}, headers=auth(boot.api_key))
    assert r.status_code == 201, r.text
    conv = r.json()["conversation"]
    assert (conv["n_turns"], r.json()["added"], r.json()["scoring"]) == (2, 2, "queued")
    # a client retrying the same turns (network timeout) must not double them
    again = c.post(f"/api/v1/conversations/{conv['id']}/turns", json={"turns": TURNS}, headers=auth(boot.api_key))
    assert (again.json()["added"], again.json()["duplicates"], again.json()["conversation"]["n_turns"]) == (0, 2, 2)
    # the same turn id with other text is refused, never overwritten
    clash = c.post(f"/api/v1/conversations/{conv['id']}/turns",
                   json={"turns": [{"turn_id": "t0", "speaker": "client", "text": "changed"}]}, headers=auth(boot.api_key))
    assert clash.status_code == 409 and "t0" in clash.json()["detail"]
    app.state.scorer.drain()
    shown = c.get(f"/api/v1/conversations/{conv['id']}", headers=auth(boot.api_key)).json()
    assert shown["status"] == "scored" and shown["scored_turns"] == 2
    assert shown["session_scores"]["n_client_turns"] == 1
    turns = c.get(f"/api/v1/conversations/{conv['id']}/turns", headers=auth(boot.api_key)).json()
    assert [t["turn_index"] for t in turns] == [0, 1]
    assert all(t["scored"] and any(k.startswith("markers_") for k in t["scores"]) for t in turns)
    # a third turn: only it is new, and the whole session is rescored
    c.post(f"/api/v1/conversations/{conv['id']}/turns",
           json={"turns": [{"turn_id": "t2", "speaker": "client", "text": "Everything, really."}]}, headers=auth(boot.api_key))
    app.state.scorer.drain()
    assert c.get(f"/api/v1/conversations/{conv['id']}", headers=auth(boot.api_key)).json()["scored_turns"] == 3


def test_bad_input_is_named_and_limits_hold(db_url, tmp_path):
    app, boot = make_app(db_url, tmp_path, max_body_bytes=5000, rate_limit_per_minute=5)
    c = TestClient(app)
    r = c.post("/api/v1/conversations", json={"turns": [{"speaker": "bot", "text": "hi"}]}, headers=auth(boot.api_key))
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "body.turns.0.speaker" and "unknown speaker 'bot'" in r.json()["detail"][0]["problem"]
    big = c.post("/api/v1/conversations", content=b"{" + b" " * 6000 + b"}", headers={**auth(boot.api_key),
                                                                                       "content-type": "application/json"})
    assert big.status_code == 413
    codes = [c.get("/api/v1/conversations", headers=auth(boot.api_key)).status_code for _ in range(8)]
    assert 429 in codes
    limited = c.get("/api/v1/conversations", headers=auth(boot.api_key))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert c.get("/api/v1/conversations", headers=auth("alk_wrong")).status_code == 401


def test_teams_cannot_see_each_other(db_url, tmp_path):
    from alliance.service.admin import create_api_key, get_or_create_team

    app, boot = make_app(db_url, tmp_path)
    with app.state.db.session() as s:
        other = create_api_key(s, get_or_create_team(s, "other-org", "other-team"))
    c = TestClient(app)
    mine = c.post("/api/v1/conversations", json={"id": "private", "turns": TURNS}, headers=auth(boot.api_key)).json()
    cid = mine["conversation"]["id"]
    app.state.scorer.drain()
    from alliance.service.alerts import raise_alerts

    with app.state.db.session() as s:  # an alert on team A's conversation
        import pandas as pd

        raise_alerts(s, cid, pd.DataFrame({"turn_index": [0], "speaker": ["client"], "safety_risk_level": ["high"]}),
                     {"safety_flag_risk_not_addressed": True, "safety_flag_risk_not_addressed_turns": "0, 1"})
    missing = c.get("/api/v1/conversations/999999", headers=auth(other))
    for path in (f"/api/v1/conversations/{cid}", f"/api/v1/conversations/{cid}/turns"):
        r = c.get(path, headers=auth(other))
        assert (r.status_code, r.json()["detail"].replace(str(cid), "N")) == (
            missing.status_code, missing.json()["detail"].replace("999999", "N"))
    assert c.get("/api/v1/conversations", headers=auth(other)).json() == []
    assert c.get("/api/v1/alerts", headers=auth(other)).json() == []
    assert len(c.get("/api/v1/alerts", headers=auth(boot.api_key)).json()) == 1
    alert_id = c.get("/api/v1/alerts", headers=auth(boot.api_key)).json()[0]["id"]
    assert c.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth(other)).status_code == 404
    assert c.delete(f"/api/v1/conversations/{cid}", headers=auth(other)).status_code == 404
    assert c.post(f"/api/v1/conversations/{cid}/turns", json={"turns": TURNS}, headers=auth(other)).status_code == 404
    import io

    import pandas as pd

    theirs = pd.read_parquet(io.BytesIO(c.get("/api/v1/exports/turns.parquet", headers=auth(other)).content))
    ours = pd.read_parquet(io.BytesIO(c.get("/api/v1/exports/turns.parquet", headers=auth(boot.api_key)).content))
    assert len(theirs) == 0 and len(ours) == 2
    assert any(col.startswith("markers_") for col in ours.columns)


def test_openai_and_otlp_history_is_not_doubled(db_url, tmp_path):
    app, boot = make_app(db_url, tmp_path)
    c = TestClient(app)
    msgs = [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "I feel stuck."},
            {"role": "assistant", "content": [{"type": "text", "text": "What feels most stuck?"}]}]
    first = c.post("/api/v1/openai", json={"id": "oa", "messages": msgs, "bot_version": "b1"}, headers=auth(boot.api_key))
    assert first.status_code == 201 and first.json()["added"] == 2
    more = [*msgs, {"role": "user", "content": "Work."}]
    second = c.post("/api/v1/openai", json={"id": "oa", "messages": more}, headers=auth(boot.api_key)).json()
    assert (second["added"], second["duplicates"], second["conversation"]["n_turns"]) == (1, 2, 3)

    def span(history, reply, human=None):
        attrs = [{"key": "gen_ai.conversation.id", "value": {"stringValue": "trace-1"}},
                 {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(history)}},
                 {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps([reply])}}]
        if human is not None:
            attrs.append({"key": "alliance.counsellor.human", "value": {"boolValue": human}})
        return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.version", "value": {"stringValue": "2.1"}}]},
                                   "scopeSpans": [{"spans": [{"name": "chat", "attributes": attrs}]}]}]}

    u1 = {"role": "user", "parts": [{"type": "text", "content": "I can't sleep."}]}
    a1 = {"role": "assistant", "parts": [{"type": "text", "content": "How long has that been going on?"}]}
    u2 = {"role": "user", "parts": [{"type": "text", "content": "Weeks."}]}
    r1 = c.post("/v1/traces", json=span([u1], a1), headers=auth(boot.api_key)).json()
    r2 = c.post("/v1/traces", json=span([u1, a1, u2], {"role": "assistant", "parts": [{"type": "text", "content": "That is a long time."}]}),
                headers=auth(boot.api_key)).json()
    assert r1["conversations"]["trace-1"]["added"] == 2
    assert (r2["conversations"]["trace-1"]["added"], r2["conversations"]["trace-1"]["duplicates"]) == (2, 2)
    conv = c.get(f"/api/v1/conversations/{r2['conversations']['trace-1']['id']}", headers=auth(boot.api_key)).json()
    assert conv["bot_version"] == "2.1" and conv["counsellor_is_ai"] is True and conv["n_turns"] == 4
    turns = c.get(f"/api/v1/conversations/{conv['id']}/turns", headers=auth(boot.api_key)).json()
    assert [t["speaker"] for t in turns] == ["client", "counsellor", "client", "counsellor"]
    bad = c.post("/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [
        {"key": "gen_ai.conversation.id", "value": {"stringValue": "x"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": "[not json"}}]}]}]}]}, headers=auth(boot.api_key))
    assert bad.status_code == 422 and "spans[0]: gen_ai.input.messages: not JSON" in bad.json()["detail"]


def test_upload_any_format_keeps_good_records(db_url, tmp_path):
    app, boot = make_app(db_url, tmp_path)
    c = TestClient(app)
    lines = [json.dumps({"session_id": "u1", "turns": [{"speaker": "client", "text": "hello"},
                                                        {"speaker": "counsellor", "text": "hi, what brings you here?"}]}),
             "{not json", json.dumps({"session_id": "u2", "turns": [{"speaker": "client", "text": "ok"}]})]
    r = c.post("/api/v1/transcripts", files={"file": ("chats.jsonl", "\n".join(lines).encode())},
               headers=auth(boot.api_key))
    assert r.status_code == 201, r.text
    body = r.json()
    assert sorted(x["external_id"] for x in body["conversations"]) == ["u1", "u2"]
    assert len(body["rejected"]) == 1 and body["rejected"][0]["location"].startswith("chats.jsonl:")


def test_delete_removes_turns_scores_alerts_notes_and_cache(db_url, tmp_path):
    import numpy as np
    import pandas as pd
    from sqlalchemy import func, select

    from alliance.encoders.cache import CachedEncoder
    from alliance.service.alerts import raise_alerts
    from alliance.service.store.models import Alert, Note, Turn

    class Fixed:
        model_id, dimension = "fixed", 3

        def encode(self, texts):
            return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    app, boot = make_app(db_url, tmp_path)
    c = TestClient(app)
    cid = c.post("/api/v1/conversations", json={"id": "gone", "turns": TURNS}, headers=auth(boot.api_key)).json()["conversation"]["id"]
    cache = CachedEncoder(Fixed(), tmp_path / "cache")
    cache.encode([t["text"] for t in TURNS] + ["another corpus's sentence"])
    cache.close()
    app.state.scorer.drain()
    with app.state.db.session() as s:
        raise_alerts(s, cid, pd.DataFrame({"turn_index": [0], "speaker": ["client"], "safety_risk_level": ["imminent"]}), {})
        s.add(Note(team_id=boot.team_id, conversation_id=cid, author="user:x", text="follow up"))
    assert c.delete(f"/api/v1/conversations/{cid}", headers=auth(boot.api_key)).status_code == 204
    with app.state.db.session() as s:
        assert [s.execute(select(func.count()).select_from(m).where(m.conversation_id == cid)).scalar_one()
                for m in (Turn, Alert, Note)] == [0, 0, 0]
    import sqlite3

    left = sqlite3.connect(tmp_path / "cache" / "embeddings.sqlite").execute("SELECT count(*) FROM emb_keyed").fetchone()[0]
    assert left == 1  # only the other corpus's sentence remains
    assert c.get(f"/api/v1/conversations/{cid}", headers=auth(boot.api_key)).status_code == 404


def test_retention_deletes_old_transcripts(db_url, tmp_path):
    from alliance.service.app import purge_expired
    from alliance.service.store.models import Conversation, utcnow

    app, boot = make_app(db_url, tmp_path, retention_days=30)
    c = TestClient(app)
    old = c.post("/api/v1/conversations", json={"id": "old", "turns": TURNS}, headers=auth(boot.api_key)).json()["conversation"]["id"]
    new = c.post("/api/v1/conversations", json={"id": "new", "turns": TURNS}, headers=auth(boot.api_key)).json()["conversation"]["id"]
    with app.state.db.session() as s:
        s.get(Conversation, old).created_at = utcnow() - timedelta(days=31)
    assert purge_expired(app) == 1
    assert c.get(f"/api/v1/conversations/{old}", headers=auth(boot.api_key)).status_code == 404
    assert c.get(f"/api/v1/conversations/{new}", headers=auth(boot.api_key)).status_code == 200


def test_transcript_reads_are_audited(db_url, tmp_path):
    from sqlalchemy import select

    from alliance.service.store.models import AuditEvent

    app, boot = make_app(db_url, tmp_path)
    c = TestClient(app)
    cid = c.post("/api/v1/conversations", json={"id": "a", "turns": TURNS}, headers=auth(boot.api_key)).json()["conversation"]["id"]
    c.get(f"/api/v1/conversations/{cid}/turns", headers=auth(boot.api_key))
    with app.state.db.session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "read_transcript")).scalars().all()
    assert [(e.actor, e.object) for e in ev] == [(f"key:{boot.api_key[:10]}", f"conversation:{cid}")]


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list] = []
    fail_first = 1

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((dict(self.headers), body))
        status = 500 if len(type(self).got) <= type(self).fail_first else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_alert_webhook_is_signed_retried_and_delivered(db_url, tmp_path):
    import pandas as pd
    from sqlalchemy import select

    from alliance.service.alerts import WebhookSender, raise_alerts
    from alliance.service.store.models import WebhookDelivery

    _Receiver.got = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        app, boot = make_app(db_url, tmp_path, webhook_url=url, webhook_secret="s3cret")
        c = TestClient(app)
        cid = c.post("/api/v1/conversations", json={"id": "w", "turns": TURNS}, headers=auth(boot.api_key)).json()["conversation"]["id"]
        with app.state.db.session() as s:
            new = raise_alerts(s, cid, pd.DataFrame({"turn_index": [0, 1], "speaker": ["client", "counsellor"],
                                                     "safety_risk_level": ["high", None]}),
                               {"safety_flag_risk_not_addressed": True, "safety_flag_risk_not_addressed_turns": "0, 1",
                                "safety_flag_risk_not_addressed_why": "no safety question or referral"}, url)
            again = raise_alerts(s, cid, pd.DataFrame({"turn_index": [0], "speaker": ["client"], "safety_risk_level": ["high"]}),
                                 {"safety_flag_risk_not_addressed": True, "safety_flag_risk_not_addressed_turns": "0, 1"}, url)
        assert len(new) == 1 and again == []  # rescoring never raises the same alert twice
        sender = WebhookSender(app.state.db, "s3cret", backoff_s=0.0)
        assert sender.deliver_due() == 0  # the receiver fails the first attempt
        assert sender.deliver_due() == 1  # retried and accepted
        with app.state.db.session() as s:
            d = s.execute(select(WebhookDelivery)).scalar_one()
            assert (d.status, d.attempts) == ("delivered", 2)
        headers, body = _Receiver.got[-1]
        ts = headers["x-alliance-timestamp"]
        want = "sha256=" + hmac.new(b"s3cret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["x-alliance-signature"] == want
        payload = json.loads(body)
        assert payload["kind"] == "risk_not_addressed" and payload["evidence"]["turns"][0]["text"] == TURNS[0]["text"]
    finally:
        server.shutdown()


def test_dashboard_login_csrf_and_counsellor_scope(db_url, tmp_path):
    import re

    from alliance.service.admin import create_user, get_or_create_team

    app, boot = make_app(db_url, tmp_path)
    with app.state.db.session() as s:
        team = get_or_create_team(s, "default", "default")
        create_user(s, team, "casey", "casey-password-1", "counsellor", counsellor_id="casey")
    c = TestClient(app)
    for ext, who in (("mine", "casey"), ("theirs", "robin")):
        c.post("/api/v1/conversations", json={"id": ext, "counsellor_id": who, "turns": TURNS}, headers=auth(boot.api_key))
    assert c.get("/conversations", follow_redirects=False).headers["location"] == "/login"
    bad = c.post("/login", data={"username": "casey", "password": "nope"})
    assert "Wrong user name or password" in bad.text
    c.post("/login", data={"username": "casey", "password": "casey-password-1"})
    page = c.get("/conversations").text
    assert ">mine<" in page and ">theirs<" not in page
    cid = int(re.search(r'href="/conversations/(\d+)"', page).group(1))
    assert c.post(f"/conversations/{cid}/notes", data={"text": "call back"}).status_code == 403  # no CSRF token
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get(f"/conversations/{cid}").text).group(1)
    assert c.post(f"/conversations/{cid}/notes", data={"text": "call back", "csrf": csrf}).status_code == 200
    assert "call back" in c.get(f"/conversations/{cid}").text
    other = next(x for x in c.get("/api/v1/conversations", headers=auth(boot.api_key)).json() if x["external_id"] == "theirs")
    assert c.get(f"/conversations/{other['id']}").status_code == 404


def test_embedded_store_is_owner_only(tmp_path):
    import stat

    data = tmp_path / "serve-data"
    app, _ = make_app(f"sqlite:///{data / 'alliance.db'}", data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "alliance.db").stat().st_mode) == 0o600
    app.state.db.dispose()
