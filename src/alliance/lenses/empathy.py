"""Per-reply empathy of every counsellor turn: EPITOME's emotional reactions, interpretations and explorations.

Evidence: linear classifiers trained on EPITOME's annotated Reddit (seeker post, reply) pairs (Sharma, Miner,
Atkins & Althoff, EMNLP 2020) read each reply with the client's words before it: frozen sentence embeddings of
the reply, its cosine to the client's words and a few cue-word counts, averaged with a model of the reply's words
and word pairs. Each mechanism is scored 0 (none), 1 (weak), 2 (strong). Opt-in, ``model="cross"``: the
cross-encoder of :mod:`alliance.lenses.empathy_cross` (client's words and reply read together) instead.

Long replies are scored whole: a reply longer than the encoder's window is cut into sentence windows that fit,
each window is scored with the same context, and the reply shows a mechanism at level k or more with the largest
probability any of its windows gives (EPITOME's annotators marked a mechanism wherever in the reply it appeared).
The rationale of a level > 0 (opt-in: ``rationales=True``, ``alliance analyze --rationales``) is found by
occlusion: the reply's clauses are removed one at a time (at most :data:`MAX_OCCLUSIONS`, all in one batch) and
the clauses whose removal most lowers the probability of the predicted level are quoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, Corpus
from alliance.encoders.base import Encoder, normalise_rows
from alliance.lenses.base import Lens, LensContext, ReportSection
from alliance.trajectory import relative_position, summarise_series

#: EPITOME's three communication mechanisms, by the short names used in column names.
MECHANISMS: tuple[str, ...] = ("er", "ip", "ex")
MECHANISM_NAMES: dict[str, str] = {"er": "emotional reactions", "ip": "interpretations", "ex": "explorations"}
LEVELS: tuple[int, ...] = (0, 1, 2)
DEFAULT_MODEL = "empathy_epitome_v1.npz"
MODEL_FORMAT = "alliance-empathy-linear/1"
#: Occlusion budget per scored reply (clauses beyond it are merged with their neighbours).
MAX_OCCLUSIONS = 8
#: A clause is quoted as rationale when removing it lowers the predicted level's probability by at least this.
RATIONALE_MIN_DROP = 0.05
RATIONALE_MAX_SPANS = 2
#: Mechanism colours from the Okabe & Ito palette in :mod:`alliance.report.charts`.
MECHANISM_COLOURS = {"emotional reactions": "#D55E00", "interpretations": "#0072B2", "explorations": "#009E73"}


class EmpathyModelError(ValueError):
    """A model file that cannot be used: missing, unreadable, wrong format, or built for another encoder."""


# ---------------------------------------------------------------------------------------------------------
# cheap lexical cues, chosen from EPITOME's definitions of the mechanisms (not learnt from its data)
_WORD = re.compile(r"[a-z']+")
_SECOND_PERSON = {"you", "your", "you're", "youre", "yourself", "you've", "you'd", "you'll", "u", "ur"}
_FIRST_PERSON = {"i", "me", "my", "i'm", "im", "i've", "ive", "myself", "mine", "i'd", "i'll"}
_FEELING = {"sorry", "feel", "feeling", "feelings", "felt", "hurt", "hurts", "sad", "pain", "painful", "hug",
            "hugs", "love", "care", "glad", "awful", "terrible", "tough", "hard", "rough", "sucks", "scary",
            "scared", "heartbreaking", "proud", "hope", "wish", "alone", "lonely", "upset", "frustrating"}
_QUESTION_OPENERS = ("what", "how", "why", "when", "where", "who", "which", "have you", "do you", "did you",
                     "are you", "would you", "can you", "could you", "is it", "is there", "does", "were you")
_UNDERSTANDING = ("i understand", "i know how", "i know what", "i can relate", "i relate", "been there",
                  "same here", "me too", "i've been", "i have been", "i went through", "sounds like",
                  "seems like", "must be", "must feel", "i can imagine", "i can see", "i get it", "i felt")
_SYMPATHY = ("i'm sorry", "im sorry", "so sorry", "sorry to hear", "sorry you", "hope you", "sending",
             "i'm here", "here for you", "you're not alone", "you are not alone")
LEXICAL_FEATURES: tuple[str, ...] = (
    "log_words", "questions", "question_share", "question_opener", "second_person", "first_person",
    "feeling_words", "understanding_phrases", "sympathy_phrases", "exclamations",
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"(?<=[.!?;:,])\s+|\n+")


def lexical_features(texts: Sequence[str]) -> np.ndarray:
    """One row of :data:`LEXICAL_FEATURES` per text (rates per word, so long and short replies compare)."""
    out = np.zeros((len(texts), len(LEXICAL_FEATURES)), dtype=np.float32)
    for i, text in enumerate(texts):
        low = text.lower().replace("’", "'")
        words = _WORD.findall(low)
        n = max(len(words), 1)
        sentences = [s for s in _SENTENCE.split(low) if s.strip()] or [low]
        questions = [s for s in sentences if "?" in s]
        out[i] = (
            np.log1p(len(words)),
            min(low.count("?"), 5),
            len(questions) / len(sentences),
            float(any(q.strip().startswith(_QUESTION_OPENERS) for q in questions)),
            sum(w in _SECOND_PERSON for w in words) / n,
            sum(w in _FIRST_PERSON for w in words) / n,
            sum(w in _FEELING for w in words) / n,
            float(sum(p in low for p in _UNDERSTANDING)),
            float(sum(p in low for p in _SYMPATHY)),
            min(low.count("!"), 5),
        )
    return out


FEATURE_PARTS: tuple[str, ...] = ("response", "seeker", "product", "difference", "lexical", "similarity")


def build_features(seeker: np.ndarray, response: np.ndarray, response_texts: Sequence[str],
                   parts: Sequence[str] = FEATURE_PARTS) -> np.ndarray:
    """The classifier's input: the chosen blocks of (response, seeker, response*seeker, |response-seeker|,
    lexical cues, cosine(response, seeker)), side by side. ``seeker`` rows of zeros mean "no client words before this reply"."""
    blocks = {"response": lambda: response, "seeker": lambda: seeker, "product": lambda: response * seeker,
              "difference": lambda: np.abs(response - seeker), "lexical": lambda: lexical_features(response_texts),
              "similarity": lambda: (response * seeker).sum(axis=1, keepdims=True)}
    unknown = [p for p in parts if p not in blocks]
    if unknown:
        raise ValueError(f"unknown feature part(s) {unknown}; choose from {FEATURE_PARTS}")
    return np.hstack([np.asarray(blocks[p](), dtype=np.float32) for p in parts])


# ---------------------------------------------------------------------------------------------------------
# long texts: sentence windows that fit the encoder
def encoder_window(encoder: Encoder) -> tuple[Any, int] | None:
    """(tokenizer, max word pieces per window) of a transformer encoder, or None when it has no length limit."""
    try:  # read from the model's config files: asking the window must not load the transformer
        tokenizer = encoder.tokenizer  # type: ignore[attr-defined]
        limit = int(encoder.max_seq_length)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        try:
            model = encoder.model  # type: ignore[attr-defined]
            tokenizer, limit = encoder.tokenizer, int(model.max_seq_length)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return None
    return tokenizer, max(limit - 2, 8)  # [CLS] and [SEP] take two places


def split_windows(texts: Sequence[str], window: tuple[Any, int] | None) -> list[list[str]]:
    """Each text as windows of whole sentences that fit the encoder (a text that fits is one window, unchanged).

    Nothing is dropped: a single sentence longer than the window is cut at word boundaries into pieces that fit.
    """
    if window is None:
        return [[t] for t in texts]
    tokenizer, limit = window

    def n_tokens(items: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(items, add_special_tokens=False, verbose=False)["input_ids"]] if items else []

    out: list[list[str]] = [[t] for t in texts]
    long = [i for i, n in enumerate(n_tokens(list(texts))) if n > limit]
    for i in long:
        pieces: list[str] = []
        for sentence in (s.strip() for s in _SENTENCE.split(texts[i])):
            if not sentence:
                continue
            if n_tokens([sentence])[0] <= limit:
                pieces.append(sentence)
                continue
            words, cur = sentence.split(), []
            for w in words:  # a run-on sentence: pack words until the window is full
                if cur and n_tokens([" ".join([*cur, w])])[0] > limit:
                    pieces.append(" ".join(cur))
                    cur = []
                cur.append(w)
            if cur:
                pieces.append(" ".join(cur))
        windows, cur_text = [], ""
        for p in pieces:
            candidate = f"{cur_text} {p}".strip()
            if cur_text and n_tokens([candidate])[0] > limit:
                windows.append(cur_text)
                candidate = p
            cur_text = candidate
        if cur_text:
            windows.append(cur_text)
        out[i] = windows
    return out


def embed_whole(texts: Sequence[str], encoder: Encoder, window: tuple[Any, int] | None = None) -> np.ndarray:
    """One unit vector per text; a text longer than the encoder's window is the mean of its windows' vectors
    (used for the client's side, where the words set the context rather than carry evidence)."""
    windows = split_windows(texts, window if window is not None else encoder_window(encoder))
    flat = [w for ws in windows for w in ws]
    vecs = encoder.encode(flat) if flat else np.zeros((0, encoder.dimension), dtype=np.float32)
    owner = np.repeat(np.arange(len(windows)), [len(ws) for ws in windows])
    sums = np.zeros((len(windows), vecs.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, vecs)
    return normalise_rows(sums)


# ---------------------------------------------------------------------------------------------------------
#: Word and word-pair features of the reply: the words that carry sympathy ("so sorry"), understanding ("sounds
#: like") and questions ("?", "how are") are exactly what annotators marked; kept with "?" and "!" as tokens.
TEXT_TOKEN_PATTERN = r"(?u)\b\w[\w']*\b|[?!]"


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class EmpathyModel:
    """Per mechanism, two multinomial logistic regressions whose level probabilities are averaged: one over the
    standardised embedding and cue features, one over TF-IDF word 1-2-grams of the reply (optional).

    Stored as an ``.npz`` of arrays and one JSON metadata string (no pickle), so a file is small, safe to load
    and easy to replace with one trained by ``alliance train empathy`` on other data.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: dict[str, np.ndarray]
    intercept: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    text_vocabulary: np.ndarray | None = None
    text_idf: np.ndarray | None = None
    text_coef: dict[str, np.ndarray] = field(default_factory=dict)
    text_intercept: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.meta.get("feature_parts", FEATURE_PARTS))

    @property
    def has_text_model(self) -> bool:
        return self.text_vocabulary is not None

    def text_vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TEXT_TOKEN_PATTERN,
                              vocabulary={str(t): i for i, t in enumerate(self.text_vocabulary)})
        vec.idf_ = self.text_idf
        return vec

    def predict_proba(self, features: np.ndarray, texts: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Probability of levels 0, 1, 2 per mechanism, rows summing to 1 (``texts``: the replies, needed when
        the model has a word model)."""
        if features.shape[1] != self.mean.shape[0]:
            raise EmpathyModelError(f"{self.source}: model expects {self.mean.shape[0]} features, got "
                                    f"{features.shape[1]} (was it trained with another encoder?)")
        z = (features.astype(np.float64) - self.mean) / self.scale
        words = None
        if self.has_text_model:
            if texts is None:
                raise ValueError("this empathy model also reads the replies' words: pass texts")
            words = self.text_vectorizer().transform(list(texts))
        out = {}
        for m in MECHANISMS:
            p = _softmax(z @ self.coef[m].T + self.intercept[m])
            if words is not None:
                p = (p + _softmax(np.asarray(words @ self.text_coef[m].T) + self.text_intercept[m])) / 2
            out[m] = p
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        arrays = {"mean": self.mean, "scale": self.scale}
        for m in MECHANISMS:
            arrays[f"{m}_coef"] = self.coef[m].astype(np.float32)
            arrays[f"{m}_intercept"] = self.intercept[m].astype(np.float32)
        if self.has_text_model:
            arrays["text_vocabulary"] = np.asarray(self.text_vocabulary).astype(str)
            arrays["text_idf"] = np.asarray(self.text_idf, dtype=np.float32)
            for m in MECHANISMS:
                arrays[f"{m}_text_coef"] = self.text_coef[m].astype(np.float32)
                arrays[f"{m}_text_intercept"] = self.text_intercept[m].astype(np.float32)
        meta = {"format": MODEL_FORMAT, **self.meta}
        with path.open("wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> EmpathyModel:
        if path is None:
            ref = resources.files("alliance.data.empathy").joinpath(DEFAULT_MODEL)
            source = f"alliance:data/empathy/{DEFAULT_MODEL}"
            with ref.open("rb") as fh:
                return cls._from_npz(fh, source)
        p = Path(path)
        if not p.is_file():
            raise EmpathyModelError(f"{p}: empathy model file not found")
        with p.open("rb") as fh:
            return cls._from_npz(fh, str(p))

    @classmethod
    def _from_npz(cls, fh: Any, source: str) -> EmpathyModel:
        import zipfile

        try:
            data = np.load(fh, allow_pickle=False)
            arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise EmpathyModelError(f"{source}: not an empathy model (.npz of arrays): {e}") from None
        if "meta" not in arrays:
            raise EmpathyModelError(f"{source}: no 'meta' record; not a model written by `alliance train empathy`")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as e:
            raise EmpathyModelError(f"{source}: 'meta' is not valid JSON: {e.msg}") from None
        if meta.get("format") != MODEL_FORMAT:
            raise EmpathyModelError(f"{source}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
        needed = ["mean", "scale"] + [f"{m}_{k}" for m in MECHANISMS for k in ("coef", "intercept")]
        missing = [k for k in needed if k not in arrays]
        if missing:
            raise EmpathyModelError(f"{source}: missing array(s) {missing}")
        d = arrays["mean"].shape[0]
        for m in MECHANISMS:
            if arrays[f"{m}_coef"].shape != (len(LEVELS), d) or arrays[f"{m}_intercept"].shape != (len(LEVELS),):
                raise EmpathyModelError(f"{source}: {m}_coef has shape {arrays[f'{m}_coef'].shape}, expected "
                                        f"({len(LEVELS)}, {d}) to match 'mean'")
        model = cls(arrays["mean"].astype(np.float64), arrays["scale"].astype(np.float64),
                    {m: arrays[f"{m}_coef"].astype(np.float64) for m in MECHANISMS},
                    {m: arrays[f"{m}_intercept"].astype(np.float64) for m in MECHANISMS}, meta, source)
        if "text_vocabulary" in arrays:
            v = arrays["text_vocabulary"].shape[0]
            text_needed = ["text_idf"] + [f"{m}_text_{k}" for m in MECHANISMS for k in ("coef", "intercept")]
            missing = [k for k in text_needed if k not in arrays]
            if missing:
                raise EmpathyModelError(f"{source}: has a word vocabulary but lacks array(s) {missing}")
            for m in MECHANISMS:
                if arrays[f"{m}_text_coef"].shape != (len(LEVELS), v):
                    raise EmpathyModelError(f"{source}: {m}_text_coef has shape {arrays[f'{m}_text_coef'].shape}, "
                                            f"expected ({len(LEVELS)}, {v}) to match 'text_vocabulary'")
            model.text_vocabulary = arrays["text_vocabulary"]
            model.text_idf = arrays["text_idf"].astype(np.float64)
            model.text_coef = {m: arrays[f"{m}_text_coef"].astype(np.float64) for m in MECHANISMS}
            model.text_intercept = {m: arrays[f"{m}_text_intercept"].astype(np.float64) for m in MECHANISMS}
        return model


@dataclass
class PairScores:
    """Per reply and mechanism: probabilities of levels 0/1/2 and the predicted level."""

    proba: dict[str, np.ndarray]

    def level(self, m: str) -> np.ndarray:
        return self.proba[m].argmax(axis=1)

    def expected(self, m: str) -> np.ndarray:
        return self.proba[m] @ np.asarray(LEVELS, dtype=np.float64)

    def total(self) -> np.ndarray:
        """Expected level summed over the three mechanisms (0-6): the per-reply empathy score of PARTNER
        (Sharma et al. 2021), here with expected rather than hard levels so it ranks replies smoothly."""
        return sum(self.expected(m) for m in MECHANISMS)


def score_pairs(model: EmpathyModel, seeker_vecs: np.ndarray, responses: Sequence[str], encoder: Encoder,
                response_vecs: np.ndarray | None = None) -> PairScores:
    """Score replies given their context vectors; long replies are scored window by window and pooled.

    ``response_vecs`` (optional) are whole-text vectors already computed for replies that fit one window.
    """
    window = encoder_window(encoder)
    windows = split_windows(responses, window)
    counts = np.array([len(w) for w in windows])
    single = counts == 1
    flat_texts = [w for ws in windows for w in ws]
    owner = np.repeat(np.arange(len(windows)), counts)
    vecs = np.zeros((len(flat_texts), seeker_vecs.shape[1] if len(seeker_vecs) else encoder.dimension), np.float32)
    flat_single = single[owner]
    if response_vecs is not None and flat_single.any():
        vecs[flat_single] = response_vecs[owner[flat_single]]
        todo = np.flatnonzero(~flat_single)
    else:
        todo = np.arange(len(flat_texts))
    if len(todo):
        vecs[todo] = encoder.encode([flat_texts[i] for i in todo])
    x = build_features(seeker_vecs[owner], vecs, flat_texts, model.parts)
    return PairScores(pool_windows(model.predict_proba(x, flat_texts), owner, len(windows)))


def pool_windows(window_proba: dict[str, np.ndarray], owner: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per reply, P(level >= k) is the largest any of its windows gives; back to P(level = k), rows sum to 1.
    A reply of one window keeps its window's probabilities exactly."""
    proba = {}
    for m, p in window_proba.items():
        at_least = np.cumsum(p[:, ::-1], axis=1)[:, ::-1]  # columns: P(>=0)=1, P(>=1), P(>=2)
        pooled = np.zeros((n, len(LEVELS)))
        np.maximum.at(pooled, owner, at_least)
        pooled[:, 0] = 1.0
        pooled[:, 2] = np.minimum(pooled[:, 2], pooled[:, 1])
        proba[m] = pooled - np.concatenate([pooled[:, 1:], np.zeros((n, 1))], axis=1)
    return proba


def clauses(text: str, limit: int = MAX_OCCLUSIONS) -> list[str]:
    """The reply cut into at most ``limit`` consecutive clauses (neighbours merged evenly beyond that)."""
    parts = [p for p in (s.strip() for s in _CLAUSE.split(text)) if p]
    if len(parts) <= limit:
        return parts
    bounds = np.linspace(0, len(parts), limit + 1).round().astype(int)
    return [" ".join(parts[a:b]) for a, b in pairwise(bounds) if b > a]


def occlusion_rationales(model: EmpathyModel, seeker_vecs: np.ndarray, responses: Sequence[str],
                         scores: PairScores, encoder: Encoder) -> dict[str, list[str]]:
    """Per mechanism and reply: the clauses whose removal most lowers the predicted level's probability
    ("" when the level is 0 or no clause matters), joined by " | ". All occluded variants go in one batch."""
    return occlude(lambda owner, variants: score_pairs(model, seeker_vecs[owner], variants, encoder), responses,
                   scores)


def occlude(scorer: Callable[[np.ndarray, list[str]], PairScores], responses: Sequence[str],
            scores: PairScores) -> dict[str, list[str]]:
    """Occlusion rationales with any scorer: ``scorer(indices of the replies, reply variants)`` scores each
    variant in its reply's context (the linear heads' vectors, or the cross-encoder's client words)."""
    out = {m: [""] * len(responses) for m in MECHANISMS}
    levels = {m: scores.level(m) for m in MECHANISMS}
    items: list[tuple[int, list[str]]] = []
    variants: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(responses):
        if not any(levels[m][i] > 0 for m in MECHANISMS):
            continue
        cl = clauses(text)
        if len(cl) < 2:  # one clause: it is the whole evidence
            for m in MECHANISMS:
                if levels[m][i] > 0:
                    out[m][i] = text.strip()
            continue
        items.append((i, cl))
        for j in range(len(cl)):
            variants.append(" ".join(cl[:j] + cl[j + 1:]))
            owner.append(i)
    if not variants:
        return out
    occluded = scorer(np.asarray(owner), variants)
    pos = 0
    for i, cl in items:
        span = slice(pos, pos + len(cl))
        pos += len(cl)
        for m in MECHANISMS:
            lvl = levels[m][i]
            if lvl == 0:
                continue
            drop = scores.proba[m][i, lvl] - occluded.proba[m][span, lvl]
            best = [j for j in np.argsort(-drop, kind="stable")[:RATIONALE_MAX_SPANS] if drop[j] >= RATIONALE_MIN_DROP]
            out[m][i] = " | ".join(cl[j] for j in sorted(best))
    return out


def _is_cross_file(path: str | Path) -> bool:
    """Whether ``path`` is an ``.npz`` whose record says it is a cross-encoder adapter (any doubt: no, and the
    linear loader then names what is wrong with the file)."""
    from alliance.lenses.empathy_cross import CROSS_FORMAT

    p = Path(path)
    if not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as data:
            return "meta" in data.files and json.loads(str(data["meta"])).get("format") == CROSS_FORMAT
    except (OSError, ValueError, json.JSONDecodeError):
        return False


def client_runs(corpus: Corpus) -> np.ndarray:
    """For each turn, the first and last row of the run of consecutive client turns just before it in its
    session (shape (n, 2)); (-1, -1) when no client turn precedes it."""
    t = corpus.turns
    prev = corpus.previous_turn_of_other_side().to_numpy()
    speakers = np.asarray(t["speaker"].astype(str))
    sess = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
    out = np.full((len(t), 2), -1, dtype=np.int64)
    for i in np.flatnonzero(speakers == "counsellor"):
        j = prev[i]
        if j < 0:
            continue
        k = j
        while k - 1 >= 0 and sess[k - 1] == sess[j] and speakers[k - 1] == "client":
            k -= 1
        out[i] = (k, j)
    return out


def client_context(corpus: Corpus) -> list[str | None]:
    """For each turn, the client's words it answers: the run of consecutive client turns just before it
    (joined), or None when no client turn precedes it in the session."""
    texts = corpus.turns["text"].to_numpy()
    return [None if k < 0 else " ".join(str(x).strip() for x in texts[k:j + 1]) for k, j in client_runs(corpus)]


def pooled_context(corpus: Corpus, rows: np.ndarray, emb: np.ndarray, encoder: Encoder,
                   window: tuple[Any, int] | None) -> np.ndarray:
    """The context vector of each reply in ``rows``: the normalised mean of the vectors of the client turns it
    answers, reusing the run's turn vectors (a turn longer than the window is the mean of its windows, as in
    :func:`embed_whole`); zeros when no client turn precedes it. Nothing already encoded is encoded again."""
    runs = client_runs(corpus)[rows]
    has = runs[:, 0] >= 0
    turns = np.unique(np.concatenate([np.arange(k, j + 1) for k, j in runs[has]])) if has.any() else np.array([], int)
    texts = corpus.turns["text"].to_numpy()
    vec = {}
    if len(turns):
        fits = [len(w) == 1 for w in split_windows([str(texts[i]) for i in turns], window)]
        long = [i for i, ok in zip(turns, fits, strict=True) if not ok]
        whole = embed_whole([str(texts[i]).strip() for i in long], encoder, window) if long else None
        vec = {int(i): emb[i] for i, ok in zip(turns, fits, strict=True) if ok}
        vec.update({int(i): whole[n] for n, i in enumerate(long)})
    out = np.zeros((len(rows), emb.shape[1]), dtype=np.float64)
    for r in np.flatnonzero(has):
        k, j = runs[r]
        out[r] = np.sum([vec[i] for i in range(k, j + 1)], axis=0)
    return normalise_rows(out)


class EmpathyLens(Lens):
    """EPITOME empathy of every counsellor reply: level, probabilities and rationale per mechanism."""

    name: ClassVar[str] = "empathy"
    #: 1.1.0: a run of several client turns is pooled from their turn vectors instead of re-encoded joined;
    #: rationales are opt-in (they cost up to 8 extra encodings per reply).
    version: ClassVar[str] = "1.1.0"
    citation: ClassVar[str] = ("Sharma, Miner, Atkins & Althoff 2020, EPITOME (EMNLP): emotional reactions, "
                               "interpretations, explorations; levels summed as in Sharma et al. 2021 (PARTNER)")
    needs_encoder: ClassVar[bool] = True

    def __init__(self, model: str | Path | None = None, rationales: bool = False):
        """``model``: None for the shipped linear heads, ``"cross"`` for the shipped cross-encoder adapter
        (:mod:`alliance.lenses.empathy_cross`), or the path of a file written by ``alliance train empathy``
        (either kind; the file says which)."""
        self.cross: Any = None
        if model is not None and (str(model) == "cross" or _is_cross_file(model)):
            from alliance.lenses.empathy_cross import CrossEmpathyModel

            self.cross = CrossEmpathyModel.load(None if str(model) == "cross" else model)
            self.model = self.cross  # describe() and errors name the file in use
        else:
            self.model = EmpathyModel.load(model)
        self.rationales = rationales

    def _check_encoder(self, encoder: Encoder) -> None:
        if self.cross is not None:  # reads the shipped MiniLM itself; the run's encoder is not used
            return
        want = self.model.meta.get("encoder_model_id")
        if want and encoder.model_id != want:
            raise EmpathyModelError(f"{self.model.source}: trained on encoder {want!r} but this run uses "
                                    f"{encoder.model_id!r}; train one for it with `alliance train empathy`")

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        cols = [f"empathy_{m}{s}" for m in MECHANISMS for s in ("", "_p0", "_p1", "_p2")] + ["empathy_total"]
        out = pd.DataFrame(np.nan, index=t.index, columns=cols)
        for m in MECHANISMS:
            out[f"empathy_{m}_rationale"] = pd.Series(pd.NA, index=t.index, dtype="string")
        rows = np.flatnonzero((t["speaker"] == "counsellor").to_numpy())
        if len(rows) == 0:
            return out
        replies = [str(x) for x in t["text"].to_numpy()[rows]]
        if self.cross is not None:
            from alliance.lenses.empathy_cross import cross_scorer, score_cross

            context = client_context(corpus)
            posts = [context[r] for r in rows]
            scores = score_cross(self.cross, posts, replies)
            scorer = cross_scorer(self.cross, posts)
        else:
            encoder = ctx.encoder
            self._check_encoder(encoder)
            emb = ctx.embeddings()
            seeker = pooled_context(corpus, rows, emb, encoder, encoder_window(encoder))
            scores = score_pairs(self.model, seeker, replies, encoder, response_vecs=emb[rows])
            model = self.model

            def scorer(owner: np.ndarray, variants: list[str]) -> PairScores:
                return score_pairs(model, seeker[owner], variants, encoder)
        for m in MECHANISMS:
            out.iloc[rows, out.columns.get_loc(f"empathy_{m}")] = scores.level(m).astype(float)
            for k in LEVELS:
                out.iloc[rows, out.columns.get_loc(f"empathy_{m}_p{k}")] = scores.proba[m][:, k]
        out.iloc[rows, out.columns.get_loc("empathy_total")] = scores.total()
        if self.rationales:
            found = occlude(scorer, replies, scores)
            for m in MECHANISMS:
                out.iloc[rows, out.columns.get_loc(f"empathy_{m}_rationale")] = found[m]
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        counsellor = (t["speaker"] == "counsellor").to_numpy()
        sess = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        # position among the counsellor's own replies, so the trend is over replies, not over all turns
        pos = pd.Series(np.nan, index=t.index)
        pos[counsellor] = relative_position(t["turn_index"][counsellor], pd.Series(sess[counsellor],
                                                                                   index=t.index[counsellor]))
        cols = [f"empathy_{m}" for m in MECHANISMS] + ["empathy_total"]
        values = turn_scores[cols].where(pd.Series(counsellor, index=t.index), axis=0)
        res = summarise_series(values, pos.fillna(0.0), t[SESSION_KEY])
        res = res.rename(columns=lambda c: c.replace("_slope", "_trend"))
        keys = t[SESSION_KEY].assign(**{c: values[c] for c in cols[:-1]})
        grouped = keys[counsellor].groupby(SESSION_KEY, sort=False)
        for m in MECHANISMS:
            for k in LEVELS:
                share = grouped[f"empathy_{m}"].apply(lambda s, k=k: float((s == k).mean()) if len(s) else np.nan)
                res[f"empathy_{m}_share{k}"] = share.reindex(res.index)
        res["empathy_n_replies"] = grouped.size().reindex(res.index).fillna(0).astype("int64")
        return res

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "empathy_er" not in turns:
            return None
        replies = turns[turns["speaker"] == "counsellor"]
        if replies["empathy_er"].notna().sum() == 0:
            return None
        spec = empathy_timeline(replies)
        body = (f"<div class=row><div data-spec='{prefix}-timeline'></div></div>" + _session_table(session)
                + _rationale_table(replies))
        return ReportSection("Empathy per reply (EPITOME: emotional reactions, interpretations, explorations)",
                             body, {f"{prefix}-timeline": spec})

    def describe(self) -> dict[str, Any]:
        meta = self.model.meta
        if self.cross is not None:
            return {**super().describe(), "model": {"kind": "cross-encoder", "source": self.cross.source,
                                                     "version": meta.get("version"), "trained": meta.get("trained"),
                                                     "seed": meta.get("seed"), "base_model": meta.get("base_model"),
                                                     "config": self.cross.config.to_dict(), "data": meta.get("data")},
                    "rationales": self.rationales, "max_occlusions": MAX_OCCLUSIONS,
                    "rationale_min_drop": RATIONALE_MIN_DROP, "long_reply_pooling": "max over sentence windows"}
        return {**super().describe(), "model": {"kind": "linear heads", "source": self.model.source, "version": meta.get("version"),
                                                 "trained": meta.get("trained"), "seed": meta.get("seed"),
                                                 "data": meta.get("data"), "feature_parts": list(self.model.parts),
                                                 "encoder_model_id": meta.get("encoder_model_id"),
                                                 "classifier": meta.get("classifier")},
                "rationales": self.rationales, "max_occlusions": MAX_OCCLUSIONS,
                "rationale_min_drop": RATIONALE_MIN_DROP, "long_reply_pooling": "max over sentence windows"}


def empathy_timeline(replies: pd.DataFrame) -> dict[str, Any]:
    """Expected level (0-2) of each mechanism over the counsellor's replies in one session."""
    import altair as alt

    rows = []
    for m in MECHANISMS:
        expected = replies[f"empathy_{m}_p1"] + 2 * replies[f"empathy_{m}_p2"]
        for ti, v, lvl in zip(replies["turn_index"], expected, replies[f"empathy_{m}"], strict=True):
            if pd.notna(v):
                rows.append({"turn_index": int(ti), "mechanism": MECHANISM_NAMES[m], "expected": float(v),
                             "level": int(lvl)})
    long = pd.DataFrame(rows).sort_values("turn_index")
    long["smoothed"] = long.groupby("mechanism")["expected"].transform(lambda s: s.rolling(3, min_periods=1).mean())
    colour = alt.Color("mechanism:N", scale=alt.Scale(domain=list(MECHANISM_COLOURS),
                                                      range=list(MECHANISM_COLOURS.values())))
    base = alt.Chart(long).encode(x=alt.X("turn_index:Q", title="turn"), color=colour)
    points = base.mark_circle(size=22, opacity=0.4).encode(
        y=alt.Y("expected:Q", title="expected level (0 none, 1 weak, 2 strong)", scale=alt.Scale(domain=[0, 2])),
        tooltip=["turn_index", "mechanism", "level", alt.Tooltip("expected:Q", format=".2f")])
    lines = base.mark_line(strokeWidth=2).encode(y="smoothed:Q")
    return (points + lines).properties(width=560, height=170).to_dict()


def _session_table(row: pd.Series) -> str:
    from alliance.report.html import fmt

    head = ("<tr><th class=l>mechanism</th><th>mean level</th><th>share 0</th><th>share 1</th><th>share 2</th>"
            "<th>trend (slope over session)</th><th>first third</th><th>last third</th></tr>")
    body = ""
    for m in MECHANISMS:
        cells = "".join(f"<td>{fmt(row.get(f'empathy_{m}_{x}'))}</td>"
                        for x in ("mean", "share0", "share1", "share2", "trend", "first", "last"))
        body += f"<tr><td class=l>{MECHANISM_NAMES[m]}</td>{cells}</tr>"
    total = "".join(f"<td>{fmt(row.get(f'empathy_total_{x}'))}</td>" for x in ("mean",))
    body += (f"<tr><td class=l>total (0-6, expected)</td>{total}<td></td><td></td><td></td>"
             f"<td>{fmt(row.get('empathy_total_trend'))}</td><td>{fmt(row.get('empathy_total_first'))}</td>"
             f"<td>{fmt(row.get('empathy_total_last'))}</td></tr>")
    return f"<table>{head}{body}</table>"


def _rationale_table(replies: pd.DataFrame) -> str:
    import html

    rows = []
    for r in replies.itertuples(index=False):
        reasons = []
        for m in MECHANISMS:
            lvl = getattr(r, f"empathy_{m}")
            why = getattr(r, f"empathy_{m}_rationale", None)
            if pd.notna(lvl) and lvl > 0:
                reasons.append(f"<b>{MECHANISM_NAMES[m]} {int(lvl)}</b>"
                               + (f": “{html.escape(str(why))}”" if isinstance(why, str) and why else ""))
        if reasons:
            rows.append(f"<tr class=counsellor><td>{r.turn_index}</td><td class=l>{'<br>'.join(reasons)}</td></tr>")
    if not rows:
        return "<p class=meta>No reply reached level 1 on any mechanism.</p>"
    computed = any(f"empathy_{m}_rationale" in replies and replies[f"empathy_{m}_rationale"].notna().any()
                   for m in MECHANISMS)
    summary = ("why: the words that carried each level (occlusion)" if computed else
               "levels per reply (rationales not computed: run <code>alliance analyze --rationales</code>)")
    return (f"<details><summary>{summary}</summary><table>"
            "<tr><th>#</th><th class=l>mechanism, level: rationale</th></tr>" + "".join(rows) + "</table></details>")
