"""What the model client keeps on disk and in memory: the answer cache, the audit log, usage and error totals.

Evidence: transcripts are health data (issue #13): cache and log are created owner-only (0600 in 0700 folders),
the log keeps hashes and sizes of what was sent unless the user asks for the text, and only valid answers are cached.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance.owner_only import private_file


@dataclass
class Usage:
    """Running token, cost, call and error totals of one client (thread-safe).

    ``requests`` counts chat requests answered (from the endpoint or the cache); ``calls`` and ``failed`` count
    the calls a feature made (one structured call may take several requests) and how many ended in an error.
    """

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, usage: dict[str, Any], price: dict[str, float] | None, cached: bool) -> None:
        with self._lock:
            self.requests += 1
            if cached:
                self.cache_hits += 1
                return
            p, c = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            self.prompt_tokens += p
            self.completion_tokens += c
            if price:
                self.cost_usd += p / 1000 * float(price.get("prompt", 0)) + c / 1000 * float(price.get("completion", 0))

    def call_done(self, error: str | None = None) -> None:
        """One feature-level call ended: ``error`` is its (credential-free) message when it failed."""
        with self._lock:
            self.calls += 1
            if error is not None:
                self.failed += 1
                self.errors[error[:200]] += 1

    @property
    def all_failed(self) -> bool:
        return self.calls > 0 and self.failed == self.calls

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost_usd, 6),
                "calls": self.calls, "failed": self.failed, "all_failed": self.all_failed,
                "errors": [{"error": e, "count": n} for e, n in self.errors.most_common(10)]}


class ResponseCache:
    """Valid answers keyed by the SHA-256 of the full request (URL, model, messages as sent, parameters), in an
    owner-only SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:  # created on first use, 0600 before SQLite opens it (its -wal/-shm files inherit it)
            private_file(self.path)
        con = sqlite3.connect(self.path, timeout=30)
        if not self._ready:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, body TEXT NOT NULL, created TEXT)")
            self._ready = True
        return con

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock, self._connect() as con:
            row = con.execute("SELECT body FROM answers WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, body: dict[str, Any]) -> None:
        with self._lock, self._connect() as con:
            con.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                        (key, json.dumps(body, ensure_ascii=False), datetime.now(UTC).isoformat()))

    def delete(self, key: str) -> None:
        with self._lock, self._connect() as con:
            con.execute("DELETE FROM answers WHERE key = ?", (key,))


def digest(text: str | bytes) -> dict[str, Any]:
    """What the audit log keeps of a text by default: its SHA-256 and size, enough to match, not to read."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


class AuditLog:
    """Append-only owner-only JSONL record of every request sent and every answer or error.

    With ``keep_text=False`` (the default) request bodies and answers are recorded as SHA-256 and size; with
    ``keep_text=True`` as the text exactly as sent (redacted where redaction is on) and received.
    """

    def __init__(self, path: str | Path, keep_text: bool = False):
        self.path = Path(path)
        self.keep_text = keep_text
        self._lock = threading.Lock()
        self._ready = False

    def text(self, value: str | bytes) -> Any:
        if self.keep_text:
            return value.decode("utf-8") if isinstance(value, bytes) else value
        return digest(value)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **record},
                          ensure_ascii=False, default=str)
        with self._lock:
            if not self._ready:
                private_file(self.path)
                self._ready = True
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
