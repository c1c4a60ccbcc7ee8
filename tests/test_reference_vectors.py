"""Shipped reference vectors (alliance.encoders.reference): a new installation encodes no probe, codebook example or
background line; the vectors are the shipped model's own and cover every reference text the default lenses use."""

from __future__ import annotations

import numpy as np
import pytest

from alliance.encoders.cache import CachedEncoder
from alliance.encoders.reference import MODEL_ID, reference_key, reference_texts, shipped_vectors
from alliance.lenses.alliance_probes import load_background


class Asked:
    """An encoder that records what it is asked and answers with constant vectors."""

    def __init__(self, model_id: str = MODEL_ID, dimension: int = 384):
        self.model_id, self.dimension, self.asked = model_id, dimension, []

    def encode(self, texts):
        self.asked.extend(texts)
        return np.full((len(texts), self.dimension), 1 / np.sqrt(self.dimension), dtype=np.float32)


def test_cache_serves_reference_texts_from_the_package(tmp_path):
    background = load_background()[:5]
    inner = Asked()
    vecs = CachedEncoder(inner, tmp_path).encode([*background, "a turn nobody shipped"])
    assert inner.asked == ["a turn nobody shipped"]
    at, shipped = shipped_vectors(background, MODEL_ID, 384)
    assert at == list(range(5)) and np.array_equal(vecs[:5], shipped)
    assert np.allclose(np.linalg.norm(vecs[:5], axis=1), 1, atol=1e-5)


def test_another_encoder_ignores_them(tmp_path):
    background = load_background()[:3]
    inner = Asked(model_id="someone/else")
    CachedEncoder(inner, tmp_path).encode(background)
    assert inner.asked == background
    assert shipped_vectors(background, MODEL_ID, 512)[0] == []


@pytest.mark.slow
def test_shipped_vectors_are_the_models_and_cover_the_default_lenses():
    from alliance.encoders import load_encoder

    texts = reference_texts()  # what the default lenses encode besides the corpus (runs the shipped model)
    at, shipped = shipped_vectors(texts, MODEL_ID, 384)
    missing = [t for i, t in enumerate(texts) if i not in set(at)]
    assert not missing, f"rebuild with `python -m alliance.encoders.reference`; not shipped: {missing[:5]}"
    fresh = load_encoder(use_cache=False).encode(texts)
    assert np.abs(fresh - shipped).max() < 1e-5
    assert len({reference_key(t) for t in texts}) == len(texts)
