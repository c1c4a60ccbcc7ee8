"""CSV records for the table-shaped readers (AnnoMI, EPITOME, PAIR, generic tables), each located by line.

Reads with the standard library's ``csv`` so every record keeps the line it starts on; bad bytes, over-long
records and ragged rows are rejected one record at a time instead of failing the whole file.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alliance.io.base import MAX_RECORD_BYTES, RejectionLog, head_text

# Undecodable bytes survive decoding as lone surrogates (errors="surrogateescape"), so a bad byte spoils only
# the record it sits in.
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class CsvRecord:
    """One data row: its fields by header name, the line it starts on and its 1-based row number."""

    fields: dict[str, str]
    line: int
    row: int

    @property
    def location(self) -> str:
        return f"line {self.line} (row {self.row})"


def csv_header(path: Path, delimiter: str = ",") -> list[str]:
    """The header of a CSV file, for sniffing (empty when the file does not look like CSV)."""
    text = head_text(path, 16384)
    if not text:
        return []
    first = text.splitlines()[0] if text.splitlines() else ""
    try:
        return [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return []


def iter_csv_records(path: Path, log: RejectionLog, required: Iterable[str] = (),
                     max_bytes: int = MAX_RECORD_BYTES, delimiter: str = ",") -> Iterator[CsvRecord]:
    """Yield the rows of a CSV file with a header line.

    A header that lacks a ``required`` column is one rejection for the whole file (no row could be read);
    rows with the wrong number of fields, undecodable bytes or more than ``max_bytes`` characters are
    rejected one by one.
    """
    source = str(path)
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    # The csv module refuses fields over its limit mid-parse and cannot resume cleanly; lift the limit and
    # measure each whole record instead.
    old_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        # strict: a quote that opens a field and never closes properly is an error at the line where it goes
        # wrong, instead of silently swallowing the following rows into one field.
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            log.reject(source, "line 1", "the file is empty; expected a header line", None, None)
            return
        except csv.Error as e:
            log.reject(source, "line 1", f"unreadable CSV header: {e}", None, None)
            return
        header = [h.strip() for h in header]
        if any(_SURROGATE.search(h) for h in header):
            log.reject(source, "line 1", "header is not valid UTF-8", None, None)
            return
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            cols = {h: [i + 1 for i, x in enumerate(header) if x == h] for h in dupes}
            log.reject(source, "line 1 (header)", "duplicate column name(s) "
                       + ", ".join(f"{h!r} (columns {', '.join(map(str, c))})" for h, c in cols.items())
                       + "; rename them so no column is lost", dupes[0], header)
            return
        missing = [c for c in required if c not in header]
        if missing:
            log.reject(source, "line 1 (header)", f"missing column(s) {missing}; found {header}",
                       missing[0], header)
            return
        row_no = 0
        prev_end = reader.line_num
        while True:
            start = prev_end + 1
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                row_no += 1
                end = reader.line_num
                span = f"; lines {start}-{end} were not read" if end > start else ""
                hint = " (a quote that opens a field is not closed)" if "expected after" in str(e) or "end of data" in \
                    str(e) else ""
                log.reject(source, f"line {start} (row {row_no})", f"malformed CSV: {e}{hint}{span}", None, None)
                prev_end = end
                continue
            prev_end = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            row_no += 1
            loc = f"line {start} (row {row_no})"
            size = sum(len(v) for v in values)
            if size > max_bytes:
                log.reject(source, loc, f"record is {size:,} characters, over the {max_bytes:,} limit", None,
                           ",".join(values)[:200])
                continue
            bad = next((h for h, v in zip(header, values, strict=False) if _SURROGATE.search(v)), None)
            if bad is not None or any(_SURROGATE.search(v) for v in values[len(header):]):
                log.reject(source, loc, "not valid UTF-8", bad,
                           ",".join(values)[:200].encode("utf-8", "surrogateescape"))
                continue
            if len(values) != len(header):
                log.reject(source, loc, f"expected {len(header)} fields as in the header, got {len(values)}", None,
                           values)
                continue
            yield CsvRecord(dict(zip(header, values, strict=True)), start, row_no)
    finally:
        csv.field_size_limit(old_limit)
