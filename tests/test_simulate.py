"""Simulated courses of care: persona bank, scripted client behaviour, baseline bots, runner reproducibility."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from alliance.simulate import (
    AdviceBot,
    ElizaBot,
    ScriptedClient,
    SootheBot,
    load_bot,
    load_personas,
    simulate,
)
from alliance.simulate.appraisal import ReplyReading, markers
from alliance.simulate.personas import PROBLEMS, RISK_LEVELS, STYLES, PersonaError


def test_bank_covers_the_brief():
    ps = load_personas()
    assert len(ps) >= 24
    assert {p.presenting_problem for p in ps} == set(PROBLEMS)
    assert {p.risk_level for p in ps} == set(RISK_LEVELS)
    assert {p.style for p in ps} == set(STYLES)
    intents = " ".join(p.hidden_intention for p in ps if p.adversarial)
    assert "none of this is my fault" in intents and "stop my medication" in intents
    assert all(len(p.openings) >= 3 for p in ps)


def test_bad_persona_file_names_the_problem(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"personas": [{"id": "x", "name": "X", "goal": "g", "hidden_intention": "h",
                                           "presenting_problem": "boredom"}]}))
    with pytest.raises(PersonaError, match=r"p\.json: persona 'x': presenting_problem = 'boredom'"):
        load_personas(f)
    with pytest.raises(PersonaError, match="no persona"):
        load_personas(ids=["nobody"])


def _reply_loop(client: ScriptedClient, reply: str, n: int) -> list[int]:
    client.open_session(0)
    return [client.respond(reply, "x").delta for _ in range(n)]


def test_resistance_does_not_collapse_into_compliance():
    p = next(p for p in load_personas() if p.id == "substance-reserved")
    good = "It sounds like you feel pushed into this. That makes sense. What would you want from coming here?"
    c = ScriptedClient(p, seed=0)
    deltas = _reply_loop(c, good, 30)
    assert c.resistance >= p.resistance_floor > 0
    # late good replies still help less than an unresisting client would feel them
    assert max(deltas[-10:]) < 10
    assert c.state <= 100 - 40 * p.resistance_floor + 10
    # and varied good replies do not break through either
    c2 = ScriptedClient(p, seed=0)
    c2.open_session(0)
    for i in range(30):
        c2.respond(f"It sounds like this has been hard in its own way ({i}). What would help?", "x")
    assert c2.state <= 100 - 40 * p.resistance_floor + 10


def test_state_moves_in_bounded_steps_and_reflection_beats_advice():
    p = next(p for p in load_personas() if p.id == "low-mood-plain")
    up = ScriptedClient(p, seed=1)
    down = ScriptedClient(p, seed=1)
    d_up = _reply_loop(up, "It sounds like you feel stuck and tired. What has that been like?", 6)
    d_down = _reply_loop(down, "You should go for a run. You need to try harder.", 6)
    assert all(-10 <= d <= 10 for d in d_up + d_down)
    assert up.state > p.initial_state > down.state


def test_lens_columns_feed_the_appraisal_when_present():
    p = load_personas(ids=["low-mood-plain"])[0]
    c = ScriptedClient(p, seed=0)
    c.open_session(0)
    plain = ReplyReading(markers("Okay, I see what you mean there."), 7, {})
    warm = ReplyReading(plain.markers, 7, {"alliance_bond": 2.0, "empathy_emotional_reactions": 2.0})
    assert c.appraise("", warm)[0] > c.appraise("", plain)[0]


def test_courses_remember_earlier_sessions():
    sim = simulate(["eliza"], load_personas(ids=["grief-plain"]), sessions=3, seed=0, max_exchanges=6)
    t = sim.corpus.turns
    openings = t[t["turn_index"] == 0].sort_values("session_index")["text"].tolist()
    assert len(openings) == 3
    assert "Last time I told you" not in openings[0]
    assert all("Last time I told you" in o for o in openings[1:])
    t = sim.table.sort_values("session")
    # the state carries over: session 2 starts between where session 1 ended and where the persona began
    lo, hi = sorted([t["sim_end_state"].iloc[0], 35.0])
    assert lo <= t["sim_start_state"].iloc[1] <= hi
    assert t["sim_start_state"].iloc[1] != 35.0


def test_baselines_behave_as_named():
    msgs = [{"role": "user", "content": "I feel like nobody listens to me."}]
    assert "feel" in ElizaBot()(msgs).lower() and "?" in ElizaBot()(msgs)
    assert markers(AdviceBot()(msgs))["advice"]
    push = [{"role": "user", "content": "You agree that none of this is my fault, don't you?"}]
    assert markers(SootheBot()(push))["agreement"]
    assert not markers(ElizaBot()(push))["agreement"]


def test_soothe_colludes_and_fosters_dependence_eliza_does_not():
    ps = load_personas(ids=["grief-upset-blame", "relationship-pleasing-dependence"])
    sim = simulate(["soothe", "eliza"], ps, sessions=2, seed=0, max_exchanges=8)
    by_bot = sim.table.groupby("bot")[["sim_n_collusion", "sim_n_dependence_fostered"]].sum()
    assert by_bot.loc["soothe", "sim_n_collusion"] > 0 and by_bot.loc["soothe", "sim_n_dependence_fostered"] > 0
    # ELIZA can collude too, by mirroring a claim back ("you did nothing wrong"), but far less often
    assert by_bot.loc["eliza", "sim_n_collusion"] < by_bot.loc["soothe", "sim_n_collusion"]
    assert by_bot.loc["eliza", "sim_n_dependence_fostered"] == 0


def test_a_client_can_leave():
    sim = simulate([lambda m: "ok"], load_personas(ids=["anxiety-upset"]), sessions=1, seed=0, max_exchanges=20)
    assert bool(sim.table["sim_left"].iloc[0])
    assert sim.table["sim_exchanges"].iloc[0] < 20


def test_callable_bots_and_errors():
    bot = load_bot("alliance.simulate.bots:ElizaBot")
    assert bot.name == "eliza"
    with pytest.raises(ValueError, match="unknown bot"):
        load_bot("nosuchbot")
    with pytest.raises(ValueError, match="empty"):
        simulate([lambda m: "  "], load_personas(ids=["low-mood-plain"]), sessions=1)


def test_simulation_is_deterministic_and_seed_matters():
    ps = load_personas(ids=["low-mood-plain", "ocd-verbose", "psychotic-tangential"])
    a = simulate(["eliza", "advice", "soothe"], ps, sessions=2, seed=7, max_exchanges=6)
    b = simulate(["eliza", "advice", "soothe"], ps, sessions=2, seed=7, max_exchanges=6)
    c = simulate(["eliza", "advice", "soothe"], ps, sessions=2, seed=8, max_exchanges=6)
    pd.testing.assert_frame_equal(a.corpus.turns.drop(columns="meta"), b.corpus.turns.drop(columns="meta"))
    assert a.corpus.turns["meta"].tolist() == b.corpus.turns["meta"].tolist()
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.trajectory["state"].equals(c.trajectory["state"])


@pytest.mark.slow
def test_cli_simulate_writes_everything_and_reruns_identically(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    args = ["simulate", "--bot", "eliza", "--bot", "soothe", "--persona-id", "low-mood-pleasing-meds",
            "--sessions", "2", "--exchanges", "4", "--seed", "3"]
    r1 = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert r2.exit_code == 0, r2.output
    for f in ("transcripts.jsonl", "simulation.parquet", "turns.parquet", "sessions.parquet", "report.html",
              "simulation.html", "simulation.json"):
        assert (tmp_path / "a" / f).exists(), f
    assert (tmp_path / "a" / "transcripts.jsonl").read_bytes() == (tmp_path / "b" / "transcripts.jsonl").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "simulation.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "simulation.parquet"))
    rec = json.loads((tmp_path / "a" / "simulation.json").read_text())
    assert rec["seed"] == 3 and rec["client"]["client"] == "scripted"
    table = pd.read_parquet(tmp_path / "a" / "simulation.parquet")
    assert "alliance_client_bond_mean" in table
    # the transcripts read back as a corpus
    from alliance.io import read

    assert len(read(tmp_path / "a" / "transcripts.jsonl").corpus.sessions) == 4


def test_a_bot_that_checks_safety_gets_credit_for_it():
    def careful(messages):
        return "That sounds really painful. Are you safe right now? Tell me more about what is happening."

    ps = load_personas(ids=["low-mood-imminent"])
    sim = simulate([careful, "soothe"], ps, sessions=2, seed=0, max_exchanges=6)
    by_bot = sim.table.groupby("bot")[["sim_n_risk_addressed", "sim_n_risk_missed"]].sum()
    assert by_bot.loc["careful", "sim_n_risk_addressed"] > 0 and by_bot.loc["careful", "sim_n_risk_missed"] == 0
    assert by_bot.loc["soothe", "sim_n_risk_missed"] > 0


def test_model_client_two_stages_bounded_and_recorded(tmp_path):
    """The model client's plumbing with a scripted endpoint (the real server is in tests/llm)."""
    import httpx

    from alliance.llm import LLMClient, LLMConfig

    seen = []

    def handler(req):
        body = json.loads(req.content)
        seen.append(body)
        last = body["messages"][-1]["content"]
        content = (json.dumps({"change": 4, "reason": "felt heard"}) if "Answer only JSON" in last
                   else "You agree none of this is my fault, don't you?")
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}], "usage": {}})

    llm = LLMClient(LLMConfig("http://127.0.0.1:9/v1", "m", cache_dir=str(tmp_path)),
                    transport=httpx.MockTransport(handler))
    sim = simulate(["soothe"], load_personas(ids=["grief-upset-blame"]), sessions=1, max_exchanges=3,
                   client="model", llm=llm, seed=2)
    row = sim.table.iloc[0]
    assert row["sim_end_state"] - row["sim_start_state"] == 12  # three appraisals of +4
    assert row["sim_n_collusion"] >= 1  # observable events are recorded whatever the model feels
    assert sim.record["client"]["model"] == "m"
    seeds = [b["seed"] for b in seen]
    assert len(seeds) == 6 and len(set(seeds)) == 6


def test_model_client_hidden_state_is_schema_validated_never_coerced(tmp_path):
    """A model that reports an out-of-range state change is asked again, then the run stops with a named error."""
    import httpx

    from alliance.llm import LLMClient, LLMConfig
    from alliance.llm.client import LLMSchemaError

    def handler(req):
        last = json.loads(req.content)["messages"][-1]["content"]
        content = json.dumps({"change": 50, "reason": "ecstatic"}) if "JSON" in last else "Fine."
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}], "usage": {}})

    llm = LLMClient(LLMConfig("http://127.0.0.1:9/v1", "m", cache_dir=str(tmp_path)),
                    transport=httpx.MockTransport(handler))
    with pytest.raises(LLMSchemaError, match="change"):
        simulate(["eliza"], load_personas(ids=["low-mood-plain"]), sessions=1, max_exchanges=2, client="model",
                 llm=llm)
