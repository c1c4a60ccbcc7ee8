"""Relational markers per turn and per session: self-reference, non-fluency, questions, talk share, latency.

Evidence: word-level markers that the alliance literature links to client-rated alliance (Ryu et al., iScience
2023), to ruptures (minimal responses as withdrawal; Safran & Muran 2000, Eubanks et al. 2015) and to MI quality
(open vs closed questions; Moyers et al. 2016, MITI 4).

Every count is a vectorised regular expression over the lower-cased text column (no per-token Python loops), so
the lens runs far faster than the encoder. Rates are per word; per session they are pooled (sum of counts over
sum of words for one side), because per-turn rates of two-word turns are mostly noise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import ROLES, SESSION_KEY, Corpus
from alliance.lenses.base import Lens, LensContext, ReportSection

#: A word: letters/digits with an optional contraction ("don't", "i'm" count once).
WORD = r"[a-z0-9]+(?:'[a-z]+)?"

# Word lists, matched against whole tokens (contractions are single tokens: "i'm" counts as first person).
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll"})
WE = frozenset({"we", "us", "our", "ours", "ourselves", "let's", "we're", "we've", "we'd", "we'll"})
YOU = frozenset({"you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'd", "you'll"})
#: Ryu et al. (2023) single out "cognitive I": I + a verb of thinking or feeling (optionally one hedge between).
COGNITIVE_VERBS = frozenset({
    "think", "thought", "feel", "felt", "believe", "guess", "know", "knew", "wonder", "wondered", "suppose",
    "imagine", "understand", "sense", "suspect", "notice", "noticed", "realize", "realise", "hope", "assume",
    "expect", "recall", "remember", "mean"})
COGNITIVE_HEDGES = frozenset({"really", "just", "do", "also", "still", "kinda", "sorta", "actually", "don't"})
#: Filled pauses; backchannels ("mm-hmm", "uh-huh") are listening signals and are removed before counting.
FILLED_PAUSE = r"^(?:u+m+|u+h+|e+r+m*|h+m+|m{2,})$"
BACKCHANNEL = r"mm+-?hmm+|uh-huh|mhm+"
#: Discourse fillers only where punctuation or a pause marks them as fillers: "you know," / ", I mean" /
#: ", like," ; "I like tea", "do you know him" and "I mean it." do not count.
DISCOURSE_FILLER = (r"(?:,|\.\.\.|…) *(?:you know|i mean)(?:[^a-z']|$)|(?:^|[^a-z'])(?:you know|i mean) *(?:[,;!?]|\.|$)"
                    r"|(?:^|[,;]|um|uh) *like(?:[^a-z']|$)|(?:^|[^a-z'])like *,")
#: Hesitation marks in text: ellipses, dashes of interruption or restart ("put-- you", "-and").
HESITATION = r"\.{3,}|…|--+|—|–| - |[a-z]-(?: |$)|^-"
#: Rates reported per side and session, from the per-turn counts of the same name.
RATE_MARKERS = ("i", "cognitive_i", "we", "you", "filled_pause", "discourse_filler", "hesitation", "repetition",
                "nonfluency")
NONFLUENCY = ("filled_pause", "discourse_filler", "hesitation", "repetition")

_LEAD = r"(?:^|[.!?…] *) *(?:(?:so|and|but|okay|ok|well|now|then|alright|right|um|uh|and so|yeah),? +)*"
_INVITE = r"(?:tell me|describe|say more|walk me through|help me understand|talk about)"
#: Open questions (MITI 4): wh-/how forms, "can you tell me ...?" and "tell me / describe / say more" invitations
#: with or without "?". Closed: every other question (auxiliary-initial yes/no, declarative and tag questions).
# (no "\b": RE2 runs patterns without word boundaries on its fast DFA; a word ends at " ", ",", "'" or "?")
OPEN_QUESTION = (_LEAD + r"(?:what|how|why|where|when|who|whom|whose|which|in what way|"
                 r"(?:can|could|would|will) you " + _INVITE + r"|" + _INVITE + r")(?:[ ,'][^.!?]*)?\?")
OPEN_INVITATION = _LEAD + _INVITE + r"(?:[ ,][^.!?]*)?(?:[.!]|$)"
QUESTION = r"[^.!?]*\?+"

#: A whole turn made only of these is a minimal response, a withdrawal marker (Eubanks et al. 2015, R-RRS).
MINIMAL = (r"^\W*(?:(?:ok(?:ay)?|k|yeah|yes|yep|yup|yea|fine|sure|i guess|i suppose|maybe|right|alright|"
           r"all right|mm+-?hmm+|mhm+|uh-huh|hmm+|i see|true|whatever|not really|i don'?t know|dunno|no|nope|"
           r"i think so|that's fine|good|thanks|thank you|oh)\W*)+$")

#: Known corpora and their medium; anything else is inferred from the text (see :func:`infer_medium`).
SOURCE_MEDIUM = {"annomi": "speech", "kokorochat": "text", "esconv": "text", "epitome": "text"}
#: Filled pauses and backchannels per word above which an unlabelled session reads as transcribed speech.
SPEECH_CUE_RATE = 0.004
_SPEECH_CUES = r"\b(?:u+m+|u+h+|mm+-?hmm+|uh-huh|mhm+)\b|\[(?:laughs?|inaudible|crosstalk|pause)\]"


def prepare_text(text: pd.Series) -> pd.Series:
    """Lower-case, straight apostrophes, Arrow-backed (pyarrow's RE2 kernels do the counting)."""
    s = text.astype("string[pyarrow]").str.lower()
    return s.str.replace("’", "'", regex=False).str.replace("‘", "'", regex=False)


def _arrow(s: pd.Series) -> Any:
    import pyarrow as pa

    arr = getattr(s.array, "_pa_array", None)
    return arr if arr is not None else pa.array(s.astype(object), type=pa.string())


def count(s: pd.Series, pattern: str) -> np.ndarray:
    """Matches of ``pattern`` per row (0 for missing text), with pyarrow's RE2 kernel (no Python per row)."""
    import pyarrow.compute as pc

    out = pc.count_substring_regex(_arrow(s), pattern)
    return np.nan_to_num(np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64))


