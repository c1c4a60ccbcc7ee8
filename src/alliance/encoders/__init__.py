"""Encoders: the interface, the default local sentence-transformers model and the on-disk cache."""

from __future__ import annotations

from pathlib import Path

from alliance.encoders.base import Encoder, normalise_rows
from alliance.encoders.cache import CachedEncoder, default_cache_dir

__all__ = ["BACKENDS", "CachedEncoder", "Encoder", "default_cache_dir", "load_encoder", "normalise_rows"]


BACKENDS = ("torch", "onnx")


def load_encoder(model: str | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                 batch_size: int = 64, backend: str = "torch") -> Encoder:
    """The run's encoder: a sentence-transformers model (default all-MiniLM-L6-v2), cached on disk.

    ``backend="onnx"`` runs the same model exported once to ONNX (:func:`alliance.encoders.onnx.export_onnx`;
    ``model`` is then the exported folder, default the cache's export of the shipped model) with ONNX Runtime.
    """
    if backend not in BACKENDS:
        raise ValueError(f"encoder backend must be one of {BACKENDS}, got {backend!r}")
    enc: Encoder
    if backend == "onnx":
        from alliance.encoders.onnx import OnnxEncoder

        enc = OnnxEncoder(model, batch_size=batch_size)
    else:
        from alliance.encoders.sentence import SentenceTransformerEncoder

        enc = SentenceTransformerEncoder(model, batch_size=batch_size)
    return CachedEncoder(enc, cache_dir) if use_cache else enc
