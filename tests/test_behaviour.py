"""Behaviour lens: codebook schema errors, codes on hand-written turns, per-session MI figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus, Turn
from alliance.lenses.behaviour import BehaviourHead, BehaviourLens, Codebook, CodebookError, behaviour_session_figures


def _write(tmp_path, doc) -> str:
    p = tmp_path / "cb.json"
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return str(p)


def _code(**kw):
    base = {"id": "x", "side": "counsellor", "family": "f", "method": "prototype", "label": "X",
            "definition": "d", "examples": ["a", "b"]}
    base.update(kw)
    return base


def test_shipped_codebook_loads_and_covers_the_taxonomy():
    cb = Codebook.load()
    ids = {c.id for c in cb.codes}
    for needed in ("reflection_needs", "reflection_emotions", "reflection_values", "reflection_consequences",
                   "reflection_conflict", "reflection_strengths", "question_experiences", "question_perspectives",
                   "question_emotions", "problem_solving", "planning", "normalising", "psychoeducation",
                   "reflection_simple", "reflection_complex", "question_open", "question_closed", "information",
                   "advice", "options", "change_talk", "sustain_talk", "negative_emotion", "positive_emotion",
                   "insight", "life_event"):
        assert needed in ids
    assert all(len(c.examples) >= 2 for c in cb.codes)


@pytest.mark.parametrize(("doc", "message"), [
    ("{not json", "invalid JSON at line 1"),
    ({"codes": []}, "non-empty list 'codes'"),
    ({"codes": [_code(side="therapist")]}, "code 0 ('x'): field 'side' must be one of"),
    ({"codes": [_code(method="magic")]}, "field 'method' must be one of"),
    ({"codes": [_code(examples=["only one"])]}, "field 'examples' must list at least two"),
    ({"codes": [_code(definition="")]}, "field 'definition' missing or empty"),
    ({"codes": [_code(), _code()]}, "code ids are not unique: ['x']"),
    ({"codes": [_code(requires_any=["nope"])]}, "requires_any/excludes_any name unknown code(s) ['nope']"),
    ({"codes": [_code(cues=["(unclosed"])]}, "field 'cues': '(unclosed' is not a valid regular expression"),
])
def test_codebook_errors_name_file_code_and_field(tmp_path, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(CodebookError) as e:
        Codebook.load(path)
    assert path in str(e.value)
    assert message in str(e.value)


def test_missing_codebook_file_is_named(tmp_path):
    with pytest.raises(CodebookError, match="codebook file not found"):
        Codebook.load(tmp_path / "nope.json")


def test_shipped_head_matches_codebook_and_roundtrips(tmp_path):
    head = BehaviourHead.load()
    assert set(head.codes) >= {"reflection_simple", "reflection_complex", "question_open", "question_closed",
                               "information", "advice", "options", "change_talk", "sustain_talk"}
    assert head.coef.shape == (len(head.codes), 2 * 384 + head.n_hash)
    head.save(tmp_path / "h.npz")
    again = BehaviourHead.load(tmp_path / "h.npz")
    assert again.codes == head.codes
    np.testing.assert_allclose(again.coef, head.coef, atol=1e-6)


def _figures(rows):
    turns = pd.DataFrame(rows, columns=["course_id", "session_id", "turn_index", "speaker"])
    codes = {}
    ids = ["reflection_simple", "reflection_complex", "question_open", "question_closed", "advice",
           "problem_solving", "negative_emotion"]
    for cid in ids:
        codes[f"behaviour_{cid}"] = pd.array([None] * len(rows), dtype="boolean")
    return turns, pd.DataFrame(codes), ids


def test_session_figures_premature_problem_solving_ratio_and_complex_share():
    rows = [("c", "s", i, sp) for i, sp in enumerate(["client", "counsellor", "client", "counsellor", "client",
                                                      "counsellor", "counsellor"])]
    turns, codes, ids = _figures(rows)
    cl = [0, 2, 4]
    co = [1, 3, 5, 6]
    for c in ids:
        side = cl if c == "negative_emotion" else co
        codes.loc[side, f"behaviour_{c}"] = False
    codes.loc[[0, 2], "behaviour_negative_emotion"] = True  # two client turns share a negative emotion
    codes.loc[1, "behaviour_advice"] = True  # advice straight after the first: premature
    codes.loc[3, "behaviour_reflection_complex"] = True  # a reflection after the second: not premature
    codes.loc[5, "behaviour_reflection_simple"] = True
    codes.loc[6, "behaviour_question_open"] = True
    codes.loc[6, "behaviour_problem_solving"] = True  # not right after a negative emotion: does not count
    fig = behaviour_session_figures(turns, codes, ids).iloc[0]
    assert fig["behaviour_after_negative_emotion_n"] == 2
    assert fig["behaviour_premature_problem_solving_rate"] == pytest.approx(0.5)
    assert fig["behaviour_premature_problem_solving_turns"] == "1"
    assert fig["behaviour_reflection_question_ratio"] == pytest.approx(2.0)
    assert fig["behaviour_complex_reflection_share"] == pytest.approx(0.5)
    assert fig["behaviour_rate_advice"] == pytest.approx(0.25)


@pytest.mark.slow
def test_codes_on_unambiguous_hand_written_turns(encoder):
    from alliance.pipeline import analyze

    lines = [
        ("client", "I've been so sad and lonely since my wife died in the spring."),
        ("counsellor", "What would you like to talk about today?"),
        ("client", "My husband and I separated last month."),
        ("counsellor", "Do you drink alcohol every day?"),
        ("client", "I really want to stop drinking, I'm going to pour it all away tonight."),
        ("counsellor", "You should go to your doctor and ask for a referral."),
    ]
    corpus = Corpus.from_turns([Turn("c", "s", i, sp, tx) for i, (sp, tx) in enumerate(lines)])
    out = analyze(corpus, [BehaviourLens()], encoder=encoder).turns
    assert out.loc[0, "behaviour_negative_emotion"]
    assert out.loc[1, "behaviour_question_open"] and not out.loc[1, "behaviour_question_closed"]
    assert out.loc[2, "behaviour_life_event"]
    assert out.loc[3, "behaviour_question_closed"] and not out.loc[3, "behaviour_question_open"]
    # change vs sustain direction is the head's weak spot (see docs/behaviour.md); the scheme keeps them exclusive
    assert not (out.loc[4, "behaviour_change_talk"] and out.loc[4, "behaviour_sustain_talk"])
    assert out.loc[5, "behaviour_advice"] and out.loc[5, "behaviour_problem_solving"]
    assert pd.isna(out.loc[0, "behaviour_advice"])  # counsellor codes are not scored on client turns
