"""An on-disk embedding cache keyed by model id and text hash, so re-analysing a corpus costs almost nothing.

SQLite (standard library) holds the vectors: safe for several processes at once and one file to delete.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alliance.encoders.base import Encoder


def default_cache_dir() -> Path:
    env = os.environ.get("ALLIANCE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alliance"


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class CachedEncoder:
    """Wrap an :class:`Encoder`; vectors already computed for (model id, text) are read back, not recomputed."""

    def __init__(self, encoder: Encoder, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def __getattr__(self, name: str):  # tokenizer and other extras of the wrapped encoder
        return getattr(self.encoder, name)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.cache_dir / "embeddings.sqlite", timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS emb (model TEXT, key BLOB, dim INTEGER, vec BLOB, PRIMARY KEY(model, key))"
            )
        return self._db

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return self.encoder.encode(texts)
        keys = [text_key(t) for t in texts]
        uniq: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            uniq.setdefault(k, i)
        found: dict[bytes, np.ndarray] = {}
        db = self._conn()
        ukeys = list(uniq)
        for start in range(0, len(ukeys), 900):  # SQLite's bound-parameter limit
            chunk = ukeys[start:start + 900]
            q = f"SELECT key, dim, vec FROM emb WHERE model=? AND key IN ({','.join('?' * len(chunk))})"
            for k, dim, vec in db.execute(q, [self.model_id, *chunk]):
                found[k] = np.frombuffer(vec, dtype=np.float32, count=dim)
        todo = [k for k in ukeys if k not in found]
        self.hits += len(ukeys) - len(todo)
        self.misses += len(todo)
        if todo:
            new = self.encoder.encode([texts[uniq[k]] for k in todo])
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)",
                    [(self.model_id, k, new.shape[1], v.astype(np.float32).tobytes()) for k, v in zip(todo, new, strict=True)],
                )
            for k, v in zip(todo, new, strict=True):
                found[k] = v
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def forget_texts(cache_dir: str | Path, texts: Sequence[str]) -> int:
    """Delete the cached vectors of ``texts`` (every model); returns rows removed. Used when a transcript is deleted."""
    path = Path(cache_dir) / "embeddings.sqlite"
    if not path.exists() or not texts:
        return 0
    keys = list({text_key(t) for t in texts})
    removed = 0
    db = sqlite3.connect(path, timeout=60)
    try:
        with db:
            for start in range(0, len(keys), 900):
                chunk = keys[start:start + 900]
                cur = db.execute(f"DELETE FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                removed += cur.rowcount
    except sqlite3.OperationalError:  # no table yet: nothing cached
        return 0
    finally:
        db.close()
    return removed
