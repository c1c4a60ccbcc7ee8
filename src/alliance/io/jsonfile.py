"""Whole-file JSON and JSON Lines for the JSON-shaped readers, each record located by line or list index.

Invalid, undecodable, over-long or too deeply nested records are rejected one at a time; sniffing looks past a
broken first line to the first readable records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alliance.io.base import MAX_RECORD_BYTES, InputError, RejectionLog, head_text, iter_lines

#: JSON nested deeper than this is rejected: no transcript format needs it, and Python's parser (and every later
#: step that walks metadata) fails with a RecursionError somewhere near 1,000 levels.
MAX_JSON_DEPTH = 64


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), counted without recursion and only up to ``limit + 1``."""
    depth = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        d += 1
        depth = max(depth, d)
        if depth > limit:
            return depth
        stack.extend((c, d) for c in children if isinstance(c, (dict, list)))
    return depth


def parse_json(text: str) -> Any:
    """``json.loads`` that turns too-deep nesting into a ``ValueError`` with a clear message.

    Raises ``json.JSONDecodeError`` for invalid JSON and ``ValueError`` for nesting over ``MAX_JSON_DEPTH``.
    """
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)") from None
    if isinstance(doc, (dict, list)) and json_depth(doc) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)")
    return doc


def iter_json_lines(path: Path, log: RejectionLog, start: int = 0, end: int | None = None,
                    first_lineno: int = 1) -> Iterator[tuple[int, Any]]:
    source = str(path)
    for lineno, line in iter_lines(path, log, start=start, end=end, first_lineno=first_lineno):
        try:
            obj = parse_json(line)
        except json.JSONDecodeError as e:
            log.reject(source, f"line {lineno}", f"invalid JSON: {e.msg} at column {e.colno}", None, line[:200])
            continue
        except ValueError as e:
            log.reject(source, f"line {lineno}", str(e), None, line[:200])
            continue
        yield lineno, obj


def load_json_file(path: Path, log: RejectionLog, max_bytes: int = 512_000_000) -> Any:
    """Read a whole-file JSON document; undecodable or invalid files raise (there is no record to skip)."""
    source = str(path)
    raw = path.read_bytes()
    if len(raw) > max_bytes:
        raise InputError(source, "", f"file is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(source, f"byte {e.start}", "not valid UTF-8") from None
    try:
        return parse_json(text)
    except json.JSONDecodeError as e:
        raise InputError(source, f"line {e.lineno}", f"invalid JSON: {e.msg} at column {e.colno}") from None
    except ValueError as e:
        raise InputError(source, "", str(e)) from None


def iter_json_records(path: Path, log: RejectionLog, what: str = "records") -> Iterator[tuple[int, str, Any]]:
    """``(record number, location, record)`` of a JSON list file, or of a JSON Lines file (one record a line).

    A JSON list that cannot be read at all is one rejected record, so under ``skip`` other files go on. In JSON
    Lines the record number is the 0-based line index, so a record's id does not depend on whether the lines
    before it were readable.
    """
    # A .jsonl file is lines even when its first line (perhaps a broken one) opens with "[".
    if path.suffix.lower() not in (".jsonl", ".ndjson") and head_text(path, 4096).lstrip().startswith("["):
        try:
            doc = load_json_file(path, log)
        except InputError as e:
            # JSON Lines whose first line happens to be broken (and to open with "["): read it as lines.
            if isinstance(_second_line_value(path), dict):
                for lineno, record in iter_json_lines(path, log):
                    yield lineno - 1, f"line {lineno}", record
                return
            log.reject(e.source, e.location, e.problem, e.field)
            return
        if not isinstance(doc, list):
            log.reject(str(path), "", f"expected a JSON list of {what}, got {type(doc).__name__}")
            return
        for n, record in enumerate(doc):
            yield n, f"record {n}", record
        return
    for lineno, record in iter_json_lines(path, log):
        yield lineno - 1, f"line {lineno}", record


def _second_line_value(path: Path) -> Any:
    """The second non-blank line of a file parsed as JSON (None when absent or not JSON)."""
    seen = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                seen += 1
                if seen == 2:
                    try:
                        return parse_json(raw.decode("utf-8", errors="replace"))
                    except ValueError:
                        return None
    return None


def head_json_objects(path: Path, n: int = 5, max_line_bytes: int = MAX_RECORD_BYTES,
                      max_total_bytes: int = 4 * MAX_RECORD_BYTES, max_lines: int = 20) -> list[Any]:
    """The first ``n`` parseable JSON values among a file's first lines, for sniffing JSON Lines.

    Lines that are not JSON (a broken first line, a line over ``max_line_bytes``, nesting too deep) are passed
    over rather than deciding the format, so one bad record does not defeat detection.
    """
    found: list[Any] = []
    read = 0
    try:
        with open(path, "rb") as fh:
            tried = 0
            while len(found) < n and read < max_total_bytes and tried < max_lines:
                raw = fh.readline(max_line_bytes + 1)
                if not raw:
                    break
                read += len(raw)
                if len(raw) > max_line_bytes:  # skip the rest of an over-long line
                    while raw and not raw.endswith(b"\n"):
                        raw = fh.readline(1 << 20)
                        read += len(raw)
                    continue
                line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
                if not line:
                    continue
                tried += 1  # a pretty-printed document never parses line by line: give up soon
                try:
                    found.append(parse_json(line))
                except ValueError:  # JSONDecodeError is a ValueError too
                    continue
    except OSError:
        return []
    return found
