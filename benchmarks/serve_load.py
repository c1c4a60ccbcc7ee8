"""Load on the live service over loopback: ingestion latency, turn-to-score and alert latency, sustained turns/s
against `alliance.analyze` on the same turns in the same run, memory over a soak, and a kill -9 / restart check.

Bounded in count and time, loopback only (127.0.0.1). Real turns: ESConv test dialogues from $ALLIANCE_DATA or
../shared/data (the bundled sample otherwise). Every phase starts from a fresh data folder and embedding cache.

    python benchmarks/serve_load.py [--conversations 50] [--turns 16] [--interval 4] [--soak-seconds 600]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LIVE = "alliance,empathy,markers,behaviour,safety,ruptures,trajectory"


def dialogues(n: int, turns: int) -> list[list[dict]]:
    """n real conversations of ``turns`` turns (ESConv test split; the bundled sample repeated without data)."""
    from alliance.io import read

    data = Path(os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")
    path = data / "esconv" / "hf_format" / "test.json"
    if path.exists():
        corpus = read(path, format="esconv", on_error="skip").corpus
    else:
        from importlib import resources

        corpus = read(Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl"))),
                      format="jsonl").corpus
    out = []
    for _, t in corpus.turns.groupby(["course_id", "session_id"], sort=False):
        out.append([{"speaker": r.speaker, "text": r.text} for r in t.head(turns).itertuples()])
        if len(out) == n:
            break
    while len(out) < n:  # small fallback sample: reuse dialogues under new ids
        out.append(out[len(out) % max(1, len(out))])
    return out


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, lenses: str):
        self.data_dir, self.lenses, self.port = data_dir, lenses, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "ALLIANCE_SERVE_DATA": str(self.data_dir), "ALLIANCE_SERVE_LENSES": self.lenses,
               "HF_HUB_OFFLINE": "1"}
        env.pop("ALLIANCE_SERVE_DB", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "alliance.service.app:app_from_env",
                                      "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def api_key(data_dir: Path) -> str:
    from alliance.service.admin import create_api_key, get_or_create_team
    from alliance.service.settings import Settings
    from alliance.service.store.db import Database

    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(Settings(data_dir=data_dir).database_url)
    db.upgrade()
    with db.session() as s:
        key = create_api_key(s, get_or_create_team(s, "bench", "bench"))
    db.dispose()
    return key


def wait_scored(base: str, key: str, n_convs: int, timeout: float) -> float:
    deadline = time.time() + timeout
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=30) as c:
        while time.time() < deadline:
            convs = c.get("/api/v1/conversations", params={"limit": 1000}).json()
            if len(convs) >= n_convs and all(x["scored_turns"] == x["n_turns"] for x in convs):
                return time.time()
            time.sleep(0.25)
    raise RuntimeError("scoring did not finish in time")


def post_all(base: str, key: str, convs: list[list[dict]], interval: float, prefix: str,
             acked: list | None = None, stop: threading.Event | None = None) -> list[float]:
    """One thread per conversation, each appending its turns one every ``interval`` seconds (staggered)."""
    lat: list[float] = []
    lock = threading.Lock()

    def run(i: int, turns: list[dict]) -> None:
        time.sleep(interval * i / max(1, len(convs)))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=30) as c:
            for j, t in enumerate(turns):
                if stop is not None and stop.is_set():
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post("/api/v1/conversations", json={"id": f"{prefix}{i}", "turns": [
                        {"turn_id": f"{prefix}{i}-{j}", **t}]})
                except httpx.HTTPError:
                    return
                dt = time.perf_counter() - t0
                if r.status_code in (200, 201):
                    with lock:
                        lat.append(dt)
                        if acked is not None:
                            acked.append((f"{prefix}{i}", f"{prefix}{i}-{j}"))
                if interval:
                    time.sleep(max(0.0, interval - dt))

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(convs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def db_latencies(data_dir: Path) -> tuple[list[float], list[float]]:
    con = sqlite3.connect(data_dir / "alliance.db")

    def ts(v: str) -> float:
        return datetime.fromisoformat(v).timestamp()

    score = [ts(b) - ts(a) for a, b in con.execute("SELECT received_at, scored_at FROM turns WHERE scored_at IS NOT NULL")]
    alerts = [r[0] for r in con.execute("SELECT latency_s FROM alerts WHERE latency_s IS NOT NULL")]
    con.close()
    return score, alerts


def batch_baseline(convs: list[list[dict]], lenses: str, cache: Path) -> float:
    """turns/s of alliance.analyze on the same turns (model loaded first, fresh cache), in a fresh process."""
    code = f"""
import json, sys, time
from alliance.corpus import Corpus, Turn
from alliance.encoders import load_encoder
from alliance.pipeline import analyze
convs = json.load(open(sys.argv[1]))
corpus = Corpus.from_turns([Turn(course_id=f"c{{i}}", session_id=f"s{{i}}", turn_index=j, speaker=t["speaker"],
                                 text=t["text"]) for i, c in enumerate(convs) for j, t in enumerate(c)])
