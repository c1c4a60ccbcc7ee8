import json
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from alliance.cli import app

runner = CliRunner()


def test_help_is_fast_and_lists_commands():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; from alliance.cli import app; sys.argv=['alliance','--help']; app()"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0
    assert "analyze" in out.stdout and "demo" in out.stdout
    # heavy libraries must not load for --help
    probe = subprocess.run([sys.executable, "-c", "import sys, alliance.cli; print(sorted(m for m in ('torch', 'pandas', 'sentence_transformers') if m in sys.modules))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "[]"
    assert elapsed < 10  # generous: the real check is the module list above


def test_bad_input_fails_with_location(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"session_id": "s", "speaker": "client", "text": "hi"}\n{"session_id": "s", "speaker": "robot", "text": "x"}\n')
    res = runner.invoke(app, ["analyze", str(f), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "bad.jsonl:line 2" in res.output and "unknown speaker role 'robot'" in res.output


def test_formats_and_lenses_list():
    res = runner.invoke(app, ["formats"])
    assert res.exit_code == 0 and "jsonl" in res.output
    res = runner.invoke(app, ["lenses"])
    assert res.exit_code == 0 and "alliance" in res.output


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    turns = pd.read_parquet(out / "turns.parquet")
    sessions = pd.read_parquet(out / "sessions.parquet")
    run = json.loads((out / "run.json").read_text())
    assert len(sessions) == 2 and len(turns) == run["counts"]["turns"] == 34
    assert turns[["alliance_goal", "alliance_task", "alliance_bond"]].notna().all().all()
    assert {"alliance_gap_bond_mean", "alliance_client_goal_slope"} <= set(sessions.columns)
    assert run["encoder"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert any(lens["name"] == "alliance" and lens["probe_set"]["version"] for lens in run["lenses"])
    html = (out / "report.html").read_text()
    assert "<script src=" not in html and "http://" not in html.split("<script>")[0]  # nothing fetched
    assert "annomi-42" in html and "similarity to alliance probe statements" in html


@pytest.mark.slow
def test_analyze_skip_writes_rejected_and_keeps_good_records(tmp_path):
    f = tmp_path / "mixed.jsonl"
    lines = [
        {"session_id": "s1", "speaker": "client", "text": "I have been feeling low for weeks."},
        {"session_id": "s1", "speaker": "counsellor", "text": "That sounds hard. What has it been like?"},
        {"session_id": "s1", "speaker": "client", "text": "   "},
        {"session_id": "s1", "speaker": "client", "text": "Mostly I just stay in bed."},
    ]
    f.write_bytes(b"\n".join(json.dumps(x).encode() for x in lines) + b"\n\xff\xfe broken\n")
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", str(f), "--out", str(out), "--on-error", "skip", "--lens", "alliance"])
    assert res.exit_code == 0, res.output
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["location"] for r in rejected] == ["line 3", "line 5"]
    assert "empty" in rejected[0]["problem"] and "UTF-8" in rejected[1]["problem"]
    assert len(pd.read_parquet(out / "turns.parquet")) == 3
