"""The vectorised session features, trajectory baselines and marker media give what the per-session loops they
replaced gave (issue #15: cheap lenses sped up without changing a score). The loops are kept here as references."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance.calibration_features import MINIMAL_WORDS, structural_features, text_channels
from alliance.corpus import SESSION_KEY, Corpus, session_codes, word_counts
from alliance.lenses.base import LensContext
from alliance.lenses.markers import MarkersLens, infer_medium, prepare_text
from alliance.lenses.trajectory import (
    BASELINE_TURNS,
    ENGAGED_WORDS,
    LATENCY_FACTOR,
    MARKER_RUPTURES,
    MIN_BASELINE,
    MIN_LATENCY_S,
    TrajectoryLens,
)

WORDS = ["ok", "yeah", "I feel stuck at work and cannot sleep well at night these days", "um I don't know",
         "mm-hmm", "we tried the plan you suggested and it helped a little bit", "no", "uh I guess so um",
         "that sounds hard, what happened next?", "thank you for listening to me today"]


def corpus(seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(12):
        n = int(rng.integers(1, 40)) if s else 25
        t0 = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=s)
        gaps = np.cumsum(rng.choice([5, 20, 40, 400, 900], size=n))
        for i in range(n):
            speaker = "counsellor" if s == 3 else ("client" if rng.random() < 0.55 else "counsellor")
            ts = t0 + pd.Timedelta(seconds=int(gaps[i])) if (s % 4 != 1 or i % 5) else pd.NaT
            rows.append({"course_id": f"c{s // 3}", "session_id": f"s{s}", "turn_index": i, "speaker": speaker,
                         "text": str(rng.choice(WORDS)), "timestamp": ts})
    return Corpus(pd.DataFrame(rows))


def old_structural_features(turns: pd.DataFrame) -> pd.DataFrame:
    t = turns
    words = t["text"].astype(str).str.split().str.len().astype(float)
    is_client = (t["speaker"] == "client").to_numpy()
    df = pd.DataFrame({"w": words.to_numpy(), "client": is_client}, index=pd.MultiIndex.from_frame(t[SESSION_KEY]))
    df["ts"] = pd.to_datetime(t["timestamp"], utc=True).to_numpy()
    out = {}
    for key, g in df.groupby(level=[0, 1], sort=False):
        cw, kw = g.loc[g["client"], "w"].to_numpy(), g.loc[~g["client"], "w"].to_numpy()
        n = len(cw)
        third = max(n // 3, 1)
        row = {"struct_log_client_turns": np.log1p(n), "struct_log_counsellor_turns": np.log1p(len(kw)),
               "struct_log_client_words": np.log1p(cw.mean()) if n else np.nan,
               "struct_log_counsellor_words": np.log1p(kw.mean()) if len(kw) else np.nan,
               "struct_client_share_words": cw.sum() / max(cw.sum() + kw.sum(), 1.0),
               "struct_client_minimal_share": float((cw <= MINIMAL_WORDS).mean()) if n else np.nan,
               "struct_client_words_last_vs_first": (np.log1p(cw[-third:].mean()) - np.log1p(cw[:third].mean()))
               if n >= 3 else np.nan}
        tsv = pd.to_datetime(g["ts"])
        if tsv.notna().sum() >= 3:
            dt = tsv.diff().dt.total_seconds().to_numpy()
            lat = dt[g["client"].to_numpy() & np.isfinite(dt)]
            lat = lat[lat >= 0]
            row["struct_log_client_latency"] = float(np.log1p(np.median(lat))) if len(lat) else np.nan
            row["struct_log_minutes"] = float(np.log1p((tsv.max() - tsv.min()).total_seconds() / 60.0))
        else:
            row["struct_log_client_latency"] = row["struct_log_minutes"] = np.nan
        out[key] = row
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
    return res


def test_session_codes_and_word_counts_match_pandas():
    t = corpus().turns
    codes, keys = session_codes(t)
    want_codes, want_keys = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))
    assert np.array_equal(codes, want_codes) and list(keys) == list(want_keys)
    assert np.array_equal(word_counts(t["text"]), t["text"].astype(str).str.split().str.len().to_numpy(float))


def test_structural_features_and_text_channels_equal_the_loops():
    for seed in range(3):
        t = corpus(seed).turns
        want = old_structural_features(t)
        pd.testing.assert_frame_equal(structural_features(t).loc[want.index], want, check_exact=True,
                                      check_index_type=False)
        channels = text_channels(t)
        for key, g in t.groupby(SESSION_KEY, sort=False):
            client = g.loc[g["speaker"] == "client", "text"].astype(str).tolist()
            assert channels.loc[key, "text_client"] == " ".join(client)
            assert channels.loc[key, "text_counsellor"] == " ".join(g.loc[g["speaker"] != "client", "text"])
            assert channels.loc[key, "text_client_end"] == " ".join(client[-8:])


def old_ruptures(t: pd.DataFrame, bond: np.ndarray, minimal: np.ndarray, latency: np.ndarray, marker: np.ndarray,
                 lens: TrajectoryLens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-turn loop of trajectory 1.1.0's ``score`` (sd from the session, as without a reliability file)."""
    words = word_counts(t["text"])
    kind, repaired_at, baseline = np.array([""] * len(t), dtype=object), np.full(len(t), np.nan), np.full(len(t), np.nan)
    is_client, tidx = (t["speaker"] == "client").to_numpy(), t["turn_index"].to_numpy()
    codes = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
    for code in np.unique(codes):
        rows = np.flatnonzero((codes == code) & is_client)
        sd = np.nanstd(bond[rows]) if np.isfinite(bond[rows]).sum() > 1 else np.nan
        for j, r in enumerate(rows):
            prev = rows[max(0, j - BASELINE_TURNS):j]
            marked = marker[r] in MARKER_RUPTURES
            if len(prev) < MIN_BASELINE and not marked:
                continue
            based = len(prev) >= MIN_BASELINE
            base_b = np.nanmean(bond[prev]) if based and np.isfinite(bond[prev]).any() else np.nan
            baseline[r] = base_b
            base_w = np.median(words[prev]) if based else np.nan
            base_l = np.nanmedian(latency[prev]) if based and np.isfinite(latency[prev]).any() else np.nan
            why = []
            if np.isfinite(base_b) and np.isfinite(bond[r]) and sd > 0 and bond[r] < base_b - lens.drop_sds * sd:
                why.append("bond drop")
            if minimal[r] and base_w >= ENGAGED_WORDS:
                why.append("minimal reply")
            if (np.isfinite(base_l) and np.isfinite(latency[r]) and latency[r] >= MIN_LATENCY_S
                    and latency[r] > LATENCY_FACTOR * max(base_l, 1.0)):
                why.append("slow reply")
            if marked:
                why.append(f"{marker[r]} marker")
            if not why:
                continue
            kind[r] = "+".join(why)
            for r2 in rows[j + 1:j + 1 + lens.repair_turns]:
                if (("bond drop" not in why or (np.isfinite(bond[r2]) and bond[r2] >= base_b))
                        and ("minimal reply" not in why or (not minimal[r2] and words[r2] >= 0.5 * base_w))
                        and ("slow reply" not in why or not (np.isfinite(latency[r2])
                                                             and latency[r2] > LATENCY_FACTOR * max(base_l, 1.0)))
                        and (not marked or marker[r2] not in MARKER_RUPTURES)):
                    repaired_at[r] = tidx[r2]
                    break
    return kind, repaired_at, baseline


