"""How a real client would react to a counsellor's reply: the reaction model the simulated client appraises with.

Evidence: linear heads on frozen sentence embeddings fitted to what real clients did next and how they rated the
conversation in ESConv, FailedESConv and AnnoMI (data/models/reaction_v2.md; `alliance train reaction`). None of
the project's lenses is read, and the reply is read for its content beyond stock phrases (the span of a bank of
generic counselling formulas is projected out), so neither pleasing the measures nor appending a formula pays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_MODEL = "reaction_v2.npz"
#: How the z-scored heads combine into one appraisal (signs: which way is better for the client). Set a priori,
#: not tuned on the validation figures: per-turn and per-dialogue ratings count fully, the behavioural signals
#: (talking more, change talk; withdrawing, sustain talk) half.
COMPOSITE: dict[str, float] = {"feedback": 1.0, "rating": 1.0, "relief": 1.0, "engagement": 0.5,
                               "withdrawal": -0.5, "change_talk": 0.5, "sustain_talk": -0.5}


#: Generic counselling formulas: content-free reflections, validations, encouragers, reassurances and stock
#: questions. Their span in the embedding space is what a reply can say without saying anything about this client;
#: the reaction model reads the reply with that span projected out. Written before any figure was computed; the
#: gaming phrases of the tests and benchmark ("It sounds like you feel that this is really hard.", "I hear you. That
#: must be hard.") are deliberately not in it, so the tests show the projection generalises beyond its entries.
GENERIC_BANK: tuple[str, ...] = (
    "It sounds like you are going through a lot.", "It sounds like things are really difficult right now.",
    "That sounds really tough.", "That must be so difficult for you.", "I'm so sorry you're going through this.",
    "I'm sorry to hear that.", "I understand how you feel.", "I can understand why you would feel that way.",
    "Your feelings are valid.", "It makes sense that you feel this way.", "Anyone would feel the same in your place.",
    "Thank you for sharing that with me.", "Thank you for opening up to me.", "I appreciate you telling me this.",
    "I'm here for you.", "I'm here to listen.", "You're not alone in this.", "I can see this means a lot to you.",
    "Can you tell me more about that?", "How does that make you feel?", "What do you think about that?",
    "Go on, I'm listening.", "Please tell me more.", "How are you feeling about all of this?",
    "What would you like to talk about today?", "That's completely understandable.", "That's a lot to deal with.",
    "It's okay to feel this way.", "Take your time.", "I hope things get better for you soon.",
    "Everything will be okay.", "Stay strong.", "You are doing the best you can.", "I believe in you.",
    "It seems like this has been weighing on you.", "So what I'm hearing is that it's been hard.",
    "You seem to be feeling overwhelmed.", "That's really hard to hear.", "I can imagine how painful that is.",
    "It's understandable to feel upset.",
)
#: directions of the bank's span projected out of the reply (its top singular vectors; fixed a priori)
GENERIC_DIRECTIONS = 10


#: a sentence with fewer content words (stop words and words of two letters left out) says nothing specific
MIN_CONTENT_WORDS = 2
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [x for x in _SENTENCE.split(text.strip()) if x.strip()]


def stock_threshold(bank_vecs: np.ndarray) -> float:
    """How close to the bank a sentence must be to count as a stock formula: the median, over the bank's entries,
    of each entry's highest cosine with the others (as close as a typical formula is to another one)."""
    sims = np.asarray(bank_vecs) @ np.asarray(bank_vecs).T
    np.fill_diagonal(sims, -1.0)
    return float(np.median(sims.max(axis=1)))


def content_sentences(replies: Sequence[str], encoder: Any, bank_vecs: np.ndarray, threshold: float) -> list[str]:
    """Each reply without its stock-formula sentences: what it says beyond a formula ("" when it is all formula;
    unchanged when it has none). A sentence is a formula when its meaning is as close to some bank entry as bank
    entries are to one another (cosine >= ``threshold``), or when it has fewer than :data:`MIN_CONTENT_WORDS`
    content words ("I hear you.", "Go on."): neither names anything about the client."""
    from alliance.simulate.clients import content_words

    split = [sentences(r) for r in replies]
    flat = sorted({x for ss in split for x in ss})
    if not flat:
        return [str(r) for r in replies]
    sims = encoder.encode(flat) @ np.asarray(bank_vecs).T
    stock = {x for x, m in zip(flat, sims.max(axis=1), strict=True)
             if m >= threshold or len(content_words(x)) < MIN_CONTENT_WORDS}
    return [" ".join(x for x in ss if x not in stock) for ss in split]


def generic_basis(bank_vecs: np.ndarray, k: int = GENERIC_DIRECTIONS) -> np.ndarray:
    """Orthonormal rows spanning the main directions of the generic-formula embeddings (k x dimension)."""
    _, _, vt = np.linalg.svd(np.asarray(bank_vecs, dtype=np.float64), full_matrices=False)
    return vt[:k].astype(np.float32)


