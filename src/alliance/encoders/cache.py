"""An on-disk embedding cache keyed by model id and a keyed hash of the text, so re-analysing a corpus costs
almost nothing. SQLite (standard library) holds the vectors: safe for several processes at once, one file to delete.

The text hash is keyed with a per-installation secret (``cache.key``, created once, owner-only), so someone who can
read the cache cannot test whether an exact sentence was in a corpus; folder and files are created owner-only.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alliance.encoders.base import Encoder
from alliance.owner_only import installation_secret, private_dir, private_file

SECRET_FILE = "cache.key"


def default_cache_dir() -> Path:
    env = os.environ.get("ALLIANCE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alliance"


def text_key(text: str, secret: bytes) -> bytes:
    """The cache key of ``text``: BLAKE2b keyed with the installation secret (an unkeyed hash can be guessed)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16, key=secret[:64]).digest()


def legacy_text_key(text: str) -> bytes:
    """The unkeyed key of caches written before the secret existed (table ``emb``), read only to migrate."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class CachedEncoder:
    """Wrap an :class:`Encoder`; vectors already computed for (model id, text) are read back, not recomputed."""

    def __init__(self, encoder: Encoder, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        self._secret = b""
        self._legacy = False

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def __getattr__(self, name: str):  # tokenizer and other extras of the wrapped encoder
        if name.startswith("__"):  # copy/pickle probe dunders before __init__ has run: no recursion into encoder
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def __reduce__(self) -> tuple[Any, ...]:
        # shipped to another process (a Dask worker) as its recipe: the receiver opens its own connection
        return (type(self), (self.encoder, self.cache_dir))

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            private_dir(self.cache_dir)
            self._secret = installation_secret(self.cache_dir / SECRET_FILE)
            # created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode
            self._db = sqlite3.connect(private_file(self.cache_dir / "embeddings.sqlite"), timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS emb_keyed "
                             "(model TEXT, key BLOB, dim INTEGER, vec BLOB, PRIMARY KEY(model, key))")
            self._legacy = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='emb'").fetchone() is not None
        return self._db

    def _lookup(self, db: sqlite3.Connection, table: str, keys: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
        out: dict[bytes, tuple[int, bytes]] = {}
        for start in range(0, len(keys), 900):  # SQLite's bound-parameter limit
            chunk = keys[start:start + 900]
            q = f"SELECT key, dim, vec FROM {table} WHERE model=? AND key IN ({','.join('?' * len(chunk))})"
            out.update({k: (dim, vec) for k, dim, vec in db.execute(q, [self.model_id, *chunk])})
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return self.encoder.encode(texts)
        db = self._conn()
        keys = [text_key(t, self._secret) for t in texts]
        uniq: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            uniq.setdefault(k, i)
        rows = self._lookup(db, "emb_keyed", list(uniq))
        if self._legacy and len(rows) < len(uniq):
            rows.update(self._migrate(db, texts, [k for k in uniq if k not in rows], uniq))
        found = {k: np.frombuffer(vec, dtype=np.float32, count=dim) for k, (dim, vec) in rows.items()}
        todo = [k for k in uniq if k not in found]
        if todo:  # the lenses' own reference texts: shipped with the package for the default model
            from alliance.encoders.reference import shipped_vectors

            at, vecs = shipped_vectors([texts[uniq[k]] for k in todo], self.model_id, self.dimension)
            found.update({todo[i]: v for i, v in zip(at, vecs, strict=True)})
            todo = [k for k in todo if k not in found]
        self.hits += len(uniq) - len(todo)
        self.misses += len(todo)
        if todo:
            new = self.encoder.encode([texts[uniq[k]] for k in todo])
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO emb_keyed VALUES (?, ?, ?, ?)",
                    [(self.model_id, k, new.shape[1], v.astype(np.float32).tobytes()) for k, v in zip(todo, new, strict=True)],
                )
            for k, v in zip(todo, new, strict=True):
                found[k] = v
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _migrate(self, db: sqlite3.Connection, texts: list[str], todo: list[bytes],
                 uniq: dict[bytes, int]) -> dict[bytes, tuple[int, bytes]]:
        """Rows of a cache written before the secret (unkeyed table ``emb``) move to their keyed key when met, so
        no vector is recomputed and the guessable rows disappear; :meth:`prune_legacy` drops the rest."""
        old = {legacy_text_key(texts[uniq[k]]): k for k in todo}
        rows = self._lookup(db, "emb", list(old))
        with db:
            for ok, (dim, vec) in rows.items():
                db.execute("INSERT OR REPLACE INTO emb_keyed VALUES (?, ?, ?, ?)", (self.model_id, old[ok], dim, vec))
                db.execute("DELETE FROM emb WHERE model=? AND key=?", (self.model_id, ok))
        return {old[ok]: v for ok, v in rows.items()}

    def prune_legacy(self) -> int:
        """Delete the unkeyed rows left from before the secret (anyone could test their texts); returns how many."""
        db = self._conn()
        if not self._legacy:
            return 0
        with db:
            n = db.execute("SELECT count(*) FROM emb").fetchone()[0]
            db.execute("DROP TABLE emb")
        self._legacy = False
        return int(n)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def forget_texts(cache_dir: str | Path, texts: Sequence[str]) -> int:
    """Delete the cached vectors of ``texts`` (every model, keyed and legacy rows); returns rows removed. Used when a
    transcript is deleted; no model is loaded."""
    path = Path(cache_dir) / "embeddings.sqlite"
    secret_path = Path(cache_dir) / SECRET_FILE
    if not path.exists() or not texts:
        return 0
    tables = []
    if secret_path.exists():
        secret = installation_secret(secret_path)
        tables.append(("emb_keyed", list({text_key(t, secret) for t in texts})))
    tables.append(("emb", list({legacy_text_key(t) for t in texts})))
    removed = 0
    db = sqlite3.connect(path, timeout=60)
    try:
        with db:
            for table, keys in tables:
                if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is None:
                    continue
                for start in range(0, len(keys), 900):
                    chunk = keys[start:start + 900]
                    cur = db.execute(f"DELETE FROM {table} WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                    removed += cur.rowcount
    finally:
        db.close()
    return removed