def matches(s: pd.Series, pattern: str) -> np.ndarray:
    """Whether each row matches ``pattern`` (False for missing text)."""
    import pyarrow.compute as pc

    out = pc.fill_null(pc.match_substring_regex(_arrow(s), pattern), False)
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=bool)


class Tokens:
    """Every turn's words as one flat Arrow array with the row each came from, so word-list counts, word pairs
    and repetitions are array operations (no Python loop per token).

    Tokens are runs of letters, digits and apostrophes; hyphens split ("I-I" is "i", "i").
    """

    def __init__(self, text: pd.Series):
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = _arrow(text)
        lists = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.replace_substring_regex(arr, r"[^a-z0-9']+", " ")))
        flat = pc.list_flatten(lists)
        parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
        # a stray apostrophe (a quote mark) is not a word
        keep = pc.match_substring_regex(flat, "[a-z0-9]")
        flat = pc.filter(flat, keep)
        self.n = len(text)
        self.parent = parent[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        enc = pc.dictionary_encode(flat).combine_chunks() if isinstance(flat, pa.ChunkedArray) \
            else pc.dictionary_encode(flat)
        self.codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        self.vocab: list[str] = enc.dictionary.to_pylist()
        self._vocab_arr = enc.dictionary
        # consecutive tokens of the same turn (for pairs and repeats)
        self._same_next = self.parent[:-1] == self.parent[1:]

    def _in(self, words: frozenset[str] | set[str]) -> np.ndarray:
        in_vocab = np.fromiter((w in words for w in self.vocab), dtype=bool, count=len(self.vocab))
        return in_vocab[self.codes]

    def _per_row(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.parent[mask], minlength=self.n).astype(np.float64)

    def words(self) -> np.ndarray:
        return np.bincount(self.parent, minlength=self.n).astype(np.float64)

    def count(self, words: frozenset[str] | set[str]) -> np.ndarray:
        return self._per_row(self._in(words))

    def count_matching(self, pattern: str) -> np.ndarray:
        """Tokens that match an anchored regex (e.g. every spelling of "um")."""
        import pyarrow.compute as pc

        hit = np.asarray(pc.match_substring_regex(self._vocab_arr, pattern).to_numpy(zero_copy_only=False))
        return self._per_row(hit[self.codes])

    def count_sequence(self, slots: list[frozenset[str] | set[str]]) -> np.ndarray:
        """Runs of consecutive tokens in one turn whose i-th token is in ``slots[i]``, counted at the first."""
        m = len(slots)
        if len(self.codes) < m:
            return np.zeros(self.n)
        n = len(self.codes) - m + 1
        hit = np.ones(n, dtype=bool)
        for i, slot in enumerate(slots):
            hit &= self._in(slot)[i:i + n]
            if i > 0:
                hit &= self.parent[i:i + n] == self.parent[:n]
        return np.bincount(self.parent[:n][hit], minlength=self.n).astype(np.float64)

    def count_repeats(self) -> np.ndarray:
        """A word said twice in a row within a turn ("the the", "I-I", "we, we"): a restart or repetition."""
        hit = (self.codes[:-1] == self.codes[1:]) & self._same_next
        return np.bincount(self.parent[:-1][hit], minlength=self.n).astype(np.float64)


def infer_medium(text: pd.Series, words: np.ndarray) -> str:
    """'speech' when filled pauses/backchannels are frequent enough to be transcribed talk, else 'text'."""
    return medium_of(float(count(text, _SPEECH_CUES).sum()), float(words.sum()))


def medium_of(cues: float, words: float) -> str:
    """'speech' when ``cues`` (filled pauses, backchannels) per word reach :data:`SPEECH_CUE_RATE`, else 'text'."""
    return "speech" if words > 0 and cues / words >= SPEECH_CUE_RATE else "text"


class MarkersLens(Lens):
    """Counts of relational markers per turn; pooled per-word rates, question mix, talk share and latency per session."""

    name: ClassVar[str] = "markers"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = (
        "Ryu et al. 2023, iScience (therapist first-person use vs alliance; client non-fluency); "
        "Moyers et al. 2016, MITI 4 (open vs closed questions); Eubanks, Muran & Safran 2015, R-RRS "
        "(minimal response as withdrawal rupture marker)"
    )

    def __init__(self, medium: str = "auto"):
        if medium not in ("auto", "speech", "text"):
            raise ValueError(f"markers lens: medium must be 'auto', 'speech' or 'text', got {medium!r}")
        self.medium = medium

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        s = prepare_text(t["text"])
        tok = Tokens(s.str.replace(BACKCHANNEL, " ", regex=True))
        out = pd.DataFrame(index=t.index)
        out["markers_words"] = tok.words()
        out["markers_i"] = tok.count(FIRST_PERSON)
        out["markers_cognitive_i"] = tok.count_sequence([{"i"}, COGNITIVE_VERBS]) + tok.count_sequence(
            [{"i"}, COGNITIVE_HEDGES, COGNITIVE_VERBS])
        out["markers_we"] = tok.count(WE)
        out["markers_you"] = tok.count(YOU)
        out["markers_filled_pause"] = tok.count_matching(FILLED_PAUSE)
        out["markers_discourse_filler"] = count(s, DISCOURSE_FILLER)
        out["markers_hesitation"] = count(s, HESITATION)
        out["markers_repetition"] = tok.count_repeats()
        out["markers_nonfluency"] = out[[f"markers_{n}" for n in NONFLUENCY]].sum(axis=1)
        open_q = count(s, OPEN_QUESTION)
        out["markers_open_questions"] = open_q + count(s, OPEN_INVITATION)
        out["markers_closed_questions"] = np.maximum(count(s, QUESTION) - open_q, 0.0)
        out["markers_minimal"] = matches(s, MINIMAL).astype(np.float64)
        out["markers_latency_s"] = response_latency(corpus)
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        keys = [t[k] for k in SESSION_KEY]
        counts = [f"markers_{n}" for n in RATE_MARKERS]
        df = turn_scores.copy()
        df["speaker"] = t["speaker"].to_numpy()
        res = pd.DataFrame(index=pd.MultiIndex.from_frame(corpus.sessions[SESSION_KEY]))
        total_words = df.groupby(keys, sort=False)["markers_words"].sum()
        for side in ROLES:
            d = df[df["speaker"] == side]
            g = d.groupby([k[d.index] for k in keys], sort=False)
            sums = g[[*counts, "markers_words", "markers_open_questions", "markers_closed_questions",
                      "markers_minimal"]].sum()
            words = sums["markers_words"].where(sums["markers_words"] > 0)
            p = f"markers_{side}_"
            for c in counts:
                res[p + c.removeprefix("markers_") + "_rate"] = (sums[c] / words).reindex(res.index)
            res[p + "turns"] = g.size().reindex(res.index).fillna(0)
            res[p + "mean_words"] = g["markers_words"].mean().reindex(res.index)
            res[p + "talk_share"] = (sums["markers_words"] / total_words.where(total_words > 0)).reindex(res.index)
            res[p + "latency_median_s"] = g["markers_latency_s"].median().reindex(res.index)
            res[p + "minimal_share"] = g["markers_minimal"].mean().reindex(res.index)
            if side == "counsellor":
                q = sums["markers_open_questions"] + sums["markers_closed_questions"]
                res[p + "questions_per_turn"] = (q / g.size()).reindex(res.index)
                res[p + "open_question_share"] = (sums["markers_open_questions"] / q.where(q > 0)).reindex(res.index)
        res["markers_medium"] = self._media(corpus, turn_scores)
        return res

    def _media(self, corpus: Corpus, turn_scores: pd.DataFrame) -> list[str]:
        """Per session: the lens option, else session meta ``medium``, else the source, else inferred."""
        if self.medium != "auto":
            return [self.medium] * len(corpus.sessions)
        out = []
        for row in corpus.sessions.itertuples(index=False):
            meta = row.meta if isinstance(row.meta, dict) else {}
            medium = str(meta.get("medium") or "").lower()
            if medium not in ("speech", "text"):
                source = str(row.source or "").lower()  # readers record the file path; the corpus name is in it
                medium = next((m for name, m in SOURCE_MEDIUM.items() if name in source), "")
            out.append(medium)
        unknown = [i for i, m in enumerate(out) if not m]
        if unknown:  # only sessions that nothing labels are read for speech cues (one pass over all their turns)
            t = corpus.turns
            sessions = pd.MultiIndex.from_frame(corpus.sessions[SESSION_KEY].iloc[unknown])
            rows = pd.MultiIndex.from_frame(t[SESSION_KEY]).isin(sessions)
            turns = t[SESSION_KEY][rows]
            cues = pd.Series(count(prepare_text(t["text"][rows]), _SPEECH_CUES), index=turns.index)
            words = turn_scores["markers_words"][rows].astype(np.float64)
            by = [turns[k] for k in SESSION_KEY]
            totals = pd.DataFrame({"cues": cues.groupby(by).sum(), "words": words.groupby(by).sum()}
                                  ).reindex(sessions, fill_value=0.0)
            for i, (c, w) in zip(unknown, totals.itertuples(index=False), strict=True):
                out[i] = medium_of(float(c), float(w))
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "medium": self.medium, "speech_cue_rate": SPEECH_CUE_RATE,
                "cognitive_verbs": sorted(COGNITIVE_VERBS), "discourse_filler": DISCOURSE_FILLER,
                "hesitation": HESITATION, "open_question": OPEN_QUESTION, "minimal_response": MINIMAL}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "markers_words" not in turns:
            return None
        from alliance.report.html import fmt

        rows = [("first-person singular (I, me, my) per word", "i_rate"),
                ("cognitive I (I think, I feel, ...) per word", "cognitive_i_rate"),
                ("we per word", "we_rate"), ("you per word", "you_rate"),
                ("filled pauses per word", "filled_pause_rate"), ("discourse fillers per word", "discourse_filler_rate"),
                ("hesitation marks per word", "hesitation_rate"), ("repetitions per word", "repetition_rate"),
                ("words per turn", "mean_words"), ("share of words", "talk_share"),
                ("median response latency (s)", "latency_median_s"), ("minimal responses (share of turns)",
                                                                      "minimal_share")]
        body = "".join(f"<tr><td class=l>{label}</td><td>{fmt(session.get(f'markers_client_{c}'))}</td>"
                       f"<td>{fmt(session.get(f'markers_counsellor_{c}'))}</td></tr>" for label, c in rows)
        q = (f"<p>Counsellor questions per turn: {fmt(session.get('markers_counsellor_questions_per_turn'))}; "
             f"open share: {fmt(session.get('markers_counsellor_open_question_share'))}. "
             f"Medium: {fmt(session.get('markers_medium'))}.</p>")
        table = f"<table><tr><th class=l>marker</th><th>client</th><th>counsellor</th></tr>{body}</table>"
        spec_id = f"{prefix}-talk"
        html = f"<div class=row>{table}<div data-spec='{spec_id}'></div></div>{q}"
        return ReportSection("Relational markers (self-reference, non-fluency, questions, talk, withdrawal)", html,
                             {spec_id: _talk_chart(turns)})


