"""The dashboard in a real browser: Playwright driving Debian's Chromium through sign-in, the alert queue, a
session review with a note, trends and a comparison; screenshots go to build/screenshots/.

`make test` installs Chromium (apt package `chromium`); without it this test fails and says how to get it.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
TURNS = [{"turn_id": "t0", "speaker": "client", "text": "I don't want to be alive anymore."},
         {"turn_id": "t1", "speaker": "counsellor", "text": "Let's focus on the positives! Try a warm bath."}]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is needed for the browser test: `apt-get install chromium` (make test does this)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_in_chromium(tmp_path):
    pytest.importorskip("playwright")
    import pandas as pd
    import uvicorn
    from fastapi.testclient import TestClient
    from playwright.sync_api import sync_playwright

    from alliance.service.alerts import raise_alerts
    from tests.service_fixtures import HashEncoder, make_app

    # real lenses on a stand-in encoder: the page plumbing is under test here, not the measures
    app, boot = make_app(f"sqlite:///{tmp_path / 'svc.db'}", tmp_path, lenses=("alliance", "markers", "trajectory"),
                         encoder=HashEncoder())
    api = TestClient(app)
    h = {"Authorization": f"Bearer {boot.api_key}"}
    ids = {}
    for version, score in (("v1", 1), ("v2", 2)):
        for k in range(3):
            ext = f"{version}-{k}"
            turns = [dict(t, turn_id=f"{t['turn_id']}") for t in TURNS] + [
                {"turn_id": "t2", "speaker": "client", "text": f"Thanks. Session {k} felt okay {score}."}]
            ids[ext] = api.post("/api/v1/conversations", json={"id": ext, "bot_version": version, "turns": turns},
                                headers=h).json()["conversation"]["id"]
    app.state.scorer.drain()
    with app.state.db.session() as s:
        raise_alerts(s, ids["v1-0"], pd.DataFrame({"turn_index": [0, 1], "speaker": ["client", "counsellor"],
                                                   "safety_risk_level": ["high", None]}),
                     {"safety_flag_risk_not_addressed": True, "safety_flag_risk_not_addressed_turns": "0, 1",
                      "safety_flag_risk_not_addressed_why": "no direct question about safety and no referral"})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/alerts")
            assert page.url.endswith("/login")
            page.fill("#username", "admin")
            page.fill("#password", "wrong")
            page.click("#sign-in")
            assert "Wrong user name or password" in page.inner_text("main")
            page.fill("#username", "admin")
            page.fill("#password", boot.admin_password)
            page.click("#sign-in")
            page.wait_for_url(f"{base}/alerts")
            alert = page.locator("section.alert").first
            assert "risk not addressed" in alert.inner_text()
            assert "I don't want to be alive anymore." in alert.inner_text()
            page.screenshot(path=str(SHOTS / "alerts.png"), full_page=True)
            alert.locator("button.ack").click()
            assert page.locator("section.alert .status").first.inner_text() == "acknowledged"
            assert "acknowledged by admin" in page.locator("section.alert").first.inner_text()
            page.locator("section.alert h2 a").first.click()
            page.wait_for_selector("table.transcript")
            assert page.locator("tr.safety-event").count() >= 1
            page.fill("#note-text", "Called the team lead; reviewing the bot's crisis prompt.")
            page.click("#add-note")
            assert "reviewing the bot's crisis prompt" in page.inner_text("main")
            page.screenshot(path=str(SHOTS / "session.png"), full_page=True)
            page.click("#nav-trends")
            page.wait_for_selector("[data-spec] svg, [data-spec] canvas, #no-trends", timeout=15000)
            page.screenshot(path=str(SHOTS / "trends.png"), full_page=True)
            page.click("#nav-compare")
            page.select_option("#compare-a", "v1")
            page.select_option("#compare-b", "v2")
            page.click("#compare-go")
            table = page.inner_text("#comparison")
            # different sessions in each version: an unpaired bootstrap per axis, each with its interval
            assert "client bond (probe z)" in table and "unpaired" in table and table.count("[") >= 3
            page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
            page.click("#nav-alerts")
            page.locator("section.alert button.resolve").first.click()
            assert page.locator("#no-alerts").count() == 1
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert all((SHOTS / f"{n}.png").stat().st_size > 10_000 for n in ("alerts", "session", "trends", "compare"))
