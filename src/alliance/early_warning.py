"""Early warning: the client's rating and a poor outcome predicted from the first part of a session only.

Evidence: KokoroChat client reviews (score 0-100, unwilling to continue), learnt from session prefixes (the first
20-80% of turns, so the closing turns are never seen) with the calibrated model's design, cross-validated by client
(benchmarks/validate_early.py; docs/calibration.md, "Early warning").

Why prefixes and not the whole session: the calibrated model leans on the client's closing words ("thank you, this
helped"), which come too late to act on. This model reads only what a live service has seen so far: each side's
words (three bag-of-words channels: everything the client wrote, everything the counsellor wrote, the client's
latest turns) and plain counts of turns and words; no timestamps, no lens run needed, so it can score a partial
session after every turn (:func:`early_scores`).
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from alliance.calibration import (
    TARGETS,
    CalibratedAlliance,
    CalibrationError,
    key_fingerprint,
    review_targets,
    session_features,
)
from alliance.corpus import SESSION_KEY

#: Shares of a session's turns the model is trained on and the benchmark reports (20% ... 80%).
SHARES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
#: The share a batch run (``add_early``) reads: the first half, where a warning can still change the session.
DEFAULT_SHARE = 0.5
#: A poor outcome: the client would not continue, or rated the session at or below this quantile of the training
#: data's scores (the lowest tenth). Set a priori, never tuned on the figures.
POOR_QUANTILE = 0.1
#: ``early_warning`` is raised when the predicted probability of a poor outcome reaches this value. The risk head is
#: fitted with balanced class weights, so 0.5 means "more likely poor than the training base rate"; fixed a priori.
FLAG_THRESHOLD = 0.5
EARLY_MODEL = "early_v1.json.gz"
#: The columns :func:`early_scores` gives (batch runs add the same to the session table).
EARLY_COLUMNS = ("early_overall", "early_risk", "early_warning", "early_turns_seen", "early_share",
                 "early_out_of_domain")


def prefix_turns(turns: pd.DataFrame, share: float) -> pd.DataFrame:
    """The first ``share`` of each session's turns (rounded up, at least one): what had been said by then."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    t = turns.sort_values([*SESSION_KEY, "turn_index"], kind="stable")
    pos = t.groupby(SESSION_KEY, sort=False).cumcount()
    n = t.groupby(SESSION_KEY, sort=False)["turn_index"].transform("size")
    return t[pos < np.maximum(np.ceil(share * n), 1)]


