"""Rupture markers: family scores on the real encoder, marks feeding the trajectory's ruptures, bad probe files."""

from __future__ import annotations

import json

import pytest

from alliance.lenses.ruptures import RuptureMarkersLens, RuptureProbeError, load_families
from alliance.pipeline import analyze, build_lenses

from .helpers import make_corpus

NEUTRAL = [("counsellor", "What would you like to talk about today?"),
           ("client", "My sister is moving to another city next month."),
           ("counsellor", "How do you feel about her moving?"),
           ("client", "I will miss her, we see each other every weekend."),
           ("counsellor", "You're close to her."),
           ("client", "Yes, we have always been close since we were children.")]


def test_families_load_with_their_sides_and_kinds():
    fams, version, source = load_families()
    kinds = {f.kind for f in fams}
    assert kinds == {"confrontation", "withdrawal", "repair"}
    assert all(f.side == ("counsellor" if f.kind == "repair" else "client") for f in fams)
    assert version == "1.0.0" and source.endswith("rupture_probes_v1.json")


def test_confrontation_at_the_end_scores_and_marks_an_unrepaired_rupture(encoder):
    strained = [*NEUTRAL, ("counsellor", "Maybe you should just tell her to stay."),
                ("client", "You're not really listening to me.")]
    repaired = [*strained, ("counsellor", "I'm sorry, I think I misunderstood you."),
                ("client", "It's fine. I just want to enjoy the time we have left together.")]
    corpus = make_corpus({"neutral": NEUTRAL, "strained": strained, "repaired": repaired})
    a = analyze(corpus, lenses=["trajectory", "ruptures"], encoder=encoder)  # order fixed by `after`
    s = a.sessions.set_index("session_id")
    assert s.loc["strained", "ruptures_complaint_counsellor_max"] > s.loc["neutral", "ruptures_complaint_counsellor_max"] + 3
    assert s.loc["strained", "ruptures_complaint_counsellor_last"] >= RuptureMarkersLens().mark_z
    assert s.loc["strained", "ruptures_n_confrontation"] == 1 and s.loc["neutral", "ruptures_n_confrontation"] == 0
    assert s.loc["strained", "ruptures_marked_turns"] == "7:complaint_counsellor"
    assert s.loc["repaired", "ruptures_n_repair"] == 1  # the counsellor's apology is a repair marker
    t = a.turns.set_index(["session_id", "turn_index"])
    assert t.loc[("strained", 7), "trajectory_rupture_kind"].endswith("confrontation marker")
    assert "unrepaired rupture at turn(s) 7" in s.loc["strained", "trajectory_flags"]
    assert t.loc[("repaired", 7), "trajectory_repaired_at"] == 9
    assert s.loc["repaired", "trajectory_unrepaired_turns"] == ""
    # counsellor turns carry no client-marker score, client turns no repair score
    assert t.loc[("strained", 6), "ruptures_confrontation"] != t.loc[("strained", 6), "ruptures_confrontation"]
    assert t.loc[("strained", 7), "ruptures_repair"] != t.loc[("strained", 7), "ruptures_repair"]


def test_trajectory_runs_after_the_lenses_it_reads_when_they_are_in_the_run():
    names = [lens.name for lens in build_lenses(["trajectory", "markers", "ruptures"])]
    assert names.index("ruptures") < names.index("trajectory") and names.index("markers") < names.index("trajectory")
    assert [lens.name for lens in build_lenses(["trajectory"])] == ["trajectory"]  # optional, not required


@pytest.mark.parametrize(("family", "message"), [
    ({"id": "x", "side": "counsellor", "kind": "confrontation", "probes": ["a"]}, "read on the client's turns"),
    ({"id": "x", "side": "client", "kind": "anger", "probes": ["a"]}, "'kind' must be one of"),
    ({"id": "x y", "side": "client", "kind": "withdrawal", "probes": ["a"]}, "'id' must be a name"),
    ({"id": "x", "side": "client", "kind": "withdrawal", "probes": []}, "non-empty list"),
])
def test_bad_probe_bank_names_the_family_and_the_problem(tmp_path, family, message):
    p = tmp_path / "bank.json"
    p.write_text(json.dumps({"families": [family]}))
    with pytest.raises(RuptureProbeError, match=message) as e:
        load_families(p)
    assert str(p) in str(e.value) and "family 0" in str(e.value)


def test_invalid_json_and_missing_file_are_located(tmp_path):
    p = tmp_path / "bank.json"
    p.write_text('{"families": [\n  {"id": "x",,}\n]}')
    with pytest.raises(RuptureProbeError, match="line 2"):
        load_families(p)
    with pytest.raises(RuptureProbeError, match="not found"):
        RuptureMarkersLens(probes=tmp_path / "nope.json")