enc = load_encoder(cache_dir=sys.argv[2]); enc.encoder.encode(["warm up"])
t0 = time.perf_counter(); analyze(corpus, lenses={lenses.split(",")!r}, encoder=enc)
print(json.dumps({{"turns": len(corpus.turns), "seconds": time.perf_counter() - t0}}))
"""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(convs, fh)
    out = subprocess.run([sys.executable, "-c", code, fh.name, str(cache)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["turns"] / r["seconds"]


def warm_server(data_dir: Path, lenses: str) -> tuple[Server, str]:
    """A started server on a fresh data folder and cache, its model loaded by one scored turn (not timed)."""
    key = api_key(data_dir)
    srv = Server(data_dir, lenses)
    srv.start()
    post_all(srv.base, key, [[{"speaker": "client", "text": "warming up the model"}]], 0, "warm")
    wait_scored(srv.base, key, 1, 300)
    return srv, key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=50)
    ap.add_argument("--turns", type=int, default=16)
    ap.add_argument("--interval", type=float, default=4.0, help="seconds between one conversation's turns")
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--lenses", default=LIVE)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    convs = dialogues(a.conversations, a.turns)
    n_turns = sum(len(c) for c in convs)
    res: dict = {"conversations": len(convs), "turns": n_turns, "interval_s": a.interval, "lenses": a.lenses,
                 "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["batch_turns_per_s"] = batch_baseline(convs, a.lenses, tmp / "batch-cache")
        print(f"batch alliance.analyze: {res['batch_turns_per_s']:.1f} turns/s", flush=True)

        # 1. steady load: N conversations at once, one turn each every `interval` seconds
        d1 = tmp / "steady"
        srv, key = warm_server(d1, a.lenses)
        t0 = time.time()
        ingest = post_all(srv.base, key, convs, a.interval, "s")
        wait_scored(srv.base, key, len(convs) + 1, 600)
        srv.stop()
        score_lat, alert_lat = db_latencies(d1)
        score_lat = score_lat[1:]  # the warm-up turn
        res["steady"] = {"offered_turns_per_s": len(convs) / a.interval, "seconds": round(time.time() - t0, 1),
                         "ingest_ms": {q: round(pct(ingest, q) * 1000, 1) for q in (50, 95, 99)},
                         "turn_to_score_s": {q: round(pct(score_lat, q), 3) for q in (50, 95, 99)},
                         "alerts": len(alert_lat), "alert_latency_s_p95": round(pct(alert_lat, 95), 3)}
        print("steady:", json.dumps(res["steady"]), flush=True)

        # 2. burst: every turn as fast as it can be sent; sustained rate = turns / time to all scored
        srv, key = warm_server(tmp / "burst", a.lenses)
        t0 = time.time()
        post_all(srv.base, key, convs, 0, "b")
        done = wait_scored(srv.base, key, len(convs) + 1, 1200)
        rate = n_turns / (done - t0)
        res["burst"] = {"service_turns_per_s": round(rate, 2), "ratio_to_batch": round(rate / res["batch_turns_per_s"], 3)}
        print("burst:", json.dumps(res["burst"]), flush=True)

        # 3. soak: keep the steady load going; memory sampled every 5 s (after a minute of warm-up)
        rss: list[tuple[float, float]] = []
        stop = threading.Event()
        t_end = time.time() + a.soak_seconds
        rounds = 0

        def sample() -> None:
            while not stop.wait(5):
                rss.append((time.time(), srv.rss_mb()))

        sampler = threading.Thread(target=sample)
        sampler.start()
        while time.time() < t_end:
            post_all(srv.base, key, convs, a.interval / 4, f"soak{rounds}-", stop=None)
            rounds += 1
        stop.set()
        sampler.join()
        warm = [m for t, m in rss if t > rss[0][0] + 60] or [m for _, m in rss]
        res["soak"] = {"seconds": a.soak_seconds, "rounds": rounds, "rss_mb_first": round(warm[0], 1),
                       "rss_mb_last": round(warm[-1], 1), "rss_mb_max": round(max(warm), 1)}
        print("soak:", json.dumps(res["soak"]), flush=True)
        srv.stop()

        # 4. kill -9 mid-load, restart: no acknowledged turn lost, all scored
        acked: list = []
        stop = threading.Event()
        loader = threading.Thread(target=post_all, args=(srv.base, key, convs, 0.05, "k"), kwargs={"acked": acked,
                                                                                                   "stop": stop})
        srv.start()
        loader.start()
        while len(acked) < min(100, n_turns // 2):
            time.sleep(0.05)
        srv.kill9()
        stop.set()
        loader.join()
        srv.start()
        with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=60) as c:
            wait_scored(srv.base, key, 1, 900)
            convs_now = {x["external_id"]: x for x in c.get("/api/v1/conversations", params={"limit": 1000}).json()}
            lost = 0
            for conv in {cv for cv, _ in acked}:
                have = {t["turn_id"] for t in c.get(f"/api/v1/conversations/{convs_now[conv]['id']}/turns").json()}
                lost += sum(1 for cv, tid in acked if cv == conv and tid not in have)
        srv.stop()
        res["kill_restart"] = {"acknowledged": len(acked), "lost": lost}
        print("kill -9 / restart:", json.dumps(res["kill_restart"]), flush=True)
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
