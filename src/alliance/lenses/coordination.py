"""Linguistic coordination between client and counsellor: style matching on function words, and Word Mover's
Distance coordination of content words, per exchange, per session, per third and across a course of care.

Evidence: Language Style Matching (Niederhoffer & Pennebaker 2002; Gonzales, Hancock & Pennebaker 2010; Ireland &
Pennebaker 2010) and WMD-based coordination (Nasir et al., Interspeech 2019: couples whose language converged over
therapy were the ones who improved), with WMD and its relaxed lower bound from Kusner et al. (ICML 2015).

Word vectors are static: distilled from the shipped sentence encoder with model2vec (Tulkens & van Dongen 2024)
and shipped in the package (:mod:`alliance.lenses.word_vectors`), so WMD runs offline with no set-up. The function-word
lists are the project's own (version :data:`FUNCTION_WORDS_VERSION`), not LIWC's.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import ROLES, SESSION_KEY, Corpus
from alliance.lenses.base import Lens, LensContext, ReportSection
from alliance.lenses.markers import WORD, Tokens, prepare_text
from alliance.lenses.word_vectors import SHIPPED_PCA_DIMS, WordVectors

FUNCTION_WORDS_VERSION = "function_words_v1"
#: The project's own function-word categories (Gonzales et al. 2010 use these nine LIWC categories; the lists
#: here were written for this project from English grammar, contractions included).
FUNCTION_WORDS: dict[str, tuple[str, ...]] = {
    "articles": ("a", "an", "the"),
    "auxiliary_verbs": (
        "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does",
        "did", "doing", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "ought",
        "i'm", "you're", "we're", "they're", "he's", "she's", "it's", "that's", "i've", "you've", "we've",
        "they've", "i'll", "you'll", "we'll", "they'll", "i'd", "you'd", "we'd", "they'd", "isn't", "aren't",
        "wasn't", "weren't", "don't", "doesn't", "didn't", "haven't", "hasn't", "hadn't", "won't", "wouldn't",
        "can't", "cannot", "couldn't", "shouldn't", "mustn't", "gonna", "gotta"),
    "conjunctions": ("and", "but", "or", "nor", "yet", "because", "cause", "although", "though", "while",
                     "whereas", "unless", "until", "if", "whether", "since", "so", "then", "also", "plus"),
    "adverbs": ("very", "really", "just", "quite", "too", "always", "often", "sometimes", "usually", "maybe",
                "perhaps", "probably", "actually", "even", "still", "already", "almost", "only", "rather",
                "pretty", "totally", "completely", "definitely", "here", "there", "now", "again", "ever", "soon",
                "later", "once", "somehow", "anyway", "especially", "simply", "basically", "certainly", "exactly",
                "kind of", "sort of", "a bit", "a little"),
    "personal_pronouns": ("i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves", "you", "your",
                          "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers",
                          "herself", "they", "them", "their", "theirs", "themselves"),
    "impersonal_pronouns": ("it", "its", "itself", "this", "that", "these", "those", "something", "anything",
                            "everything", "nothing", "someone", "anyone", "everyone", "somebody", "anybody",
                            "everybody", "what", "which", "whatever", "whichever", "one"),
    "prepositions": ("about", "above", "across", "after", "against", "along", "among", "around", "at", "before",
                     "behind", "below", "beneath", "beside", "between", "beyond", "by", "down", "during", "except",
                     "for", "from", "in", "inside", "into", "near", "of", "off", "on", "onto", "out", "outside",
                     "over", "past", "through", "throughout", "to", "toward", "towards", "under", "underneath",
                     "up", "upon", "with", "within", "without", "like"),
    "quantifiers": ("all", "any", "both", "each", "every", "few", "many", "much", "more", "most", "less", "least",
                    "lot", "lots", "several", "some", "enough", "plenty", "half", "whole", "none", "either",
                    "neither", "another", "little", "bit"),
    "negations": ("no", "not", "never", "nothing", "nobody", "nowhere", "neither", "nor", "none", "cannot",
                  "without", "n't"),
}
#: Gonzales et al. (2010) add .0001 to the denominator so two speakers who both never use a category match fully.
LSM_EPSILON = 1e-4


#: Clitics: "that's" counts as "that", "i'm" as "i" (the auxiliary forms are listed under auxiliary_verbs).
CLITICS = ("m", "re", "s", "ve", "ll", "d")


def _token_sets(words: tuple[str, ...]) -> tuple[frozenset[str], list[list[frozenset[str]]], bool]:
    """A category as single tokens (with clitic forms), multi-word phrases, and whether "n't" counts."""
    singles = {w for w in words if " " not in w and w != "n't"}
    singles |= {f"{w}'{c}" for w in singles if "'" not in w for c in CLITICS}
    phrases = [[frozenset({part}) for part in w.split()] for w in words if " " in w]
    return frozenset(singles), phrases, "n't" in words


STOP_WORDS: frozenset[str] = frozenset(w for ws in FUNCTION_WORDS.values() for w in ws if " " not in w) | {
    "oh", "ok", "okay", "yeah", "yes", "um", "uh", "er", "hmm", "mm", "well", "s", "t", "re", "ll", "ve", "d", "m",
    "let's", "get", "got", "go", "going", "know", "think", "say", "said", "feel"}


# ---- Language Style Matching ------------------------------------------------------------------------------
def category_counts(text: pd.Series) -> pd.DataFrame:
    """Function-word counts per category and word totals per turn (array operations on one token table)."""
    tok = Tokens(prepare_text(text))
    out = {}
    for cat, words in FUNCTION_WORDS.items():
        singles, phrases, negated = _token_sets(words)
        n = tok.count(singles)
        for phrase in phrases:
            n = n + tok.count_sequence(phrase)
        if negated:  # every negated contraction ("don't", "isn't") counts as a negation
            n = n + tok.count_matching("n't$")
        out[cat] = n
    out["words"] = tok.words()
    return pd.DataFrame(out, index=text.index)


def lsm(profile_a: np.ndarray, profile_b: np.ndarray) -> np.ndarray:
    """Style matching per category, 1 - |a - b| / (a + b + .0001), for rate profiles (rows = pairs)."""
    a, b = np.asarray(profile_a, dtype=float), np.asarray(profile_b, dtype=float)
    return 1.0 - np.abs(a - b) / (a + b + LSM_EPSILON)


# ---- Word Mover's Distance ---------------------------------------------------------------------------------
def _ot() -> Any:
    # POT registers every array backend it can import; torch alone costs seconds and WMD needs only numpy, so
    # skip it unless the process has already loaded torch (then it is free)
    if "torch" not in sys.modules:
        os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
    import ot

    return ot


def wmd(weights_a: np.ndarray, weights_b: np.ndarray, cost: np.ndarray) -> float:
    """Exact Word Mover's Distance: earth mover's distance between two normalised bags of words (POT's EMD)."""
    return float(_ot().emd2(np.ascontiguousarray(weights_a, dtype=np.float64),
                            np.ascontiguousarray(weights_b, dtype=np.float64),
                            np.ascontiguousarray(cost, dtype=np.float64), check_marginals=False))


def relaxed_wmd(weights_a: np.ndarray, weights_b: np.ndarray, cost: np.ndarray) -> float:
    """Relaxed WMD (Kusner et al. 2015): each side's mass moves to its nearest word on the other side; a lower
    bound on the exact WMD."""
    return float(max((weights_a * cost.min(axis=1)).sum(), (weights_b * cost.min(axis=0)).sum()))


def bag_of_words(text: pd.Series, stop_words: frozenset[str] = STOP_WORDS) -> list[dict[str, int]]:
    """Content words and their counts per turn (function words and fillers removed, as in Kusner et al.)."""
    tokens = prepare_text(text).str.findall(WORD)
    out = []
    for toks in tokens:
        bag: dict[str, int] = {}
        for w in toks if isinstance(toks, list) else ():
            if w not in stop_words and not w.isdigit():
                bag[w] = bag.get(w, 0) + 1
        out.append(bag)
    return out


class _Docs:
    """Turns as bags of unit word vectors with weights; word-to-word costs are computed per compared pair."""

    def __init__(self, bags: list[dict[str, int]], vectors: WordVectors):
        vocab = sorted({w for b in bags for w in b})
        index = {w: i for i, w in enumerate(vocab)}
        table = vectors(vocab) if vocab else np.zeros((0, 1))
        self.vecs = [table[[index[w] for w in b]] for b in bags]
        self.weights = [np.array(list(b.values()), dtype=np.float64) / max(sum(b.values()), 1) for b in bags]

    def pair(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # unit vectors: |u - v|^2 = 2 - 2 u.v
        cost = np.sqrt(np.maximum(2.0 - 2.0 * (self.vecs[i] @ self.vecs[j].T), 0.0))
        return self.weights[i], self.weights[j], cost

    def relaxed(self, i: int, j: int) -> float:
        return relaxed_wmd(*self.pair(i, j))

    def exact(self, i: int, j: int) -> float:
        return wmd(*self.pair(i, j))

    def nearest(self, i: int, candidates: list[int], exact: bool) -> float:
        """Smallest distance from turn i to any candidate; exact mode prunes with the relaxed lower bound
        (Kusner et al.'s prefetch-and-prune), so it returns the exact minimum with fewer EMD solves."""
        if not candidates:
            return float("nan")
        lower = [self.relaxed(i, j) for j in candidates]
        if not exact:
            return float(min(lower))
        best = float("inf")
        for lb, j in sorted(zip(lower, candidates, strict=True)):
            if lb >= best:
                break
            best = min(best, self.exact(i, j))
        return best


def next_turns(speakers: np.ndarray, has_words: np.ndarray, k: int) -> tuple[list[list[int]], list[list[int]]]:
    """For each position, the next ``k`` content-bearing turns of the other side, and of the same side."""
    n = len(speakers)
    other: list[list[int]] = [[] for _ in range(n)]
    same: list[list[int]] = [[] for _ in range(n)]
    upcoming: dict[str, list[int]] = {r: [] for r in ROLES}
    for i in range(n - 1, -1, -1):  # walk backwards, keeping each side's next k content turns
        me = str(speakers[i])
        you = "counsellor" if me == "client" else "client"
        other[i] = upcoming[you][:k]
        same[i] = upcoming[me][:k]
        if has_words[i]:
            upcoming[me] = [i, *upcoming[me][: k - 1]]
    return other, same


class CoordinationLens(Lens):
    """Function-word style matching (LSM) per exchange and session; WMD coordination per turn, session, third,
    and its slope across a course of care."""

    name: ClassVar[str] = "coordination"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = (
        "Niederhoffer & Pennebaker 2002; Gonzales, Hancock & Pennebaker 2010 (language style matching); "
        "Nasir et al. 2019, Interspeech (WMD coordination in couples therapy); Kusner et al. 2015, ICML (WMD, "
        "relaxed WMD)"
    )

    def __init__(self, k: int = 3, method: str = "exact", word_vectors: str | Path | Mapping[str, Any] | None = None,
                 pca_dims: int = SHIPPED_PCA_DIMS):
        if k < 1:
            raise ValueError(f"coordination lens: k must be >= 1, got {k}")
        if method not in ("exact", "relaxed"):
            raise ValueError(f"coordination lens: method must be 'exact' or 'relaxed', got {method!r}")
        self.k = int(k)
        self.method = method
        self.vectors = WordVectors(word_vectors, pca_dims)

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        out = pd.DataFrame(index=t.index)
        out["coordination_lsm"] = self._exchange_lsm(corpus)
        d_other = np.full(len(t), np.nan)
        d_self = np.full(len(t), np.nan)
        bags = bag_of_words(t["text"])
        docs = _Docs(bags, self.vectors)
        speakers = t["speaker"].to_numpy(dtype=object)
        codes = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        bounds = np.flatnonzero(np.diff(np.r_[-1, codes, -2]))
        exact = self.method == "exact"
        has = np.array([len(b) > 0 for b in bags], dtype=bool)
        for start, stop in itertools.pairwise(bounds):
            other, same = next_turns(speakers[start:stop], has[start:stop], self.k)
            for i in np.flatnonzero(has[start:stop]):
                d_other[start + i] = docs.nearest(start + i, [start + j for j in other[i]], exact)
                d_self[start + i] = docs.nearest(start + i, [start + j for j in same[i]], exact)
        out["coordination_wmd_other"] = d_other
        out["coordination_wmd_self"] = d_self
        return out

    def _exchange_lsm(self, corpus: Corpus) -> np.ndarray:
        """LSM of each client block with the counsellor block that answers it, on the exchange's last turn."""
        t = corpus.turns
        cats = list(FUNCTION_WORDS)
        cc = category_counts(t["text"])
        cc["exchange"] = corpus.exchanges()["exchange"].to_numpy()
        for k in SESSION_KEY:
            cc[k] = t[k].to_numpy()
        cc["speaker"] = t["speaker"].to_numpy()
        g = cc.groupby([*SESSION_KEY, "exchange", "speaker"], sort=False)[[*cats, "words"]].sum()
        rates = g[cats].div(g["words"].where(g["words"] > 0), axis=0)
        wide = rates.unstack("speaker")
        out = np.full(len(t), np.nan)
        if not all((c, r) in wide.columns for c in cats for r in ROLES):
            return out
        vals = lsm(wide.xs("client", axis=1, level="speaker")[cats].to_numpy(),
                   wide.xs("counsellor", axis=1, level="speaker")[cats].to_numpy()).mean(axis=1)
        per_exchange = pd.Series(vals, index=wide.index)
        last = ~pd.Series(list(zip(*(cc[k] for k in SESSION_KEY), cc["exchange"], strict=True))).duplicated(keep="last")
        keys = pd.MultiIndex.from_arrays([cc[k] for k in SESSION_KEY] + [cc["exchange"]])
        mapped = per_exchange.reindex(keys).to_numpy()
        out[last.to_numpy()] = mapped[last.to_numpy()]
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        idx = pd.MultiIndex.from_frame(corpus.sessions[SESSION_KEY])
        res = pd.DataFrame(index=idx)
        keys = [t[k] for k in SESSION_KEY]
        # session LSM from each side's pooled function-word profile (Gonzales et al. 2010: whole conversation)
        cc = category_counts(t["text"])
        cats = list(FUNCTION_WORDS)
        prof = {}
        for side in ROLES:
            d = cc[(t["speaker"] == side).to_numpy()]
            sums = d.groupby([k[d.index] for k in keys], sort=False).sum()
            prof[side] = sums[cats].div(sums["words"].where(sums["words"] > 0), axis=0).reindex(idx)
        per_cat = pd.DataFrame(lsm(prof["client"].to_numpy(), prof["counsellor"].to_numpy()), index=idx,
                               columns=[f"coordination_lsm_{c}" for c in cats])
        res["coordination_lsm"] = per_cat.mean(axis=1, skipna=False)
        res["coordination_lsm_exchange_mean"] = turn_scores["coordination_lsm"].groupby(keys, sort=False).mean()
        res = res.join(per_cat)
        # WMD coordination: for anchor side A, mean distance to the other side's next k turns over mean distance
        # to A's own next k turns (Nasir et al. 2019); < 1 means the other side's words follow A's closely.
        from alliance.trajectory import relative_position

        pos = relative_position(t["turn_index"], pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0])
        third = np.minimum((pos.to_numpy() * 3).astype(int), 2)
        df = pd.DataFrame({"course_id": t["course_id"].to_numpy(), "session_id": t["session_id"].to_numpy(),
                           "speaker": t["speaker"].to_numpy(), "third": third,
                           "other": turn_scores["coordination_wmd_other"].to_numpy(),
                           "self": turn_scores["coordination_wmd_self"].to_numpy()})
        df = df[np.isfinite(df["other"]) & np.isfinite(df["self"])]
        for anchor, follower in (("client", "counsellor"), ("counsellor", "client")):
            d = df[df["speaker"] == anchor]
            col = f"coordination_wmd_{follower}_to_{anchor}"
            g = d.groupby(SESSION_KEY, sort=False)
            res[col] = (g["other"].mean() / g["self"].mean().where(g["self"].mean() > 0)).reindex(idx)
            gt = d.groupby([*SESSION_KEY, "third"], sort=False)
            ratio = (gt["other"].mean() / gt["self"].mean().where(gt["self"].mean() > 0)).unstack("third")
            for k, label in enumerate(("first", "middle", "last")):
                res[f"{col}_{label}"] = ratio[k].reindex(idx) if k in ratio.columns else np.nan
        both = ["coordination_wmd_counsellor_to_client", "coordination_wmd_client_to_counsellor"]
        res["coordination_wmd"] = res[both].mean(axis=1)
        res["coordination_wmd_within_change"] = (res[[f"{c}_last" for c in both]].mean(axis=1)
                                                 - res[[f"{c}_first" for c in both]].mean(axis=1))
        res["coordination_wmd_course_slope"] = course_slope(corpus.sessions, res["coordination_wmd"])
        return res

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "k": self.k, "method": self.method, "word_vectors": self.vectors.id,
                "function_words": FUNCTION_WORDS_VERSION, "lsm_epsilon": LSM_EPSILON,
                "stop_words": len(STOP_WORDS)}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "coordination_wmd_other" not in turns:
            return None
        from alliance.report.html import fmt

        rows = "".join(
            f"<tr><td class=l>{label}</td><td>{fmt(session.get(c))}</td><td>{fmt(session.get(c + '_first'))}</td>"
            f"<td>{fmt(session.get(c + '_middle'))}</td><td>{fmt(session.get(c + '_last'))}</td></tr>"
            for label, c in (("counsellor's words after the client's", "coordination_wmd_counsellor_to_client"),
                             ("client's words after the counsellor's", "coordination_wmd_client_to_counsellor")))
        html = (f"<p>Language style matching (function words, 0-1, higher = closer): session "
                f"{fmt(session.get('coordination_lsm'))}, mean per exchange "
                f"{fmt(session.get('coordination_lsm_exchange_mean'))}.</p>"
                "<p>Word Mover's Distance coordination: distance to the other side's next turns over the anchor's "
                "distance to their own next turns (below 1 = the other side picks up the anchor's words).</p>"
                "<table><tr><th class=l>direction</th><th>session</th><th>first third</th><th>middle</th>"
                f"<th>last third</th></tr>{rows}</table>"
                f"<p>Slope across the course's sessions (negative = converging): "
                f"{fmt(session.get('coordination_wmd_course_slope'))}.</p>")
        spec_id = f"{prefix}-wmd"
        return ReportSection("Linguistic coordination (style matching, Word Mover's Distance)",
                             f"<div class=row><div>{html}</div><div data-spec='{spec_id}'></div></div>",
                             {spec_id: _wmd_chart(turns)})


