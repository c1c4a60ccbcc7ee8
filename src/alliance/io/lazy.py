"""Lazy input: JSONL files and Parquet tables (a file or a dataset folder) read in chunks of whole courses of care.

A first pass indexes where each course's records lie (byte ranges of JSONL lines, row ranges of Parquet rows),
reading ids only; the second reads one chunk of courses at a time through the format's own reader, so every check
and every rejection (file and line or row) is the one an eager :func:`alliance.io.read` makes, and memory holds one
chunk, not the corpus. A course's records need not be contiguous: the index lists each stretch, and a chunk reads
all of its courses' stretches (sorted input reads sequentially; scattered input is correct, only slower).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alliance.corpus import Corpus, pack
from alliance.io import assemble, detect_format, parquet_dataset
from alliance.io.base import (
    MAX_RECORD_BYTES,
    InputError,
    OnError,
    OptionError,
    ReadResult,
    Rejection,
    RejectionLog,
    check_id,
)
from alliance.io.jsonl import JsonlReader
from alliance.io.tabular import PARQUET_SUFFIXES, TablePlan, TableReader, table_course
from alliance.io.values import TIMESTAMP_UNITS

#: Rows per Parquet batch, in both passes (the eager table reader reads 4,096 at a time too).
PARQUET_BATCH = 4096
#: Formats read lazily (``table`` only for Parquet; CSV and the corpus-specific readers are read whole).
LAZY_FORMATS = ("jsonl", "table")


@dataclass
class _File:
    path: Path
    format: str  # "jsonl" or "table"
    plan: TablePlan | None = None  # where a Parquet table's fields are


def lazy_files(paths: Sequence[str | Path], format: str = "auto") -> list[tuple[Path, str]] | None:
    """``(file, format)`` for every input when all of them can be read lazily (JSONL, Parquet files, Parquet dataset
    folders), else None (the caller reads the input whole). Unknown formats are left to the eager reader's errors."""
    out: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if not p.exists():
            return None
        dataset = parquet_dataset(p) if format in ("auto", "table") else None
        if dataset is not None:
            out.extend((f, "table") for f in dataset)
            continue
        try:
            fmt = detect_format(p)[0] if format == "auto" else format
        except InputError:
            return None
        if fmt not in LAZY_FORMATS or p.is_dir() or (fmt == "table" and p.suffix.lower() not in PARQUET_SUFFIXES):
            return None
        out.append((p, fmt))
    return out


