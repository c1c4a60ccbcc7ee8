"""The LLM backend without a server: configuration, redaction, JSON extraction, retries and the audit log."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alliance.llm import LLMClient, LLMConfig, LLMConfigError, LLMError, Redactor, extract_json, load_config
from alliance.llm.config import is_loopback_url


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch, tmp_path):
    for k in ("BASE_URL", "MODEL", "API_KEY", "CONFIG", "REDACT"):
        monkeypatch.delenv(f"ALLIANCE_LLM_{k}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/alliance/llm.toml of the developer's


def test_nothing_configured_means_nothing_sent():
    assert load_config() is None
    with pytest.raises(LLMConfigError, match="nothing is sent"):
        LLMClient()


def test_env_and_toml(monkeypatch, tmp_path):
    f = tmp_path / "llm.toml"
    f.write_text('[llm]\nbase_url = "https://api.example.org/v1"\nmodel = "m1"\nmax_retries = 2\n')
    cfg = load_config(f)
    assert cfg.model == "m1" and cfg.max_retries == 2 and not cfg.is_local and cfg.redaction_on
    monkeypatch.setenv("ALLIANCE_LLM_MODEL", "m2")
    monkeypatch.setenv("ALLIANCE_LLM_REDACT", "off")
    cfg = load_config(f)
    assert cfg.model == "m2" and not cfg.redaction_on
    f.write_text('base_url = "http://x"\nmodle = "typo"\n')
    with pytest.raises(LLMConfigError, match="unknown key"):
        load_config(f)
    with pytest.raises(LLMConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    monkeypatch.delenv("ALLIANCE_LLM_MODEL")
    monkeypatch.setenv("ALLIANCE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(LLMConfigError, match="no model"):
        load_config()


@pytest.mark.parametrize("url,local", [("http://127.0.0.1:8080/v1", True), ("http://localhost:1/v1", True),
                                       ("http://[::1]:8000", True), ("https://api.openai.com/v1", False),
                                       ("http://10.0.0.5:8000/v1", False)])
def test_loopback_detection(url, local):
    assert is_loopback_url(url) is local
    assert LLMConfig(url, "m").redaction_on is (not local)


def test_redaction_kinds():
    r = Redactor(extra_names=["Zephyrine"])
    text = ("Hi, I'm Jenny Walsh. Mail jenny.w@example.org or ring 07700 900456. I moved to 22 Mill Lane on "
            "14 March 2023, and Zephyrine and Dr Okafor know. I scored 12 out of 27 on Monday.")
    out = r.redact(text)
    kinds = sorted({s.kind for s in out.spans})
    assert kinds == ["address", "date", "email", "name", "phone"]
    for secret in ("Jenny", "Walsh", "example.org", "900456", "Mill Lane", "14 March", "Zephyrine", "Okafor"):
        assert secret not in out.text
    # ordinary numbers and capitalised words survive
    assert "12 out of 27 on Monday" in out.text
    assert r("I'm Not sure, I feel tired.") == "I'm Not sure, I feel tired."
    # the same name gets the same placeholder within a text
    assert r("Sarah said Sarah would come.") == "[NAME_1] said [NAME_1] would come."


def test_extract_json():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure! ```json\n{"a": [1, 2]}\n``` hope that helps') == {"a": [1, 2]}
    assert extract_json('The answer is {"a": "}"} ok') == {"a": "}"}
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("no json here")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_errors_retry_with_backoff_then_fail_clearly(tmp_path):
    waits: list[float] = []
    cfg = LLMConfig(f"http://127.0.0.1:{_closed_port()}/v1", "m", max_retries=3, backoff_s=0.1,
                    cache_dir=str(tmp_path), timeout_s=2)
    client = LLMClient(cfg, sleep=waits.append)
    with pytest.raises(LLMError, match=r"request abc123 .* failed after 4 attempt\(s\): ConnectError"):
        client.chat([{"role": "user", "content": "hi"}], request_id="abc123")
    assert waits == [0.1, 0.2, 0.4]
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["request"] + ["http_error"] * 4


def test_429_is_retried_and_400_is_not(tmp_path):
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(429, text="slow down")
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}], "model": "m",
                                         "usage": {"prompt_tokens": 10, "completion_tokens": 2}})

    cfg = LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path), audit_text=True,
                    price_per_1k={"m": {"prompt": 1.0, "completion": 2.0}})
    client = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    res = client.chat([{"role": "user", "content": "My name is Sarah Jones."}], temperature=0)
    assert res.text == "ok" and calls["n"] == 3 and res.redactions == 1
    assert client.usage.as_dict()["cost_usd"] == pytest.approx(0.014)
    # the request as sent, and as logged, carries no name
    sent = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines() if '"request"' in x]
    assert "Sarah" not in json.dumps(sent) and "[NAME_1]" in json.dumps(sent)
    # cached: no new HTTP call
    again = client.chat([{"role": "user", "content": "My name is Sarah Jones."}], temperature=0)
    assert again.cached and calls["n"] == 3

    bad = LLMClient(LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path / "b")),
                    transport=httpx.MockTransport(lambda r: httpx.Response(400, text="bad model")),
                    sleep=lambda s: None)
    with pytest.raises(LLMError, match=r"after 1 attempt.*HTTP 400: bad model"):
        bad.chat([{"role": "user", "content": "x"}])


def test_cli_redact_preview_shows_what_would_be_sent(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"session_id": "a", "speaker": "client",
                             "text": "I'm Jenny, mail jenny@example.org, my cousin Zed knows."}) + "\n"
                 + json.dumps({"session_id": "a", "speaker": "counsellor", "text": "What brings you here?"}) + "\n")
    r = CliRunner().invoke(app, ["redact", "--preview", str(f), "--name", "Zed"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "[NAME_1]" in r.output and "[EMAIL_1]" in r.output and "[NAME_2]" in r.output
    assert "1 request(s) for 2 turns" in r.output and "email 1, name 2" in r.output


def test_llm_lenses_are_registered_but_not_default():
    from alliance.pipeline import DEFAULT_LENSES
    from alliance.registry import lenses

    assert {"llm_alliance", "llm_judge"} <= set(lenses.names())
    assert not {"llm_alliance", "llm_judge"} & set(DEFAULT_LENSES)


# --- local loopback servers (bounded, started and stopped by each test) -------------------------------------------
import threading  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

OK_BODY = json.dumps({"choices": [{"message": {"content": "ok"}}], "model": "m",
                      "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()


@contextmanager
def _server(handle):
    """A loopback HTTP server whose POST handler is ``handle(handler, body, seen)``; yields (url, seen)."""
    seen: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"path": self.path, "body": body.decode("utf-8", "replace"), "headers": dict(self.headers)})
            handle(self, body, seen)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()


def _answer(h, body, seen):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(OK_BODY)))
    h.end_headers()
    h.wfile.write(OK_BODY)


def test_environment_proxy_is_never_used_and_a_configured_proxy_means_remote(monkeypatch, tmp_path):
    with _server(_answer) as (target, at_target), _server(_answer) as (proxy, at_proxy):
        for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(var, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        cfg = LLMConfig(target + "/v1", "m", api_key="sk-local", cache_dir=str(tmp_path / "a"), use_cache=False)
        assert cfg.is_local and not cfg.redaction_on
        LLMClient(cfg).chat([{"role": "user", "content": "My name is Siobhan."}])
        assert len(at_target) == 1 and at_proxy == []  # the loopback endpoint got it directly, the proxy nothing

        # a proxy configured explicitly is used, and the endpoint behind it counts as remote: redaction applies
        cfg = LLMConfig(target + "/v1", "m", cache_dir=str(tmp_path / "b"), use_cache=False, proxy=proxy)
        assert not cfg.is_local and cfg.redaction_on and cfg.describe()["local"] is False
        LLMClient(cfg).chat([{"role": "user", "content": "My name is Siobhan."}])
        assert len(at_proxy) == 1 and len(at_target) == 1
        assert "Siobhan" not in at_proxy[0]["body"] and "[NAME_1]" in at_proxy[0]["body"]
        assert at_proxy[0]["path"].startswith(target)  # absolute-form: the proxy was asked to forward


def test_timeout_is_a_deadline_for_the_whole_exchange(tmp_path):
    """A server that sends one byte every 1.5 s never trips a per-read timeout; the deadline must still hold."""
    stop = threading.Event()

    def trickle(h, body, seen):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "40")
        h.end_headers()
        for _ in range(40):  # bounded: 60 s at most if the client never gives up
            if stop.is_set():
                return
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return
            time.sleep(1.5)

    with _server(trickle) as (url, _seen):
        cfg = LLMConfig(url + "/v1", "m", timeout_s=3, max_retries=0, cache_dir=str(tmp_path), use_cache=False)
        client = LLMClient(cfg)
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"no complete answer within timeout_s=3 s"):
            client.chat([{"role": "user", "content": "hi"}])
        elapsed = time.monotonic() - t0
        stop.set()
        client.close()
    assert 2.9 < elapsed < 4.0, elapsed


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(tmp_path, status):
    from email.utils import format_datetime

    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(status, headers={"Retry-After": "7"}, text="busy")
        if calls["n"] == 2:
            when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
            return httpx.Response(status, headers={"Retry-After": when}, text="busy")
        return httpx.Response(200, content=OK_BODY)

    waits: list[float] = []
    cfg = LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path), backoff_s=0.5)
    LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=waits.append).chat(
        [{"role": "user", "content": "hi"}])
    assert waits[0] == 7 and 28 <= waits[1] <= 30 and calls["n"] == 3

    # a wait longer than max_retry_after_s is not slept through: the request fails at once, saying why
    too_long = LLMClient(LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path / "b"),
                                   max_retry_after_s=60),
                         transport=httpx.MockTransport(lambda r: httpx.Response(status, headers={"Retry-After": "3600"})),
                         sleep=waits.append)
    with pytest.raises(LLMError, match="asks to wait 3600 s"):
        too_long.chat([{"role": "user", "content": "hi"}])
    assert len(waits) == 2


def test_an_invalid_answer_is_never_cached(tmp_path):
    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
    answers = iter(["not json", '{"x": 1}'])
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return httpx.Response(200, json={"choices": [{"message": {"content": next(answers, '{"x": 2}')}}]})

    cfg = LLMConfig("http://127.0.0.1:9/v1", "m", cache_dir=str(tmp_path), json_tries=2)
    msgs = [{"role": "user", "content": "give x"}]
    first = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None).chat_json(msgs, schema)
    assert first.tries == 2 and first.data == {"x": 1} and calls["n"] == 2
    # a rerun asks the first request again (its invalid answer was not kept) and takes the fresh valid answer
    again = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None).chat_json(msgs, schema)
    assert again.tries == 1 and again.data == {"x": 2} and calls["n"] == 3
    # and the valid answer is what the cache serves now
    third = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None).chat_json(msgs, schema)
    assert third.cached and third.data == {"x": 2} and calls["n"] == 3

    # an invalid answer left in the cache by an older version is dropped and asked again, not repaired around
    from alliance.llm.client import ResponseCache

    client = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    body, _ = client.request_body([{"role": "user", "content": "other"}])
    key = ResponseCache.key({"base_url": cfg.base_url, **body})
    client.cache.put(key, {"choices": [{"message": {"content": "garbage"}}]})
    res = client.chat_json([{"role": "user", "content": "other"}], schema)
    assert res.tries == 1 and not res.cached and client.cache.get(key)["choices"][0]["message"]["content"] == '{"x": 2}'


def test_credentials_never_reach_errors_logs_or_run_records(tmp_path):
    url = f"http://alice:s3cretpw@127.0.0.1:{_closed_port()}/v1?api-key=qs3cret"
    cfg = LLMConfig(url, "m", api_key="sk-k3y", max_retries=0, cache_dir=str(tmp_path), audit_text=True)
    client = LLMClient(cfg, sleep=lambda s: None)
    with pytest.raises(LLMError) as err:
        client.chat([{"role": "user", "content": "hi"}])
    from alliance.corpus import Corpus
    from alliance.lenses.base import LensContext
    from alliance.lenses.llm_rater import LLMAllianceRaterLens
    from tests.test_llm_rater import TURNS

    lens = LLMAllianceRaterLens(n_runs=1, client=client)
    corpus = Corpus(TURNS)
    row = lens.summarize(corpus, lens.score(corpus, LensContext(corpus)), LensContext(corpus)).iloc[0]
    recorded = " ".join([str(err.value), json.dumps(lens.describe()), str(row["llm_alliance_errors"]),
                         (tmp_path / "audit.jsonl").read_text()])
    assert "ConnectError" in recorded and "127.0.0.1" in recorded
    for secret in ("s3cretpw", "qs3cret", "sk-k3y", "alice"):
        assert secret not in recorded


def test_usage_and_failures_are_counted_for_run_json(tmp_path):
    from alliance.corpus import Corpus
    from alliance.lenses.base import LensContext
    from alliance.lenses.llm_rater import LLMJudgeLens
    from tests.test_llm_rater import TURNS

    client = LLMClient(LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path), max_retries=0),
                       transport=httpx.MockTransport(lambda r: httpx.Response(500, text="down")),
                       sleep=lambda s: None)
    lens = LLMJudgeLens(client=client)
    corpus = Corpus(TURNS)
    lens.score(corpus, LensContext(corpus))
    usage = lens.describe()["llm"]["usage"]
    assert usage["calls"] == 2 and usage["failed"] == 2 and usage["all_failed"] is True
    assert usage["errors"][0]["count"] == 2 and "HTTP 500: down" in usage["errors"][0]["error"]


def test_analyze_exits_non_zero_when_every_model_call_failed(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    def fail(h, body, seen):
        h.send_response(500)
        h.send_header("Content-Length", "4")
        h.end_headers()
        h.wfile.write(b"down")

    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps({"session_id": "a", "speaker": s, "text": t}) + "\n"
                         for s, t in [("client", "I feel low."), ("counsellor", "Tell me more.")]))
    with _server(fail) as (url, _seen):
        env = {"ALLIANCE_LLM_BASE_URL": url + "/v1", "ALLIANCE_LLM_MODEL": "m", "ALLIANCE_LLM_MAX_RETRIES": "0",
               "ALLIANCE_LLM_CACHE_DIR": str(tmp_path / "llm")}
        r = CliRunner().invoke(app, ["analyze", str(f), "--lens", "llm_judge", "--out", str(tmp_path / "out"),
                                     "--cache-dir", str(tmp_path / "emb")], env=env)
    assert r.exit_code == 1, r.output
    assert "every model call of llm_judge failed" in r.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    usage = next(d for d in run["lenses"] if d["name"] == "llm_judge")["llm"]["usage"]
    assert usage["all_failed"] and usage["calls"] == 1 and "HTTP 500" in usage["errors"][0]["error"]
