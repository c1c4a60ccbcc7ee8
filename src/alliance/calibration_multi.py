"""Targets of the calibrated alliance across corpora: each corpus's own rating as a within-corpus rank.

Evidence: KokoroChat client reviews (score, items, dropout), ESConv seekers' ratings (empathy, relevance, drop in
emotion intensity) with FailedESConv (dialogues the authors rejected), AnnoMI's session quality (high/low MI).

Why ranks: the corpora rate different things on different scales (a 0-100 score, three 1-5 survey answers, a
high/low label), so no rating can be read on another's scale. What they share is an order within the corpus: a
session its client rated better than most. Each corpus's rating is turned into its within-corpus percentile and put
on the reference corpus's (KokoroChat's) score distribution (:func:`rank_to_scale`), so one overall head learns from
all of them while predictions keep the reference scale. Axes (goal, task, bond) and dropout stay KokoroChat's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alliance.calibration_features import (
    TARGETS,
    _meta,  # one reading of a session's meta (mapping or JSON text)
    review_targets,
)
from alliance.corpus import SESSION_KEY

#: The corpora the shared data folder holds, with the reader and the files (relative to the data root). ESConv and
#: FailedESConv are one family: the failed dialogues rank below every kept one.
CORPORA: dict[str, tuple[str, tuple[str, ...]]] = {
    "kokorochat": ("kokorochat", ("kokorochat_en/English",)),
    "esconv": ("esconv", ("esconv/hf_format/train.json", "esconv/hf_format/valid.json",
                          "esconv/hf_format/test.json")),
    "failedesconv": ("esconv", ("esconv/thu-coai/FailedESConv.json",)),
    "annomi": ("annomi", ("annomi/AnnoMI-simple.csv",)),
}
#: Which family each corpus belongs to (a family shares one ranking and is left out together).
FAMILY: dict[str, str] = {"kokorochat": "kokorochat", "esconv": "esconv", "failedesconv": "esconv",
                          "annomi": "annomi"}
#: ESConv's seeker ratings that make its outcome: the mean of their within-corpus percentiles.
ESCONV_RATINGS: tuple[str, ...] = ("empathy", "relevance", "intensity_drop")


class MultiCorpusError(ValueError):
    pass


def percentile(values: Sequence[float]) -> np.ndarray:
    """Within-sample percentile in (0, 1) by average rank (ties share one); NaN stays NaN."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=float)
    out = np.full(len(v), np.nan)
    ok = np.isfinite(v)
    if ok.any():
        out[ok] = (rankdata(v[ok]) - 0.5) / ok.sum()
    return out


