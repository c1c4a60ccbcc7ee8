"""An OpenAI-compatible chat-completions client with the safeguards research on health data needs.

Timeouts; retries with exponential backoff on 429, 5xx and connection errors; a concurrency limit; an on-disk cache
keyed by the full request; JSON answers validated against a JSON Schema with bounded repair-and-retry; token and
cost accounting from ``usage``; a local JSONL audit log of every request and answer; redaction before sending.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance.llm.config import LLMConfig, LLMConfigError, require_config
from alliance.llm.redact import Redactor, redact_messages

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(RuntimeError):
    """A request that failed for good (after retries), named by its request id."""

    def __init__(self, message: str, request_id: str = "", last_answer: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.last_answer = last_answer


class LLMSchemaError(LLMError):
    """The model never gave an answer that validates against the schema within the allowed tries."""


@dataclass
class ChatResult:
    """One answer: its text, the parsed JSON (for :meth:`LLMClient.chat_json`), usage and provenance."""

    text: str
    request_id: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    data: Any = None
    tries: int = 1
    redactions: int = 0


@dataclass
class Usage:
    """Running token and cost totals of one client (thread-safe)."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
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

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost_usd, 6)}


class ResponseCache:
    """Answers keyed by the SHA-256 of the full request (URL, model, messages, parameters), in SQLite."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, body TEXT NOT NULL, created TEXT)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
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


class AuditLog:
    """Append-only JSONL record of every request sent (as sent, i.e. redacted) and every answer or error."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **record},
                          ensure_ascii=False, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def default_state_dir() -> Path:
    import os

    return Path(os.environ.get("ALLIANCE_CACHE", "~/.cache/alliance")).expanduser() / "llm"


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer: the whole text, a fenced block, or the first balanced {...}/[...]."""
    text = text.strip()
    candidates = [text]
    candidates += re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.S)
    for opener, closer in (("{", "}"), ("[", "]")):
        start = text.find(opener)
        while start != -1:
            depth, in_str, esc = 0, False, False
            for i in range(start, len(text)):
                ch = text[i]
                if in_str:
                    esc = (ch == "\\") and not esc
                    if ch == '"' and not esc:
                        in_str = False
                    continue
                if ch == '"':
                    in_str = True
                elif ch == opener:
                    depth += 1
                elif ch == closer:
                    depth -= 1
                    if depth == 0:
                        candidates.append(text[start:i + 1])
                        break
            start = text.find(opener, start + 1) if depth != 0 else -1
    last: Exception | None = None
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError as e:
            last = e
    raise ValueError(f"no JSON value found in the answer ({last})")


class LLMClient:
    """Talks to one OpenAI-compatible ``/chat/completions`` endpoint; see :class:`~alliance.llm.config.LLMConfig`.

    ``transport`` is for tests that need an ``httpx`` mock transport; real use leaves it ``None``.
    """

    def __init__(self, config: LLMConfig | None = None, *, redactor: Redactor | None = None,
                 transport: Any = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config if config is not None else require_config()
        self.redactor = redactor if redactor is not None else (
            Redactor(self.config.extra_names) if self.config.redaction_on else None)
        state = Path(self.config.cache_dir).expanduser() if self.config.cache_dir else default_state_dir()
        self.cache = ResponseCache(state / "responses.sqlite") if self.config.use_cache else None
        self.audit = AuditLog(Path(self.config.audit_log).expanduser() if self.config.audit_log
                              else state / "audit.jsonl")
        self.usage = Usage()
        self._slots = threading.BoundedSemaphore(self.config.max_concurrency)
        self._sleep = sleep
        self._transport = transport
        self._http: Any = None
        self._http_lock = threading.Lock()

    # plumbing ---------------------------------------------------------------------------------------------
    def _client(self) -> Any:
        import httpx

        with self._http_lock:
            if self._http is None:
                headers = {"Content-Type": "application/json"}
                if self.config.api_key:
                    headers["Authorization"] = f"Bearer {self.config.api_key}"
                self._http = httpx.Client(base_url=self.config.base_url.rstrip("/") + "/", headers=headers,
                                          timeout=self.config.timeout_s, transport=self._transport)
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def prepare(self, messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """The messages exactly as they would be sent (redacted when redaction is on) and the redaction count."""
        msgs = [dict(m) for m in messages]
        for i, m in enumerate(msgs):
            if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
                raise ValueError(f"message {i}: needs role system/user/assistant and string content, got {m!r:.200}")
        if self.redactor is None:
            return msgs, 0
        return redact_messages(msgs, self.redactor)

    def _post(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        import httpx

        attempt = 0
        while True:
            attempt += 1
            error: str
            try:
                with self._slots:
                    resp = self._client().post("chat/completions", json=body)
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        error = f"answer is not JSON: {resp.text[:200]!r}"
                        retry = True
                else:
                    error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                    retry = resp.status_code in RETRY_STATUS
            except (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as e:
                error, retry = f"{type(e).__name__}: {e}", True
            self.audit.write({"request_id": request_id, "event": "http_error", "attempt": attempt, "error": error})
            if not retry or attempt > self.config.max_retries:
                raise LLMError(f"request {request_id} to {self.config.base_url} failed after {attempt} attempt(s): "
                               f"{error}", request_id)
            self._sleep(self.config.backoff_s * (2 ** (attempt - 1)))

    # public API -------------------------------------------------------------------------------------------
    def chat(self, messages: Sequence[dict[str, Any]], *, request_id: str | None = None,
             **params: Any) -> ChatResult:
        """One chat completion. ``params`` (temperature, seed, max_tokens, top_p, ...) go into the request body."""
        request_id = request_id or uuid.uuid4().hex[:12]
        sent, n_redacted = self.prepare(messages)
        body = {"model": self.config.model, "messages": sent, **{k: v for k, v in params.items() if v is not None}}
        key = ResponseCache.key({"base_url": self.config.base_url, **body})
        cached = self.cache.get(key) if self.cache else None
        self.audit.write({"request_id": request_id, "event": "request", "cache_key": key, "cached": cached is not None,
                          "redactions": n_redacted, "body": body})
        answer = cached if cached is not None else self._post(body, request_id)
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"request {request_id}: answer has no choices[0].message.content: {str(answer)[:300]}",
                           request_id) from None
        if cached is None and self.cache is not None:
            self.cache.put(key, answer)
        usage = dict(answer.get("usage") or {})
        self.usage.add(usage, self.config.price_per_1k.get(self.config.model), cached is not None)
        self.audit.write({"request_id": request_id, "event": "answer", "cached": cached is not None,
                          "model": answer.get("model", self.config.model), "usage": usage, "content": text})
        return ChatResult(text, request_id, str(answer.get("model") or self.config.model), usage,
                          cached is not None, redactions=n_redacted)

    def chat_json(self, messages: Sequence[dict[str, Any]], schema: dict[str, Any], *,
                  tries: int | None = None, request_id: str | None = None,
                  check: Callable[[Any], str | None] | None = None, **params: Any) -> ChatResult:
        """A chat completion whose answer must be JSON valid against ``schema`` (and pass ``check``, if given).

        An invalid answer is sent back with the validation error and a request to fix it, at most ``tries`` times
        in all (default ``config.json_tries``); then :class:`LLMSchemaError` names the request id and shows the
        last invalid answer. ``check`` returns an error message or ``None`` (e.g. "quote not in transcript").
        """
        import jsonschema

        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        tries = tries or self.config.json_tries
        request_id = request_id or uuid.uuid4().hex[:12]
        convo = [dict(m) for m in messages]
        last_text, last_error = "", ""
        for attempt in range(1, tries + 1):
            res = self.chat(convo, request_id=f"{request_id}.{attempt}", **params)
            last_text = res.text
            try:
                data = extract_json(res.text)
                errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
                if errors:
                    e = errors[0]
                    where = "/".join(map(str, e.absolute_path)) or "(root)"
                    raise ValueError(f"at {where}: {e.message}")
                if check is not None:
                    problem = check(data)
                    if problem:
                        raise ValueError(problem)
            except ValueError as e:
                last_error = str(e)
                self.audit.write({"request_id": res.request_id, "event": "invalid_answer", "error": last_error})
                convo = [*convo, {"role": "assistant", "content": res.text or "(empty)"},
                         {"role": "user", "content": "Your answer was not valid: " + last_error
                          + ". Answer again with only a JSON value that matches this JSON Schema, nothing else:\n"
                          + json.dumps(schema)}]
                continue
            res.data, res.tries = data, attempt
            return res
        raise LLMSchemaError(f"request {request_id}: no valid JSON answer after {tries} tries; last error: "
                             f"{last_error}; last answer: {last_text[:500]!r}", request_id, last_text)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` in a thread pool sized to the concurrency limit, results in order."""
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(fn, items))

    def describe(self) -> dict[str, Any]:
        return {**self.config.describe(), "usage": self.usage.as_dict(), "audit_log": str(self.audit.path)}


def get_client(config_path: str | Path | None = None, **overrides: Any) -> LLMClient:
    """A client for the configured endpoint; raises :class:`LLMConfigError` if none is configured."""
    return LLMClient(require_config(config_path, **overrides))


__all__ = ["AuditLog", "ChatResult", "LLMClient", "LLMConfigError", "LLMError", "LLMSchemaError", "ResponseCache",
           "Usage", "extract_json", "get_client"]
