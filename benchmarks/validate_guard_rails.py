"""Guard rails of the calibrated columns: timestamps alone, the bundled demo sessions, scales and domain flags.

Evidence: the cases issue 14 reported (three hand-written chatbot conversations whose timestamps alone moved the
overall from 37 to 309; the demo's two public-domain AnnoMI sessions, high- and low-quality MI), rescored with the
shipped model. Needs no research data and no encoder (markers and trajectory lenses, the shipped model's own).

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_guard_rails.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from alliance.calibration import CalibratedAlliance
    from alliance.io import read
    from alliance.pipeline import run_analysis
    from test_calibration import _chatbot_log  # the same invented chats the test scores

    model = CalibratedAlliance.load()
    lenses = list(model.card_.get("lenses") or ["markers", "trajectory"])
    print(f"# validate_guard_rails  date {time.strftime('%Y-%m-%d')}  model {model.card_.get('model_version')}  "
          f"lenses {','.join(lenses)}")
    cols = ["calibrated_overall", "calibrated_bond", "calibrated_bounded", "calibrated_out_of_domain"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for k, (label, spacing) in enumerate((("no timestamps", None), ("a minute apart", 60.0),
                                               ("an hour apart", 3600.0))):
            s = run_analysis(_chatbot_log(spacing), Path(tmp) / str(k), lenses=lenses, write_report=False).sessions
            rows[label] = s.sort_values("course_id").set_index("course_id")
        print("\n## Three chatbot conversations, only the timestamps differ (calibrated_overall, 0-100)")
        for label, s in rows.items():
            print(f"{label}: " + " / ".join(f"{v:.1f}" for v in s["calibrated_overall"])
                  + f"   out of domain: {s['calibrated_out_of_domain'].all()}"
                  + f" ({s['calibrated_out_of_domain_features'].iloc[0]})")
        spread = np.ptp(np.vstack([s["calibrated_overall"].to_numpy() for s in rows.values()]), axis=0)
        print(f"largest move from timestamps alone: {spread.max():.2f} points")
        sample = Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl")))
        corpus = read([sample], format="jsonl").corpus
        s = run_analysis(corpus, Path(tmp) / "demo", lenses=lenses, write_report=False).sessions
        s["mi_quality"] = [(m if isinstance(m, dict) else json.loads(m or "{}")).get("mi_quality")
                           for m in s["meta"]]
        print("\n## The demo's two AnnoMI sessions (expert-judged MI quality)")
        for r in s.itertuples():
            print(f"{r.session_id} ({r.mi_quality} quality): " + "   ".join(
                f"{c.removeprefix('calibrated_')} {getattr(r, c):.2f}" if isinstance(getattr(r, c), float)
                else f"{c.removeprefix('calibrated_')} {getattr(r, c)}" for c in cols)
                  + f"   ({r.calibrated_out_of_domain_features or 'in domain'})")


if __name__ == "__main__":
    main()
