"""The turn table: corpus -> course of care -> session -> turn, one row per turn.

Follows ConvoKit's conversation model (corpus, conversation, utterance, speaker, each with metadata), flattened
into one pandas/Arrow table so every lens works on columns instead of objects.

Keys. A turn is identified by ``(course_id, session_id, turn_index)``. A *course of care* is one client with one
counsellor (human or AI) over one or more sessions, ordered by ``session_index``. Session-level labels (survey
scores, MI quality, ...) live in :attr:`Corpus.sessions`; turn-level labels in each turn's ``meta``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

Role = Literal["client", "counsellor"]
ROLES: tuple[str, ...] = ("client", "counsellor")

TURN_KEY: list[str] = ["course_id", "session_id", "turn_index"]
SESSION_KEY: list[str] = ["course_id", "session_id"]

#: Columns of :attr:`Corpus.turns`, in order, with their pandas dtypes.
TURN_COLUMNS: dict[str, str] = {
    "course_id": "string",
    "session_id": "string",
    "session_index": "int64",
    "turn_index": "int64",
    "speaker": "string",
    "speaker_id": "string",
    "counsellor_is_ai": "boolean",
    "text": "string",
    "timestamp": "datetime64[ns, UTC]",
    "meta": "object",
}

#: Columns of :attr:`Corpus.sessions`.
SESSION_COLUMNS: dict[str, str] = {
    "course_id": "string",
    "session_id": "string",
    "session_index": "int64",
    "n_turns": "int64",
    "source": "string",
    "meta": "object",
}


class CorpusError(ValueError):
    """A turn table that breaks the data model (missing columns, unknown roles, duplicate keys)."""


@dataclass(frozen=True)
class Turn:
    """One utterance as readers produce it, before it becomes a row."""

    course_id: str
    session_id: str
    turn_index: int
    speaker: str
    text: str
    session_index: int = 0
    speaker_id: str | None = None
    counsellor_is_ai: bool | None = None
    timestamp: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Where a reader found the turn (file, and line or record), so later checks can name it; not a column.
    source: str = field(default="", compare=False, repr=False)
    location: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class SessionInfo:
    """Session-level metadata (labels such as survey scores) as readers produce it."""

    course_id: str
    session_id: str
    session_index: int = 0
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


class Corpus:
    """A corpus of counselling sessions held as one turn table plus a session table.

    Build one with :meth:`from_turns`, :meth:`from_frame` or a reader in :mod:`alliance.io`; get plain
    DataFrames back with :meth:`to_frame`. Rows of :attr:`turns` are always sorted by course, session index
    and turn index, and lenses return columns aligned to that order.
    """

    def __init__(self, turns: pd.DataFrame, sessions: pd.DataFrame | None = None, *, validate: bool = True):
        turns = _coerce_turns(turns)
        if sessions is None or len(sessions) == 0:
            sessions = _sessions_from_turns(turns)
        sessions = _coerce_sessions(sessions, turns)
        self.turns: pd.DataFrame = turns
        self.sessions: pd.DataFrame = sessions
        if validate:
            self.validate()

    # construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_turns(cls, turns: Iterable[Turn], sessions: Iterable[SessionInfo] = ()) -> Corpus:
        rows = [
            {
                "course_id": t.course_id,
                "session_id": t.session_id,
                "session_index": t.session_index,
                "turn_index": t.turn_index,
                "speaker": t.speaker,
                "speaker_id": t.speaker_id,
                "counsellor_is_ai": t.counsellor_is_ai,
                "text": t.text,
                "timestamp": t.timestamp,
                "meta": dict(t.meta),
            }
            for t in turns
        ]
        srows = [
            {
                "course_id": s.course_id,
                "session_id": s.session_id,
                "session_index": s.session_index,
                "source": s.source,
                "meta": dict(s.meta),
            }
            for s in sessions
        ]
        turn_df = pd.DataFrame(rows, columns=list(TURN_COLUMNS))
        sess_df = pd.DataFrame(srows, columns=["course_id", "session_id", "session_index", "source", "meta"])
        return cls(turn_df, sess_df if len(sess_df) else None)

    @classmethod
    def from_frame(cls, turns: pd.DataFrame, sessions: pd.DataFrame | None = None) -> Corpus:
        """Build from DataFrames; ``meta`` may hold dicts or JSON strings (as written to Parquet)."""
        return cls(turns, sessions)

    def to_frame(self) -> pd.DataFrame:
        """The turn table joined with session metadata as ``session_meta`` (a copy)."""
        out = self.turns.copy()
        smeta = self.sessions.set_index(SESSION_KEY)["meta"]
        idx = pd.MultiIndex.from_frame(out[SESSION_KEY])
        out["session_meta"] = smeta.reindex(idx).to_numpy()
        return out

    # invariants -----------------------------------------------------------------------------------------
    def validate(self) -> None:
        t = self.turns
        bad_roles = ~t["speaker"].isin(ROLES)
        if bad_roles.any():
            i = int(np.flatnonzero(bad_roles.to_numpy())[0])
            raise CorpusError(
                f"turn {_key(t, i)}: unknown speaker role {t['speaker'].iat[i]!r}; expected one of {ROLES}"
            )
        empty = t["text"].isna() | (t["text"].str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise CorpusError(f"turn {_key(t, i)}: empty text")
        dup = t.duplicated(TURN_KEY, keep="first")
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise CorpusError(f"duplicate turn key {_key(t, i)}")

    # views ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.turns)

    def __repr__(self) -> str:
        return (
            f"Corpus({self.n_courses} courses, {len(self.sessions)} sessions, {len(self.turns)} turns)"
        )

    @property
    def n_courses(self) -> int:
        return int(self.turns["course_id"].nunique())

    def session_keys(self) -> list[tuple[str, str]]:
        return list(self.sessions[SESSION_KEY].itertuples(index=False, name=None))

    def iter_sessions(self) -> Iterator[tuple[tuple[str, str], pd.DataFrame]]:
        """Yield ``((course_id, session_id), turns)`` in corpus order."""
        for key, grp in self.turns.groupby(SESSION_KEY, sort=False):
            yield (str(key[0]), str(key[1])), grp

    def subset_sessions(self, keys: Iterable[tuple[str, str]]) -> Corpus:
        """A new corpus with only these sessions (order kept)."""
        wanted = pd.MultiIndex.from_tuples(list(keys), names=SESSION_KEY)
        tmask = pd.MultiIndex.from_frame(self.turns[SESSION_KEY]).isin(wanted)
        smask = pd.MultiIndex.from_frame(self.sessions[SESSION_KEY]).isin(wanted)
        return Corpus(self.turns[tmask].copy(), self.sessions[smask].copy(), validate=False)

    def session_meta(self, key: str) -> pd.Series:
        """One session-level label as a Series indexed by (course_id, session_id); missing -> NaN."""
        vals = [m.get(key) if isinstance(m, Mapping) else None for m in self.sessions["meta"]]
        idx = pd.MultiIndex.from_frame(self.sessions[SESSION_KEY])
        return pd.Series(vals, index=idx, name=key, dtype=object)

    def turn_meta(self, key: str) -> pd.Series:
        """One turn-level label, aligned to :attr:`turns`."""
        return pd.Series(
            [m.get(key) if isinstance(m, Mapping) else None for m in self.turns["meta"]],
            index=self.turns.index,
            name=key,
            dtype=object,
        )

    def exchanges(self) -> pd.DataFrame:
        """Group consecutive same-speaker turns into exchanges.

        Returns one row per turn with ``block`` (a run of consecutive turns by one speaker, numbered within the
        session) and ``exchange`` (a client block and the counsellor block that answers it; a session that
        opens with the counsellor gives that opening block exchange 0 on its own).
        """
        t = self.turns
        course, sess, spk = (t[c].to_numpy(dtype=object) for c in ("course_id", "session_id", "speaker"))
        same_sess = np.zeros(len(t), dtype=bool)
        same_sess[1:] = (course[1:] == course[:-1]) & (sess[1:] == sess[:-1])
        same_spk = np.zeros(len(t), dtype=bool)
        same_spk[1:] = spk[1:] == spk[:-1]
        new_block = ~(same_sess & same_spk)
        sess_no = np.cumsum(~same_sess)
        block_global = np.cumsum(new_block)
        block = block_global - pd.Series(block_global).groupby(sess_no).transform("min").to_numpy()
        # exchange 0 is the opening block whoever speaks first; every later client block opens a new exchange
        opens = (new_block & (spk == "client") & same_sess) | ~same_sess
        exch_global = np.cumsum(opens)
        exchange = exch_global - pd.Series(exch_global).groupby(sess_no).transform("min").to_numpy()
        return pd.DataFrame(
            {"block": block.astype("int64"), "exchange": exchange.astype("int64")}, index=t.index
        )

    def previous_turn_of_other_side(self) -> pd.Series:
        """For each turn, the row position of the nearest earlier turn in the same session by the other side
        (``-1`` where there is none). Lenses use it to pair a counsellor reply with the client turn it answers."""
        t = self.turns
        out = np.full(len(t), -1, dtype=np.int64)
        speakers = t["speaker"].to_numpy()
        sess = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        last = {"client": -1, "counsellor": -1}
        cur = -1
        for i in range(len(t)):
            if sess[i] != cur:
                cur = sess[i]
                last = {"client": -1, "counsellor": -1}
            other = "counsellor" if speakers[i] == "client" else "client"
            out[i] = last[other]
            last[speakers[i]] = i
        return pd.Series(out, index=t.index, name="prev_other")

    # persistence ----------------------------------------------------------------------------------------
    def to_parquet(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta_to_json(self.turns).to_parquet(d / "corpus_turns.parquet", index=False)
        meta_to_json(self.sessions).to_parquet(d / "corpus_sessions.parquet", index=False)

    @classmethod
    def read_parquet(cls, directory: str | Path) -> Corpus:
        d = Path(directory)
        return cls(pd.read_parquet(d / "corpus_turns.parquet"), pd.read_parquet(d / "corpus_sessions.parquet"))


# helpers --------------------------------------------------------------------------------------------------
def session_codes(turns: pd.DataFrame) -> tuple[np.ndarray, pd.MultiIndex]:
    """Each turn's session number (0, 1, ... in order of first appearance) and the session keys in that order:
    ``pd.factorize`` of the (course_id, session_id) pairs, computed from the two columns' codes (building the
    pairs as Python tuples costs more than the lenses that need them)."""
    a, courses = pd.factorize(turns[SESSION_KEY[0]])
    b, sessions = pd.factorize(turns[SESSION_KEY[1]])
    if len(a) and (a.min() < 0 or b.min() < 0):  # a missing key: pandas' own factorizing decides what it means
        codes, keys = pd.factorize(pd.MultiIndex.from_frame(turns[SESSION_KEY]))
        return codes, pd.MultiIndex.from_tuples(list(keys), names=SESSION_KEY)
    codes, pairs = pd.factorize(a.astype(np.int64) * max(len(sessions), 1) + b)
    n = max(len(sessions), 1)
    return codes, pd.MultiIndex.from_arrays([courses.take(pairs // n), sessions.take(pairs % n)], names=SESSION_KEY)


def word_counts(text: pd.Series) -> np.ndarray:
    """Whitespace-separated words per row (Python's ``str.split()``), NaN for missing text, as floats: what
    ``text.astype(str).str.split().str.len()`` gives, without a Python call per row for Arrow-backed text.

    Arrow's whitespace is Python's (checked on every Unicode code point alone, doubled and between letters)."""
    import pyarrow as pa

    arr = getattr(text.array, "_pa_array", None)
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        import pyarrow.compute as pc

        trimmed = pc.utf8_trim_whitespace(arr)
        n = np.asarray(pc.list_value_length(pc.utf8_split_whitespace(trimmed)).to_numpy(zero_copy_only=False),
                       dtype=np.float64)
        empty = np.asarray(pc.fill_null(pc.equal(trimmed, ""), False).to_numpy(zero_copy_only=False), dtype=bool)
        return np.where(empty, 0.0, n)
    return np.fromiter((len(x.split()) if isinstance(x, str) else np.nan for x in text.astype(str)),
                       dtype=np.float64, count=len(text))


def pack(items: Iterable[tuple[Any, int]], max_turns: int) -> list[list[Any]]:
    """Greedy chunks of ``(item, n_turns)`` in order, each up to about ``max_turns`` turns (an item larger than that
    is a chunk of its own; items are whole courses, never split). Shared by the in-memory and the lazy input."""
    chunks: list[list[Any]] = []
    cur: list[Any] = []
    n = 0
    for item, size in items:
        if cur and n + size > max_turns:
            chunks.append(cur)
            cur, n = [], 0
        cur.append(item)
        n += size
    if cur:
        chunks.append(cur)
    return chunks


def meta_to_json(df: pd.DataFrame, columns: Iterable[str] = ("meta", "session_meta")) -> pd.DataFrame:
    """Copy with dict-valued metadata columns serialised to JSON text, for Parquet."""
    out = df.copy()
    for c in columns:
        if c in out.columns:
            out[c] = [json.dumps(m, ensure_ascii=False, default=str, sort_keys=True) for m in out[c]]
    return out


def _meta_from_any(v: Any) -> dict:
    if isinstance(v, Mapping):
        return dict(v)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return {}
    if isinstance(v, str):
        return dict(json.loads(v)) if v.strip() else {}
    raise CorpusError(f"metadata must be a mapping or JSON text, got {type(v).__name__}")


def _coerce_turns(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("course_id", "session_id", "turn_index", "speaker", "text") if c not in df.columns]
    if missing:
        raise CorpusError(f"turn table lacks required column(s) {missing}")
    out = pd.DataFrame(index=range(len(df)))
    src = df.reset_index(drop=True)
    for col, dtype in TURN_COLUMNS.items():
        if col in src.columns:
            vals = src[col]
        elif col == "session_index":
            vals = pd.Series(0, index=src.index)
        elif col == "meta":
            vals = pd.Series([{}] * len(src), index=src.index, dtype=object)
        else:
            vals = pd.Series(pd.NA, index=src.index)
        if col == "meta":
            out[col] = pd.Series([_meta_from_any(v) for v in vals], dtype=object)
        elif col == "timestamp":
            out[col] = pd.to_datetime(vals, utc=True, errors="raise")
        elif col in ("course_id", "session_id", "speaker_id"):
            out[col] = vals.astype("string")
        else:
            out[col] = vals.astype(dtype)
    extra = [c for c in src.columns if c not in TURN_COLUMNS]
    for c in extra:  # keep caller's extra columns (e.g. lens outputs) untouched
        out[c] = src[c]
    out = out.sort_values(["course_id", "session_index", "session_id", "turn_index"], kind="stable")
    return out.reset_index(drop=True)


def _sessions_from_turns(turns: pd.DataFrame) -> pd.DataFrame:
    g = turns.groupby(SESSION_KEY, sort=False)
    s = g["session_index"].first().reset_index()
    s["source"] = ""
    s["meta"] = [{} for _ in range(len(s))]
    return s


def _coerce_sessions(sessions: pd.DataFrame, turns: pd.DataFrame) -> pd.DataFrame:
    s = sessions.reset_index(drop=True).copy()
    for c in ("course_id", "session_id"):
        if c not in s.columns:
            raise CorpusError(f"session table lacks required column {c!r}")
        s[c] = s[c].astype("string")
    if "session_index" not in s.columns:
        s["session_index"] = 0
    s["source"] = s["source"].astype("string") if "source" in s.columns else ""
    s["meta"] = [_meta_from_any(v) for v in s["meta"]] if "meta" in s.columns else [{} for _ in range(len(s))]
    counts = turns.groupby(SESSION_KEY, sort=False).size().rename("n_turns").reset_index()
    keys_in_turns = set(map(tuple, counts[SESSION_KEY].itertuples(index=False, name=None)))
    # A boolean array, not a list: an empty list would select no columns rather than no rows.
    s = s[np.array([k in keys_in_turns for k in s[SESSION_KEY].itertuples(index=False, name=None)], dtype=bool)]
    if "n_turns" in s.columns:
        s = s.drop(columns="n_turns")
    s = s.merge(counts, on=SESSION_KEY, how="right")
    s["session_index"] = s["session_index"].fillna(0).astype("int64")
    s["source"] = s["source"].fillna("").astype("string")
    s["meta"] = [m if isinstance(m, dict) else {} for m in s["meta"]]
    s = s.sort_values(["course_id", "session_index", "session_id"], kind="stable").reset_index(drop=True)
    return s[list(SESSION_COLUMNS)]


def _key(t: pd.DataFrame, i: int) -> str:
    return f"({t['course_id'].iat[i]}, {t['session_id'].iat[i]}, {t['turn_index'].iat[i]})"
