"""Tables of turns (CSV, TSV, Parquet), one row per turn, with a mapping from the table's columns to the corpus's.

Default column names are the corpus's own (``session_id``, ``speaker``, ``text``, ``course_id``, ``turn_index``,
``session_index``, ``timestamp``, ``counsellor_is_ai``, ``speaker_id``); ``columns={"text": "utterance", ...}``
maps others, ``roles={"T": "counsellor", "C": "client"}`` maps speaker codes, and ``session_columns`` names the
columns that hold session labels. Every other column becomes turn metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alliance.corpus import ROLES, SessionInfo, Turn
from alliance.io.base import InputError, OptionError, Reader, ReadResult, RejectionLog, check_index, normalise_role
from alliance.io.csvfile import csv_header, iter_csv_records
from alliance.io.values import checked_text, is_missing, to_bool, to_timestamp

FIELDS = ("course_id", "session_id", "session_index", "turn_index", "speaker", "speaker_id", "text", "timestamp",
          "counsellor_is_ai")
#: Columns tried, in order, when a field is not mapped explicitly.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {f: (f,) for f in FIELDS} | {
    "speaker": ("speaker", "role"),
    "text": ("text", "content"),
}
SUFFIX_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")


class TableReader(Reader):
    name = "table"
    description = ("CSV/TSV/Parquet, one row per turn; map columns with --map FIELD=COLUMN and speaker codes with "
                   "--role CODE=client|counsellor")

    def sniff(self, path: Path) -> float:
        suffix = path.suffix.lower()
        if path.is_dir():
            return 0.0
        if suffix in PARQUET_SUFFIXES:
            header = _parquet_columns(path)
        elif suffix in SUFFIX_DELIMITERS:
            header = csv_header(path, SUFFIX_DELIMITERS[suffix])
        else:
            return 0.0
        if not header:
            return 0.0
        found = set(header)
        if {"session_id", "text"} <= found and found & {"speaker", "role"}:
            return 0.6
        # A table we cannot map without help: still ours (the error will name the missing columns), but any
        # corpus-specific reader that recognises the header wins.
        return 0.35

    def read(self, path: Path, log: RejectionLog, columns: Mapping[str, str] | None = None,
             roles: Mapping[str, str] | None = None, session_columns: Sequence[str] = (), timezone: str = "UTC",
             timestamp_unit: str = "auto", **options: Any) -> ReadResult:
        plan = self.prepare(path, columns, roles, session_columns)
        if path.suffix.lower() in PARQUET_SUFFIXES:
            rows: Iterator[tuple[str, dict[str, Any]]] = _parquet_rows(path)
        else:
            delimiter = SUFFIX_DELIMITERS.get(path.suffix.lower(), ",")
            rows = ((rec.location, rec.fields) for rec in iter_csv_records(path, log, (), delimiter=delimiter))
        return self.read_rows(path, plan, rows, log, roles, timezone, timestamp_unit)

    def prepare(self, path: Path, columns: Mapping[str, str] | None = None, roles: Mapping[str, str] | None = None,
                session_columns: Sequence[str] = ()) -> TablePlan:
        """Check the options against the header: which column holds each field (raises for a wrong mapping)."""
        source = str(path)
        if path.is_dir():
            raise InputError(source, "", "the table reader takes a file, not a folder")
        columns = dict(columns or {})
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise OptionError(source, "", f"column mapping names unknown field(s) {unknown}; fields are {list(FIELDS)}",
                             "columns")
        bad_roles = {k: v for k, v in (roles or {}).items() if v not in ROLES}
        if bad_roles:
            raise OptionError(source, "", f"role mapping must map onto {ROLES}, got {bad_roles}", "roles")
        suffix = path.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            header = parquet_header(path)
        else:
            header = csv_header(path, SUFFIX_DELIMITERS.get(suffix, ","))
        where = _resolve_columns(header, columns, source)
        missing_labels = [c for c in session_columns if c not in header]
        if missing_labels:
            raise InputError(source, "line 1 (header)", f"session column(s) {missing_labels} not in the table "
                             f"{header}", "session_columns")
        return TablePlan(where, set(where.values()) | set(session_columns), tuple(session_columns))

    def read_rows(self, path: Path, plan: TablePlan, rows: Iterable[tuple[str, dict[str, Any]]], log: RejectionLog,
                  roles: Mapping[str, str] | None = None, timezone: str = "UTC",
                  timestamp_unit: str = "auto") -> ReadResult:
        """Turns and sessions from ``(location, row)`` records of ``path``: the whole table, or the rows that hold
        some courses (:mod:`alliance.io.lazy`)."""
        source = str(path)
        where, used, session_columns = plan.where, plan.used, plan.session_columns
        turns: list[Turn] = []
        sessions: dict[tuple[str, str], SessionInfo] = {}
        next_index: dict[tuple[str, str], int] = {}
        for loc, row in rows:
            turn = _turn(row, where, used, roles, timezone, path, loc, log, timestamp_unit)
            if turn is None:
                continue
            key = (turn.course_id, turn.session_id)
            if "turn_index" not in where:
                # Without a turn_index column, turns are numbered in table order within their session.
                turn = replace(turn, turn_index=next_index.get(key, 0))
                next_index[key] = turn.turn_index + 1
            turns.append(turn)
            if key not in sessions:
                labels = {c: row[c] for c in session_columns if not is_missing(row.get(c))}
                sessions[key] = SessionInfo(turn.course_id, turn.session_id, turn.session_index, source=source,
                                            meta=labels)
        return ReadResult(turns, list(sessions.values()))


@dataclass(frozen=True)
class TablePlan:
    """Where a table's fields are: field -> column, the columns read as fields or labels, the label columns."""

    where: dict[str, str]
    used: set[str]
    session_columns: tuple[str, ...]


