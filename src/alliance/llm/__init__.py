"""The language-model backend: any OpenAI-compatible chat endpoint, configured explicitly, redacted, audited.

Nothing here sends anything unless an endpoint is configured (see :mod:`alliance.llm.config` and docs/llm.md).
"""

from __future__ import annotations

from alliance.llm.client import ChatResult, LLMClient, LLMError, LLMSchemaError, extract_json, get_client
from alliance.llm.config import LLMConfig, LLMConfigError, is_loopback_url, load_config, require_config
from alliance.llm.redact import Redactor

__all__ = ["ChatResult", "LLMClient", "LLMConfig", "LLMConfigError", "LLMError", "LLMSchemaError", "Redactor",
           "extract_json", "get_client", "is_loopback_url", "load_config", "require_config"]
