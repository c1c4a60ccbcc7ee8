"""`alliance gap` and `alliance report` on a finished run folder (invented sessions, no encoder)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from alliance.cli import app
from alliance.corpus import Corpus
from alliance.pipeline import run_analysis

runner = CliRunner()


def _run(tmp_path):
    rows = []
    for k, sid in enumerate(["alpha", "beta"]):
        for i in range(6):
            rows.append({"course_id": "c", "session_id": sid, "session_index": k, "turn_index": 2 * i,
                         "speaker": "counsellor", "text": "What would help most right now?"})
            rows.append({"course_id": "c", "session_id": sid, "session_index": k, "turn_index": 2 * i + 1,
                         "speaker": "client", "text": "I am not sure, maybe talking it through helps."})
    sessions = pd.DataFrame({"course_id": ["c", "c"], "session_id": ["alpha", "beta"], "session_index": [0, 1],
                             "meta": [{"score": 71}, {}]})
    run_analysis(Corpus(pd.DataFrame(rows), sessions), tmp_path, lenses=["trajectory"], write_report=False)
    return tmp_path


def test_gap_prints_each_session_with_the_clients_rating_where_known(tmp_path):
    res = runner.invoke(app, ["gap", str(_run(tmp_path))], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "alpha" in res.output and "beta" in res.output
    assert "score=71" in res.output
    assert "cal. overall" in res.output and "cal. goal / task / bond" in res.output


def test_gap_and_report_name_a_missing_run(tmp_path):
    res = runner.invoke(app, ["gap", str(tmp_path / "nowhere")], env={"COLUMNS": "400"})
    assert res.exit_code == 2
    assert "turns.parquet: missing" in res.output and "alliance analyze" in res.output


def test_report_rewrites_the_site_and_exports_figures(tmp_path):
    out = _run(tmp_path)
    res = runner.invoke(app, ["report", str(out), "--export", "svg"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists()
    assert list((out / "figures").glob("*.svg"))


def test_gap_says_when_a_rating_trained_the_calibration(tmp_path):
    out = _run(tmp_path)
    s = pd.read_parquet(out / "sessions.parquet")
    s["calibration_in_training"] = [True, False]
    s.to_parquet(out / "sessions.parquet")
    res = runner.invoke(app, ["gap", str(out)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "score=71 (trained the calibration: no test of it)" in res.output


def test_train_calibration_records_its_lenses_clients_and_training_sessions(tmp_path):
    from alliance.calibration import CalibratedAlliance
    from tests.test_calibration import _corpus

    c = _corpus(40)
    run_analysis(c, tmp_path / "run", lenses=["markers", "trajectory"], write_report=False)
    res = runner.invoke(app, ["train", "calibration", str(tmp_path / "run"), "--out", str(tmp_path / "m.json.gz")])
    assert res.exit_code == 0, res.output
    model = CalibratedAlliance.load(tmp_path / "m.json.gz")
    assert model.card_["lenses"] == ["markers", "trajectory"]
    assert model.card_["sessions"] == 40 and model.card_["clients"] == 20
    keys = list(zip(c.sessions["course_id"], c.sessions["session_id"], strict=True))
    assert model.trained_on(keys).all()
    assert model.trained_on_groups(["3", "99"]).tolist() == [True, False]


def test_gap_outcome_prints_what_each_measure_adds_and_names_a_missing_label(tmp_path):
    from tests.test_calibration import _corpus

    run_analysis(_corpus(60), tmp_path, lenses=["markers", "trajectory"], write_report=False)
    res = runner.invoke(app, ["gap", str(tmp_path), "--limit", "1", "--outcome", "score"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "what explains 'score' (60 rated sessions" in res.output and "folds by client_id" in res.output
    assert "+ markers" in res.output
    res = runner.invoke(app, ["gap", str(tmp_path), "--outcome", "satisfaction"], env={"COLUMNS": "300"})
    assert res.exit_code == 2
    assert "no session has the label 'satisfaction'" in res.output and "score" in res.output


def test_gap_outcome_warns_on_few_sessions_per_feature(tmp_path):
    from tests.test_calibration import _corpus

    run_analysis(_corpus(60), tmp_path, lenses=["markers", "trajectory"], write_report=False)
    res = runner.invoke(app, ["gap", str(tmp_path), "--limit", "1", "--outcome", "score"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "on 60 rated sessions" in res.output and "under 100 sessions" in res.output


def test_gap_outcome_names_a_text_label_instead_of_saying_nothing_was_rated(tmp_path):
    from tests.test_calibration import _corpus

    c = _corpus(40)
    c.sessions["meta"] = [{**m, "mood": ["better", "worse", "same"][i % 3]} for i, m in enumerate(c.sessions["meta"])]
    run_analysis(c, tmp_path, lenses=["markers"], write_report=False)
    res = runner.invoke(app, ["gap", str(tmp_path), "--limit", "1", "--outcome", "mood"], env={"COLUMNS": "400"})
    assert res.exit_code == 2
    assert "is text, not a number, in 40 of 40 sessions ('better', 'same', 'worse')" in res.output
    assert "only 0 sessions carry" not in res.output


def test_gap_outcome_reads_numbers_and_flags_written_as_text():
    from alliance.gap import outcome_numbers, sample_warning

    y, text = outcome_numbers([71, "64.5", "true", "No", None, True, "high", float("nan")])
    np.testing.assert_array_equal(y[:6], [71.0, 64.5, 1.0, 0.0, np.nan, 1.0])
    assert text == ["high"] and np.isnan(y[6]) and np.isnan(y[7])
    assert sample_warning(5000, 254) is None and "254 feature columns on 40" in sample_warning(40, 254)


def test_report_export_names_a_bad_format_in_one_line_before_writing_anything(tmp_path):
    out = _run(tmp_path)
    res = runner.invoke(app, ["report", str(out), "--export", "jpg"], env={"COLUMNS": "400"})
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "--export 'jpg': not a figure format; choose png, svg or pdf" in lines[0]
    assert not (out / "report.html").exists() and not (out / "figures").exists()


def test_report_pages_option_and_progress_in_a_log(tmp_path):
    out = _run(tmp_path)
    res = runner.invoke(app, ["report", str(out), "--pages", "all", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "session pages: 2/2" in res.output  # no terminal here: progress is printed as lines
    assert len(list((out / "report_files" / "sessions").glob("*.html"))) == 2
    res = runner.invoke(app, ["report", str(out), "--pages", "none"])
    assert res.exit_code == 0, res.output
    assert not list((out / "report_files" / "sessions").glob("*.html"))
    res = runner.invoke(app, ["report", str(out), "--pages", "some"])
    assert res.exit_code == 2 and "some" in res.output
