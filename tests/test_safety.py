"""Safety lens: learned risk levels with a chosen operating point, odd text, reply judgement, flags, model files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alliance.corpus import Corpus, Turn
from alliance.lenses.base import LensContext
from alliance.lenses.safety import SafetyLens, disclosure_addressed, spans
from alliance.lenses.safety_flags import level_rank, session_flags
from alliance.lenses.safety_model import (
    CATEGORIES,
    REPLY_HEADS,
    Binary,
    SafetyModel,
    SafetyModelError,
    load_safety_model,
    pair_features,
)
from alliance.lenses.safety_rules import imminence, unreadable
from tests.helpers import TableEncoder

D = 6
# axis 0: ordinary talk, 1: risk, 2: endangering plan, 3: harm to others, 4: dismissive reply, 5: agreeing reply
V = {
    "I want to die.": [0, 1, 0, 0, 0, 0],
    "I'm going to end it tonight, the pills are ready.": [0, 1, 0, 0, 0, 0],
    "I'm going to hurt him.": [0, 1, 0, 1, 0, 0],
    "I'm stopping my antidepressants today.": [0, 0.3, 1, 0, 0, 0],
    "I smoke fifteen a day.": [1, 0, 0, 0, 0, 0],
    "Cheer up, let's talk about something fun.": [0, 0, 0, 0, 1, 0],
    "Great idea, you know your body best.": [0, 0, 0, 0, 0, 1],
    "Are you safe right now? You can call 988.": [1, 0, 0, 0, 0, 0],
    "The tallest bridge is 60 metres high.": [1, 0, 0, 0, 0, 0],
    "What would cutting down give you?": [1, 0, 0, 0, 0, 0],
}


def toy_model(**meta) -> SafetyModel:
    """A model over the six toy axes whose decisions are known exactly."""
    def axis(k: int, w: float = 8.0) -> np.ndarray:
        v = np.zeros(D, dtype=np.float32)
        v[k] = w
        return v

    cat = np.zeros((len(CATEGORIES), D), dtype=np.float32)
    cat[CATEGORIES.index("suicide"), 1] = 2
    cat[CATEGORIES.index("harm_to_others"), 3] = 6
    cat[CATEGORIES.index("endangering_plan"), 2] = 6

    def reply(k: int) -> Binary:
        c = np.zeros(3 * D, dtype=np.float32)
        c[k] = 8.0  # the reply part of the pair features
        return Binary(c, -4.0, (1.0, 0.0), 0.5)

    heads = {"ignorance": reply(4), "collusion": reply(5), "expertise": Binary(np.zeros(3 * D, np.float32), -5.0),
             "sycophancy": Binary(np.zeros(3 * D, np.float32), -5.0),
             "dependence": Binary(np.zeros(3 * D, np.float32), -5.0)}
    curve = [{"threshold": 0.3, "recall": 0.99, "false_alarm": 0.1}, {"threshold": 0.5, "recall": 0.95,
             "false_alarm": 0.02}, {"threshold": 0.9, "recall": 0.6, "false_alarm": 0.001}]
    return SafetyModel(Binary(axis(1), -4.0, (1.0, 0.0), 0.5), Binary(axis(2), -4.0, (1.0, 0.0), 0.5), cat,
                       np.zeros(len(CATEGORIES), np.float32), heads, 0.3,
                       {"model_id": "table-encoder", "kind": "test", "version": "t", "dev_curve": curve,
                        "operating_point": {"name": "toy", "threshold": 0.5}, **meta}, "toy")


@pytest.fixture
def enc():
    return TableEncoder(V, fallback=[1, 0, 0, 0, 0, 0])


def run(lens: SafetyLens, enc, sessions: dict[str, list[tuple[str, str]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    turns = [Turn(k, k, i, sp, tx) for k, v in sessions.items() for i, (sp, tx) in enumerate(v)]
    corpus = Corpus.from_turns(turns)
    ctx = LensContext(corpus, enc)
    ctx.add(pd.DataFrame({"alliance_bond": 0.0, "alliance_goal": 0.0, "alliance_task": 0.0}, index=corpus.turns.index))
    cols = lens.score(corpus, ctx)
    return pd.concat([corpus.turns, cols], axis=1), lens.summarize(corpus, cols, ctx).reset_index()


def test_levels_categories_and_probability_follow_the_model(enc):
    t, _ = run(SafetyLens(model=toy_model()), enc, {"s": [
        ("client", "I want to die."), ("client", "I'm going to end it tonight, the pills are ready."),
        ("client", "I'm going to hurt him."), ("client", "I'm stopping my antidepressants today."),
        ("client", "I smoke fifteen a day."), ("counsellor", "What would cutting down give you?")]})
    assert t["safety_risk_level"].tolist()[:5] == ["high", "imminent", "high", "low", "none"]
    assert t["safety_risk_category"].tolist()[:5] == ["suicide", "suicide", "harm_to_others", "endangering_plan", ""]
    assert t["safety_risk_p"].iloc[0] == pytest.approx(1 / (1 + np.exp(-4)), rel=1e-5)
    assert pd.isna(t["safety_risk_level"].iloc[5]) and pd.isna(t["safety_risk_p"].iloc[5])
    assert "imminence" in t["safety_risk_why"].iloc[1]
    assert t["safety_risk_why"].iloc[0]  # occlusion names words, never an exemplar id


def test_operating_point_is_chosen_and_recorded(enc):
    strict = SafetyLens(model=toy_model(), threshold=0.99)
    t, _ = run(strict, enc, {"s": [("client", "I want to die.")]})
    assert t["safety_risk_level"].iloc[0] == "low"  # below the user's threshold, above the low threshold
    d = strict.describe()
    assert d["operating_point"]["threshold"] == 0.99 and d["operating_point"]["name"] == "user threshold"
    by_recall = SafetyLens(model=toy_model(), recall=0.95)
    assert by_recall.threshold == 0.5 and by_recall.describe()["operating_point"]["recall"] == 0.95
    assert SafetyLens(model=toy_model(), recall=0.99).threshold == 0.3
    with pytest.raises(SafetyModelError, match="threshold must lie in"):
        SafetyLens(model=toy_model(), threshold=1.5)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("   ", "empty"), ("#$%^&*()!!", "no letters"),
    ("Je suis très fatigué aujourd'hui et je ne sais pas quoi faire", "not English"),
    ("これは日本語の文です", "not English"), ("Yeah.", ""), ("...", ""), ("I'm ok", "")])
def test_unreadable_text_is_recognised(text, reason):
    assert unreadable(text).startswith(reason) if reason else unreadable(text) == ""


def test_odd_text_gets_unknown_and_no_turn_is_dropped(enc):
    odd = ["\x00\x01", "🙂🙂🙂", "x" * 20000, "Je ne sais pas quoi faire de ma vie", "...", "I want to die."]
    t, s = run(SafetyLens(model=toy_model()), enc, {"s": [("client", x) for x in odd]})
    assert len(t) == len(odd)
    assert t["safety_risk_level"].tolist() == ["unknown"] * 4 + ["none", "high"]
    assert s["safety_n_unknown"].iloc[0] == 4 and s["safety_max_risk_level"].iloc[0] == "high"


def test_reply_judgement_names_its_evidence(enc):
    t, s = run(SafetyLens(model=toy_model()), enc, {
        "dismissed": [("client", "I want to die."), ("counsellor", "Cheer up, let's talk about something fun.")],
        "met": [("client", "I want to die."), ("counsellor", "Are you safe right now? You can call 988.")],
        "means": [("client", "I want to die."), ("counsellor", "The tallest bridge is 60 metres high.")],
        "collusion": [("client", "I'm stopping my antidepressants today."),
                      ("counsellor", "Great idea, you know your body best.")]})
    s = s.set_index("session_id")
    r = t.set_index(["session_id", "turn_index"])
    assert r.loc[("dismissed", 1), "safety_quieting"] and r.loc[("dismissed", 1), "safety_concerns"] == "quieting"
    assert "ignorance" in r.loc[("dismissed", 1), "safety_reply_evidence"]
    assert not r.loc[("dismissed", 0), "safety_risk_addressed"]
    assert r.loc[("met", 1), "safety_asked_safety"] and r.loc[("met", 1), "safety_referred"]
    assert r.loc[("met", 0), "safety_risk_addressed"]
    assert r.loc[("means", 1), "safety_means_info"] and '"tallest bridge is"' in r.loc[("means", 1), "safety_reply_evidence"]
    assert r.loc[("collusion", 1), "safety_collusion"]
    assert s.loc["dismissed", "safety_flag_risk_not_addressed"]
    assert s.loc["dismissed", "safety_flag_risk_not_addressed_turns"] == "0"
    assert not s.loc["met", "safety_flag_risk_not_addressed"]
    assert s.loc["means", "safety_flag_risk_not_addressed_turns"] == "0, 1"
    assert s.loc["collusion", "safety_flag_risk_not_addressed"]  # a plan met with agreement
    assert s.loc["met", "safety_max_risk_level"] == "high" and s.loc["met", "safety_n_high_or_imminent"] == 1


def test_unanswered_disclosure_stays_na(enc):
    t, _ = run(SafetyLens(model=toy_model()), enc, {"s": [("client", "I want to die.")]})
    assert pd.isna(t["safety_risk_addressed"].iloc[0])


def _frame(rows, levels, **cols):
    s = pd.DataFrame(rows, columns=["turn_index", "speaker"])
    s["course_id"], s["session_id"] = "c", "s"
    s["safety_risk_level"] = levels
    for k in ("means_info", "collusion", "quieting", "dependence", "sycophancy", "concern", "risk_addressed"):
        s[f"safety_{k}"] = pd.array(cols.pop(k, [pd.NA] * len(rows)), dtype="boolean")
    for k, v in cols.items():
        s[k] = v
    return s


ROWS = [(0, "client"), (1, "counsellor"), (2, "client"), (3, "counsellor"), (4, "client"), (5, "counsellor")]


@pytest.mark.parametrize("levels", [
    pd.array(["none", pd.NA, "high", pd.NA, "none", pd.NA], dtype="string"),
    pd.array([0, pd.NA, 2, pd.NA, 0, pd.NA], dtype="Int64"),  # the old numeric convention still reads
])
def test_session_flags_with_either_level_convention(levels):
    s = _frame(ROWS, levels, risk_addressed=[pd.NA, pd.NA, False, pd.NA, pd.NA, pd.NA],
               concern=[pd.NA, False, pd.NA, True, pd.NA, False],
               alliance_bond=[1.0, 1.2, 0.8, 1.5, 0.9, 0.7], alliance_goal=[0.1, 0, 0.1, 0, 0.1, 0],
               alliance_task=[0.2, 0, 0.2, 0, 0.2, 0], empathy_total=[np.nan, 4.5, np.nan, 4.0, np.nan, 1.0])
    f = session_flags(s)
    assert f["safety_max_risk_level"] == "high"
    assert f["safety_flag_risk_not_addressed"] and f["safety_flag_risk_not_addressed_turns"] == "2"
    assert f["safety_flag_bond_high_while_concern"] and f["safety_flag_bond_high_while_concern_turns"] == "2, 3"
    assert f["safety_flag_empathy_high_goal_task_flat"]
    assert f["safety_flag_empathy_high_goal_task_flat_turns"] == "1, 3"


def test_flags_stay_down_when_risk_is_met_and_goal_moves():
    s = _frame(ROWS, ["high", pd.NA, "none", pd.NA, "none", pd.NA],
               risk_addressed=[True, pd.NA, pd.NA, pd.NA, pd.NA, pd.NA], concern=[pd.NA, False] * 3,
               alliance_bond=[1.0] * 6, alliance_goal=[-1.0, 0, 0.5, 0, 2.0, 0],
               alliance_task=[-1.0, 0, 0.5, 0, 2.0, 0], empathy_total=[np.nan, 4.5] * 3)
    f = session_flags(s)
    assert not f["safety_flag_risk_not_addressed"]
    assert not f["safety_flag_bond_high_while_concern"]
    assert not f["safety_flag_empathy_high_goal_task_flat"]


def test_level_rank_reads_labels_numbers_and_unknown():
    assert level_rank(pd.Series(["none", "imminent", "unknown", None])).tolist()[:2] == [0, 3]
    assert level_rank(pd.Series(["unknown"])).isna().all()
    assert level_rank(pd.Series([1, 2])).tolist() == [1, 2]


def test_disclosure_addressed_rules():
    rep = pd.DataFrame({f"safety_{k}": [v] for k, v in {"asked_safety": False, "referred": True, "means_info": False,
                        "collusion": False, "acknowledged": False, "concern": False}.items()})
    assert disclosure_addressed("high", rep)
    rep["safety_means_info"] = True
    assert not disclosure_addressed("imminent", rep)


def test_model_file_roundtrip_and_clear_errors(tmp_path):
    m = toy_model()
    path = m.save(tmp_path / "m" / "safety_model.npz")
    back = load_safety_model(tmp_path / "m")
    X = np.eye(D, dtype=np.float32)
    assert np.allclose(back.risk.proba(X), m.risk.proba(X)) and back.low_threshold == m.low_threshold
    P = pair_features(X, X)
    assert set(back.reply) == set(REPLY_HEADS)
    assert np.allclose(back.reply["collusion"].proba(P), m.reply["collusion"].proba(P))
    missing = tmp_path / "nowhere" / "safety_model.npz"
    with pytest.raises(SafetyModelError, match=r"nowhere/safety_model.npz: safety model file not found; build it "
                                               r"with `alliance train safety"):
        SafetyLens(model=missing)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SafetyModelError, match=r"bad.npz: not a safety model file"):
        load_safety_model(bad)
    assert path.exists()


def test_encoder_mismatch_is_refused():
    other = TableEncoder(V, model_id="another-model")
    corpus = Corpus.from_turns([Turn("c", "s", 0, "client", "I want to die.")])
    with pytest.raises(ValueError, match="trained on 'table-encoder' embeddings"):
        SafetyLens(model=toy_model()).score(corpus, LensContext(corpus, other))


def test_user_model_is_preferred_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_HOME", str(tmp_path))
    assert load_safety_model().source.startswith("alliance:data/safety/")
    toy_model().save(tmp_path / "models" / "safety" / "safety_model.npz")
    assert load_safety_model().source == str(tmp_path / "models" / "safety" / "safety_model.npz")
    assert load_safety_model("default").source.startswith("alliance:data/safety/")


def test_shipped_default_is_small_and_carries_its_operating_point():
    from importlib import resources

    m = load_safety_model("default")
    size = resources.files("alliance.data.safety").joinpath("safety_default_v2.npz").read_bytes()
    assert len(size) < 2_000_000
    assert m.meta["kind"] == "default" and m.model_id.endswith("all-MiniLM-L6-v2")
    assert 0 < m.low_threshold <= m.risk.threshold < 1
    # ordinary talk only from AnnoMI and ESConv's train split; nothing derived from the safety sources
    assert set(m.meta["risk_sources"]) <= {"exemplar", "annomi", "esconv"}
    assert m.meta["dev_curve"] and m.operating_point["threshold"] == pytest.approx(m.risk.threshold, abs=1e-4)


def test_spans_and_imminence_cues():
    assert spans("one, two. three") == ["one,", "two.", "three"]
    assert len(spans("a b c d e f g h i j k l m n o p q r")) <= 8
    assert imminence("I'm standing on the bridge right now") == "location"
    assert imminence("I killed it at the interview") == ""


def test_exemplars_are_well_formed():
    from alliance.training.safety import load_exemplars

    doc = load_exemplars()
    cats = {c for c, _, _ in doc["client"]}
    assert set(CATEGORIES) | {"none"} == cats
    assert "CC0" in doc["licence"]


def test_fit_model_on_separable_toy_data():
    from alliance.training.safety import fit_model

    rng = np.random.default_rng(0)
    n = 200
    y = np.r_[np.ones(40), np.zeros(n - 40)]
    X = rng.normal(size=(n, D)).astype(np.float32)
    X[:40, 1] += 4
    risk = pd.DataFrame({"source": ["bhh"] * 40 + ["annomi"] * (n - 40), "text": [f"t{i}" for i in range(n)],
                         "group": [f"g{i // 2}" for i in range(n)], "unit": [f"u{i // 2}" for i in range(n)],
                         "y_risk": y, "y_plan": np.where(y == 1, np.nan, 0.0),
                         "category": np.where(y == 1, "suicide", ""), "bag": np.r_[np.ones(40, bool), np.zeros(n - 40, bool)]})
    risk["ordinary"] = risk["source"] == "annomi"
    risk.loc[:1, ["y_plan", "category"]] = [1.0, "endangering_plan"]
    reply = pd.DataFrame({"client": ["a"] * 4, "reply": ["b"] * 4, "group": ["x", "y", "z", "w"], "source": "t",
                          **{h: [1.0, 0.0, 1.0, 0.0] for h in REPLY_HEADS}})
    m = fit_model(risk, X, reply, rng.normal(size=(4, 3 * D)).astype(np.float32), "toy", seed=0)
    assert 0 < m.risk.threshold < 1 and m.meta["operating_point"]["dev_false_alarm"] <= 0.05
    assert m.meta["operating_point"]["dev_recall"] >= 0.8
    assert m.risk.proba(X[:40]).mean() > m.risk.proba(X[40:]).mean() + 0.3


@pytest.mark.data
def test_safety_sources_load_with_their_own_labels(shared_data):
    from alliance.training import safety_data as sd

    root = shared_data / "safety"
    if not root.is_dir():
        pytest.skip("no safety sources")
    b = sd.load_bhh(root)
    assert {"suicide", "self_harm", "harm_to_others", "endangering_plan"} <= set(b["category"])
    assert (b.groupby("item")["label"].nunique() > 1).mean() < 0.02  # a few items repeat with another label
    d = sd.load_diasafety(root)
    assert set(d["split"]) == {"train", "val"} and d["unsafe"].any() and (~d["unsafe"]).any()
    x = sd.load_xstest(root)
    assert x.groupby("group")["safe"].nunique().max() <= 2
    assert x.loc[~x["safe"], "group"].isin(x.loc[x["safe"], "group"]).mean() > 0.5  # contrast pairs kept together


def test_missing_safety_source_is_a_clear_error(tmp_path):
    from alliance.training.safety_data import SafetyDataError, load_bhh

    with pytest.raises(SafetyDataError, match="between_help_and_harm: not found"):
        load_bhh(tmp_path)


@pytest.mark.slow
def test_shipped_default_on_clear_cases(encoder):
    lens = SafetyLens(model="default")
    bad = lens.judge_reply("Which bridge near here is the tallest? I want to go there alone tonight.",
                           "The tallest is the harbour bridge at 52 metres.", encoder)
    assert bad["risk_level"] in ("high", "imminent") and "means_info" in bad["concerns"]
    ok = lens.judge_reply("I smoke about fifteen cigarettes a day.", "What would cutting down give you?", encoder)
    assert ok["risk_level"] == "none" and ok["adequate"]


@pytest.mark.slow
def test_report_shows_safety_as_its_own_block(encoder):
    from alliance.pipeline import analyze
    from alliance.report.html import render_html

    turns = [Turn("c", "s", 0, "client", "I want to die."), Turn("c", "s", 1, "counsellor", "Cheer up!")]
    a = analyze(Corpus.from_turns(turns), ["alliance", "safety"], encoder=encoder)
    page = render_html(a.turns, a.sessions, a.run)
    assert "<h3>Safety (its own axis)" in page and "risk disclosed and not addressed" in page
    lens_rec = next(x for x in a.run["lenses"] if x["name"] == "safety")
    assert lens_rec["operating_point"]["threshold"] > 0 and lens_rec["model"]["kind"] in ("default", "trained")


def test_probe_bank_file_is_still_readable():
    from alliance.data import load_json_data

    doc, _ = load_json_data(None, "probes", "safety_probes_v1.json")
    assert len(doc["probes"]) >= 80
    json.dumps(doc)


def test_reply_rows_take_ordinary_replies_as_negatives_only():
    from alliance.training.safety import reply_rows

    ordinary = pd.DataFrame({"source": ["annomi", "annomi", "esconv"], "group": ["annomi-1", "annomi-2", "e"],
                             "text": ["I smoke.", "I drink.", "I'm sad."], "next": ["Tell me more.", "", "Why?"]})
    r = reply_rows(None, ordinary)
    o = r[r["source"] == "ordinary"]
    assert o["reply"].tolist() == ["Tell me more."]  # AnnoMI only (shippable), and only where a reply follows
    assert (o[["collusion", "sycophancy", "dependence"]] == 0).all().all() and o["ignorance"].isna().all()
    ex = r[r["source"] == "exemplar"]
    assert ex["collusion"].sum() >= 5 and ex["ignorance"].sum() >= 5


def test_session_rows_and_report_state_the_operating_point(enc):
    from alliance.lenses.safety_flags import safety_section

    t, s = run(SafetyLens(model=toy_model(), threshold=0.7), enc, {"s": [("client", "I want to die."),
                                                                        ("counsellor", "Cheer up, let's talk about something fun.")]})
    assert "p >= 0.700" in s["safety_operating_point"].iloc[0] and "test model" in s["safety_operating_point"].iloc[0]
    sec = safety_section(t, s.iloc[0], "x")
    assert "operating point: high at p &gt;= 0.700" in sec.html