def course_slope(sessions: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """Least-squares slope of a session measure over session order within each course (NaN below 2 sessions)."""
    s = sessions.set_index(SESSION_KEY)
    df = pd.DataFrame({"course": s.index.get_level_values(0), "order": s["session_index"].to_numpy(dtype=float),
                       "y": values.reindex(s.index).to_numpy(dtype=float)}, index=s.index)
    out = pd.Series(np.nan, index=s.index)
    for _, g in df.groupby("course", sort=False):
        ok = g[np.isfinite(g["y"])]
        if len(ok) >= 2 and ok["order"].nunique() >= 2:
            out[g.index] = float(np.polyfit(ok["order"].rank(method="first"), ok["y"], 1)[0])
    return out.reindex(values.index).to_numpy()


def _wmd_chart(turns: pd.DataFrame) -> dict[str, Any]:
    """Per anchor turn: distance to the other side's next turns, smoothed, by side."""
    import altair as alt

    from alliance.report.charts import PALETTE

    df = pd.DataFrame({"turn": turns["turn_index"].to_numpy(), "speaker": turns["speaker"].astype(str).to_numpy(),
                       "wmd": turns["coordination_wmd_other"].to_numpy(dtype=float)}).dropna()
    df["smoothed"] = df.groupby("speaker")["wmd"].transform(lambda s: s.rolling(5, min_periods=1).mean())
    chart = alt.Chart(df).mark_line().encode(
        x=alt.X("turn:Q", title="anchor turn"), y=alt.Y("smoothed:Q", title="WMD to other side's next turns"),
        color=alt.Color("speaker:N", title="anchor", scale=alt.Scale(domain=list(ROLES),
                                                                      range=[PALETTE[0], PALETTE[1]])),
        tooltip=["turn", "speaker", alt.Tooltip("wmd:Q", format=".3f")],
    ).properties(width=380, height=150)
    return chart.to_dict()
