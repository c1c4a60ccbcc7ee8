"""Label values as corpora spell them (numbers as strings, "n/a", check marks) turned into plain Python values.

Shared by the corpus readers so every corpus's survey scores and flags arrive in session/turn metadata typed
the same way: numbers as int/float, missing as absent, flags as bool.
"""

from __future__ import annotations

import math
from typing import Any

#: Spellings of "no value" in the corpora's label columns.
MISSING = frozenset({"", "n/a", "na", "n.a", "n.a.", "none", "null", "nan"})


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING


def to_number(value: Any) -> int | float | None:
    """``"5"`` -> 5, ``"4.5"`` -> 4.5, missing -> None; anything else raises ``ValueError``."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        s = value.strip()
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if math.isnan(f) or math.isinf(f):
            raise ValueError(f"expected a finite number, got {value!r}")
        return int(f) if f.is_integer() else f
    raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")


def to_bool(value: Any) -> bool | None:
    """``"True"``/``"False"`` (any case), true/false, 1/0 -> bool; missing -> None; anything else raises."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ValueError(f"expected true/false, got {value!r}")


def to_label(value: Any) -> str | None:
    """A categorical label as a stripped string; missing spellings -> None."""
    if is_missing(value):
        return None
    return str(value).strip()


def checked_text(raw: Any, source: str, location: str, log: Any, field: str = "text") -> str | None:
    """A turn's text: stripped, non-empty, a string, and not over the record size limit (else rejected)."""
    from alliance.io.base import MAX_RECORD_BYTES, clean_text

    text = clean_text(raw, source, location, log, field)
    if text is not None and len(text) > MAX_RECORD_BYTES:
        log.reject(source, location, f"text is {len(text):,} characters, over the {MAX_RECORD_BYTES:,} limit",
                   field, text[:200])
        return None
    return text


def natural_key(name: str) -> tuple:
    """Sort key that puts ``en9`` before ``en10``."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def to_timestamp(value: Any, timezone: str = "UTC") -> Any:
    """An ISO 8601 string (or a datetime, or Unix seconds as a number) as a UTC ``pandas.Timestamp``.

    Times without a zone are read in ``timezone``. Missing -> None; unreadable raises ``ValueError``.
    """
    import pandas as pd

    if is_missing(value):
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return pd.Timestamp(value, unit="s", tz="UTC")
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"unreadable time {value!r}; expected ISO 8601 (e.g. 2024-05-01T14:03:00Z)") from None
    if ts is pd.NaT:
        raise ValueError(f"unreadable time {value!r}")
    if ts.tzinfo is None:
        ts = ts.tz_localize(timezone)
    return ts.tz_convert("UTC")
