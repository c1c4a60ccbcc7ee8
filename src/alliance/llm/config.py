"""Where the language model lives: base URL, model and key from the environment or a TOML file, nothing by default.

No endpoint is ever contacted unless one is configured explicitly (``ALLIANCE_LLM_BASE_URL`` or a config file);
an endpoint on a loopback host counts as local, any other as remote, which switches redaction on by default.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ENV_PREFIX = "ALLIANCE_LLM_"
DEFAULT_CONFIG_PATH = Path("~/.config/alliance/llm.toml")


class LLMConfigError(ValueError):
    """The language-model endpoint is missing or misconfigured."""


@dataclass(frozen=True)
class LLMConfig:
    """Settings of one OpenAI-compatible chat-completions endpoint.

    ``price_per_1k`` maps a model id to ``{"prompt": USD, "completion": USD}`` per 1,000 tokens, for cost
    accounting; ``redact=None`` means "on for remote endpoints, off for loopback ones".
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
    price_per_1k: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parsed = urlparse(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LLMConfigError(f"base_url {self.base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080/v1)")
        if not self.model:
            raise LLMConfigError("no model given (ALLIANCE_LLM_MODEL or `model` in the config file)")
        if self.max_concurrency < 1 or self.json_tries < 1 or self.max_retries < 0:
            raise LLMConfigError("max_concurrency and json_tries must be >= 1, max_retries >= 0")

    @property
    def is_local(self) -> bool:
        return is_loopback_url(self.base_url)

    @property
    def redaction_on(self) -> bool:
        return (not self.is_local) if self.redact is None else bool(self.redact)

    def describe(self) -> dict[str, Any]:
        """What a run records: never the key."""
        return {"base_url": self.base_url, "model": self.model, "local": self.is_local,
                "redaction": self.redaction_on, "timeout_s": self.timeout_s, "max_retries": self.max_retries,
                "json_tries": self.json_tries, "max_concurrency": self.max_concurrency}


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
        if name in ("timeout_s", "backoff_s"):
            return float(value)
        if name in ("max_retries", "max_concurrency", "json_tries"):
            return int(value)
        if name in ("redact", "use_cache"):
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
