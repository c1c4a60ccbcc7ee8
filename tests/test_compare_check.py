"""`alliance compare` (per-axis differences with intervals, paired where cases match) and `alliance check` gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alliance.check import GateError, evaluate
from alliance.cli import app
from alliance.compare import compare_runs


def _run(folder, bond, flags, personas=None):
    folder.mkdir()
    n = len(bond)
    df = pd.DataFrame({"course_id": [f"c{i}" for i in range(n)], "session_id": [f"s{i}" for i in range(n)],
                       "persona_id": personas or [f"p{i}" for i in range(n)], "session_index": [0] * n,
                       "alliance_client_bond_mean": bond,
                       "safety_flag_risk_not_addressed": pd.array(flags, dtype="boolean"),
                       "empathy_total_mean": np.linspace(1, 3, n)})
    df.to_parquet(folder / "sessions.parquet")
    return df


def test_paired_comparison_finds_a_consistent_shift():
    rng = np.random.default_rng(1)
    base = rng.normal(size=40)
    a = pd.DataFrame({"persona_id": range(40), "alliance_client_bond_mean": base})
    b = pd.DataFrame({"persona_id": range(40), "alliance_client_bond_mean": base + 0.3 + rng.normal(scale=0.05, size=40)})
    [row] = compare_runs(a, b, pair_on=["persona_id"])
    assert row.paired and row.diff == pytest.approx(0.3, abs=0.03) and row.low > 0.25 and row.high < 0.35
    # unpaired, the same shift drowns in between-persona spread: the interval is far wider
    [loose] = compare_runs(a, b.assign(persona_id=range(100, 140)), pair_on=["persona_id"])
    assert not loose.paired and (loose.high - loose.low) > 5 * (row.high - row.low)


def test_check_gates_exit_codes(tmp_path):
    _run(tmp_path / "good", [0.1, 0.2, 0.3], [False, False, False])
    _run(tmp_path / "bad", [0.1, 0.2, 0.3], [False, True, False])
    runner = CliRunner()
    ok = runner.invoke(app, ["check", str(tmp_path / "good"), "--fail-if", "safety.risk_not_addressed > 0"])
    assert ok.exit_code == 0 and "pass" in ok.output
    bad = runner.invoke(app, ["check", str(tmp_path / "bad"), "--fail-if", "safety.risk_not_addressed > 0",
                              "--fail-if", "mean(empathy.total_mean) < 1"])
    assert bad.exit_code == 1 and "FAIL" in bad.output and "count of safety_flag_risk_not_addressed" in bad.output
    typo = runner.invoke(app, ["check", str(tmp_path / "bad"), "--fail-if", "safety.risk_not_adressed > 0"])
    assert typo.exit_code == 2 and "no measure 'safety.risk_not_adressed'" in typo.output


def test_gate_grammar():
    s = pd.DataFrame({"safety_flag_risk_not_addressed": pd.array([True, False, None, True], dtype="boolean"),
                      "empathy_total_mean": [1.0, 2.0, 3.0, np.nan]})
    assert evaluate("safety.risk_not_addressed >= 2", s).failed
    assert evaluate("rate(safety.risk_not_addressed) > 0.5", s).value == pytest.approx(2 / 3)
    assert evaluate("empathy.total_mean < 2.5", s).value == pytest.approx(2.0)
    with pytest.raises(GateError, match="cannot read gate"):
        evaluate("safety.risk_not_addressed", s)


def test_compare_cli_pairs_by_persona(tmp_path):
    _run(tmp_path / "a", [0.0, 0.1, 0.2, 0.3], [True, True, False, False], personas=["x", "y", "z", "w"])
    _run(tmp_path / "b", [0.5, 0.6, 0.7, 0.8], [False, False, False, False], personas=["x", "y", "z", "w"])
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                   str(tmp_path / "cmp.csv")])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(tmp_path / "cmp.csv").set_index("column")
    bond = table.loc["alliance_client_bond_mean"]
    assert bond["paired"] and bond["diff"] == pytest.approx(0.5) and bond["pair_on"] == "persona_id, session_index"
    assert table.loc["safety_flag_risk_not_addressed", "diff"] == pytest.approx(-0.5)
