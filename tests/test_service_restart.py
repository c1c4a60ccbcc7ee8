"""A server killed with kill -9 mid-load loses no acknowledged turn and scores every one of them after restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
import httpx

from tests.service_fixtures import make_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db_url: str, data_dir, port: int) -> subprocess.Popen:
    env = {**os.environ, "ALLIANCE_SERVE_DATA": str(data_dir), "ALLIANCE_SERVE_DB": db_url,
           "ALLIANCE_SERVE_LENSES": "markers", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "alliance.service.app:app_from_env",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")


def test_kill_9_loses_no_acknowledged_turn(db_url, tmp_path):
    app, boot = make_app(db_url, tmp_path, lenses=("markers",))  # creates the schema and a key
    app.state.db.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {boot.api_key}"}
    proc = _start(db_url, tmp_path, port)
    acked: dict[str, list[str]] = {}
    stop = threading.Event()

    def load(conv: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=5, trust_env=False) as c:
            i = 0
            while not stop.is_set() and i < 400:
                tid = f"{conv}-{i}"
                try:
                    r = c.post("/api/v1/conversations", json={"id": conv, "turns": [
                        {"turn_id": tid, "speaker": "client" if i % 2 == 0 else "counsellor",
                         "text": f"turn {i} of {conv}: how are you feeling about it?"}]})
                except httpx.HTTPError:
                    return  # the server died: this turn was never acknowledged
                if r.status_code in (200, 201):
                    acked.setdefault(conv, []).append(tid)
                i += 1

    threads = [threading.Thread(target=load, args=(f"conv{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    while sum(len(v) for v in acked.values()) < 60:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    n_acked = sum(len(v) for v in acked.values())
    assert n_acked >= 60
    proc = _start(db_url, tmp_path, port)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10, trust_env=False) as c:
            deadline = time.time() + 120
            while time.time() < deadline:
                convs = c.get("/api/v1/conversations").json()
                if convs and all(x["scored_turns"] == x["n_turns"] for x in convs):
                    break
                time.sleep(0.5)
            convs = {x["external_id"]: x for x in c.get("/api/v1/conversations").json()}
            for conv, ids in acked.items():
                stored = [t["turn_id"] for t in c.get(f"/api/v1/conversations/{convs[conv]['id']}/turns").json()]
                assert set(ids) <= set(stored), f"{conv}: acknowledged turns lost after kill -9"
                assert convs[conv]["scored_turns"] == convs[conv]["n_turns"] == len(stored)
    finally:
        proc.kill()
        proc.wait()
