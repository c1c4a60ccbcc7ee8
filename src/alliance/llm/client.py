"""An OpenAI-compatible chat-completions client with the safeguards research on health data needs.

A deadline for each whole HTTP exchange; retries with exponential backoff on 429, 5xx and connection errors,
honouring ``Retry-After``; a concurrency limit; no environment proxy; an owner-only cache of valid answers keyed by
the full request; JSON answers validated against a JSON Schema with bounded repair-and-retry; token, cost and error
accounting; an owner-only audit log (hashes and sizes unless asked for text); redaction before sending, by the same
function that ``alliance redact --preview`` shows.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance.llm.answers import extract_json
from alliance.llm.config import LLMConfig, LLMConfigError, require_config, safe_url
from alliance.llm.redact import Redactor, redact_messages
from alliance.llm.store import AuditLog, ResponseCache, Usage, digest
from alliance.owner_only import private_dir

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
RETRY_AFTER_STATUS = frozenset({429, 503})


class LLMError(RuntimeError):
    """A request that failed for good (after retries), named by its request id."""

    def __init__(self, message: str, request_id: str = "", last_answer: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.last_answer = last_answer


class LLMSchemaError(LLMError):
    """The model never gave an answer that validates against the schema within the allowed tries."""


class DeadlineExceeded(Exception):
    """One HTTP exchange took longer than ``timeout_s`` in all."""


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
    cache_key: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)


def encode_body(body: dict[str, Any]) -> bytes:
    """The exact bytes sent for a request body (and shown by ``alliance redact --preview``)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def default_state_dir() -> Path:
    import os

    return Path(os.environ.get("ALLIANCE_CACHE", "~/.cache/alliance")).expanduser() / "llm"


