"""Versioned files shipped with alliance (probe sets, codebooks, small weights, personas) and how to read them.

A shipped file is named by its folder under ``alliance/data``; a user's replacement by its path. Both are read the
same way, so every measure reports a missing or malformed file with the same located message.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def read_data_text(path: str | Path | None, folder: str, default: str, error: type[Exception] = ValueError,
                   what: str = "file") -> tuple[str, str]:
    """``(text, source)`` of the user's file at ``path``, or of the shipped ``data/<folder>/<default>``."""
    if path is None:
        ref = resources.files(f"alliance.data.{folder}").joinpath(default)
        return ref.read_text(encoding="utf-8"), f"alliance:data/{folder}/{default}"
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {what} not found")
    return p.read_text(encoding="utf-8"), str(p)


def load_json_data(path: str | Path | None, folder: str, default: str, error: type[Exception] = ValueError,
                   what: str = "file") -> tuple[Any, str]:
    """``(document, source)``: like :func:`read_data_text`, parsed as JSON, with the line of any syntax error."""
    text, source = read_data_text(path, folder, default, error, what)
    try:
        return json.loads(text), source
    except json.JSONDecodeError as e:
        raise error(f"{source}: invalid JSON at line {e.lineno}: {e.msg}") from None
