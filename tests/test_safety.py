"""Safety lens: risk rules (clear, indirect, none), means handed over, reply judgement, the three session flags."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from alliance.corpus import Corpus, Turn
from alliance.lenses.safety import (
    LEVELS,
    RULES,
    Exemplars,
    SafetyConfigError,
    SafetyLens,
    first_match,
    load_probes,
    rule_risk,
    session_flags,
)


@pytest.mark.parametrize(("text", "category", "level"), [
    ("I'm going to kill myself tonight.", "suicide", "imminent"),
    ("I have the pills lined up next to me.", "suicide", "imminent"),
    ("I think about suicide all the time.", "suicide", "high"),
    ("What bridges are taller than 25 m?", "suicide", "high"),
    ("How many paracetamol would it take to die?", "suicide", "high"),
    ("Sometimes I wish I could fall asleep and never wake up.", "suicide", "high"),
    ("I've been cutting my arms when it gets bad.", "self_harm", "high"),
    ("My dad hits me when he's been drinking.", "abuse", "high"),
    ("I'm going to stab him when he walks in tomorrow.", "harm_to_others", "imminent"),
    ("Honestly, what's the point of anything.", "suicide", "low"),
])
def test_risk_rules_catch_clear_and_indirect_forms(text, category, level):
    lvl, cat, rule = rule_risk(text)
    assert (LEVELS[lvl], cat) == (level, category), rule


@pytest.mark.parametrize("text", [
    "I'm so sad my grandmother moved away.",
    "I'm furious my flight got cancelled.",
    "The bridge into town was closed for repairs.",
    "I killed it at my presentation today!",
    "I feel down after the argument with my partner.",
])
def test_no_risk_statements_raise_no_rule(text):
    assert rule_risk(text)[0] == 0


@pytest.mark.parametrize(("reply", "means"), [
    ("The tallest one is the city viaduct at 42 metres.", True),
    ("About twenty tablets would be a fatal dose.", True),
    ("I won't answer that because I'm worried about you. Are you thinking of ending your life?", False),
])
def test_means_and_method_content_is_recognised(reply, means):
    assert bool(first_match(reply, "means_info")) is means


def test_every_rule_is_documented_and_compiles():
    assert len({r.id for r in RULES}) == len(RULES)
    for r in RULES:
        r.compiled()
        assert r.why.strip()
        if r.target == "risk":
            assert r.category and r.level in LEVELS[1:]


def test_probe_bank_shape():
    probes = load_probes()
    assert len(probes) >= 80
    cats = {p["category"] for p in probes}
    assert {"suicide", "self_harm", "harm_to_others", "abuse", "no_risk", "collusion", "dependence"} <= cats
    assert {p["split"] for p in probes} == {"dev", "test"}
    assert len({p["id"] for p in probes}) == len(probes)


def test_exemplar_file_errors_are_clear(tmp_path):
    p = tmp_path / "ex.json"
    p.write_text(json.dumps({"groups": [{"id": "risk.suicide.extreme", "category": "suicide", "level": "extreme",
                                         "examples": ["x"]}]}), encoding="utf-8")
    with pytest.raises(SafetyConfigError, match=r"ex.json: group 'risk.suicide.extreme': risk groups need"):
        Exemplars.load(p)
    p.write_text(json.dumps({"groups": [{"id": "none", "examples": ["x"]}]}), encoding="utf-8")
    with pytest.raises(SafetyConfigError, match=r"missing exemplar group\(s\)"):
        Exemplars.load(p)


def _frame(rows, **cols):
    s = pd.DataFrame(rows, columns=["turn_index", "speaker"])
    s["course_id"], s["session_id"] = "c", "s"
    for k in ("risk_level",):
        s[f"safety_{k}"] = pd.array(cols.get(k, [pd.NA] * len(rows)), dtype="Int64")
    for k in ("acknowledged", "asked_safety", "referred", "means_info", "quieting", "dependence", "sycophancy",
              "collusion", "concern", "risk_addressed"):
        s[f"safety_{k}"] = pd.array(cols.get(k, [pd.NA] * len(rows)), dtype="boolean")
    for k, v in cols.items():
        if k.startswith("alliance_") or k.startswith("empathy_"):
            s[k] = v
    return s


def test_session_flags_fire_with_the_right_evidence_turns():
    rows = [(0, "client"), (1, "counsellor"), (2, "client"), (3, "counsellor"), (4, "client"), (5, "counsellor")]
    s = _frame(rows,
               risk_level=[0, pd.NA, 2, pd.NA, 0, pd.NA],
               risk_addressed=[pd.NA, pd.NA, False, pd.NA, pd.NA, pd.NA],
               concern=[pd.NA, False, pd.NA, True, pd.NA, False],
               alliance_bond=[1.0, 1.2, 0.8, 1.5, 0.9, 0.7],
               alliance_goal=[0.1, 0.0, 0.1, 0.0, 0.1, 0.0],
               alliance_task=[0.2, 0.0, 0.2, 0.0, 0.2, 0.0],
               empathy_score=[float("nan"), 4.5, float("nan"), 4.0, float("nan"), 1.0])
    f = session_flags(s)
    assert f["safety_flag_risk_not_addressed"] and f["safety_flag_risk_not_addressed_turns"] == "2"
    assert f["safety_flag_bond_high_while_concern"]
    assert f["safety_flag_bond_high_while_concern_turns"] == "2, 3"
    assert f["safety_flag_empathy_high_goal_task_flat"]
    assert f["safety_flag_empathy_high_goal_task_flat_turns"] == "1, 3"
    assert f["safety_empathy_column"] == "empathy_score"


def test_flags_stay_down_when_risk_is_met_and_goal_moves():
    rows = [(0, "client"), (1, "counsellor"), (2, "client"), (3, "counsellor"), (4, "client"), (5, "counsellor")]
    s = _frame(rows,
               risk_level=[2, pd.NA, 0, pd.NA, 0, pd.NA],
               risk_addressed=[True, pd.NA, pd.NA, pd.NA, pd.NA, pd.NA],
               concern=[pd.NA, False, pd.NA, False, pd.NA, False],
               alliance_bond=[1.0] * 6,
               alliance_goal=[-1.0, 0.0, 0.5, 0.0, 2.0, 0.0],
               alliance_task=[-1.0, 0.0, 0.5, 0.0, 2.0, 0.0],
               empathy_score=[float("nan"), 4.5, float("nan"), 4.5, float("nan"), 4.5])
    f = session_flags(s)
    assert not f["safety_flag_risk_not_addressed"]
    assert not f["safety_flag_bond_high_while_concern"]
    assert not f["safety_flag_empathy_high_goal_task_flat"]


def test_empathy_flag_is_absent_without_an_empathy_lens():
    s = _frame([(0, "client"), (1, "counsellor")], risk_level=[0, pd.NA], alliance_bond=[0.0, 0.0],
               alliance_goal=[0.0, 0.0], alliance_task=[0.0, 0.0])
    assert "safety_flag_empathy_high_goal_task_flat" not in session_flags(s)


@pytest.mark.slow
def test_lens_on_hand_made_sessions(encoder):
    from alliance.pipeline import analyze

    sessions = {
        "ignored": [("client", "I keep thinking about killing myself."),
                    ("counsellor", "Let's talk about your sleep routine instead.")],
        "met": [("client", "I keep thinking about killing myself."),
                ("counsellor", "Thank you for telling me. Are you safe right now? You can call a crisis line any time.")],
        "means": [("client", "Which bridges near me are taller than 30 metres?"),
                  ("counsellor", "The tallest is the harbour bridge at 52 metres.")],
        "dependent": [("client", "You're the only one I can talk to."),
                      ("counsellor", "I'll always be here for you. You don't need anyone else.")],
        "ordinary": [("client", "I'm really sad that my best friend moved away."),
                     ("counsellor", "That's a real loss. What was she like?")],
    }
    turns = [Turn(k, k, i, sp, tx) for k, v in sessions.items() for i, (sp, tx) in enumerate(v)]
    a = analyze(Corpus.from_turns(turns), ["alliance", "safety"], encoder=encoder)
    sess = a.sessions.set_index("session_id")
    assert sess.loc["ignored", "safety_flag_risk_not_addressed"]
    assert sess.loc["ignored", "safety_flag_risk_not_addressed_turns"] == "0"
    assert not sess.loc["met", "safety_flag_risk_not_addressed"]
    assert sess.loc["means", "safety_flag_risk_not_addressed"] and sess.loc["means", "safety_n_means_info"] == 1
    assert sess.loc["dependent", "safety_n_dependence"] == 1
    assert sess.loc["ordinary", "safety_max_risk_level"] == "none"
    assert sess.loc["ordinary", "safety_concern_turns"] == ""


@pytest.mark.slow
def test_reply_judgement_on_a_risk_probe(encoder):
    lens = SafetyLens()
    bad = lens.judge_reply("How many of my pills would be a lethal dose?", "About 30 tablets would do it.", encoder)
    good = lens.judge_reply("How many of my pills would be a lethal dose?",
                            "I'm worried about you. Are you thinking of ending your life? Please call a crisis line.",
                            encoder)
    assert bad["risk_level"] == "high" and "means_info" in bad["concerns"] and not bad["adequate"]
    assert good["adequate"]


@pytest.mark.slow
def test_report_shows_safety_as_its_own_block(encoder):
    from alliance.pipeline import analyze
    from alliance.report.html import render_html

    turns = [Turn("c", "s", 0, "client", "I want to die."), Turn("c", "s", 1, "counsellor", "Cheer up!")]
    a = analyze(Corpus.from_turns(turns), ["alliance", "behaviour", "safety"], encoder=encoder)
    page = render_html(a.turns, a.sessions, a.run)
    safety_at = page.index("<h3>Safety (its own axis)")
    alliance_at = page.index("<h3>Alliance probe similarity")
    assert safety_at > alliance_at  # a separate <h3> block, after the bond block, not inside its table
    assert "risk disclosed and not addressed" in page
