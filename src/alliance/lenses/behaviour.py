"""Behaviour codes per turn (counsellor: BOLT and MI codes; client: change/sustain talk, emotions, insight, events).

Evidence: MI codes come from a small logistic head on frozen sentence embeddings, trained on AnnoMI's utterance
annotations (Wu et al. 2022; MITI/MISC codes, Moyers et al. 2016, Miller et al. 2003); the BOLT codes (Chiu et
al. 2024) and client emotion codes, for which no labels exist here, come from nearest-prototype similarity to the
project's own written examples (codebooks/behaviour_v1.json) with thresholds calibrated on those examples.

Per session the lens reports each code's rate and three conditional figures: premature problem-solving (advice or
problem-solving right after the client shares a negative emotion), the reflection-to-question ratio and the share of
complex reflections (MITI 4 summary scores).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import ROLES, SESSION_KEY, Corpus
from alliance.data import load_json_data
from alliance.encoders.base import Encoder, encode_groups
from alliance.lenses.base import Lens, LensContext, ReportSection, session_index

DEFAULT_CODEBOOK = "behaviour_v1.json"
DEFAULT_HEAD = "behaviour_head_v1.npz"
METHODS = ("head", "prototype")
#: counsellor codes that count as advice or problem-solving for "premature problem-solving"
PROBLEM_SOLVING_CODES = ("advice", "problem_solving")
REFLECTION_CODES = ("reflection_simple", "reflection_complex")
QUESTION_CODES = ("question_open", "question_closed")
#: codes that AnnoMI's scheme makes mutually exclusive on one utterance (one subtype per field); when the head finds
#: more than one, the one furthest above its own threshold (in log-odds) is kept
EXCLUSIVE_GROUPS: tuple[tuple[str, ...], ...] = (
    REFLECTION_CODES, QUESTION_CODES, ("information", "advice", "options", "negotiation"),
    ("change_talk", "sustain_talk"))


def resolve_exclusive(proba: np.ndarray, present: np.ndarray, thresholds: np.ndarray,
                      codes: tuple[str, ...] | list[str]) -> np.ndarray:
    """Keep at most one code per exclusive group on each turn: the one with the largest log-odds margin."""
    def logit(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 1e-9, 1 - 1e-9)
        return np.log(x / (1 - x))

    present = present.copy()
    margin = logit(proba) - logit(np.broadcast_to(thresholds, proba.shape))
    for group in EXCLUSIVE_GROUPS:
        cols = [codes.index(c) for c in group if c in codes]
        if len(cols) < 2:
            continue
        sub = np.where(present[:, cols], margin[:, cols], -np.inf)
        best = np.argmax(sub, axis=1)
        keep = np.zeros_like(present[:, cols])
        keep[np.arange(len(sub)), best] = True
        present[:, cols] &= keep
    return present


class CodebookError(ValueError):
    """A behaviour codebook or head file that is malformed; the message names the file, the code and the field."""


@dataclass(frozen=True)
class Code:
    id: str
    side: str
    family: str
    method: str
    label: str
    definition: str
    examples: tuple[str, ...]
    requires_any: tuple[str, ...] = ()
    source: str = ""
    excludes_any: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()  # regular expressions (case-insensitive) that mark the code on their own


@dataclass(frozen=True)
class Codebook:
    name: str
    version: str
    codes: tuple[Code, ...]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> Codebook:
        doc, source = load_json_data(path, "codebooks", DEFAULT_CODEBOOK, CodebookError, "codebook file")
        if not isinstance(doc, dict) or not isinstance(doc.get("codes"), list) or not doc["codes"]:
            raise CodebookError(f"{source}: expected an object with a non-empty list 'codes'")
        codes: list[Code] = []
        for i, c in enumerate(doc["codes"]):
            where = f"{source}: code {i}" + (f" ({c.get('id')!r})" if isinstance(c, dict) and c.get("id") else "")
            if not isinstance(c, dict):
                raise CodebookError(f"{where}: must be an object")
            for f in ("id", "side", "family", "method", "label", "definition"):
                if not isinstance(c.get(f), str) or not c[f].strip():
                    raise CodebookError(f"{where}: field {f!r} missing or empty")
            if c["side"] not in ROLES:
                raise CodebookError(f"{where}: field 'side' must be one of {ROLES}, got {c['side']!r}")
            if c["method"] not in METHODS:
                raise CodebookError(f"{where}: field 'method' must be one of {METHODS}, got {c['method']!r}")
            ex = c.get("examples")
            if not isinstance(ex, list) or len(ex) < 2 or not all(isinstance(e, str) and e.strip() for e in ex):
                raise CodebookError(f"{where}: field 'examples' must list at least two non-empty strings")
            req, exc = c.get("requires_any", []), c.get("excludes_any", [])
            for f, v in (("requires_any", req), ("excludes_any", exc)):
                if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
                    raise CodebookError(f"{where}: field {f!r} must be a list of code ids")
            cues = c.get("cues", [])
            if not isinstance(cues, list) or not all(isinstance(r, str) for r in cues):
                raise CodebookError(f"{where}: field 'cues' must be a list of regular expressions")
            for cue in cues:
                try:
                    re.compile(cue)
                except re.error as e:
                    raise CodebookError(f"{where}: field 'cues': {cue!r} is not a valid regular expression ({e})") from None
            codes.append(Code(c["id"], c["side"], c["family"], c["method"], c["label"], c["definition"].strip(),
                              tuple(e.strip() for e in ex), tuple(req), str(c.get("source", "")), tuple(exc),
                              tuple(cues)))
        ids = [c.id for c in codes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise CodebookError(f"{source}: code ids are not unique: {dup}")
        for c in codes:
            unknown = [r for r in (*c.requires_any, *c.excludes_any) if r not in ids]
            if unknown:
                raise CodebookError(f"{source}: code {c.id!r}: requires_any/excludes_any name unknown code(s) "
                                    f"{unknown}")
        return cls(str(doc.get("name", "codebook")), str(doc.get("version", "0")), tuple(codes), source)

    def get(self, code_id: str) -> Code:
        for c in self.codes:
            if c.id == code_id:
                return c
        raise KeyError(code_id)

    def for_side(self, side: str) -> list[Code]:
        return [c for c in self.codes if c.side == side]


@dataclass(frozen=True)
class BehaviourHead:
    """Logistic coefficients per code on ``[embedding of turn, embedding of the other side's previous turn]``."""

    codes: tuple[str, ...]
    sides: tuple[str, ...]
    coef: np.ndarray  # (n_codes, 2 * dim)
    intercept: np.ndarray  # (n_codes,)
    threshold: np.ndarray  # (n_codes,) decision threshold on the probability
    model_id: str
    version: str
    source: str
    n_hash: int = 0  # width of the hashed word n-gram block appended to the embeddings (0: embeddings only)

    @classmethod
    def load(cls, path: str | Path | None = None) -> BehaviourHead:
        if path is None:
            ref = resources.files("alliance.data.models").joinpath(DEFAULT_HEAD)
            source = f"alliance:data/models/{DEFAULT_HEAD}"
            with ref.open("rb") as fh:
                z = dict(np.load(fh, allow_pickle=False))
        else:
            p = Path(path)
            if not p.is_file():
                raise CodebookError(f"{p}: behaviour head file not found")
            source = str(p)
            z = dict(np.load(p, allow_pickle=False))
        for f in ("codes", "sides", "coef", "intercept", "threshold", "model_id", "version"):
            if f not in z:
                raise CodebookError(f"{source}: behaviour head lacks array {f!r}")
        codes = tuple(str(c) for c in z["codes"])
        n = len(codes)
        if z["coef"].shape[0] != n or z["intercept"].shape != (n,) or z["threshold"].shape != (n,):
            raise CodebookError(f"{source}: coef/intercept/threshold do not match {n} codes")
        return cls(codes, tuple(str(s) for s in z["sides"]), z["coef"].astype(np.float64),
                   z["intercept"].astype(np.float64), z["threshold"].astype(np.float64), str(z["model_id"]),
                   str(z["version"]), source, int(z["n_hash"]) if "n_hash" in z else 0)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, codes=np.array(self.codes), sides=np.array(self.sides),
                            coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                            threshold=self.threshold.astype(np.float32), model_id=np.array(self.model_id),
                            version=np.array(self.version), n_hash=np.array(self.n_hash))

    def features(self, emb: np.ndarray, prev_other: np.ndarray, texts: list[str]) -> np.ndarray:
        return head_features(emb, prev_other, texts, self.n_hash)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(features @ self.coef.T + self.intercept)))