class LLMClient:
    """Talks to one OpenAI-compatible ``/chat/completions`` endpoint; see :class:`~alliance.llm.config.LLMConfig`.

    ``transport`` is for tests that need an ``httpx`` mock transport; real use leaves it ``None``.
    """

    def __init__(self, config: LLMConfig | None = None, *, redactor: Redactor | None = None,
                 transport: Any = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config if config is not None else require_config()
        self.redactor = redactor if redactor is not None else (
            Redactor(self.config.extra_names) if self.config.redaction_on else None)
        self.state_dir = Path(self.config.cache_dir).expanduser() if self.config.cache_dir else default_state_dir()
        self.cache = ResponseCache(self.state_dir / "responses.sqlite") if self.config.use_cache else None
        self.audit = AuditLog(Path(self.config.audit_log).expanduser() if self.config.audit_log
                              else self.state_dir / "audit.jsonl", keep_text=self.config.audit_text)
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
                private_dir(self.state_dir)
                headers = {"Content-Type": "application/json"}
                if self.config.api_key:
                    headers["Authorization"] = f"Bearer {self.config.api_key}"
                # trust_env=False: HTTP_PROXY/HTTPS_PROXY/ALL_PROXY and .netrc are never used; only config.proxy
                self._http = httpx.Client(base_url=self.config.base_url.rstrip("/") + "/", headers=headers,
                                          timeout=self.config.timeout_s, transport=self._transport,
                                          trust_env=False, proxy=self.config.proxy)
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _clean(self, text: str) -> str:
        """``text`` without the endpoint's credentials (a password in base_url or proxy, the API key)."""
        for url in (self.config.base_url, self.config.proxy):
            if url:
                text = text.replace(url, safe_url(url)).replace(url.rstrip("/"), safe_url(url).rstrip("/"))
        for secret in (self.config.api_key, *_url_secrets(self.config.base_url), *_url_secrets(self.config.proxy)):
            if secret:
                text = text.replace(secret, "***")
        return text

    def prepare(self, messages: Sequence[dict[str, Any]],
                scope: Sequence[str] = ()) -> tuple[list[dict[str, Any]], int]:
        """The messages exactly as they would be sent (redacted when redaction is on) and the redaction count.

        ``scope`` holds other texts of the same conversation (a session's turns): a name found in any of them is
        removed from these messages too, with the same placeholder.
        """
        msgs = [dict(m) for m in messages]
        for i, m in enumerate(msgs):
            if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
                raise ValueError(f"message {i}: needs role system/user/assistant and string content, got {m!r:.200}")
        if self.redactor is None:
            return msgs, 0
        if not scope:
            return redact_messages(msgs, self.redactor)
        done = self.redactor.redact_many([m["content"] for m in msgs], context=[str(t) for t in scope])
        for m, r in zip(msgs, done, strict=True):
            m["content"] = r.text
        return msgs, sum(len(r.spans) for r in done)

    def request_body(self, messages: Sequence[dict[str, Any]], scope: Sequence[str] = (),
                     **params: Any) -> tuple[dict[str, Any], int]:
        """The request body that :meth:`chat` would send for ``messages`` (the preview shows exactly this)."""
        sent, n = self.prepare(messages, scope)
        return {"model": self.config.model, "messages": sent, **{k: v for k, v in params.items() if v is not None}}, n

    def _exchange(self, content: bytes, deadline: float) -> tuple[int, dict[str, str], bytes]:
        """One POST, every byte of the answer read before ``deadline`` (monotonic seconds) or DeadlineExceeded."""
        import httpx

        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded
        with self._client().stream("POST", "chat/completions", content=content, timeout=httpx.Timeout(left)) as resp:
            chunks = []
            for chunk in resp.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise DeadlineExceeded
            return resp.status_code, dict(resp.headers), b"".join(chunks)

    def _timed_exchange(self, content: bytes) -> tuple[int, dict[str, str], bytes]:
        """:meth:`_exchange` with a hard deadline for the caller: a server that trickles bytes (or sends none) is
        given up at ``timeout_s``. The exchange runs in its own daemon thread, which stops at its next byte or read
        timeout; nothing waits for it (a pool would queue the retry behind the abandoned exchange)."""
        deadline = time.monotonic() + self.config.timeout_s
        self._client()
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["result"] = self._exchange(content, deadline)
            except BaseException as e:  # handed to the caller below
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=run, name="alliance-llm-exchange", daemon=True).start()
        if not done.wait(self.config.timeout_s + 0.05):
            raise DeadlineExceeded
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _post(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        import httpx

        content = encode_body(body)
        attempt = 0
        while True:
            attempt += 1
            error: str
            wait: float | None = None
            try:
                with self._slots:
                    status, headers, raw = self._timed_exchange(content)
                if status == 200:
                    try:
                        return json.loads(raw)
                    except ValueError:
                        error, retry = f"answer is not JSON: {raw[:200]!r}", True
                else:
                    error = f"HTTP {status}: {raw[:300].decode('utf-8', 'replace')}"
                    retry = status in RETRY_STATUS
                    if status in RETRY_AFTER_STATUS:
                        wait = retry_after_s({k.lower(): v for k, v in headers.items()}.get("retry-after"))
            except DeadlineExceeded:
                error, retry = f"no complete answer within timeout_s={self.config.timeout_s:g} s", True
            except (httpx.TransportError, OSError) as e:
                error, retry = f"{type(e).__name__}: {e}", True
            error = self._clean(error)
            backoff = self.config.backoff_s * (2 ** (attempt - 1))
            if wait is not None and wait > self.config.max_retry_after_s:
                retry = False
                error += f" (the server asks to wait {wait:.0f} s, more than max_retry_after_s)"
            self.audit.write({"request_id": request_id, "event": "http_error", "attempt": attempt, "error": error,
                              **({"retry_after_s": wait} if wait is not None else {})})
            if not retry or attempt > self.config.max_retries:
                raise LLMError(f"request {request_id} to {safe_url(self.config.base_url)} failed after {attempt} "
                               f"attempt(s): {error}", request_id)
            self._sleep(max(backoff, wait) if wait is not None else backoff)

    # public API -------------------------------------------------------------------------------------------
    def chat(self, messages: Sequence[dict[str, Any]], *, request_id: str | None = None,
             scope: Sequence[str] = (), store: bool = True, **params: Any) -> ChatResult:
        """One chat completion. ``params`` (temperature, seed, max_tokens, top_p, ...) go into the request body.

        ``store=False`` leaves a fresh answer out of the cache (:meth:`chat_json` stores it once it validates);
        an answer without content is never cached.
        """
        request_id = request_id or uuid.uuid4().hex[:12]
        body, n_redacted = self.request_body(messages, scope, **params)
        key = ResponseCache.key({"base_url": self.config.base_url, **body})
        cached = self.cache.get(key) if self.cache else None
        self.audit.write({"request_id": request_id, "event": "request", "cache_key": key, "cached": cached is not None,
                          "redactions": n_redacted,
                          "body": body if self.audit.keep_text else digest(encode_body(body))})
        answer = cached if cached is not None else self._post(body, request_id)
        try:
            text = answer["choices"][0]["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            if cached is not None and self.cache is not None:
                self.cache.delete(key)
            raise LLMError(f"request {request_id}: answer has no choices[0].message.content: "
                           f"{self._clean(str(answer)[:300])}", request_id) from None
        if cached is None and self.cache is not None and store:
            self.cache.put(key, answer)
        usage = dict(answer.get("usage") or {})
        self.usage.add(usage, self.config.price_per_1k.get(self.config.model), cached is not None)
        self.audit.write({"request_id": request_id, "event": "answer", "cached": cached is not None,
                          "model": answer.get("model", self.config.model), "usage": usage,
                          "content": self.audit.text(text)})
        res = ChatResult(text, request_id, str(answer.get("model") or self.config.model), usage,
                         cached is not None, redactions=n_redacted, cache_key=key, sent=body["messages"])
        res._answer = answer  # type: ignore[attr-defined]  # for chat_json to cache once valid
        return res

    def chat_json(self, messages: Sequence[dict[str, Any]], schema: dict[str, Any], *,
                  tries: int | None = None, request_id: str | None = None,
                  check: Callable[..., str | None] | None = None, scope: Sequence[str] = (),
                  **params: Any) -> ChatResult:
        """A chat completion whose answer must be JSON valid against ``schema`` (and pass ``check``, if given).

        An invalid answer is sent back with the validation error and a request to fix it, at most ``tries`` times
        in all (default ``config.json_tries``); then :class:`LLMSchemaError` names the request id and shows the
        last invalid answer. ``check(data)`` or ``check(data, sent)`` returns an error message or ``None``; ``sent``
        is the messages as sent (redacted), so quotes can be checked against what the model saw. Only an answer
        that validates is cached, and a cached one that no longer validates is dropped and asked again.
        Every call is counted in ``usage`` (calls, failed, errors) for run.json.
        """
        try:
            res = self._chat_json(messages, schema, tries, request_id, check, scope, **params)
        except LLMError as e:
            self.usage.call_done(_short_error(str(e)))
            raise
        self.usage.call_done()
        return res

    def _chat_json(self, messages: Sequence[dict[str, Any]], schema: dict[str, Any], tries: int | None,
                   request_id: str | None, check: Callable[..., str | None] | None, scope: Sequence[str],
                   **params: Any) -> ChatResult:
        import inspect

        import jsonschema

        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        two_args = check is not None and len(inspect.signature(check).parameters) >= 2
        tries = tries or self.config.json_tries
        request_id = request_id or uuid.uuid4().hex[:12]
        convo = [dict(m) for m in messages]
        last_text, last_error = "", ""
        attempt, refreshed = 0, False
        while attempt < tries:
            attempt += 1
            res = self.chat(convo, request_id=f"{request_id}.{attempt}", scope=scope, store=False, **params)
            last_text = res.text
            try:
                data = extract_json(res.text)
                errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
                if errors:
                    e = errors[0]
                    where = "/".join(map(str, e.absolute_path)) or "(root)"
                    raise ValueError(f"at {where}: {e.message}")
                if check is not None:
                    problem = check(data, res.sent) if two_args else check(data)
                    if problem:
                        raise ValueError(problem)
            except ValueError as e:
                last_error = str(e)
                self.audit.write({"request_id": res.request_id, "event": "invalid_answer", "error": last_error})
                if res.cached and self.cache is not None and not refreshed:
                    # an invalid answer cached by an older version: drop it and ask again, once, for free
                    self.cache.delete(res.cache_key)
                    attempt, refreshed = attempt - 1, True
                    continue
                convo = [*convo, {"role": "assistant", "content": res.text or "(empty)"},
                         {"role": "user", "content": "Your answer was not valid: " + last_error
                          + ". Answer again with only a JSON value that matches this JSON Schema, nothing else:\n"
                          + json.dumps(schema)}]
                continue
            if not res.cached and self.cache is not None:
                self.cache.put(res.cache_key, res._answer)  # type: ignore[attr-defined]
            res.data, res.tries = data, attempt
            return res
        raise LLMSchemaError(f"request {request_id}: no valid JSON answer after {tries} tries; last error: "
                             f"{last_error}; last answer: {last_text[:500]!r}", request_id, last_text)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` in a thread pool sized to the concurrency limit, results in order."""
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(fn, items))

    def describe(self) -> dict[str, Any]:
        """Endpoint (no credentials), usage, calls, failures and errors, for run.json."""
        return {**self.config.describe(), "usage": self.usage.as_dict(), "audit_log": str(self.audit.path),
                "audit_text": self.audit.keep_text}


def _url_secrets(url: str | None) -> list[str]:
    from urllib.parse import urlparse

    if not url:
        return []
    try:
        p = urlparse(url)
    except ValueError:
        return []
    return [x for x in (p.password, p.query) if x]


def _short_error(message: str) -> str:
    """An error message without its request id, so that equal failures are counted together."""
    return re.sub(r"^request [\w.]+:? ?", "", message)


def get_client(config_path: str | Path | None = None, **overrides: Any) -> LLMClient:
    """A client for the configured endpoint; raises :class:`LLMConfigError` if none is configured."""
    return LLMClient(require_config(config_path, **overrides))


__all__ = ["AuditLog", "ChatResult", "LLMClient", "LLMConfigError", "LLMError", "LLMSchemaError", "ResponseCache",
           "Usage", "digest", "encode_body", "extract_json", "get_client", "retry_after_s"]
