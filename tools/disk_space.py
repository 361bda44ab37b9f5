"""A full disk, said plainly: which knowledge base, what is kept, what to do.

LanceDB reports a full disk as ``LanceError(IO): … No space left on device (os error 28)``, DuckDB
as an ``IOException`` and Python as ``OSError(ENOSPC)``; each arrives wrapped differently. The
ingest turns any of them (found anywhere in the exception's cause chain) into one ``DiskFull``.
"""

from __future__ import annotations

import errno
from pathlib import Path

_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_SPACE_TEXTS = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122",
                   "not enough space on the disk")


class DiskFull(RuntimeError):
    """The disk holding the knowledge base ran out of space while it was being written."""

    def __init__(self, kb_dir: Path):
        self.kb_dir = Path(kb_dir)
        super().__init__(
            f"the disk holding the knowledge base {self.kb_dir} is full (no space left on device); the "
            "ingest stopped and what it had committed is kept. Free space on that disk (delete files, or "
            "remove documents from the ingested folders and run `dossier ingest FOLDER --prune`, which "
            "deletes before it writes) or use a --kb folder on a larger disk, then run the ingest again.")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` or anything in its cause chain says the disk (or the quota) is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(exc).lower() for text in _NO_SPACE_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