def test_trajectory_ruptures_equal_the_loop():
    lens = TrajectoryLens()
    lens.reliability = {**lens.reliability, "measures": {}}  # the session's own SD, so bond drops happen here
    for seed in range(3):
        c = corpus(seed)
        rng = np.random.default_rng(seed + 10)
        n = len(c.turns)
        bond = np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n) - 3 * (rng.random(n) < 0.15))
        ctx = LensContext(c)
        ctx.turn_scores = pd.DataFrame({
            "alliance_bond": bond, "markers_minimal": (word_counts(c.turns["text"]) <= 2).astype(float),
            "markers_latency_s": np.where(rng.random(n) < 0.2, np.nan, rng.choice([3.0, 30.0, 400.0, 2000.0], n)),
            "ruptures_kind": rng.choice(["", "", "", "", "withdrawal", "confrontation", "other"], n)},
            index=c.turns.index)
        got = lens.score(c, ctx)
        cols = ctx.turn_scores
        kind, repaired, baseline = old_ruptures(c.turns, bond, cols["markers_minimal"].to_numpy() > 0,
                                                cols["markers_latency_s"].to_numpy(), cols["ruptures_kind"].to_numpy(),
                                                lens)
        assert got["trajectory_rupture"].sum() > 5
        assert got["trajectory_rupture_kind"].tolist() == kind.astype(str).tolist()
        np.testing.assert_array_equal(got["trajectory_repaired_at"].to_numpy(), repaired)
        np.testing.assert_array_equal(got["trajectory_client_bond_baseline"].to_numpy(), baseline)


def test_marker_media_equal_per_session_inference():
    c = corpus()
    t = c.turns.copy()
    t["text"] = t["text"].str.replace(r"\b(?:um|uh|mm-hmm)\b", "fine", regex=True)  # written chat ...
    t.loc[t["session_id"] == "s2", "text"] = "um uh mm-hmm I think so um"  # ... and one transcribed session
    c = Corpus(t)
    lens = MarkersLens()
    ctx = LensContext(c)
    scores = lens.score(c, ctx)
    got = lens.summarize(c, scores, ctx)["markers_medium"].tolist()
    text, words = prepare_text(c.turns["text"]), scores["markers_words"].to_numpy()
    keys = pd.MultiIndex.from_frame(c.turns[SESSION_KEY])
    want = [infer_medium(text.iloc[np.flatnonzero(keys == tuple(k))], words[np.flatnonzero(keys == tuple(k))])
            for k in c.sessions[SESSION_KEY].itertuples(index=False)]
    assert got == want and "speech" in got and "text" in got


def test_word_counts_on_arrow_text_equal_python_split():
    odd = ["", " ", "  a  b ", "\n\tx", "a\u3000b", "a\x1cb", "a\u200bb", "a\u00a0 b\u2028c", "x" * 5, "é è ç"]
    s = pd.Series(odd, dtype="string[pyarrow]")
    assert word_counts(s).tolist() == [len(x.split()) for x in odd]
    assert np.isnan(word_counts(pd.Series(["a b", None], dtype="string[pyarrow]"))[1])
    assert word_counts(pd.Series(["a b", 3], dtype=object)).tolist() == [2.0, 1.0]


def test_trajectory_lens_scores_a_session_without_client_turns():
    """A live session's first turns may all be the counsellor's: no client row, no rupture, no crash."""
    c = Corpus(pd.DataFrame({"course_id": "c0", "session_id": "s0", "turn_index": [0, 1],
                             "speaker": "counsellor", "text": ["hello, how are you today?", "take your time"]}))
    got = TrajectoryLens().score(c, LensContext(c))
    assert len(got) == 2 and not got["trajectory_rupture"].any()