def prefix_lens_sessions(turns: pd.DataFrame, lenses: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The session table of ``turns`` (a prefix: the turns so far) scored by ``lenses`` on those turns only, as a
    live scorer can after every turn; no calibrated columns (this is the early model's input)."""
    from alliance.corpus import TURN_COLUMNS, Corpus
    from alliance.pipeline import build_lenses, score_chunk

    # the corpus's own columns only: lens columns of an earlier run over the whole session are never read
    t = turns[[c for c in turns.columns if c in TURN_COLUMNS]].reset_index(drop=True)
    _, sessions = score_chunk(Corpus(t, validate=False), build_lenses(list(lenses)), None, calibrated=False)
    return sessions


def prefix_features(turns: pd.DataFrame, lenses: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """The early model's input for whatever turns are given: structural counts and the three text channels (the
    ``text_client_end`` channel is then the client's latest turns, not the session's closing ones), and, for a
    model trained with ``lenses`` (from early_v2), those lenses' session columns computed on these turns only."""
    if lenses:
        return session_features(turns, prefix_lens_sessions(turns, lenses))
    keys = turns[SESSION_KEY].drop_duplicates().reset_index(drop=True)
    return session_features(turns, keys)


def poor_outcome(Y: pd.DataFrame, dropout: np.ndarray, below: float) -> np.ndarray:
    """Poor outcome per session: unwilling to continue, or a client score at or below ``below``."""
    return np.asarray(dropout, dtype=bool) | (Y["overall"].to_numpy(dtype=float) <= below)


def stacked_prefixes(turns: pd.DataFrame, shares: tuple[float, ...] = SHARES,
                     lenses: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Features of every session at every share, indexed by (course_id, session_id, share)."""
    parts = []
    for share in shares:
        f = prefix_features(prefix_turns(turns, share), lenses)
        f.index = pd.MultiIndex.from_tuples([(*k, share) for k in f.index], names=[*SESSION_KEY, "share"])
        parts.append(f)
    return pd.concat(parts)


def fit_early(turns: pd.DataFrame, Y: pd.DataFrame, dropout: np.ndarray, groups: np.ndarray,
              shares: tuple[float, ...] = SHARES, random_state: int = 0, lenses: tuple[str, ...] | list[str] = (),
              features: pd.DataFrame | None = None) -> CalibratedAlliance:
    """Fit the early model on prefixes of rated sessions (``Y``, ``dropout`` and ``groups`` indexed like
    ``review_targets``): one model over every share, so it scores a prefix of any length. Its risk head
    (``dropout_risk``) learns the poor outcome (:func:`poor_outcome`); the cut-off is kept in ``early_``.

    ``lenses``: also read these lenses' session columns, computed on each prefix only (recorded in ``early_``, so
    :func:`early_scores` computes them the same way). ``features``: the stacked prefix features already computed
    (:func:`stacked_prefixes` over these sessions at ``shares``, with the same lenses), to save recomputing."""
    below = float(np.quantile(Y["overall"].dropna(), POOR_QUANTILE))
    poor = pd.Series(poor_outcome(Y, dropout, below), index=Y.index)
    g = pd.Series(np.asarray(groups), index=Y.index)
    if features is not None:
        X = features[features.index.droplevel("share").isin(Y.index)
                     & features.index.get_level_values("share").isin(list(shares))]
    else:
        X = stacked_prefixes(turns[turns.set_index(SESSION_KEY).index.isin(Y.index)], shares, lenses)
    keys = X.index.droplevel("share")
    flat = X.copy()
    flat.index = pd.MultiIndex.from_tuples([(c, f"{s}@{p}") for c, s, p in X.index], names=SESSION_KEY)
    model = CalibratedAlliance(random_state=random_state).fit(
        flat, Y.reindex(keys).set_axis(flat.index), g.reindex(keys).to_numpy(), dropout=poor.reindex(keys).to_numpy())
    # the sessions and clients it was trained on, by their own keys (not the per-share rows)
    model.trained_sessions_ = sorted({key_fingerprint(k) for k in Y.index})
    model.early_ = {"shares": list(shares), "poor_score_at_or_below": below, "poor_quantile": POOR_QUANTILE,
                    "flag_threshold": FLAG_THRESHOLD, "lenses": list(lenses)}
    return model


def early_scores(turns: pd.DataFrame, model: CalibratedAlliance | None = None,
                 expected_turns: pd.Series | int | None = None, features: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """Score sessions as far as they have gone: one row per session of ``turns`` (all of which are read).

    A live scorer calls this after every turn with the turns so far. ``expected_turns`` (per session, or one
    number), when known, gives ``early_share``; otherwise it is NaN. Columns: ``early_overall`` (predicted client
    score, 0-100), ``early_risk`` (probability of a poor outcome), ``early_warning`` (risk >= the model's threshold:
    heading for a rupture or dropout), ``early_turns_seen``, ``early_share``, ``early_out_of_domain``.
    A model trained with lenses (``early_["lenses"]``) runs them on these turns first (``features``: already
    computed by :func:`prefix_features` on the same turns)."""
    model = model if model is not None else shipped_early()
    X = features if features is not None else prefix_features(
        turns, tuple(getattr(model, "early_", {}).get("lenses") or ()))
    p = model.predict(X)
    seen = turns.groupby(SESSION_KEY, sort=False).size().reindex(p.index).astype(int)
    if expected_turns is None:
        share = pd.Series(np.nan, index=p.index)
    elif isinstance(expected_turns, int | float):
        share = (seen / float(expected_turns)).clip(upper=1.0)
    else:
        share = (seen / pd.Series(expected_turns).reindex(p.index)).clip(upper=1.0)
    threshold = float(getattr(model, "early_", {}).get("flag_threshold", FLAG_THRESHOLD))
    risk = p["dropout_risk"] if "dropout_risk" in p else pd.Series(np.nan, index=p.index)
    out = pd.DataFrame({"early_overall": p["overall"], "early_risk": risk, "early_warning": risk >= threshold,
                        "early_turns_seen": seen, "early_share": share.astype(float),
                        "early_out_of_domain": p.get("out_of_domain", pd.Series(False, index=p.index))},
                       index=p.index)
    return out


def add_early(turns: pd.DataFrame, sessions: pd.DataFrame, model: CalibratedAlliance | None = None,
              share: float = DEFAULT_SHARE) -> pd.DataFrame:
    """``sessions`` with the ``early_*`` columns read from the first ``share`` of each session's turns (what a
    live scorer would have said by then); unchanged when no early model is shipped and none is given."""
    if model is None:
        if not early_model_exists():
            return sessions
        model = shipped_early()
    n = turns.groupby(SESSION_KEY, sort=False).size()
    scored = early_scores(prefix_turns(turns, share), model, expected_turns=n)
    out = sessions.drop(columns=[c for c in scored.columns if c in sessions])
    return out.join(scored, on=SESSION_KEY)


def early_model_exists() -> bool:
    return resources.files("alliance.data.calibration").joinpath(EARLY_MODEL).is_file()


@functools.lru_cache(maxsize=1)
def shipped_early() -> CalibratedAlliance:
    """The shipped early-warning model, loaded once per process (every chunk of a run reads it; treat it as
    read-only)."""
    return load_early()


def load_early(path: Any = None) -> CalibratedAlliance:
    """The shipped early-warning model (or one saved by ``save_early``), with its settings in ``early_``."""
    if path is None:
        if not early_model_exists():
            raise CalibrationError(f"no early-warning model shipped (alliance/data/calibration/{EARLY_MODEL})")
        ref = resources.files("alliance.data.calibration").joinpath(EARLY_MODEL)
        with ref.open("rb") as fb, gzip.open(fb, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        source = f"alliance:data/calibration/{EARLY_MODEL}"
    else:
        model = CalibratedAlliance.load(path)
        model.early_ = dict(model.card_.get("early") or {})
        if not model.early_:
            raise CalibrationError(f"{path}: not an early-warning model (its card has no 'early' settings)")
        return model
    model = CalibratedAlliance.from_dict(doc, source)
    model.early_ = dict(model.card_.get("early") or {})
    return model


def save_early(model: CalibratedAlliance, path: Any, card: dict[str, Any] | None = None) -> Any:
    """Save an early model: the calibration format, with its settings (``early_``) in the card."""
    return model.save(path, {**(card or {}), "early": getattr(model, "early_", {}), "targets": list(TARGETS)})


def kokorochat_early_tables(turns: pd.DataFrame, sessions: pd.DataFrame
                            ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Client ratings, dropout flags and client ids of KokoroChat's rated sessions, indexed by session key."""
    Y = review_targets(sessions)
    meta = [m if isinstance(m, dict) else json.loads(m or "{}") for m in sessions["meta"]]
    dropout = np.array([bool(m.get("unwilling_to_continue")) for m in meta])
    groups = np.array([str(m.get("client_id")) for m in meta])
    ok = Y.notna().all(axis=1).to_numpy()
    return Y[ok], dropout[ok], groups[ok]