def table_course(row: Mapping[str, Any], where: Mapping[str, str], path: Path) -> str | None:
    """The course a row belongs to, spelled as :meth:`TableReader.read_rows` spells it (None if unreadable)."""
    try:
        session = path.stem if "session_id" not in where else _table_id(row.get(where["session_id"]))
        course = _table_id(row.get(where["course_id"])) if "course_id" in where else None
    except ValueError:
        return None
    return course or session


def _resolve_columns(header: Sequence[str], columns: dict[str, str], source: str) -> dict[str, str]:
    """Field -> column actually present. ``text`` and ``speaker`` are required; the rest are optional."""
    where: dict[str, str] = {}
    for f in FIELDS:
        if f in columns:
            if columns[f] not in header:
                raise InputError(source, "line 1 (header)", f"mapped column {columns[f]!r} for {f!r} is not in the "
                                 f"table; columns are {list(header)}", f)
            where[f] = columns[f]
            continue
        for candidate in DEFAULT_COLUMNS[f]:
            if candidate in header:
                where[f] = candidate
                break
    missing = [f for f in ("text", "speaker") if f not in where]
    if missing:
        raise InputError(source, "line 1 (header)", f"no column for {missing}; columns are {list(header)}. Map them, "
                         f"e.g. --map {missing[0]}=COLUMN", missing[0])
    return where


def _turn(row: dict[str, Any], where: dict[str, str], used: set[str], roles: Mapping[str, str] | None,
          timezone: str, path: Path, loc: str, log: RejectionLog, unit: str = "auto") -> Turn | None:
    source = str(path)

    def get(f: str) -> Any:
        return row.get(where[f]) if f in where else None

    ids: dict[str, str | None] = {}
    for f in ("session_id", "course_id", "speaker_id"):
        try:
            ids[f] = _table_id(get(f))
        except ValueError as e:
            log.reject(source, loc, str(e), where[f], row)
            return None
    # A table without a session column is one conversation, named after the file.
    session_id = path.stem if "session_id" not in where else ids["session_id"]
    if session_id is None:
        log.reject(source, loc, "session id is missing", where["session_id"], row)
        return None
    course_id = ids["course_id"] or session_id
    speaker = normalise_role(get("speaker"), source, loc, log, mapping=roles, field=where["speaker"])
    if speaker is None:
        return None
    text = checked_text(get("text"), source, loc, log, field=where["text"])
    if text is None:
        return None
    values: dict[str, Any] = {}
    for f in ("turn_index", "session_index"):
        if f not in where:
            continue
        if f == "session_index" and is_missing(get(f)):
            continue
        if f == "turn_index" and is_missing(get(f)):
            log.reject(source, loc, "turn index is missing", where[f], row)
            return None
        values[f] = check_index(get(f), source, loc, log, where[f])
        if values[f] is None:
            return None
    for f, convert in (("counsellor_is_ai", to_bool), ("timestamp", lambda v: to_timestamp(v, timezone, unit))):
        if f not in where:
            continue
        try:
            values[f] = convert(get(f))
        except ValueError as e:
            log.reject(source, loc, str(e), where[f], row)
            return None
    meta = {k: _plain(v) for k, v in row.items() if k not in used and not is_missing(v)}
    return Turn(course_id=course_id, session_id=session_id, turn_index=values.get("turn_index") or 0,
                session_index=values.get("session_index") or 0, speaker=speaker,
                speaker_id=ids["speaker_id"], text=text,
                counsellor_is_ai=values.get("counsellor_is_ai"), timestamp=values.get("timestamp"), meta=meta,
                source=source, location=loc)


def _table_id(value: Any) -> str | None:
    """An id cell as text: strings stripped, integers as digits, and whole floats (``1.0``: what pandas writes for
    an integer column with gaps) as integers; missing -> None. Other floats and other types raise ``ValueError``."""
    value = _plain(value)
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"an id must be a string or an integer, got {type(value).__name__} {value!r}")
    return str(value).strip() or None


def _plain(value: Any) -> Any:
    """Arrow/NumPy scalars as plain Python values, so metadata serialises to JSON."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def parquet_header(path: Path) -> list[str]:
    """A Parquet file's column names (raises :class:`InputError` for an unreadable file or repeated names)."""
    import pyarrow.parquet as pq

    try:
        names = list(pq.read_schema(path).names)
    except Exception as e:
        raise InputError(str(path), "", f"unreadable Parquet file: {e}") from None
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(str(path), "", f"duplicate column name(s) {dupes}; rename them so no column is lost",
                         dupes[0])
    return names


def _parquet_columns(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception:  # not a Parquet file: sniffing must simply say no
        return []


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:
        raise InputError(str(path), "", f"unreadable Parquet file: {e}") from None
    names = list(parquet.schema_arrow.names)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(str(path), "", f"duplicate column name(s) {dupes}; rename them so no column is lost",
                         dupes[0])
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield f"row {row}", record
