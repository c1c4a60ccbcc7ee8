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


def _jsonl(tmp_path, n_courses=3):
    f = tmp_path / "in.jsonl"
    rows = [{"course_id": f"k{c}", "session_id": f"k{c}s{s}", "session_index": s, "speaker": sp,
             "text": f"{'I feel stuck at work' if sp == 'client' else 'What would help?'} ({c}/{s}/{i})"}
            for c in range(n_courses) for s in range(2) for i, sp in enumerate(["client", "counsellor"] * 2)]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--format", "jsnl", "--format 'jsnl' is not a format; choose one of: auto, "),
    ("--lens", "markerz", "--lens 'markerz': no such lens; choose from: alliance, "),
])
def test_a_misspelled_choice_is_one_line_and_leaves_no_folder(tmp_path, option, value, expected):
    out = tmp_path / "out"
    res = runner.invoke(app, ["analyze", str(_jsonl(tmp_path)), "--out", str(out), option, value],
                        env={"COLUMNS": "300"})
    assert res.exit_code == 2
    assert expected in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_report_names_a_bad_export_format(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path), "--export", "jpg"], env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "--export 'jpg': not a figure format; choose png, svg" in res.output


def test_limit_and_sample_take_whole_courses_and_are_recorded(tmp_path):
    src = _jsonl(tmp_path, 5)
    res = runner.invoke(app, ["analyze", str(src), "--out", str(tmp_path / "lim"), "--lens", "markers",
                              "--limit", "2"])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "lim" / "run.json").read_text())
    assert run["selection"]["limit"] == 2 and run["selection"]["courses"] == 2 and run["selection"]["of_courses"] == 5
    s = pd.read_parquet(tmp_path / "lim" / "sessions.parquet")
    assert sorted(s["session_id"]) == ["k0s0", "k0s1", "k1s0", "k1s1"]  # whole courses, in corpus order
    picks = []
    for name in ("a", "b"):
        res = runner.invoke(app, ["analyze", str(src), "--out", str(tmp_path / name), "--lens", "markers",
                                  "--sample", "3", "--seed", "4"])
        assert res.exit_code == 0, res.output
        picks.append(sorted(pd.read_parquet(tmp_path / name / "sessions.parquet")["session_id"]))
    assert picks[0] == picks[1] and len(picks[0]) == 6  # three whole courses, the same for the same seed
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["selection"]["sample"] == 3 and run["selection"]["seed"] == 4 and run["counts"]["sessions"] == 6


def test_report_refuses_an_incomplete_run(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["analyze", str(_jsonl(tmp_path)), "--out", str(out), "--lens", "markers"]).exit_code == 0
    (out / "run.json").unlink()
    for cmd in (["report", str(out)], ["gap", str(out)]):
        res = runner.invoke(app, cmd, env={"COLUMNS": "300"})
        assert res.exit_code == 2 and "incomplete run" in res.output and "Traceback" not in res.output


def test_a_failed_report_exits_non_zero_and_report_rebuilds_it(tmp_path, monkeypatch):
    import alliance.report

    out = tmp_path / "out"
    real = alliance.report.write_html_report

    def broken(analysis, path):
        raise RuntimeError("boom")

    monkeypatch.setattr(alliance.report, "write_html_report", broken)
    res = runner.invoke(app, ["analyze", str(_jsonl(tmp_path)), "--out", str(out), "--lens", "markers"],
                        env={"COLUMNS": "300"})
    assert res.exit_code == 1 and "the report failed: RuntimeError: boom" in res.output
    assert (out / "turns.parquet").exists() and not (out / "report.html").exists()
    monkeypatch.setattr(alliance.report, "write_html_report", real)
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists()


def test_progress_in_a_log_file_is_lines_with_an_eta():
    import io

    from rich.console import Console

    from alliance.cli.progress import ProgressEncoder, RunProgress
    from tests.helpers import TableEncoder

    buf = io.StringIO()
    now = [0.0]
    with RunProgress(Console(file=buf, width=200), total_turns=2000, interval=10, clock=lambda: now[0]) as bar:
        texts_seen = []

        class Slow(TableEncoder):
            def encode(self, texts):
                now[0] += 6.0  # six seconds per slice
                texts_seen.extend(texts)
                return super().encode(texts)

        enc = ProgressEncoder(Slow({"x": [1, 0]}), bar.encoded, slice_size=500)
        vecs = enc.encode([f"t{i}" for i in range(2000)])
        assert vecs.shape == (2000, 2) and len(texts_seen) == 2000 and enc.model_id == "table-encoder"
        bar.turns(1000, 2000)
        now[0] += 10
        bar.turns(2000, 2000)
        enc.encode(["short call"])  # a quick call prints nothing
    lines = buf.getvalue().splitlines()
    assert [ln.split(" ", 1)[1] for ln in lines] == [
        "encoding: 1,000/2,000 texts (50%), 0:00:12 elapsed, about 0:00:12 left",
        "encoding: 2,000/2,000 texts (100%), 0:00:24 elapsed",
        "scoring: 1,000/2,000 turns (50%), 0:00:24 elapsed, about 0:00:24 left",
        "scoring: 2,000/2,000 turns (100%), 0:00:34 elapsed",
    ]
