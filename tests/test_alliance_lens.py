import json
from importlib import resources

import numpy as np
import pytest

from alliance.lenses.alliance_probes import AllianceLens, ProbeSet, ProbeSetError, context_vectors
from alliance.lenses.base import LensContext
from tests.helpers import TableEncoder, make_corpus

E = np.eye(6)
SUBS = ("goal", "task", "bond")


def write_probes(tmp_path, extra=None):
    """One positive and one reversed probe per subscale and side; probe text k maps to a known axis."""
    probes, table = [], {}
    for si, sub in enumerate(SUBS):
        for side in ("client", "counsellor"):
            pos, rev = f"{side} {sub} +", f"{side} {sub} -"
            probes += [{"id": f"{sub}.{side}.p1", "subscale": sub, "side": side, "key": "+", "text": pos},
                       {"id": f"{sub}.{side}.r1", "subscale": sub, "side": side, "key": "-", "text": rev}]
            table[pos] = E[2 * si]        # positive probe of subscale i lies on axis 2i
            table[rev] = E[2 * si + 1]    # its reversed probe on axis 2i+1
    path = tmp_path / "probes.json"
    path.write_text(json.dumps({"name": "test", "version": "9", "probes": probes + (extra or [])}))
    return path, table


def background(tmp_path, table, n=24, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        text = f"bg {i}"
        table[text] = rng.normal(size=6)
        lines.append(text)
    path = tmp_path / "bg.txt"
    path.write_text("# comment\n" + "\n".join(lines))
    return path, lines


def test_uncalibrated_subscale_is_positive_minus_reversed_cosine(tmp_path):
    probes, table = write_probes(tmp_path)
    bg, _ = background(tmp_path, table)
    table["turn A"] = E[0] * 3 + E[1]        # close to goal+, a little to goal-
    table["turn B"] = E[5]                   # exactly bond-
    enc = TableEncoder(table)
    corpus = make_corpus({"s": [("client", "turn A"), ("counsellor", "turn B")]})
    lens = AllianceLens(probes=probes, background=bg, calibrate=False)
    out = lens.score(corpus, LensContext(corpus, enc))
    a = (3 / np.sqrt(10)) - (1 / np.sqrt(10))
    assert out.loc[0, "alliance_goal"] == pytest.approx(a, abs=1e-6)
    assert out.loc[0, "alliance_task"] == pytest.approx(0.0, abs=1e-6)
    assert out.loc[1, "alliance_bond"] == pytest.approx(-1.0, abs=1e-6)
    assert out.loc[1, "alliance_sim_bond_r01"] == pytest.approx(1.0, abs=1e-6)


def test_calibration_uses_background_mean_and_spread(tmp_path):
    probes, table = write_probes(tmp_path)
    bg_path, lines = background(tmp_path, table)
    table["turn"] = E[2] + 0.5 * E[3]
    enc = TableEncoder(table)
    corpus = make_corpus({"s": [("client", "turn")]})
    out = AllianceLens(probes=probes, background=bg_path).score(corpus, LensContext(corpus, enc))
    bgv = np.stack([table[t] / np.linalg.norm(table[t]) for t in lines])
    turn = table["turn"] / np.linalg.norm(table["turn"])
    z = [((turn @ E[k]) - (bgv @ E[k]).mean()) / (bgv @ E[k]).std() for k in (2, 3)]
    assert out.loc[0, "alliance_task"] == pytest.approx(z[0] - z[1], abs=1e-5)


def test_each_side_is_scored_against_its_own_probes(tmp_path):
    probes, table = write_probes(tmp_path)
    bg, _ = background(tmp_path, table)
    # The same words from either side: with side-specific probes that share axes, scores match.
    table["same words"] = E[4]
    enc = TableEncoder(table)
    corpus = make_corpus({"s": [("client", "same words"), ("counsellor", "same words")]})
    out = AllianceLens(probes=probes, background=bg, calibrate=False).score(corpus, LensContext(corpus, enc))
    assert out.loc[0, "alliance_bond"] == pytest.approx(1.0)
    assert out.loc[1, "alliance_bond"] == pytest.approx(1.0)


def test_session_summary_gap_and_trend(tmp_path):
    probes, table = write_probes(tmp_path)
    bg, _ = background(tmp_path, table)
    table.update({"warm": E[4], "cold": E[5], "flat": E[0] + E[1]})
    # client bond goes from cold to warm; counsellor stays warm: the gap closes
    turns = []
    for i in range(9):
        turns.append(("client", "cold" if i < 3 else ("flat" if i < 6 else "warm")))
        turns.append(("counsellor", "warm"))
    corpus = make_corpus({"s": turns})
    lens = AllianceLens(probes=probes, background=bg, calibrate=False)
    ctx = LensContext(corpus, TableEncoder(table))
    scores = lens.score(corpus, ctx)
    summary = lens.summarize(corpus, scores, ctx).iloc[0]
    assert summary["alliance_client_bond_first"] == pytest.approx(-1.0)
    assert summary["alliance_client_bond_last"] == pytest.approx(1.0)
    assert summary["alliance_client_bond_slope"] > 0
    assert summary["alliance_counsellor_bond_mean"] == pytest.approx(1.0)
    assert summary["alliance_gap_bond_first"] == pytest.approx(-2.0)
    assert summary["alliance_gap_bond_last"] == pytest.approx(0.0, abs=1e-6)
    assert summary["alliance_gap_bond_trend"] == "narrowing"


def test_context_vectors_mix_only_within_session():
    emb = np.eye(3, dtype=np.float32)
    out = context_vectors(emb, np.array([0, 0, 1]), k=1, decay=0.5)
    assert out[1] == pytest.approx(np.array([0.5, 1, 0]) / np.linalg.norm([0.5, 1, 0]))
    assert out[2] == pytest.approx(np.array([0, 0, 1]))  # new session: no carry-over
    assert context_vectors(emb, np.array([0, 0, 1]), k=0) is emb


def test_shipped_probe_set_is_complete():
    ps = ProbeSet.load()
    assert len(ps.probes) == 72
    for side in ("client", "counsellor"):
        for sub in SUBS:
            n = [p for p in ps.probes if p.side == side and p.subscale == sub]
            assert len(n) == 12
            assert sum(p.key == "-" for p in n) >= 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["probes"][0].update(subscale="trust"), "subscale must be one of"),
        (lambda d: d["probes"][0].update(key="?"), "key must be"),
        (lambda d: d["probes"][1].update(id=d["probes"][0]["id"]), "not unique"),
        (lambda d: d["probes"][0].pop("text"), "field 'text' missing"),
        (lambda d: d.update(probes=[p for p in d["probes"] if not (p["side"] == "client" and p["key"] == "+"
                                                                    and p["subscale"] == "bond")]),
         "no positive probe for bond/client"),
    ],
)
def test_bad_probe_files_are_named(tmp_path, mutate, message):
    doc = json.loads(resources.files("alliance.data.probes").joinpath("alliance_probes_v1.json").read_text())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProbeSetError, match=message):
        ProbeSet.load(path)
