"""Label values as corpora spell them (numbers as strings, "n/a", check marks) turned into plain Python values.

Shared by the corpus readers so every corpus's survey scores and flags arrive in session/turn metadata typed
the same way: numbers as int/float, missing as absent, flags as bool.
"""

from __future__ import annotations

import math
import re
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


#: Unix times below this magnitude are seconds, at or above it milliseconds (``timestamp_unit="auto"``). 1e11
#: seconds is the year 5138; 1e11 milliseconds is March 1973, so no real chat log is misread either way.
EPOCH_MS_FROM = 1e11
#: Above this magnitude a number is not milliseconds either (1e14 ms is the year 5138): microseconds or
#: nanoseconds, which we refuse to guess.
EPOCH_MAX = 1e14
TIMESTAMP_UNITS = ("auto", "s", "ms")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def to_timestamp(value: Any, timezone: str = "UTC", unit: str = "auto") -> Any:
    """An ISO 8601 string, a datetime, or a Unix time, as a UTC ``pandas.Timestamp``.

    A Unix time is a JSON number or a string of digits (CSV has no numbers). ``unit="s"`` or ``"ms"`` says
    which; ``"auto"`` (the default) reads magnitudes under 1e11 as seconds and from 1e11 to 1e14 as
    milliseconds, and rejects larger ones (micro- or nanoseconds). Times without a zone are read in
    ``timezone``. Missing -> None; unreadable or out of range (years 1677-2262) raises ``ValueError``.
    """
    import pandas as pd

    if unit not in TIMESTAMP_UNITS:
        raise ValueError(f"unknown timestamp unit {unit!r}; one of {TIMESTAMP_UNITS}")
    if is_missing(value):
        return None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        digits = value.strip()
        if len(digits) == 8 and digits.isdigit():
            raise ValueError(f"ambiguous time {value!r}: a compact date (YYYYMMDD) or Unix seconds? Write ISO 8601 "
                             "(2024-05-01) or a full Unix time")
        value = float(digits) if not digits.lstrip("+-").isdigit() else int(digits)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _in_range(_from_epoch(value, unit), value)
    try:
        if not isinstance(value, (str, pd.Timestamp)) and not hasattr(value, "isoformat"):
            raise TypeError
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(f"unreadable time {_short(value)}; expected ISO 8601 (e.g. 2024-05-01T14:03:00Z) or Unix "
                         "seconds/milliseconds") from None
    if ts is pd.NaT:
        raise ValueError(f"unreadable time {_short(value)}")
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(timezone)
        except Exception as e:  # nonexistent or ambiguous local time (a DST change)
            raise ValueError(f"time {_short(value)} does not exist or is ambiguous in {timezone}: {e}") from None
    return _in_range(ts.tz_convert("UTC"), value)


def _in_range(ts: Any, value: Any) -> Any:
    """The time itself, or ``ValueError`` when the turn table (nanoseconds since 1970) cannot hold it."""
    import pandas as pd

    try:
        ts.as_unit("ns")
        return ts
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(f"time {_short(value)} is outside the years 1677-2262") from None


def _from_epoch(value: float, unit: str) -> Any:
    import pandas as pd

    if not math.isfinite(value):
        raise ValueError(f"unreadable time {value!r}")
    if unit == "auto":
        if abs(value) >= EPOCH_MAX:
            raise ValueError(f"Unix time {value!r} is too large for seconds or milliseconds (micro- or nanoseconds "
                             "are not read); convert it, or write ISO 8601")
        unit = "s" if abs(value) < EPOCH_MS_FROM else "ms"
    try:
        # Whole numbers go in as integers so that milliseconds are not rounded through a float.
        return pd.Timestamp(int(value) if float(value).is_integer() else value, unit=unit, tz="UTC")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(f"Unix time {value!r} ({'seconds' if unit == 's' else 'milliseconds'}) is outside the "
                         "years 1677-2262") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
