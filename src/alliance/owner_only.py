"""Files and folders only their owner can read: caches, audit logs and secrets created 0600 in 0700 folders.

Evidence: transcripts are health data; a cache or log that other local users can read discloses them (issue #13).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create files 0600 and folders 0700 inside the block (process umask 077, restored after): for writers that
    create many files (a run folder, report pages) rather than one known path."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def private_dir(path: str | Path) -> Path:
    """``path`` as a folder (created with its parents): new folders 0700, and the folder itself tightened to 0700
    when it is ours and more open (a folder shared on purpose, owned by someone else, is left as it is)."""
    p = Path(path).expanduser()
    missing = []
    q = p
    while not q.exists():
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        d.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask
    _tighten(p, DIR_MODE)
    return p


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty and 0600 if it is missing (its folder 0700); tighten it to 0600 if it is ours."""
    p = Path(path).expanduser()
    private_dir(p.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(p, FILE_MODE)
    return p


def _tighten(p: Path, mode: int) -> None:
    try:
        st = p.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & ~mode:
            os.chmod(p, stat.S_IMODE(st.st_mode) & mode)
    except (OSError, AttributeError):  # not ours, or no POSIX owners (Windows): nothing safe to do
        pass


def installation_secret(path: str | Path, nbytes: int = 32) -> bytes:
    """A random secret kept in ``path`` (0600), created once; concurrent first calls agree on one secret."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
        if len(data) >= 16:
            _tighten(p, FILE_MODE)
            return data
    except FileNotFoundError:
        pass
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(nbytes))
    try:
        os.link(tmp, p)  # atomic and never overwrites: the first writer wins, the others read its secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return p.read_bytes()
