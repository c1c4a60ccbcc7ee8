"""The model-rated lenses' logic: quote validation, repeated runs, agreement, judge schema (scripted endpoint).

The same lenses run against the real local server in tests/llm/test_llm_server.py.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus
from alliance.lenses.base import LensContext
from alliance.lenses.llm_rater import LLMAllianceRaterLens, LLMJudgeLens, agreement, krippendorff_alpha_interval
from alliance.llm import LLMClient, LLMConfig

TURNS = pd.DataFrame({
    "course_id": ["c"] * 4, "session_id": ["s1"] * 4, "turn_index": range(4),
    "speaker": ["client", "counsellor", "client", "counsellor"],
    "text": ["I want to stop dreading Mondays.", "It sounds like Mondays carry a lot. What would be different?",
             "I'd like to sleep on Sunday nights.", "Let's look at Sunday evenings together, if that suits you."]})


def test_krippendorff_alpha():
    assert krippendorff_alpha_interval(np.array([[1, 2, 3, 4], [1, 2, 3, 4]])) == pytest.approx(1.0)
    assert krippendorff_alpha_interval(np.array([[1, 2, 3, 4], [4, 3, 2, 1]])) < 0
    # a textbook-style case: small disagreements on a spread of values give alpha between 0 and 1
    a = krippendorff_alpha_interval(np.array([[1, 2, 3, 4, 5], [1, 2, 4, 4, 5], [2, 2, 3, 4, np.nan]]))
    assert 0.8 < a < 1.0


def _client(tmp_path, answers):
    calls = []

    def handler(request):
        body = json.loads(request.content)
        calls.append(body)
        content = answers(len(calls), body)
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}], "model": "m",
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 5}})

    cfg = LLMConfig("http://127.0.0.1:9/v1", "m", cache_dir=str(tmp_path), json_tries=2)
    return LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None), calls


def _items(quote: str, rating) -> str:
    ids = [f"{s}{i}" for s in ("goal", "task", "bond") for i in range(1, 5)]
    return json.dumps({"items": [{"id": i, "rating": rating(k), "evidence": quote} for k, i in enumerate(ids)]})


def test_rater_validates_quotes_repairs_and_aggregates(tmp_path):
    def answers(n, body):
        if n == 1:  # an invented quote: must be sent back as not verbatim
            return _items("I never said this", lambda k: 3)
        return _items("sleep on Sunday nights", lambda k: 2 + (k + n) % 3)

    client, calls = _client(tmp_path, answers)
    lens = LLMAllianceRaterLens(n_runs=2, seed=5, client=client)
    corpus = Corpus(TURNS)
    res = lens.summarize(corpus, lens.score(corpus, LensContext(corpus)), LensContext(corpus))
    row = res.iloc[0]
    assert row["llm_alliance_runs_ok"] == 2
    assert "not a verbatim quote" in calls[1]["messages"][-1]["content"]
    assert [c["seed"] for c in calls] == [5, 5, 6]
    assert 1 <= row["llm_alliance_goal"] <= 5 and np.isfinite(row["llm_alliance_agreement_alpha"])
    assert row["llm_alliance_bond1_evidence"] == "sleep on Sunday nights"
    assert lens.describe()["seeds"] == [5, 6]


def test_rater_records_failure_without_crashing(tmp_path):
    client, _ = _client(tmp_path, lambda n, b: "lorem ipsum")
    lens = LLMAllianceRaterLens(n_runs=1, client=client)
    corpus = Corpus(TURNS)
    row = lens.summarize(corpus, lens.score(corpus, LensContext(corpus)), LensContext(corpus)).iloc[0]
    assert row["llm_alliance_runs_ok"] == 0 and np.isnan(row["llm_alliance_goal"])
    assert "no valid JSON answer after 2 tries" in row["llm_alliance_errors"]


def test_judge_schema_and_agreement(tmp_path):
    answer = {"empathy": {"emotional_reactions": 1, "interpretations": 2, "explorations": 2},
              "behaviours": ["reflection_emotions", "question_open"], "risk_level": "none",
              "risk_category": "none", "concerns": []}
    client, calls = _client(tmp_path, lambda n, b: json.dumps(answer))
    corpus = Corpus(TURNS)
    ctx = LensContext(corpus)
    ctx.add(pd.DataFrame({"empathy_er": [np.nan, 1.0, np.nan, 0.0], "empathy_ip": [np.nan, 2.0, np.nan, 1.0],
                          "safety_concern": pd.array([pd.NA, False, pd.NA, False], dtype="boolean")}))
    lens = LLMJudgeLens(client=client)
    cols = lens.score(corpus, ctx)
    assert len(calls) == 2  # counsellor turns only
    assert cols["llm_judge_ip"].tolist()[1] == 2.0 and cols["llm_judge_codes"].iat[1] == "question_open,reflection_emotions"
    assert not bool(cols["llm_judge_concern"].iat[1])
    summ = lens.summarize(corpus, cols, ctx).iloc[0]
    assert summ["llm_judge_n_judged"] == 2
    assert summ["llm_judge_er_exact"] == 0.5 and summ["llm_judge_ip_exact"] == 0.5
    assert "llm_judge_ex_n" not in summ or np.isnan(summ.get("llm_judge_ex_rho", np.nan))


def test_agreement_on_codes():
    t = pd.DataFrame({"llm_judge_codes": ["advice", "question_open,reflection_simple"],
                      "behaviour_codes": ["advice", "question_open"]})
    assert agreement(t)["llm_judge_codes_jaccard"] == pytest.approx(0.75)


def test_lenses_need_a_configured_endpoint(monkeypatch, tmp_path):
    from alliance.llm import LLMConfigError

    for k in ("BASE_URL", "MODEL", "CONFIG"):
        monkeypatch.delenv(f"ALLIANCE_LLM_{k}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LLMConfigError, match="no language-model endpoint"):
        LLMAllianceRaterLens()


def test_quotes_are_checked_against_what_was_sent_under_redaction(tmp_path):
    """A remote endpoint sees "[NAME_1]" where the client said her name; quoting what it saw must count as verbatim,
    and what it was sent must hold no name from any turn of the session."""
    turns = TURNS.copy()
    turns.loc[0, "text"] = "My name is Siobhan and I want to stop dreading Mondays."
    turns.loc[1, "text"] = "Thank you Siobhan. It sounds like Mondays carry a lot."
    sent = []

    def handler(request):
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json={"choices": [{"message": {"content": _items(
            "Thank you [NAME_1]. It sounds like Mondays", lambda k: 4)}}]})

    cfg = LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path), json_tries=1)
    client = LLMClient(cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    lens = LLMAllianceRaterLens(n_runs=1, client=client)
    corpus = Corpus(turns)
    row = lens.summarize(corpus, lens.score(corpus, LensContext(corpus)), LensContext(corpus)).iloc[0]
    assert row["llm_alliance_runs_ok"] == 1, row["llm_alliance_errors"]
    assert row["llm_alliance_goal"] == 4 and row["llm_alliance_goal1_evidence"].startswith("Thank you [NAME_1]")
    assert "Siobhan" not in json.dumps(sent) and len(sent) == 1
