"""The backend against a real local llama.cpp server running a tiny base model whose answers are mostly nonsense."""

from __future__ import annotations

import json

import pytest

from alliance.llm import LLMClient, LLMSchemaError

pytestmark = pytest.mark.llm

SCHEMA = {"type": "object", "properties": {"mood": {"type": "integer", "minimum": 1, "maximum": 5},
                                          "reason": {"type": "string"}},
          "required": ["mood", "reason"], "additionalProperties": False}


def _audit(cfg) -> list[dict]:
    path = cfg.audit_log or f"{cfg.cache_dir}/audit.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def test_chat_usage_cache_and_audit(llm_config):
    client = LLMClient(llm_config)
    msgs = [{"role": "user", "content": "Say hello in one word."}]
    res = client.chat(msgs, temperature=0, seed=1, max_tokens=8)
    assert isinstance(res.text, str) and not res.cached
    assert res.usage.get("prompt_tokens", 0) > 0 and res.usage.get("completion_tokens", 0) > 0
    again = client.chat(msgs, temperature=0, seed=1, max_tokens=8)
    assert again.cached and again.text == res.text
    u = client.usage.as_dict()
    assert u["requests"] == 2 and u["cache_hits"] == 1 and u["prompt_tokens"] == res.usage["prompt_tokens"]
    events = [e["event"] for e in _audit(llm_config)]
    assert events == ["request", "answer", "request", "answer"]
    # a different parameter is a different request
    assert not client.chat(msgs, temperature=0, seed=2, max_tokens=8).cached


def test_unsatisfiable_schema_fails_clearly_after_bounded_repairs(llm_config):
    client = LLMClient(llm_config)
    schema = {"type": "object", "properties": {"code": {"const": "ZX-8841-QK"}}, "required": ["code"]}
    with pytest.raises(LLMSchemaError) as err:
        client.chat_json([{"role": "user", "content": "Reply with JSON."}], schema, request_id="req42",
                         temperature=0, seed=0, max_tokens=48)
    msg = str(err.value)
    assert "request req42" in msg and "after 3 tries" in msg and "last answer" in msg
    assert err.value.request_id == "req42" and err.value.last_answer is not None
    log = _audit(llm_config)
    requests = [e for e in log if e["event"] == "request"]
    assert len(requests) == 3
    assert [e["request_id"] for e in requests] == ["req42.1", "req42.2", "req42.3"]
    # each repair sends the validation error back to the model
    assert "Your answer was not valid" in requests[1]["body"]["messages"][-1]["content"]
    assert len([e for e in log if e["event"] == "invalid_answer"]) == 3


def test_grammar_constrained_json_validates(llm_config):
    """With llama.cpp's JSON-schema grammar even the tiny model gives valid JSON, and it passes validation."""
    client = LLMClient(llm_config)
    res = client.chat_json([{"role": "user", "content": "Rate your mood from 1 to 5 as JSON with a reason."}],
                           SCHEMA, temperature=0, seed=0, max_tokens=64,
                           response_format={"type": "json_object", "schema": SCHEMA})
    assert set(res.data) == {"mood", "reason"} and 1 <= res.data["mood"] <= 5


def test_redaction_before_sending_to_a_local_server_when_asked(llm_config):
    from dataclasses import replace

    cfg = replace(llm_config, redact=True)
    client = LLMClient(cfg)
    client.chat([{"role": "user", "content": "I'm Priya Shah, email priya@example.org."}], max_tokens=4,
                temperature=0)
    body = json.dumps(next(e for e in _audit(cfg) if e["event"] == "request")["body"])
    assert "Priya" not in body and "example.org" not in body and "[EMAIL_1]" in body


def test_concurrency_limit_map(llm_config):
    client = LLMClient(llm_config)
    outs = client.map(lambda i: client.chat([{"role": "user", "content": f"Count to {i}."}], max_tokens=6,
                                            temperature=0).request_id, range(4))
    assert len(set(outs)) == 4


def test_model_client_simulation_survives_a_nonsense_model(llm_config):
    """A model-driven simulated client either completes the session or stops with a clear schema error."""
    from alliance.simulate import load_personas, simulate

    client = LLMClient(llm_config)
    try:
        sim = simulate(["eliza"], load_personas(ids=["low-mood-plain"]), sessions=1, max_exchanges=2,
                       client="model", llm=client, seed=0)
    except LLMSchemaError as e:
        assert "no valid JSON answer after" in str(e) and e.request_id
    else:
        assert len(sim.corpus.turns) >= 3
        assert sim.record["client"]["model"] == "gemma-3-270m"


def test_endpoint_bot_against_the_server(llm_config):
    from alliance.simulate import EndpointBot, load_personas, simulate

    bot = EndpointBot(LLMClient(llm_config), max_tokens=40, seed=0)
    sim = simulate([bot], load_personas(ids=["anxiety-verbose"]), sessions=1, max_exchanges=2, seed=0)
    replies = sim.corpus.turns[sim.corpus.turns["speaker"] == "counsellor"]["text"]
    assert len(replies) >= 2 and all(isinstance(t, str) and t for t in replies)


def test_model_rated_lenses_survive_the_real_server(llm_config):
    """Against a nonsense model the rater and judge finish the run and record why ratings are missing."""
    import pandas as pd

    from alliance.corpus import Corpus
    from alliance.lenses.llm_rater import LLMAllianceRaterLens, LLMJudgeLens
    from alliance.pipeline import analyze

    corpus = Corpus(pd.DataFrame({
        "course_id": ["c"] * 2, "session_id": ["s"] * 2, "turn_index": [0, 1], "speaker": ["client", "counsellor"],
        "text": ["I keep worrying about my exams.", "It sounds like the exams weigh on you. What worries you most?"]}))
    from dataclasses import replace

    # short answers and one repair keep this test to a few minutes on a CPU
    client = LLMClient(replace(llm_config, json_tries=2))
    lenses = [LLMAllianceRaterLens(n_runs=2, max_tokens=120, client=client),
              LLMJudgeLens(max_tokens=80, client=client)]
    res = analyze(corpus, lenses)
    s = res.sessions.iloc[0]
    assert s["llm_alliance_runs_ok"] == 2 or "request" in s["llm_alliance_errors"]
    judged = res.turns.iloc[1]
    assert pd.notna(judged["llm_judge_er"]) or "request" in judged["llm_judge_error"]
    assert res.run["lenses"][0]["seeds"] == [0, 1]
