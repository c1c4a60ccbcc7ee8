"""Session features and targets of the calibrated alliance: client ratings, structural counts, text channels.

Evidence: KokoroChat's client review items mapped onto Bordin's goal, task and bond (docs/calibration.md), and the
withdrawal signs of the rupture literature (Safran & Muran 2000) read as plain counts of each side's turns and words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, session_codes, word_counts

AXES: tuple[str, ...] = ("goal", "task", "bond")
TARGETS: tuple[str, ...] = (*AXES, "overall")
#: Axis-specific heads: how far the client's rating of one axis stands above (or below) their overall rating, in SD
#: units (z of the axis minus z of the overall). The axes share most of their variance with the overall rating, so
#: a predicted axis mostly restates the overall; these heads predict only what tells the axes apart.
SPECIFIC: tuple[str, ...] = tuple(f"{a}_specific" for a in AXES)
HEADS: tuple[str, ...] = (*TARGETS, *SPECIFIC)

#: KokoroChat review items (0-5) averaged into each axis. Bond: the client felt understood, respected, accepted
#: and at ease (Bordin's affective bond). Task: the pair worked on the concern together with useful techniques
#: (questions, clarifying, summarising, suggestions, insight). Goal: agreement on and movement toward what the
#: client wants (goals identified, concerns addressed, hope). Items about rhythm, start, end, value and overall
#: satisfaction describe the session as a whole and stay out of the three axes. The item name
#: ``clarified_issues_cleraly`` is spelt as in the corpus.
KOKOROCHAT_ITEM_MAP: dict[str, tuple[str, ...]] = {
    "bond": ("felt_heard_and_understood", "felt_respected", "showed_acceptance_and_empathy",
             "conversation_felt_comfortable", "provided_acknowledgment_and_affirmation"),
    "task": ("thought_through_concerns_together", "asked_effective_questions", "clarified_issues_cleraly",
             "summarized_key_points_effectively", "offered_actionable_suggestions", "gained_new_insights"),
    "goal": ("helped_identify_goals", "concerns_were_addressed", "felt_hopeful_or_expectant",
             "encouraged_and_instilled_hope"),
}

#: Text channels: which words each bag-of-words sub-model reads.
TEXT_CHANNELS: tuple[str, ...] = ("text_client", "text_counsellor", "text_client_end")
#: How many of the client's last turns make the ``text_client_end`` channel (how a session ends for the client).
CLIENT_END_TURNS = 8
#: A client turn of at most this many words counts as a minimal reply (withdrawal sign).
MINIMAL_WORDS = 3
#: The encoder the shipped model's alliance and empathy features come from.
DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Lens families (by :func:`feature_source`) that need the sentence encoder, so a user's run may lack them. A model
#: trained with them also keeps level-2 heads without them (``reduced``), used for sessions that lack them all.
ENCODER_SOURCES: tuple[str, ...] = ("alliance", "empathy", "behaviour", "safety", "ruptures")
#: Session columns never used as features (keys, labels, bookkeeping).
_NOT_FEATURES = {"session_index", "n_turns", "course_id", "session_id", "source", "meta"}
#: Column prefixes never used as features: ``calibrated_*`` are a (shipped) calibration model's own predictions,
#: added to every session of a run that has the trajectory lens. Reading them back would train a model on an
#: earlier model's output (on KokoroChat: on a model fitted to the very ratings being cross-validated);
#: ``calibration_in_training`` says whether a session trained that model. ``early_*`` are the shipped early-warning
#: model's predictions (added beside ``calibrated_*``), fitted on all of KokoroChat's ratings: read back as features
#: they lifted the cross-validated rho to 0.90 (issue 14), a leak, not a measure.
_NOT_FEATURE_PREFIXES: tuple[str, ...] = ("n_client", "n_counsellor", "calibrated_", "calibration_", "early_")

#: Features computed from timestamps (reply latency, session length in time). They describe the medium (a chat
#: app, a transcript, a role-play booked for an hour) more than the relationship, and outside KokoroChat they swung
#: the overall by hundreds of points (issue 14), so the calibration models never read them.
_TIME_FEATURE = re.compile(r"latency|minutes|duration|seconds|timestamp")


def is_time_feature(name: str) -> bool:
    """True for a feature derived from timestamps (never read by the calibration models; see ``_TIME_FEATURE``)."""
    return bool(_TIME_FEATURE.search(name))


def _meta(v: Any) -> dict:
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, str) and v.strip():
        return dict(json.loads(v))
    return {}


def review_targets(sessions: pd.DataFrame, item_map: Mapping[str, Sequence[str]] = KOKOROCHAT_ITEM_MAP,
                   overall_key: str = "score") -> pd.DataFrame:
    """Client-rated goal, task, bond (mean of mapped items) and overall, indexed by (course_id, session_id).

    Items and the overall score are looked up in each session's meta, either at top level or under ``review``.
    Sessions without a rating give NaN.
    """
    rows = []
    for m in sessions["meta"]:
        m = _meta(m)
        src = {**m, **_meta(m.get("review") or m.get("review_by_client"))}
        row = {}
        for axis, items in item_map.items():
            vals = [pd.to_numeric(src.get(i), errors="coerce") for i in items]
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            row[axis] = float(np.mean(vals)) if vals else np.nan
        row["overall"] = pd.to_numeric(src.get(overall_key), errors="coerce")
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(TARGETS), dtype=float)
    out.index = pd.MultiIndex.from_frame(sessions[SESSION_KEY])
    return out


def structural_features(turns: pd.DataFrame) -> pd.DataFrame:
    """Per session: how much each side writes, minimal client replies, shrinking client turns, reply latency.

    These are the withdrawal signs of the rupture literature (Safran & Muran 2000) read as plain counts, so they
    exist for every corpus even when the markers lens is not run. Counted with array operations over all sessions
    at once (word counts are whole numbers, so sums and means equal a per-session loop's exactly).
    """
    t = turns
    codes, keys = session_codes(t)
    ng = len(keys)
    w = word_counts(t["text"])
    client = (t["speaker"] == "client").to_numpy()

    def total(mask: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(codes[mask], weights=None if values is None else values[mask], minlength=ng
                           ).astype(np.float64)

    n, nk = total(client), total(~client)
    cs, ks = total(client, w), total(~client, w)
    cc, cw = codes[client], w[client]
    # each client turn's place among its session's client turns, for the first and last thirds
    cpos = pd.Series(cc).groupby(cc, sort=False).cumcount().to_numpy()
    third = np.maximum(n // 3, 1)
    first, last = cpos < third[cc], cpos >= (n - third)[cc]

    def part(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cc[mask], weights=cw[mask], minlength=ng) / np.bincount(cc[mask], minlength=ng)

    with np.errstate(divide="ignore", invalid="ignore"):
        has = n > 0
        out = {
            "struct_log_client_turns": np.log1p(n),
            "struct_log_counsellor_turns": np.log1p(nk),
            "struct_log_client_words": np.where(has, np.log1p(cs / n), np.nan),
            "struct_log_counsellor_words": np.where(nk > 0, np.log1p(ks / nk), np.nan),
            "struct_client_share_words": cs / np.maximum(cs + ks, 1.0),
            "struct_client_minimal_share": np.where(has, np.bincount(cc[cw <= MINIMAL_WORDS], minlength=ng) / n,
                                                    np.nan),
            "struct_client_words_last_vs_first": np.where(n >= 3, np.log1p(part(last)) - np.log1p(part(first)),
                                                          np.nan),
        }
    latency, minutes = np.full(ng, np.nan), np.full(ng, np.nan)
    if "timestamp" in t:
        ts = pd.Series(pd.to_datetime(t["timestamp"], utc=True).to_numpy())
        dated = ts.notna().to_numpy()
        timed = np.bincount(codes[dated], minlength=ng) >= 3  # sessions with at least three timestamps
        if timed.any():
            dt = ts.groupby(codes, sort=False).diff().dt.total_seconds().to_numpy()
            ok = timed[codes] & client & np.isfinite(dt)
            ok &= np.where(ok, dt, -1.0) >= 0
            med = pd.Series(dt[ok]).groupby(codes[ok]).median()
            latency[med.index.to_numpy()] = np.log1p(med.to_numpy())
            g = ts.groupby(codes)
            span = (g.max() - g.min()).dt.total_seconds()
            span = span[timed[span.index.to_numpy()]]
            minutes[span.index.to_numpy()] = np.log1p(span.to_numpy() / 60.0)
    out["struct_log_client_latency"] = latency
    out["struct_log_minutes"] = minutes
    return pd.DataFrame(out, index=keys)


def text_channels(turns: pd.DataFrame) -> pd.DataFrame:
    """Per session, the words each text channel reads: the client's, the counsellor's, the client's closing turns."""
    codes, keys = session_codes(turns)
    client: list[list[str]] = [[] for _ in range(len(keys))]
    other: list[list[str]] = [[] for _ in range(len(keys))]
    is_client = (turns["speaker"] == "client").to_numpy()
    for code, text, c in zip(codes, turns["text"].astype(str).tolist(), is_client, strict=True):
        (client if c else other)[code].append(text)
    return pd.DataFrame({"text_client": [" ".join(x) for x in client],
                         "text_counsellor": [" ".join(x) for x in other],
                         "text_client_end": [" ".join(x[-CLIENT_END_TURNS:]) for x in client]}, index=keys)


def session_features(turns: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """The calibration model's input, indexed by (course_id, session_id): every numeric lens column of
    ``sessions`` (grouped by lens prefix), the structural features and the text channels."""
    s = sessions.set_index(SESSION_KEY)
    num = s[[c for c in s.columns if c not in _NOT_FEATURES and pd.api.types.is_numeric_dtype(s[c])
             and not pd.api.types.is_bool_dtype(s[c])]].astype(float)
    num = num.drop(columns=[c for c in num.columns if c.startswith(_NOT_FEATURE_PREFIXES)])
    feats = num.join(structural_features(turns), how="left").join(text_channels(turns), how="left")
    for c in TEXT_CHANNELS:
        feats[c] = feats[c].fillna("")
    return feats


def feature_group(name: str) -> str:
    """The lens (column prefix) a feature belongs to: ``alliance``, ``trajectory``, ``struct``, ``text`` ..."""
    return name.split("_", 1)[0]


def feature_source(name: str) -> str:
    """The measure a feature is computed from, which differs from its lens prefix for the trajectory lens: its
    ``trajectory_{client,counsellor}_{goal,task,bond}_*`` and ``trajectory_gap_*`` columns follow the alliance
    probes, ``trajectory_empathy_*`` the per-reply empathy; the rest (client words, ruptures, repairs) stay
    ``trajectory``. Used to attribute what each lens family adds (the gap analysis)."""
    group = feature_group(name)
    if group == "trajectory":
        rest = name.split("_", 1)[1]
        if rest.startswith("empathy_"):
            return "empathy"
        if rest.startswith("gap_") or any(rest.startswith(f"{side}_{s}_") for side in ("client", "counsellor")
                                          for s in AXES):
            return "alliance"
    return group


def bag_of_words_baseline(alpha: float = 3.0, ngram_max: int = 2):
    """The plain baseline: TF-IDF words (and word pairs, by default) of the whole transcript into one ridge."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, ngram_max),
                                         max_features=50000), Ridge(alpha=alpha))


def transcript_text(turns: pd.DataFrame) -> pd.Series:
    """Whole transcript per session (both sides), indexed by (course_id, session_id), for the baseline."""
    return turns.groupby(SESSION_KEY, sort=False)["text"].agg(lambda s: " ".join(map(str, s)))



