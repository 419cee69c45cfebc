"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

The recipe: write a temporary file in the target's own directory (so the rename stays on one
file system), fsync it, ``os.replace`` it over the target, then fsync the directory so the
rename itself survives a crash. Every artifact, run record, index, report and plot is written
this way, so an interrupted or failing run leaves the previous files as they were.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Mode of every written file. ``mkstemp`` creates 0600, which would make an artifact trained
#: as one user (root in a container build) unreadable by the server running as another; none
#: of these files is secret (the signing key is), so they are world-readable like ``open()``'s.
FILE_MODE = 0o644


@contextlib.contextmanager
def temp_file(directory: Path, name: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A new temporary file beside ``name`` in ``directory``, open for writing in binary.

    Flushed, fsynced and closed when the block ends; removed if the block raises, with the
    ``OSError`` of a failed write naming the file that was being written. The caller renames
    the file into place (or unlinks it).
    """
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f, Path(tmp)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(Path(directory) / name)  # a failed write on an fd names no file
        raise


def write_temp(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``name`` in ``directory``, fsynced."""
    with temp_file(directory, name) as (f, tmp):
        f.write(data)
    return tmp


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` durable (where the file system allows it)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory; the renames stand
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Write ``path`` as a stream: the block writes a temporary file, renamed over ``path``
    when the block ends. If the block raises, ``path`` is untouched (or still absent) and the
    temporary file is gone. Creates the directory if needed.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with temp_file(p.parent, p.name) as (f, tmp):
        yield f
    try:
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically, creating its directory if needed."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
