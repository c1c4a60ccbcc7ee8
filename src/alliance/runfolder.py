"""The run folder: one consistent, owner-only set of outputs per `alliance analyze`, locked while it is written.

A run is complete only when its run.json says so. Commit removes run.json first and writes it last, so a folder
caught mid-write (kill -9, disk full) is recognisably incomplete, and every reader (:func:`open_run`) refuses it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance.owner_only import owner_only

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: Outputs that belong to one run; at commit any of these the new run does not produce is removed.
TABLES = ("turns.parquet", "sessions.parquet", "courses.parquet")
REPORT_OUTPUTS = ("report.html", "report_files")
STATUS_COMPLETE = "complete"
#: errno values that mean the disk (or the user's quota) is full.
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class RunFolderError(Exception):
    """A run folder that cannot be used as asked; the message names the folder, the problem and what to do."""


class RunFolderLocked(RunFolderError):
    """Another live process is writing the run folder."""


class IncompleteRun(RunFolderError):
    """The folder holds no complete run (interrupted, still being written, or mixed from two runs)."""


class ReportFailed(RunFolderError):
    """The tables and run.json were committed, but the HTML report could not be written."""


# permissions: transcripts and their scores are health data ----------------------------------------------------
def make_folder(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only; a folder that already exists keeps its mode (it is the user's)."""
    if not path.exists():
        with owner_only():
            path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


# the lock ----------------------------------------------------------------------------------------------------
_HELD: set[str] = set()


@contextmanager
def locked(folder: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` for the block; fail at once, naming the holder, when another process
    has it. The lock is an OS file lock (``flock``): it dies with its process, so a lock file left by a killed run
    is taken over without any guessing about whether its pid is still alive."""
    import fcntl

    make_folder(folder)
    path = folder / LOCK_FILE
    key = str(path.resolve())
    if key in _HELD:  # this process holds it already (the CLI locks before reading, then runs the pipeline)
        yield folder
        return
    with owner_only():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise RunFolderError(f"{folder}: this file system cannot lock files ({e.strerror}), so two runs "
                                     "could overwrite each other here; write --out to a local disk") from None
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunFolderLocked(f"{folder}: in use by {_holder(path)}; wait for that run to finish, or choose "
                                  "another --out") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        _HELD.add(key)
        try:
            yield folder
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # closing releases the flock; the file stays (deleting it would race with a waiting opener)


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"process {h['pid']} on {h['host']}, started {h['started']} UTC"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its details are not readable yet)"


# commit ------------------------------------------------------------------------------------------------------
def mark_incomplete(folder: Path) -> None:
    """Remove run.json, so from here until :func:`commit` finishes the folder reads as incomplete."""
    (folder / RUN_FILE).unlink(missing_ok=True)


def commit(folder: Path, staged: Mapping[str, Path], run: dict[str, Any]) -> dict[str, Any]:
    """Move the staged tables into ``folder`` and write run.json, marked complete, last.

    Removes first what belongs to an earlier run and is not replaced: its run.json (so a crash from here on
    leaves an incomplete folder, never a mixed one), tables this run does not produce, and the earlier report
    (its pages may name sessions of another corpus). Returns the run record as written.
    """
    import pyarrow.parquet as pq

    mark_incomplete(folder)
    remove_report(folder)
    for name in TABLES:
        if name not in staged:
            (folder / name).unlink(missing_ok=True)
    outputs = {}
    for name, src in staged.items():
        outputs[name] = {"rows": pq.ParquetFile(src).metadata.num_rows}
        src.chmod(0o600)
        src.replace(folder / name)
    record = {**run, "status": STATUS_COMPLETE, "outputs": outputs}
    write_text_atomic(folder / RUN_FILE, json.dumps(record, indent=2, default=str))
    return record


def remove_report(folder: Path) -> None:
    """Delete the report of an earlier run (overview and every session/course page)."""
    for name in REPORT_OUTPUTS:
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    with owner_only():
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def disk_full_message(err: OSError, folder: Path, what: str) -> str | None:
    """The user's message for a full disk (None for other errors)."""
    if err.errno not in DISK_FULL:
        return None
    where = f" ({err.filename})" if err.filename else ""
    return (f"{folder}: no space left on the device while {what}{where}. Free some space and rerun the same "
            "command: finished chunks are kept and will not be scored again.")


# reading -----------------------------------------------------------------------------------------------------
def run_record(folder: str | Path) -> dict[str, Any]:
    """run.json of a complete run in ``folder``; raises :class:`RunFolderError` naming what is wrong otherwise.

    Checks that the folder exists, that run.json is there, readable and marked complete, and that each table it
    lists is present with the recorded number of rows (a table swapped in from another run fails this)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    if not (folder / "turns.parquet").exists() and not (folder / RUN_FILE).exists():
        raise RunFolderError(f"{folder / 'turns.parquet'}: missing; run `alliance analyze ... --out {folder}` first")
    again = f"rerun `alliance analyze ... --out {folder}` with the same inputs to finish it"
    path = folder / RUN_FILE
    if not path.exists():
        raise IncompleteRun(f"{folder}: incomplete run (no run.json: it was interrupted or is still being "
                            f"written); {again}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise IncompleteRun(f"{path}: not readable as JSON ({e}); {again}") from None
    if not isinstance(record, dict) or record.get("status") != STATUS_COMPLETE:
        raise IncompleteRun(f"{path}: does not mark a complete run (written by an older version, or the run did "
                            f"not finish); {again}")
    for name, info in (record.get("outputs") or {}).items():
        p = folder / name
        if not p.exists():
            raise IncompleteRun(f"{p}: missing, though {RUN_FILE} lists it; {again}")
        rows = pq.ParquetFile(p).metadata.num_rows
        if rows != info.get("rows"):
            raise IncompleteRun(f"{p}: holds {rows} rows but {RUN_FILE} records {info.get('rows')}: the folder "
                                f"mixes two runs; {again}")
    return record


def open_run(folder: str | Path) -> tuple[Any, Any, dict[str, Any], Any]:
    """``(turns, sessions, run, courses)`` of a complete run (``courses`` None when the run had none).

    The one reader of a run folder for every command (report, gap, train calibration); refuses an incomplete or
    mixed folder with :class:`RunFolderError`."""
    import pandas as pd

    folder = Path(folder)
    record = run_record(folder)
    courses = pd.read_parquet(folder / "courses.parquet") if (folder / "courses.parquet").exists() else None
    return pd.read_parquet(folder / "turns.parquet"), pd.read_parquet(folder / "sessions.parquet"), record, courses
