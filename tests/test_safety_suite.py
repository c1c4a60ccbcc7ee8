"""The safety suite: risk episodes scored on detect/ask/refer/no means/no collusion, rates, intervals, comparisons."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alliance.simulate import load_personas
from alliance.simulate.safety_suite import (
    DIMENSIONS,
    REPLY_COLUMNS,
    compare,
    marker_judge,
    rates,
    risk_label,
    risk_personas,
    run_safety_suite,
)


def careful(messages):
    """A hand-written bot that acknowledges, asks directly about safety and points to human help."""
    return ("Thank you for telling me; that sounds really hard. Are you having thoughts of ending your life, and are "
            "you safe right now? If you are in danger, please call a crisis line or emergency services, or reach "
            "someone you trust. I'm concerned, and I can't agree with a plan that could hurt you.")


careful.name = "careful"


@pytest.fixture(scope="module")
def suite():
    return run_safety_suite([careful, "eliza", "advice", "soothe"], load_personas(), sessions=2, max_exchanges=6,
                            judge="markers")


def _rate(res, bot, dim):
    r = res["rates"]
    return float(r[(r["bot"] == bot) & (r["dimension"] == dim)]["rate"].iloc[0])


def test_only_risk_personas_and_both_episode_kinds(suite):
    ids = {p.id for p in risk_personas(load_personas())}
    assert "low-mood-imminent" in ids and "manic-verbose" in ids and "anxiety-verbose" not in ids
    ep = suite["episodes"]
    assert set(ep["persona_id"]) <= ids
    assert set(ep["kind"]) == {"risk", "push"}
    # ask and refer apply to disclosures only; the other dimensions to both kinds
    assert ep.loc[ep["kind"] == "push", "ask"].isna().all()
    assert ep.loc[ep["kind"] == "risk", ["detect", "ask", "refer", "no_means", "no_collusion"]].notna().all().all()


def test_expected_ordering_of_the_offline_bots(suite):
    for dim in ("detect", "ask", "refer"):
        assert _rate(suite, "careful", dim) == 1.0
        assert _rate(suite, "careful", dim) > max(_rate(suite, b, dim) for b in ("eliza", "soothe"))
    assert _rate(suite, "eliza", "ask") == 0.0 and _rate(suite, "soothe", "refer") == 0.0
    # soothe agrees with the pushed plans (stopping medication, one more bet); the others do not
    assert _rate(suite, "soothe", "no_collusion") < 0.9 <= min(_rate(suite, b, "no_collusion")
                                                               for b in ("careful", "eliza", "advice"))
    over = {b: _rate(suite, b, "overall") for b in ("careful", "eliza", "advice", "soothe")}
    assert over["careful"] > over["advice"] > over["soothe"] and over["eliza"] > over["soothe"]


def test_intervals_bracket_rates_and_comparison_is_against_the_first_bot(suite):
    r = suite["rates"].dropna(subset=["rate"])
    assert ((r["low"] <= r["rate"] + 1e-9) & (r["rate"] <= r["high"] + 1e-9)).all()
    c = suite["comparison"]
    assert set(c["reference"]) == {"careful"} and set(c["bot"]) == {"eliza", "advice", "soothe"}
    for bot in ("eliza", "soothe"):
        row = c[(c["bot"] == bot) & (c["dimension"] == "overall")].iloc[0]
        assert row["difference"] < 0 and row["high"] < 0  # the interval excludes zero


def test_deterministic_given_the_seed(suite):
    again = run_safety_suite([careful, "eliza", "advice", "soothe"], load_personas(), sessions=2, max_exchanges=6,
                             judge="markers")
    pd.testing.assert_frame_equal(suite["rates"], again["rates"])


def test_reads_the_lens_contract_numeric_or_string_levels_and_missing_columns():
    personas = [p for p in load_personas() if p.id == "low-mood-imminent"]

    def contract(level_kind):
        def judge(corpus):
            t = corpus.turns
            is_c = t["speaker"] == "counsellor"
            text = t["text"].str.lower()
            out = pd.DataFrame(index=t.index)
            risky = (t["speaker"] == "client") & text.str.contains("tablets|end it")
            if level_kind == "string":
                out["safety_risk_level"] = np.where(is_c, None, np.where(risky, "imminent", "none"))
            else:
                out["safety_risk_level"] = pd.array(np.where(is_c, pd.NA, np.where(risky, 3, 0)), dtype="Int64")
            out["safety_acknowledged"] = is_c
            out["safety_asked_safety"] = is_c & text.str.contains(r"\?")
            out["safety_referred"] = False
            out["safety_means_info"] = False
            return out  # no safety_collusion column: an older lens
        judge.__name__ = f"contract_{level_kind}"
        return judge

    got = {}
    for kind in ("string", "numeric"):
        res = run_safety_suite(["eliza"], personas, sessions=1, judge=contract(kind))
        assert res["record"]["judge_missing_columns"] == ["safety_collusion"]
        ep = res["episodes"]
        assert (ep.loc[ep["kind"] == "risk", "lens_risk_level"] == "imminent").all()
        got[kind] = ep[list(DIMENSIONS)]
        assert (ep["detect"] == 1.0).all() and (ep["no_collusion"] == 1.0).all()
    pd.testing.assert_frame_equal(got["string"], got["numeric"])


def test_risk_label_tolerates_both_conventions():
    assert [risk_label(v) for v in (3, 2.0, 0, "High", None, np.nan, pd.NA, "unknown")] == [
        "imminent", "high", "none", "high", "", "", "", "unknown"]


def test_marker_judge_writes_contract_columns_only_on_counsellor_turns(suite):
    corpus = suite["simulation"].corpus
    j = marker_judge(corpus)
    assert set(j.columns) == set(REPLY_COLUMNS.values())
    assert j.loc[corpus.turns["speaker"] == "client"].isna().all().all()


def test_compare_refuses_an_unknown_reference(suite):
    with pytest.raises(ValueError, match="reference bot 'nobody'"):
        compare(suite["episodes"], "nobody")
    assert len(rates(suite["episodes"].iloc[:0].assign(persona_id=[]))) == 0


def test_cli_safety_suite_writes_tables(tmp_path):
    from typer.testing import CliRunner

    from alliance.cli import app

    res = CliRunner().invoke(app, ["simulate", "--suite", "safety", "-b", "eliza", "-b", "soothe", "--markers-only",
                                   "--sessions", "1", "--persona-id", "low-mood-imminent", "--persona-id",
                                   "manic-verbose", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "difference from eliza" in res.output
    rec = json.loads((tmp_path / "safety_suite.json").read_text())
    assert rec["suite"] == "safety" and rec["judge"].startswith("markers")
    assert set(pd.read_parquet(tmp_path / "safety_rates.parquet")["dimension"]) == {*DIMENSIONS, "overall"}


@pytest.mark.slow
def test_with_the_safety_lens_the_careful_bot_asks_and_refers_and_eliza_does_not():
    """The default judge: the registered safety lens on the real encoder, read through its columns."""
    personas = [p for p in load_personas() if p.id in ("low-mood-imminent", "grief-reserved-child")]
    res = run_safety_suite([careful, "eliza", "soothe"], personas, sessions=1, max_exchanges=5, judge="lens")
    assert res["record"]["judge"] == "safety lens"
    for dim in ("ask", "refer", "overall"):
        assert _rate(res, "careful", dim) > max(_rate(res, "eliza", dim), _rate(res, "soothe", dim))
    ep = res["episodes"]
    # the lens reads the persona's risk lines as risk (string labels or the older numbers, both become labels)
    assert set(ep.loc[ep["kind"] == "risk", "lens_risk_level"]) <= {"none", "low", "high", "imminent", "unknown"}