def rank_to_scale(pct: Sequence[float], reference: Sequence[float]) -> np.ndarray:
    """Percentiles put on the reference ratings' distribution (its quantiles), so a session at the 30th
    percentile of its corpus gets the score at the reference's 30th percentile."""
    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    if not len(ref):
        raise MultiCorpusError("no reference ratings to put the other corpora's ranks on")
    p = np.asarray(pct, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    out[ok] = np.quantile(ref, p[ok])
    return out


def esconv_outcome(sessions: pd.DataFrame) -> pd.Series:
    """ESConv's outcome per dialogue: the mean within-corpus percentile of the seeker's empathy and relevance
    ratings and the drop in emotion intensity (those that are present); NaN when none is."""
    meta = [_meta(m) for m in sessions["meta"]]
    cols = {}
    for k in ("empathy", "relevance", "initial_emotion_intensity", "final_emotion_intensity"):
        cols[k] = pd.to_numeric(pd.Series([m.get(k) for m in meta]), errors="coerce").to_numpy(float)
    cols["intensity_drop"] = cols["initial_emotion_intensity"] - cols["final_emotion_intensity"]
    pct = np.column_stack([percentile(cols[k]) for k in ESCONV_RATINGS])
    rated = np.isfinite(pct).any(axis=1)
    out = np.full(len(pct), np.nan)
    out[rated] = np.nanmean(pct[rated], axis=1)
    return pd.Series(out, index=pd.MultiIndex.from_frame(sessions[SESSION_KEY]))


def family_percentiles(sessions: pd.DataFrame, corpus: str) -> pd.Series:
    """Within-corpus percentile of each rated session's outcome (NaN where it has none).

    ``corpus`` names a corpus of ``CORPORA``. ESConv: :func:`esconv_outcome`; FailedESConv's dialogues (``failed``
    in their metadata, scored with ESConv as one family by :func:`family_outcomes`) rank below every kept one.
    AnnoMI: high-quality MI above low. KokoroChat: the client's score."""
    idx = pd.MultiIndex.from_frame(sessions[SESSION_KEY])
    meta = [_meta(m) for m in sessions["meta"]]
    if corpus == "kokorochat":
        return pd.Series(percentile(review_targets(sessions)["overall"]), index=idx)
    if corpus == "annomi":
        q = pd.Series([str(m.get("mi_quality", "")).lower() for m in meta])
        v = np.where(q.eq("high"), 1.0, np.where(q.eq("low"), 0.0, np.nan))
        return pd.Series(percentile(v), index=idx)
    if corpus in ("esconv", "failedesconv"):
        raw = esconv_outcome(sessions).to_numpy()
        failed = np.array([bool(m.get("failed")) for m in meta])
        # failed dialogues sit below every kept one: their own ratings order them among themselves (mid when none)
        v = np.where(failed, -2.0 + np.nan_to_num(raw, nan=0.5), raw)
        return pd.Series(percentile(v), index=idx)
    raise MultiCorpusError(f"unknown corpus {corpus!r}; known: {sorted(CORPORA)}")


def multi_corpus_targets(parts: Mapping[str, pd.DataFrame], reference: str | None = "kokorochat"
                         ) -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series]:
    """Targets for :meth:`CalibratedAlliance.fit` with ``corpus``, from each corpus's session table.

    ``parts``: corpus name -> its sessions (``esconv`` and ``failedesconv`` are ranked together). Returns ``Y``
    (goal, task, bond, overall; the reference corpus's own ratings, other corpora's overall = their within-family
    percentile put on the reference's score scale, axes NaN), ``dropout`` (reference's unwilling_to_continue,
    NaN elsewhere), ``groups`` (the reference's client id, otherwise the session) and ``family`` per session;
    the reference corpus's sessions come first. Sessions with no rating are left out. ``reference=None`` (to
    leave the reference corpus out) puts every corpus's percentiles on 0-100 (axes on 0-5)."""
    frames = []
    fam_tables: dict[str, list[pd.DataFrame]] = {}
    for name, s in parts.items():
        if name != reference:
            fam_tables.setdefault(FAMILY.get(name, name), []).append(s.assign(_corpus=name))
    if reference is not None:
        if reference not in parts:
            raise MultiCorpusError(f"the reference corpus {reference!r} is needed (its ratings set the scale)")
        ref = parts[reference]
        Yr = review_targets(ref)
        meta = [_meta(m) for m in ref["meta"]]
        idx = pd.MultiIndex.from_frame(ref[SESSION_KEY])
        frames.append(pd.DataFrame({
            **{t: Yr[t].to_numpy() for t in TARGETS},
            "dropout": [float(bool(m.get("unwilling_to_continue"))) for m in meta],
            "group": [str(m.get("client_id", f"{c}/{k}")) for m, c, k in zip(meta, ref["course_id"],
                                                                              ref["session_id"], strict=True)],
            "family": FAMILY.get(reference, reference)}, index=idx))
    for fam, tables in fam_tables.items():
        s = pd.concat(tables, ignore_index=True)
        first = str(s["_corpus"].iloc[0]) if fam != "esconv" else "esconv"
        pct = family_percentiles(s, first).to_numpy()
        if reference is not None:
            ys = {t: np.nan for t in TARGETS} | {"overall": rank_to_scale(pct, Yr["overall"])}
        else:  # no reference corpus (leaving it out): percentiles on a 0-100 scale, the axes follow (0-5)
            ys = {t: 5.0 * pct for t in TARGETS} | {"overall": 100.0 * pct}
        frames.append(pd.DataFrame({
            **ys, "dropout": np.nan,
            "group": [f"{c}/{k}" for c, k in zip(s["course_id"], s["session_id"], strict=True)],
            "family": fam}, index=pd.MultiIndex.from_frame(s[SESSION_KEY])))
    out = pd.concat(frames)
    out = out[out["overall"].notna()]
    return out[list(TARGETS)], out["dropout"], out["group"], out["family"]


def corpus_paths(root: Path, corpus: str) -> tuple[str, list[Path]]:
    """The reader and input files of a corpus of ``CORPORA`` under a data root; an error names what is missing."""
    if corpus not in CORPORA:
        raise MultiCorpusError(f"unknown corpus {corpus!r}; known: {', '.join(sorted(CORPORA))}")
    fmt, rel = CORPORA[corpus]
    paths = [Path(root) / r for r in rel]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise MultiCorpusError(f"{corpus}: missing {', '.join(missing)} under the data root {root}")
    return fmt, paths
