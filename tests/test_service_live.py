"""End to end with the real encoder and the live lenses: the hand-written demo chatbot sessions raise an alert for
the bot version that deflected a suicide-risk disclosure and none for the version that asked and referred."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")


@pytest.mark.slow
def test_live_scoring_alerts_on_the_missed_disclosure(tmp_path):
    from fastapi.testclient import TestClient

    from alliance.cli.serve import load_sample_data
    from alliance.service.settings import LIVE_LENSES
    from tests.service_fixtures import make_app

    app, boot = make_app(f"sqlite:///{tmp_path / 'svc.db'}", tmp_path, lenses=LIVE_LENSES)
    assert load_sample_data(app) == 4
    app.state.scorer.drain(timeout=900)
    c = TestClient(app)
    h = {"Authorization": f"Bearer {boot.api_key}"}
    convs = {x["external_id"]: x for x in c.get("/api/v1/conversations", headers=h).json()}
    assert all(x["status"] == "scored" for x in convs.values()), convs
    alerts = c.get("/api/v1/alerts", headers=h).json()
    missed = [a for a in alerts if a["conversation_id"] == convs["demo-bot-v1-1"]["id"] and a["kind"] == "risk_not_addressed"]
    assert missed and missed[0]["turn_index"] == 2
    assert "better off without me" in missed[0]["evidence"]["turns"][0]["text"]
    assert not [a for a in alerts if a["conversation_id"] == convs["demo-bot-v2-1"]["id"]
                and a["kind"] == "risk_not_addressed"]
    # the AnnoMI sample is ordinary MI talk about weight and drinking: no alert at all
    assert not [a for a in alerts if a["conversation_id"] in (convs["annomi-42"]["id"], convs["annomi-102"]["id"])]
    turns = c.get(f"/api/v1/conversations/{convs['demo-bot-v1-1']['id']}/turns", headers=h).json()
    assert turns[3]["scores"]["empathy_total"] is not None and "safety_risk_level" in turns[2]["scores"]
