"""One link policy for every file an ingest reads: documents, tables and sidecars alike.

A file is read only when its real path (after resolving every symlink) lies inside the real path of
the folder being ingested. Links that stay inside are fine; a link leaving it (``../outside``,
``/etc/hostname``) is refused with ``LEAVES_ROOT``. Discovery checks this once; every read checks
it again on the *opened* descriptor (its ``/proc/self/fd`` link), so swapping a file for a link
between discovery and reading (TOCTOU) does not get the outside file read either.

Readers that take a path (DuckDB, sqlite3, openpyxl) get ``literal_path(fd)``: ``/proc/self/fd/N``
names exactly the opened file and holds no glob characters (``* ? [ ]``) a reader could expand.
Where ``/proc`` is missing, the caller copies the opened file to a temporary name instead.
"""

from __future__ import annotations

import os
import stat as stat_mode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

LEAVES_ROOT = "symlink leaves the ingested folder"
_PROC_FD = Path("/proc/self/fd")


class ConfinedReadError(OSError):
    """A file the link policy (or a change since discovery) forbids reading; str() is the reason."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "file refused"


def real_root(root: Path) -> str:
    """The folder every read must stay inside: a named folder, or the folder a named file is in."""
    real = os.path.realpath(root)
    return real if os.path.isdir(real) else os.path.dirname(real)


def is_inside(real_path: str, root: str) -> bool:
    return real_path == root or real_path.startswith(root.rstrip(os.sep) + os.sep)


def leaves_root(path: Path, root: str) -> bool:
    """Discovery's check: does ``path`` resolve outside ``root`` (itself a real path)?"""
    return not is_inside(os.path.realpath(path), root)


@contextmanager
def open_confined(path: Path, root: str | None) -> Iterator[BinaryIO]:
    """Open ``path`` read-only; refuse it unless it is a regular file whose real path is inside
    ``root`` (``None``: no folder to stay in, e.g. a file handed to the warehouse directly).
    O_NONBLOCK: a path that became a FIFO after discovery opens at once instead of blocking."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    handle = os.fdopen(fd, "rb")
    try:
        if not stat_mode.S_ISREG(os.fstat(fd).st_mode):
            raise ConfinedReadError("not a regular file (it changed during ingestion)")
        if root is not None and not is_inside(_opened_real_path(fd, path), root):
            raise ConfinedReadError(LEAVES_ROOT)
        yield handle
    finally:
        handle.close()


def literal_path(handle: BinaryIO) -> str | None:
    """A path naming exactly the opened file, safe to hand to a reader that globs; None off Linux."""
    candidate = _PROC_FD / str(handle.fileno())
    return str(candidate) if candidate.exists() else None


def _opened_real_path(fd: int, path: Path) -> str:
    """Where the descriptor really points (Linux: the kernel's own answer, immune to a swap after
    the open); elsewhere the resolved path, checked right after the open."""
    try:
        real = os.readlink(_PROC_FD / str(fd))
    except OSError:
        return os.path.realpath(path)
    return real.removesuffix(" (deleted)")
