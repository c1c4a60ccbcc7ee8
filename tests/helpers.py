"""Test doubles with known arithmetic: an encoder that maps texts to fixed vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alliance.corpus import Corpus, Turn


class TableEncoder:
    """Encodes each text to a vector looked up in a table (unknown texts -> a fixed fallback), unit-normalised.

    Lets tests check lens arithmetic on vectors whose cosines are known exactly.
    """

    def __init__(self, table: dict[str, Sequence[float]], fallback: Sequence[float] | None = None,
                 model_id: str = "table-encoder"):
        self.table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
        dim = len(next(iter(self.table.values())))
        self.fallback = np.asarray(fallback if fallback is not None else [1.0] + [0.0] * (dim - 1), dtype=np.float32)
        self._model_id = model_id
        self.calls = 0
        self.texts_encoded = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return len(self.fallback)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        v = np.stack([self.table.get(t, self.fallback) for t in texts]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_corpus(sessions: dict[str, list[tuple[str, str]]], course_of: dict[str, str] | None = None) -> Corpus:
    """Corpus from {session_id: [(speaker, text), ...]}; each session its own course unless mapped."""
    turns = []
    for si, (sid, items) in enumerate(sessions.items()):
        course = (course_of or {}).get(sid, sid)
        for i, (spk, text) in enumerate(items):
            turns.append(Turn(course_id=course, session_id=sid, turn_index=i, speaker=spk, text=text,
                              session_index=si))
    return Corpus.from_turns(turns)
