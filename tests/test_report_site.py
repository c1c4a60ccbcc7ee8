"""The report site: overview page linking to one page per session and course, offline, figures exportable."""

from __future__ import annotations

import re

import pandas as pd

from alliance.corpus import Corpus
from alliance.pipeline import run_analysis


def _corpus() -> Corpus:
    rows = []
    for k, sid in enumerate(["first", "second"]):
        for i in range(8):
            rows.append({"course_id": "pair-1", "session_id": sid, "session_index": k, "turn_index": 2 * i,
                         "speaker": "counsellor", "text": "What feels most important to you today?"})
            rows.append({"course_id": "pair-1", "session_id": sid, "session_index": k, "turn_index": 2 * i + 1,
                         "speaker": "client", "text": "ok" if i in (5, 6) else "I keep worrying about my exams."})
    return Corpus(pd.DataFrame(rows))


def test_analyze_writes_overview_session_and_course_pages(tmp_path):
    a = run_analysis(_corpus(), tmp_path, lenses=["trajectory"])
    assert (tmp_path / "courses.parquet").exists()
    assert len(pd.read_parquet(tmp_path / "courses.parquet")) == 1
    assert a.courses is not None and a.courses.loc[0, "n_sessions"] == 2
    overview = (tmp_path / "report.html").read_text()
    links = re.findall(r"href='(report_files/sessions/[^']+)'", overview)
    assert len(set(links)) == 2
    page = (tmp_path / set(links).pop()).read_text()
    assert "Trajectory: reliable change" in page
    assert "rupture" in page and "transcript" in page
    # the shipped calibration's prediction, every part beside the overall
    assert "Predicted client rating (calibrated model)" in page and "each axis above (+) or below" in page
    # offline: the only script source is the shared local Vega bundle
    assert re.findall(r"<script src='([^']+)'", page) == ["../../report_files/vega.js"]
    assert "<script src=" not in overview  # the overview opens on its own
    assert "http://" not in page and "https://" not in page.replace("https://vega.github.io", "")
    assert (tmp_path / "report_files" / "vega.js").stat().st_size > 100_000
    assert "export: true" in page
    # the lazy loader runs in its own block: the Vega bundle's top-level names (io, ...) must not clash with it
    assert "(() => {" in page and "const io " not in page.split("vega.js")[-1]
    assert len(list((tmp_path / "report_files" / "courses").glob("*.html"))) == 1


def test_overview_figures_export_as_png_and_svg(tmp_path):
    from alliance.report.site import export_figures

    a = run_analysis(_corpus(), tmp_path, lenses=["trajectory"], write_report=False)
    files = export_figures(a.sessions, tmp_path / "fig")
    assert {p.suffix for p in files} == {".png", ".svg"}
    png = next(p for p in files if p.suffix == ".png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_overview_says_how_many_sessions_trained_the_calibration(tmp_path):
    from alliance.report.site import write_site

    a = run_analysis(_corpus(), tmp_path, lenses=["trajectory"], write_report=False)
    run = {"lenses": [{"name": "trajectory"}], "counts": {"sessions": 2}}
    write_site(a.turns, a.sessions.assign(calibration_in_training=[True, False]), run, tmp_path / "seen")
    assert "1 of these sessions trained the calibration model" in (tmp_path / "seen" / "report.html").read_text()
    write_site(a.turns, a.sessions.assign(calibration_in_training=[False, False]), run, tmp_path / "unseen")
    assert "trained the calibration model" not in (tmp_path / "unseen" / "report.html").read_text()
