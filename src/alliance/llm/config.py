"""Where the language model lives: base URL, model and key from the environment or a TOML file, nothing by default.

No endpoint is ever contacted unless one is configured explicitly (``ALLIANCE_LLM_BASE_URL`` or a config file);
an endpoint on a loopback host reached directly counts as local, any other (or any reached through a proxy) as
remote, which switches redaction on by default. Environment proxies (``HTTP_PROXY``, ...) are never used: only a
``proxy`` configured here.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ENV_PREFIX = "ALLIANCE_LLM_"
DEFAULT_CONFIG_PATH = Path("~/.config/alliance/llm.toml")


class LLMConfigError(ValueError):
    """The language-model endpoint is missing or misconfigured."""


@dataclass(frozen=True)
class LLMConfig:
    """Settings of one OpenAI-compatible chat-completions endpoint.

    ``price_per_1k`` maps a model id to ``{"prompt": USD, "completion": USD}`` per 1,000 tokens, for cost
    accounting; ``redact=None`` means "on for remote endpoints, off for loopback ones". ``proxy`` is the only
    proxy ever used (environment proxies are ignored), and an endpoint behind it counts as remote. ``timeout_s``
    is a deadline for each whole HTTP exchange (connect, send, every byte of the answer), not per read.
    ``audit_text`` keeps the text of requests and answers in the audit log; by default it keeps hashes and sizes.
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 0.5
    max_concurrency: int = 4
    json_tries: int = 3
    redact: bool | None = None
    extra_names: tuple[str, ...] = ()
    cache_dir: str | None = None
    audit_log: str | None = None
    use_cache: bool = True
    proxy: str | None = None
    audit_text: bool = False
    max_retry_after_s: float = 120.0
    price_per_1k: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parsed = urlparse(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LLMConfigError(f"base_url {self.base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080/v1)")
        if not self.model:
            raise LLMConfigError("no model given (ALLIANCE_LLM_MODEL or `model` in the config file)")
        if self.max_concurrency < 1 or self.json_tries < 1 or self.max_retries < 0:
            raise LLMConfigError("max_concurrency and json_tries must be >= 1, max_retries >= 0")
        if self.timeout_s <= 0:
            raise LLMConfigError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.proxy is not None:
            pp = urlparse(self.proxy)
            if pp.scheme not in ("http", "https", "socks5", "socks5h") or not pp.netloc:
                raise LLMConfigError(f"proxy {safe_url(self.proxy)!r} is not a proxy URL (e.g. http://127.0.0.1:3128)")

    @property
    def is_local(self) -> bool:
        """Local means a loopback host reached directly: through any proxy the text leaves this process's host."""
        return is_loopback_url(self.base_url) and not self.proxy

    @property
    def redaction_on(self) -> bool:
        return (not self.is_local) if self.redact is None else bool(self.redact)

    def describe(self) -> dict[str, Any]:
        """What a run records: never the key, nor a password or query string in the URLs."""
        return {"base_url": safe_url(self.base_url), "model": self.model, "local": self.is_local,
                "proxy": safe_url(self.proxy) if self.proxy else None,
                "redaction": self.redaction_on, "timeout_s": self.timeout_s, "max_retries": self.max_retries,
                "json_tries": self.json_tries, "max_concurrency": self.max_concurrency}


def safe_url(url: str) -> str:
    """``url`` without credentials (``user:password@``) or query string (``?api-key=...``): safe to record."""
    try:
        p = urlparse(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{p.port}" if p.port else "")
        return urlunparse((p.scheme, netloc, p.path, "", "", ""))
    except ValueError:
        return "(unparseable URL)"


def is_loopback_url(url: str) -> bool:
    host = (urlparse(url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_FIELD_TYPES = {f.name: f.type for f in fields(LLMConfig)}


def _coerce(name: str, value: Any, source: str) -> Any:
    try:
        if name in ("timeout_s", "backoff_s", "max_retry_after_s"):
            return float(value)
        if name in ("max_retries", "max_concurrency", "json_tries"):
            return int(value)
        if name in ("redact", "use_cache", "audit_text"):
            if isinstance(value, bool):
                return value
            return {"1": True, "true": True, "yes": True, "on": True,
                    "0": False, "false": False, "no": False, "off": False}[str(value).strip().lower()]
        if name == "extra_names":
            return tuple(v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip())
    except (KeyError, TypeError, ValueError):
        raise LLMConfigError(f"{source}: {name} = {value!r} is not a valid value") from None
    return value


def load_config(path: str | Path | None = None, **overrides: Any) -> LLMConfig | None:
    """The configured endpoint, or ``None`` when nothing is configured (then nothing may be sent).

    Precedence: ``overrides`` > environment (``ALLIANCE_LLM_BASE_URL``, ``_MODEL``, ``_API_KEY``, ``_REDACT``, ...)
    > the TOML file (``path``, else ``$ALLIANCE_LLM_CONFIG``, else ``~/.config/alliance/llm.toml``).
    A TOML file may hold the keys at top level or under an ``[llm]`` table.
    """
    values: dict[str, Any] = {}
    explicit = path or os.environ.get(ENV_PREFIX + "CONFIG")
    cfg_path = Path(explicit).expanduser() if explicit else DEFAULT_CONFIG_PATH.expanduser()
    if cfg_path.is_file():
        try:
            doc = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise LLMConfigError(f"{cfg_path}: invalid TOML: {e}") from None
        doc = doc.get("llm", doc)
        unknown = sorted(set(doc) - set(_FIELD_TYPES))
        if unknown:
            raise LLMConfigError(f"{cfg_path}: unknown key(s) {unknown}; known: {sorted(_FIELD_TYPES)}")
        values.update({k: _coerce(k, v, str(cfg_path)) for k, v in doc.items()})
    elif explicit:
        raise LLMConfigError(f"{cfg_path}: no such config file")
    for name in _FIELD_TYPES:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and env != "" and name != "price_per_1k":
            values[name] = _coerce(name, env, f"${ENV_PREFIX}{name.upper()}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values.get("base_url"):
        return None
    if "model" not in values:
        raise LLMConfigError(f"an endpoint is configured ({values['base_url']}) but no model; set "
                             f"{ENV_PREFIX}MODEL or `model` in {cfg_path}")
    return LLMConfig(**values)


def require_config(path: str | Path | None = None, **overrides: Any) -> LLMConfig:
    cfg = load_config(path, **overrides)
    if cfg is None:
        raise LLMConfigError("no language-model endpoint is configured, so nothing is sent. Set "
                             f"{ENV_PREFIX}BASE_URL and {ENV_PREFIX}MODEL (and {ENV_PREFIX}API_KEY if it needs one), "
                             f"or write {DEFAULT_CONFIG_PATH} (see docs/llm.md)")
    return cfg