def response_latency(corpus: Corpus) -> np.ndarray:
    """Seconds from the previous other-side turn, on the first turn of each speaker change; NaN elsewhere.

    Only a turn that answers the other side has a response latency; a second message in a row does not.
    """
    t = corpus.turns
    ts = t["timestamp"]
    same_session = ((t["course_id"] == t["course_id"].shift()) & (t["session_id"] == t["session_id"].shift()))
    answers = same_session & (t["speaker"] != t["speaker"].shift())
    secs = (ts - ts.shift()).dt.total_seconds()
    return secs.where(answers.fillna(False).astype(bool)).to_numpy(dtype=np.float64)


def _talk_chart(turns: pd.DataFrame) -> dict[str, Any]:
    """Words per turn over the session, by side: who holds the floor, and where the client goes quiet."""
    import altair as alt

    from alliance.report.charts import PALETTE

    df = pd.DataFrame({"turn": turns["turn_index"].to_numpy(), "speaker": turns["speaker"].astype(str).to_numpy(),
                       "words": turns["markers_words"].to_numpy(dtype=float),
                       "minimal": np.where(turns["markers_minimal"].to_numpy(dtype=float) > 0, "minimal", "")})
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("turn:Q", title="turn"), y=alt.Y("words:Q", title="words"),
        color=alt.Color("speaker:N", scale=alt.Scale(domain=list(ROLES), range=[PALETTE[0], PALETTE[1]])),
        tooltip=["turn", "speaker", "words", "minimal"],
    ).properties(width=420, height=140)
    return chart.to_dict()
