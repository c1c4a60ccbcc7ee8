"""Encoders: the interface, the default local sentence-transformers model and the on-disk cache."""

from __future__ import annotations

from pathlib import Path

from alliance.encoders.base import Encoder, normalise_rows
from alliance.encoders.cache import CachedEncoder, default_cache_dir

__all__ = ["CachedEncoder", "Encoder", "default_cache_dir", "load_encoder", "normalise_rows"]


def load_encoder(model: str | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                 batch_size: int = 64) -> Encoder:
    """The run's encoder: a sentence-transformers model (default all-MiniLM-L6-v2), cached on disk."""
    from alliance.encoders.sentence import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(model, batch_size=batch_size)
    return CachedEncoder(enc, cache_dir) if use_cache else enc