def content_part(vecs: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """The embeddings with the generic span projected out, back to unit length: what the text says beyond a stock
    formula. Appending a formula moves a reply's embedding mostly inside that span, so this part barely moves."""
    v = np.asarray(vecs, dtype=np.float32)
    v = v - (v @ basis.T) @ basis if len(basis) else v
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def pair_features(client_vecs: np.ndarray, reply_vecs: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """[client, reply content, client * reply content]: what was said (a nuisance: the simulated client does not
    read it), the answer beyond stock formulas, and how that answer meets what was said."""
    r = content_part(reply_vecs, basis) if basis is not None else reply_vecs
    return np.hstack([client_vecs, r, client_vecs * r]).astype(np.float32)


class ReactionModelError(FileNotFoundError):
    """The reaction model file is missing or unreadable; the message names it and the command that rebuilds it."""


class ReactionModel:
    """Loads the shipped (or a given) reaction model and scores (client turn, reply) pairs."""

    def __init__(self, path: str | Path | None = None, encoder: Any = None):
        self.path = path
        try:
            if path is None:
                ref = resources.files("alliance.data.models").joinpath(DEFAULT_MODEL)
                with resources.as_file(ref) as f:
                    z = dict(np.load(f, allow_pickle=False))
            else:
                z = dict(np.load(Path(path), allow_pickle=False))
        except (FileNotFoundError, OSError, ValueError) as e:
            where = path or f"alliance/data/models/{DEFAULT_MODEL}"
            raise ReactionModelError(f"reaction model {where}: cannot read it ({e}); rebuild it with "
                                     "`alliance train reaction --seed 0`") from None
        self.heads = [str(h) for h in z["heads"]]
        self.kinds = [str(k) for k in z["kinds"]]
        self.coef, self.intercept = z["coef"].astype(np.float32), z["intercept"].astype(np.float32)
        self.mean, self.sd = z["pred_mean"].astype(np.float32), z["pred_sd"].astype(np.float32)
        dim = self.coef.shape[1] // 3
        # the generic-formula bank's embeddings (v2 on): its span is projected out of replies, and sentences close to
        # it count as stock formulas (stock_threshold)
        self.bank = z["generic_bank"].astype(np.float32) if "generic_bank" in z else None
        self.basis = (generic_basis(self.bank, int(z["generic_directions"])) if self.bank is not None
                      else np.zeros((0, dim), np.float32))
        self.threshold = float(z["stock_threshold"]) if "stock_threshold" in z else 1.0
        self.model_id, self.version = str(z["model_id"]), str(z["version"])
        # a head fitted on too few labels is zero; leave it out of the composite rather than count a constant
        self.fitted = [bool(f) for f in z["fitted"]] if "fitted" in z else [True] * len(self.heads)
        self._encoder = encoder
        self._cache: dict[tuple[str, str], dict[str, float]] = {}

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from alliance.encoders import load_encoder

            self._encoder = load_encoder()
        if getattr(self._encoder, "model_id", self.model_id) != self.model_id:
            raise ReactionModelError(f"reaction model was fitted on {self.model_id!r} embeddings, but the encoder "
                                     f"is {self._encoder.model_id!r}")
        return self._encoder

    def describe(self) -> dict[str, Any]:
        return {"reaction_model": str(self.path or DEFAULT_MODEL), "version": self.version, "encoder": self.model_id,
                "composite": COMPOSITE}

    def _composite(self, z: np.ndarray) -> np.ndarray:
        weights = np.array([COMPOSITE.get(h, 0.0) * f for h, f in zip(self.heads, self.fitted, strict=True)])
        return z @ weights / np.abs(weights).sum()

    def _heads(self, client_vecs: np.ndarray, reply_vecs: np.ndarray) -> np.ndarray:
        X = pair_features(client_vecs, reply_vecs, self.basis)
        d = X.shape[1] // 3
        # the reply's part only: what the client turn alone predicts (a long turn is followed by a shorter one) is
        # not the reply's doing, so it does not move the simulated state
        return (X[:, d:] @ self.coef[:, d:].T + self.intercept - self.mean) / self.sd

    def content(self, replies: Sequence[str]) -> list[str]:
        """Each reply without its stock-formula sentences (:func:`content_sentences`; unchanged for a model
        without a bank)."""
        if self.bank is None:
            return [str(r) for r in replies]
        return content_sentences(replies, self.encoder, self.bank, self.threshold)

    def predict(self, client_texts: Sequence[str], replies: Sequence[str]) -> pd.DataFrame:
        """Per pair: each head as a z-score against its spread on the training replies, and ``appraisal`` (the
        weighted composite in units of that spread; positive = a real client would likely be better off).

        A reply with stock-formula sentences is appraised as the lower of the whole reply and the reply without
        them (none left: at most 0 and at most its weakest sentence), so adding a formula never raises a reply,
        whatever its wording."""
        clients = [c or "..." for c in client_texts]
        vecs = self.encoder.encode([*clients, *replies])
        n = len(clients)
        z = self._heads(vecs[:n], vecs[n:])
        out = pd.DataFrame(z, columns=self.heads)
        appraisal = self._composite(z)
        content = self.content(replies)
        out["content_words"] = [float(len(c.split())) for c in content]
        changed = [i for i, (r, c) in enumerate(zip(replies, content, strict=True)) if c != r]
        kept = [i for i in changed if content[i]]
        if kept:
            zc = self._heads(vecs[:n][kept], self.encoder.encode([content[i] for i in kept]))
            appraisal[kept] = np.minimum(appraisal[kept], self._composite(zc))
        for i in (i for i in changed if not content[i]):
            # all formula: no credit, and no more than its weakest sentence (a formula added to a formula adds
            # nothing either)
            parts = sentences(replies[i])
            zs = self._heads(np.repeat(vecs[i:i + 1], len(parts), axis=0), self.encoder.encode(parts))
            appraisal[i] = min(appraisal[i], float(self._composite(zs).min()), 0.0)
        out["appraisal"] = appraisal
        return out

    def read(self, client_text: str, reply: str) -> dict[str, float]:
        key = (client_text, reply)
        if key not in self._cache:
            self._cache[key] = {k: float(v) for k, v in self.predict([client_text], [reply]).iloc[0].items()}
        return self._cache[key]
