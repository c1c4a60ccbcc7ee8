"""The encoder interface: texts in, one L2-normalised float32 vector per text out.

Every lens that needs meaning asks the run's encoder, so a corpus is encoded once whatever the lenses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

K = TypeVar("K")


@runtime_checkable
class Encoder(Protocol):
    """Anything with a model id, a dimension and ``encode``; vectors are unit length (cosine = dot)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32, copy=False)


def encode_groups(encoder: Encoder, groups: Mapping[K, Sequence[str]]) -> dict[K, np.ndarray]:
    """Encode several groups of reference texts (probes, examples, background lines) in one ``encode`` call and
    split the vectors back by group: one batch fills the model's batches instead of dozens of small calls."""
    keys = list(groups)
    flat = [t for k in keys for t in groups[k]]
    vecs = encoder.encode(flat) if flat else np.zeros((0, encoder.dimension), dtype=np.float32)
    out: dict[K, np.ndarray] = {}
    start = 0
    for k in keys:
        n = len(groups[k])
        out[k] = vecs[start:start + n]
        start += n
    return out
