"""The LLM backend without a server: configuration, redaction, JSON extraction, retries and the audit log."""

from __future__ import annotations

import json
import socket

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
    assert "1 of 2 turns change" in r.output and "email 1, name 2" in r.output


def test_llm_lenses_are_registered_but_not_default():
    from alliance.pipeline import DEFAULT_LENSES
    from alliance.registry import lenses

    assert {"llm_alliance", "llm_judge"} <= set(lenses.names())
    assert not {"llm_alliance", "llm_judge"} & set(DEFAULT_LENSES)