def pair_features(emb: np.ndarray, prev_other: np.ndarray) -> np.ndarray:
    """``[turn vector, vector of the other side's previous turn (zeros if none)]``, the head's input."""
    prev = np.zeros_like(emb)
    has = prev_other >= 0
    prev[has] = emb[prev_other[has]]
    return np.hstack([emb, prev]).astype(np.float64)


def hashed_ngrams(texts: list[str], n_features: int) -> np.ndarray:
    """Stateless hashed word uni- and bigrams (question marks kept as tokens): the lexical cues of MI codes
    ("you should", "what ...?") that sentence embeddings blur."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, binary=True,
                            norm="l2", token_pattern=r"(?u)\b\w+\b|\?")
    return vec.transform(texts).toarray()


def head_features(emb: np.ndarray, prev_other: np.ndarray, texts: list[str], n_hash: int) -> np.ndarray:
    """The head's input: ``[turn vector, other side's previous turn vector, hashed n-grams of the turn]``."""
    x = pair_features(emb, prev_other)
    return np.hstack([x, hashed_ngrams(texts, n_hash)]) if n_hash else x


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score cut that maximises F1 (midpoint between neighbouring scores, so it generalises a little)."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y, dtype=bool)
    if y.sum() == 0:
        return float(np.inf)
    prec, rec, thr = precision_recall_curve(y, score)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return float(thr[int(np.argmax(f1))])


class PrototypeScorer:
    """Calibrated nearest-prototype similarity to each code's written examples, with a threshold per code.

    A turn's score for a code is the mean of its two highest cosines to the code's examples, as a z-score against the
    neutral background. The threshold per code maximises F1 in a leave-one-out pass over the codebook itself:
    each example against the rest of its code (positives) and other codes' examples of the same side plus the
    background lines (negatives).
    """

    def __init__(self, codes: list[Code], background: list[str], encoder: Encoder):
        self.codes = codes
        vecs = encode_groups(encoder, {"background": list(background),
                                       **{i: list(c.examples) for i, c in enumerate(codes)}})
        self.vectors = [vecs[i] for i in range(len(codes))]
        bg = vecs["background"]
        raw_bg = np.stack([self._raw(bg, v) for v in self.vectors], axis=1)
        self.mu = raw_bg.mean(axis=0)
        self.sd = np.maximum(raw_bg.std(axis=0), 1e-3)
        self.threshold = np.array([self._calibrate(j, bg) for j in range(len(codes))])

    @staticmethod
    def _raw(x: np.ndarray, protos: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        sims = x @ protos.T
        if exclude is not None:
            sims = np.where(exclude, -np.inf, sims)
        top = np.sort(sims, axis=1)[:, ::-1][:, :2]
        top = np.where(np.isfinite(top), top, top[:, :1])
        return top.mean(axis=1)

    def _calibrate(self, j: int, bg: np.ndarray) -> float:
        own = self.vectors[j]
        pos = self._raw(own, own, exclude=np.eye(len(own), dtype=bool))
        side = self.codes[j].side
        others = [v for k, v in enumerate(self.vectors) if k != j and self.codes[k].side == side]
        negs = np.vstack([*others, bg]) if others else bg
        neg = self._raw(negs, own)
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        z = (np.r_[pos, neg] - self.mu[j]) / self.sd[j]
        return best_f1_threshold(y, z)

    def scores(self, emb: np.ndarray) -> np.ndarray:
        raw = np.stack([self._raw(emb, v) for v in self.vectors], axis=1)
        return (raw - self.mu) / self.sd


class BehaviourLens(Lens):
    """Multi-label behaviour codes for every turn, by the side that spoke it, and their per-session figures."""

    name: ClassVar[str] = "behaviour"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = (
        "Chiu et al. 2024, BOLT (behavioural taxonomy of LLM therapists); Moyers et al. 2016, MITI 4; "
        "Miller et al. 2003, MISC; Wu et al. 2022, AnnoMI"
    )
    needs_encoder: ClassVar[bool] = True

    def __init__(self, codebook: str | Path | None = None, head: str | Path | None = None,
                 background: str | Path | None = None):
        from alliance.lenses.alliance_probes import load_background

        self.codebook = Codebook.load(codebook)
        self.head = BehaviourHead.load(head)
        unknown = [c for c in self.head.codes if c not in {k.id for k in self.codebook.codes}]
        if unknown:
            raise CodebookError(f"{self.head.source}: head codes {unknown} are not in {self.codebook.source}")
        self.background = load_background(background)
        self._scorers: dict[str, PrototypeScorer] = {}

    def _prototype_codes(self) -> list[Code]:
        # A code falls back to prototypes when the head does not cover it.
        return [c for c in self.codebook.codes if c.id not in self.head.codes]

    def _scorer(self, encoder: Encoder) -> PrototypeScorer:
        if encoder.model_id not in self._scorers:
            self._scorers[encoder.model_id] = PrototypeScorer(self._prototype_codes(), self.background, encoder)
        return self._scorers[encoder.model_id]

    def code_ids(self) -> list[str]:
        return [c.id for c in self.codebook.codes]

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        emb = ctx.embeddings()
        if emb.shape[1] * 2 + self.head.n_hash != self.head.coef.shape[1]:
            raise CodebookError(f"{self.head.source}: head expects {(self.head.coef.shape[1] - self.head.n_hash) // 2}-d embeddings, the "
                                f"encoder {ctx.encoder.model_id} gives {emb.shape[1]}-d; retrain with "
                                "`alliance train behaviour`")
        speaker = t["speaker"].to_numpy()
        prev_other = corpus.previous_turn_of_other_side().to_numpy()
        strength: dict[str, np.ndarray] = {}
        present: dict[str, np.ndarray] = {}
        if len(t):
            proba = self.head.predict_proba(self.head.features(emb, prev_other, t["text"].astype(str).tolist()))
            hits = resolve_exclusive(proba, proba >= self.head.threshold, self.head.threshold, list(self.head.codes))
            for j, code in enumerate(self.head.codes):
                strength[code] = proba[:, j]
                present[code] = hits[:, j]
        return self.assemble(t["text"].astype(str).tolist(), speaker, emb, strength, present, ctx.encoder, t.index)

    def assemble(self, texts: list[str], speaker: np.ndarray, emb: np.ndarray, strength: dict[str, np.ndarray],
                 present: dict[str, np.ndarray], encoder: Encoder, index: pd.Index | None = None) -> pd.DataFrame:
        """Add the prototype codes and cues to the head's codes, apply the codebook's hierarchy, build columns."""
        n = len(texts)
        strength, present = dict(strength), dict(present)
        if n:
            scorer = self._scorer(encoder)
            z = scorer.scores(emb)
            for j, c in enumerate(scorer.codes):
                strength[c.id] = z[:, j]
                present[c.id] = z[:, j] >= scorer.threshold[j]
        out = {}
        for c in self.codebook.codes:
            side = speaker == c.side
            s = strength.get(c.id, np.zeros(n))
            p = present.get(c.id, np.zeros(n, dtype=bool)) & side
            if c.requires_any:
                p &= np.logical_or.reduce([present[r] for r in c.requires_any])
            if c.excludes_any:
                p &= ~np.logical_or.reduce([present[r] for r in c.excludes_any])
            if c.cues:
                # an explicit cue (a directive such as "you should") marks the code even where the hierarchy would not
                cue = re.compile("|".join(f"(?:{x})" for x in c.cues), re.IGNORECASE)
                p |= side & np.array([bool(cue.search(x)) for x in texts], dtype=bool)
            out[f"behaviour_{c.id}"] = pd.array(np.where(side, p, False), dtype="boolean")
            out[f"behaviour_{c.id}"][~side] = pd.NA
            out[f"behaviour_{c.id}_p"] = np.where(side, s, np.nan)
        df = pd.DataFrame(out, index=index)
        codes_cols = [f"behaviour_{c.id}" for c in self.codebook.codes]
        flags = df[codes_cols].fillna(False).to_numpy(dtype=bool)
        ids = np.array(self.code_ids())
        df.insert(0, "behaviour_codes", [", ".join(ids[row]) for row in flags])
        return df

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        return behaviour_session_figures(corpus.turns, turn_scores, self.code_ids(), self.codebook)

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(),
             "codebook": {"name": self.codebook.name, "version": self.codebook.version,
                          "source": self.codebook.source, "n_codes": len(self.codebook.codes)},
             "head": {"version": self.head.version, "source": self.head.source, "model_id": self.head.model_id,
                      "codes": list(self.head.codes),
                      "thresholds": {c: round(float(v), 4) for c, v in zip(self.head.codes, self.head.threshold,
                                                                           strict=True)}},
             "problem_solving_codes": list(PROBLEM_SOLVING_CODES)}
        if self._scorers:
            sc = next(iter(self._scorers.values()))
            d["prototype_thresholds_z"] = {c.id: round(float(v), 4)
                                          for c, v in zip(sc.codes, sc.threshold, strict=True)}
        return d

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "behaviour_codes" not in turns:
            return None
        return _behaviour_section(turns, session, prefix)


def behaviour_session_figures(turns: pd.DataFrame, codes: pd.DataFrame, code_ids: list[str],
                              codebook: Codebook | None = None) -> pd.DataFrame:
    """Per-session rates of each code (per turn of its side) and the three conditional MI figures."""
    by = [turns["course_id"].rename("course_id"), turns["session_id"].rename("session_id")]
    frame = pd.DataFrame(index=turns.index)
    for cid in code_ids:
        frame[f"behaviour_rate_{cid}"] = codes[f"behaviour_{cid}"].astype("Float64")
    rates = frame.groupby(by, sort=False).mean()  # NaN for the other side's turns is skipped
    rates = rates.astype("float64")

    def count(cids: tuple[str, ...]) -> pd.Series:
        hit = np.logical_or.reduce([codes[f"behaviour_{c}"].fillna(False).to_numpy(dtype=bool) for c in cids])
        return pd.Series(hit, index=turns.index).groupby(by, sort=False).sum()

    n_refl, n_quest, n_complex = count(REFLECTION_CODES), count(QUESTION_CODES), count(("reflection_complex",))
    rates["behaviour_reflection_question_ratio"] = (n_refl / n_quest.replace(0, np.nan)).astype("float64")
    rates["behaviour_complex_reflection_share"] = (n_complex / n_refl.replace(0, np.nan)).astype("float64")

    # Premature problem-solving: a counsellor turn directly after a client turn that shares a negative emotion.
    speaker = turns["speaker"].to_numpy()
    sess = pd.factorize(pd.MultiIndex.from_frame(turns[SESSION_KEY]))[0]
    same = sess[1:] == sess[:-1]
    neg = codes["behaviour_negative_emotion"].fillna(False).to_numpy(dtype=bool)
    after_neg = np.zeros(len(turns), dtype=bool)
    after_neg[1:] = same & (speaker[:-1] == "client") & neg[:-1] & (speaker[1:] == "counsellor")
    ps = np.logical_or.reduce([codes[f"behaviour_{c}"].fillna(False).to_numpy(dtype=bool)
                               for c in PROBLEM_SOLVING_CODES])
    tmp = pd.DataFrame({"after": after_neg, "ps": after_neg & ps, "turn": turns["turn_index"].to_numpy()},
                       index=turns.index)
    g = tmp.groupby(by, sort=False)
    n_after = g["after"].sum()
    rates["behaviour_after_negative_emotion_n"] = n_after.astype("int64")
    rates["behaviour_premature_problem_solving_rate"] = (g["ps"].sum() / n_after.replace(0, np.nan)).astype("float64")
    rates["behaviour_premature_problem_solving_turns"] = g.apply(
        lambda d: ", ".join(str(int(x)) for x in d.loc[d["ps"], "turn"]))
    return rates


def _behaviour_section(turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection:
    import altair as alt

    from alliance.report.charts import PALETTE
    from alliance.report.html import fmt

    rows = []
    for col in session.index:
        if isinstance(col, str) and col.startswith("behaviour_rate_"):
            cid = col.removeprefix("behaviour_rate_")
            side = turns.loc[turns[f"behaviour_{cid}"].notna(), "speaker"] if f"behaviour_{cid}" in turns else None
            v = session[col]
            if side is not None and len(side) and pd.notna(v):
                rows.append({"code": cid, "side": str(side.iloc[0]), "rate": float(v)})
    df = pd.DataFrame(rows or [{"code": "none", "side": "counsellor", "rate": 0.0}])
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("rate:Q", title="share of that side's turns", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("code:N", title=None, sort="-x"),
        color=alt.Color("side:N", scale=alt.Scale(domain=["client", "counsellor"], range=[PALETTE[0], PALETTE[1]])),
        tooltip=["code", "side", alt.Tooltip("rate:Q", format=".2f")],
    ).properties(width=300, height=alt.Step(11))
    figures = (
        "<table><tr><th class=l>figure</th><th>value</th><th class=l>evidence turns</th></tr>"
        f"<tr><td class=l>premature problem-solving (advice right after a negative emotion)</td>"
        f"<td>{fmt(session.get('behaviour_premature_problem_solving_rate'))} "
        f"(of {fmt(session.get('behaviour_after_negative_emotion_n'))})</td>"
        f"<td class=l>{fmt(session.get('behaviour_premature_problem_solving_turns') or '–')}</td></tr>"
        f"<tr><td class=l>reflection-to-question ratio</td>"
        f"<td>{fmt(session.get('behaviour_reflection_question_ratio'))}</td><td></td></tr>"
        f"<tr><td class=l>share of complex reflections</td>"
        f"<td>{fmt(session.get('behaviour_complex_reflection_share'))}</td><td></td></tr></table>")
    body = f"<div class=row><div data-spec='{prefix}-rates'></div>{figures}</div>"
    return ReportSection("Behaviours (MI and BOLT codes) per side", body, {f"{prefix}-rates": chart.to_dict()})


__all__ = ["BehaviourHead", "BehaviourLens", "Code", "Codebook", "CodebookError", "behaviour_session_figures",
           "pair_features", "session_index"]