class LazyInput:
    """An input indexed by course, read a chunk of whole courses at a time (the pipeline's chunk source).

    ``courses`` lists the courses in the order they first appear; ``select`` narrows them (``--limit``,
    ``--sample``, chosen as an eager read chooses: from the course names in sorted order); chunks follow the order of
    first appearance, about ``chunk_turns`` turns each. Under ``on_error="fail"`` a bad record raises
    :class:`InputError` when its chunk is read; under ``"skip"`` each chunk returns its rejections.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], format: str = "auto", on_error: OnError = "fail",
                 chunk_turns: int = 4000, **options: Any):
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        unit = options.get("timestamp_unit", "auto")
        if unit not in TIMESTAMP_UNITS:
            raise OptionError(", ".join(map(str, paths)), "", f"unknown timestamp unit {unit!r}; one of "
                              f"{list(TIMESTAMP_UNITS)}", "timestamp_unit")
        for p in self.paths:
            if not p.exists():
                raise InputError(str(p), "", "no such file or folder")
        found = lazy_files(self.paths, format)
        if found is None:
            raise InputError(", ".join(map(str, self.paths)), "", "not all inputs can be read lazily (JSONL and "
                             "Parquet only); read them with alliance.io.read")
        self.format, self.on_error, self.options, self.chunk_turns = format, on_error, options, chunk_turns
        self.log = RejectionLog(on_error)
        self.files: list[_File] = []
        self.formats: dict[str, str] = {}
        self.courses: list[str] = []
        self._code: dict[str, int] = {}
        self._turns = array("q")  # turns per course (before any rejection)
        # one row per stretch of consecutive records of one course: course code, file number, start, end, first line
        self._runs = {k: array("q") for k in ("course", "file", "start", "end", "line")}
        for path, fmt in found:
            self._index_file(path, fmt)
        self.selected: list[int] = list(range(len(self.courses)))
        self.selection: dict[str, Any] | None = None
        self._plan()

    # the first pass ------------------------------------------------------------------------------------
    def _course(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            code = self._code[name] = len(self.courses)
            self.courses.append(name)
            self._turns.append(0)
        return code

    def _index_file(self, path: Path, fmt: str) -> None:
        plan = None
        if fmt == "table":
            try:
                plan = TableReader().prepare(path, self.options.get("columns"), self.options.get("roles"),
                                             self.options.get("session_columns", ()))
            except OptionError:
                raise
            except InputError as e:  # a whole file unreadable: under skip, that file only
                self.log.reject(e.source, e.location, e.problem, e.field)
                return
        self.formats[str(path)] = fmt
        self.files.append(_File(path, fmt, plan))
        file_no = len(self.files) - 1
        records = _jsonl_keys(path) if fmt == "jsonl" else _parquet_keys(path, plan)  # type: ignore[arg-type]
        runs = self._runs
        cur = -1  # course of the open stretch
        first = len(runs["course"])
        pending: tuple[int, int] | None = None  # unreadable records before the file's first course: (start, line)
        for course, start, end, line, n in records:
            if course is None:  # no course to place it in: it joins the stretch around it, read (and rejected) there
                if cur >= 0:
                    runs["end"][-1] = end
                elif pending is None:
                    pending = (start, line)
                continue
            code = self._course(course)
            self._turns[code] += n
            if code == cur:
                runs["end"][-1] = end
                continue
            cur = code
            s, ln = pending if pending is not None else (start, line)
            pending = None
            for k, v in (("course", code), ("file", file_no), ("start", s), ("end", end), ("line", ln)):
                runs[k].append(v)
        if pending is not None and len(runs["course"]) == first:  # nothing readable: its records still get read
            code = self._course(f"\x00unreadable:{path}")
            for k, v in (("course", code), ("file", file_no), ("start", pending[0]), ("end", 1 << 62),
                         ("line", pending[1])):
                runs[k].append(v)

    # selection and chunks ------------------------------------------------------------------------------
    def select(self, limit: int | None = None, sample: int | None = None, seed: int = 0) -> dict[str, Any] | None:
        """Keep the first ``limit`` courses, or ``sample`` courses drawn with ``seed``, as
        :func:`alliance.cli.analyze.select` picks them from an eager corpus (course names in sorted order); returns
        what run.json records (counts before any rejection) or None."""
        import numpy as np

        if limit is None and sample is None:
            return None
        names = sorted(c for c in self.courses if not c.startswith("\x00"))
        if limit is not None:
            keep, rec = names[:limit], {"limit": limit}
        else:
            picked = np.random.default_rng(seed).choice(len(names), size=min(sample or 0, len(names)), replace=False)
            keep, rec = [names[i] for i in sorted(picked)], {"sample": sample, "seed": seed}
        all_turns = self.n_turns
        chosen = set(keep)
        self.selected = [i for i, c in enumerate(self.courses) if c in chosen]
        self._plan()
        rec.update({"unit": "course", "courses": len(keep), "of_courses": len(names), "turns": self.n_turns,
                    "of_turns": all_turns})
        self.selection = rec
        return rec

    def _plan(self) -> None:
        self._chunks = pack(((code, self._turns[code]) for code in self.selected), self.chunk_turns)

    @property
    def n_chunks(self) -> int:
        return len(self._chunks)

    @property
    def n_turns(self) -> int:
        """Turns of the selected courses as indexed (records later rejected still count)."""
        return int(sum(self._turns[c] for c in self.selected))

    @property
    def n_courses(self) -> int:
        return sum(1 for c in self.selected if not self.courses[c].startswith("\x00"))

    def __len__(self) -> int:
        return self.n_turns

    def __repr__(self) -> str:
        return f"LazyInput({self.n_courses} courses, {self.n_turns} turns in {len(self.files)} file(s), read lazily)"

    def fingerprint(self) -> str:
        """Everything the chunks' contents depend on: every input byte (sha256 per file), the format chosen per
        file, the reader options, ``on_error``, the selection and the chunking."""
        h = hashlib.sha256()
        h.update(json.dumps({"files": [[str(f.path), f.format, _digest(f.path)] for f in self.files],
                             "options": self.options, "on_error": self.on_error, "selection": self.selection,
                             "chunk_turns": self.chunk_turns}, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def chunks(self) -> Iterator[Callable[[], tuple[Corpus, list[Rejection]]]]:
        """One reader per chunk, in order; calling it reads the chunk (a chunk already done need not be read)."""
        import numpy as np

        runs = {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, np.int64)
                for k, v in self._runs.items()}
        chunk_of = np.full(len(self.courses), -1, dtype=np.int64)
        for i, codes in enumerate(self._chunks):
            chunk_of[codes] = i
        run_chunk = chunk_of[runs["course"]] if len(runs["course"]) else np.zeros(0, np.int64)
        order = np.lexsort((runs["start"], runs["file"], run_chunk))  # by chunk, then in file order
        bounds = np.searchsorted(run_chunk[order], np.arange(len(self._chunks) + 1))
        cursors: dict[int, _ParquetCursor] = {}
        for i in range(len(self._chunks)):
            rows = order[bounds[i]:bounds[i + 1]]
            stretches = [(int(runs["file"][r]), int(runs["start"][r]), int(runs["end"][r]), int(runs["line"][r]))
                         for r in rows]
            yield lambda stretches=stretches: self._read(stretches, cursors)

    # the second pass -----------------------------------------------------------------------------------
    def _read(self, stretches: list[tuple[int, int, int, int]],
              cursors: dict[int, _ParquetCursor]) -> tuple[Corpus, list[Rejection]]:
        before = len(self.log.rejected)
        results: list[ReadResult] = []
        opts = self.options
        unit = opts.get("timestamp_unit", "auto")
        for file_no in sorted({s[0] for s in stretches}):
            f = self.files[file_no]
            mine = [s for s in stretches if s[0] == file_no]
            if f.format == "jsonl":
                from alliance.io.jsonfile import iter_json_lines

                records = (rec for _, start, end, line in mine
                           for rec in iter_json_lines(f.path, self.log, start, end, line))
                results.append(JsonlReader().read_records(f.path, records, self.log, unit))
            else:
                cursor = cursors.setdefault(file_no, _ParquetCursor(f.path))
                rows = (row for _, start, end, _ in mine for row in cursor.rows(start, end))
                results.append(TableReader().read_rows(f.path, f.plan, rows, self.log,  # type: ignore[arg-type]
                                                       opts.get("roles"), opts.get("timezone", "UTC"), unit))
        corpus = assemble(results, self.log, ", ".join(self.formats.values()))
        new = self.log.rejected[before:]
        del self.log.rejected[before:]  # each chunk hands its own back; the log does not grow with the input
        return corpus, new


def _digest(path: Path) -> str:
    from alliance.pipeline import file_digest

    return file_digest(path)


def _jsonl_keys(path: Path) -> Iterator[tuple[str | None, int, int, int, int]]:
    """``(course, start, end, line, turns)`` per line: the course as the JSONL reader names it (None where the line
    is blank, unreadable or has no usable id), byte range, line number and number of turns."""
    quiet = RejectionLog("skip")
    with open(path, "rb") as fh:
        pos = 0
        for lineno, raw in enumerate(fh, start=1):
            start, pos = pos, pos + len(raw)
            course, n = None, 0
            if raw.strip() and len(raw) <= MAX_RECORD_BYTES:
                try:
                    obj = json.loads(raw)
                except (ValueError, RecursionError):
                    obj = None
                if isinstance(obj, dict) and obj.get("session_id") is not None:
                    sid = check_id(obj["session_id"], "", "", quiet, "session_id")
                    cid = obj.get("course_id")
                    course = sid if cid is None else check_id(cid, "", "", quiet, "course_id")
                    turns = obj.get("turns")
                    n = (len(turns) if isinstance(turns, list) else 0) if "turns" in obj else 1
                    quiet.rejected.clear()
            yield course, start, pos, lineno, n


def _parquet_keys(path: Path, plan: TablePlan) -> Iterator[tuple[str | None, int, int, int, int]]:
    """``(course, row, row + 1, row number, 1)`` per row, reading only the id columns."""
    import pyarrow.parquet as pq

    where = plan.where
    cols = [where[f] for f in ("course_id", "session_id") if f in where]
    pf = pq.ParquetFile(path)
    row = 0
    if not cols:  # no id column: the whole table is one conversation named after the file
        n = pf.metadata.num_rows
        if n:
            yield path.stem, 0, n, 1, n
        return
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH * 16, columns=cols):
        for rec in batch.to_pylist():
            yield table_course(rec, where, path), row, row + 1, row + 1, 1
            row += 1


class _ParquetCursor:
    """Rows of one Parquet file by position, read forward in batches; a request behind the cursor starts over (so
    sorted input is read once, and memory holds one batch)."""

    def __init__(self, path: Path):
        self.path = path
        self._it: Iterator[Any] | None = None
        self._rows: list[dict[str, Any]] = []
        self._base = 0

    def _restart(self) -> None:
        import pyarrow.parquet as pq

        self._it = iter(pq.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH))
        self._rows, self._base = [], 0

    def rows(self, start: int, end: int) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """``(location, row)`` for rows ``start`` to ``end - 1`` (0-based; located as ``row N``, 1-based)."""
        if self._it is None or start < self._base:
            self._restart()
        i = start
        while i < end:
            while i >= self._base + len(self._rows):
                batch = next(self._it, None)  # type: ignore[arg-type]
                if batch is None:
                    return
                self._base += len(self._rows)
                self._rows = batch.to_pylist()
            j = min(end, self._base + len(self._rows))
            for r in range(i, j):
                yield f"row {r + 1}", self._rows[r - self._base]
            i = j
