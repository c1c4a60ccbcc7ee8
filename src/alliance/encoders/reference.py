"""Shipped sentence vectors of the lenses' own reference texts (probes, codebook examples, background lines), so a
new installation does not encode them inside its first run.

Evidence: issue #15 measured this one-time set-up at 30 s of CPU beside 63 s for encoding 3,100 turns
(benchmarks/throughput.py). The vectors are the shipped model's own output, float32 as the embedding cache keeps
them, keyed by an (unkeyed) BLAKE2b hash of the text and used only by an encoder with the same model id and
dimension; any other encoder encodes as before. tests/test_reference_vectors.py re-encodes them (slow-marked) and
checks that the default lenses need no reference text the file lacks. Rebuild after changing a probe, codebook or
background file (the test fails until then): ``python -m alliance.encoders.reference``.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FILE = "reference_vectors_minilm_l6_v2.npz"
#: The encoder the shipped vectors come from (``SentenceTransformerEncoder().model_id``).
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Turn text of the corpus :func:`reference_texts` analyses: no reference text contains it, so every other text
#: the lenses encode there is one of their own.
_MARK = "zqxjv"


def reference_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@functools.lru_cache(maxsize=1)
def _table() -> tuple[str, dict[bytes, int], np.ndarray] | None:
    ref = resources.files("alliance.data.static").joinpath(FILE)
    if not ref.is_file():
        return None
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        keys = z["keys"]
        vectors = np.ascontiguousarray(z["vectors"], dtype=np.float32)
        model = str(z["model_id"])
    return model, {bytes(k): i for i, k in enumerate(keys)}, vectors


def shipped_vectors(texts: Sequence[str], model_id: str, dimension: int) -> tuple[list[int], np.ndarray]:
    """The positions in ``texts`` that have a shipped vector for this model, and those vectors (in that order)."""
    table = _table()
    if table is None or table[0] != model_id or table[2].shape[1] != dimension:
        return [], np.zeros((0, dimension), dtype=np.float32)
    _, index, vectors = table
    rows = [(i, index.get(reference_key(t))) for i, t in enumerate(texts)]
    found = [(i, r) for i, r in rows if r is not None]
    return [i for i, _ in found], vectors[[r for _, r in found]]


def reference_texts() -> list[str]:
    """Every text the default lenses encode that is not a corpus turn: analyse a two-turn corpus with an encoder
    that records what it is asked, and keep the texts that do not carry the corpus's mark."""
    import pandas as pd

    from alliance.corpus import Corpus
    from alliance.encoders import load_encoder
    from alliance.pipeline import analyze

    seen: list[str] = []

    class Recording:
        def __init__(self, inner: Any):
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            seen.extend(texts)
            return self.inner.encode(texts)

    turns = pd.DataFrame({"course_id": "c", "session_id": "s", "turn_index": [0, 1],
                          "speaker": ["client", "counsellor"], "text": [f"{_MARK} one.", f"{_MARK} two?"]})
    analyze(Corpus(turns), encoder=Recording(load_encoder(use_cache=False)))
    return list(dict.fromkeys(t for t in seen if _MARK not in t))


def build(path: str | Path | None = None) -> Path:
    """Encode :func:`reference_texts` with the shipped model and write the file (default: the package's)."""
    from alliance.encoders import load_encoder

    encoder = load_encoder(use_cache=False)
    texts = reference_texts()
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    out = Path(path) if path else Path(str(resources.files("alliance.data.static"))) / FILE
    np.savez_compressed(out, keys=np.array([reference_key(t) for t in texts], dtype="S16"), vectors=vectors,
                        model_id=np.array(encoder.model_id))
    _table.cache_clear()
    return out


if __name__ == "__main__":  # pragma: no cover - a build step
    print(build(sys.argv[1] if len(sys.argv) > 1 else None))
