"""One writer per knowledge base: an advisory lock file, ``kb/.ingest.lock``, held for a whole ingest.

Two ingests at once would race on the warehouse's staging copy (``tools.warehouse``), on the
document manifest and on LanceDB commits. So an ingest takes ``fcntl.flock`` on the lock file
first; a second one says who holds it and waits up to ``ingest_lock_wait_s``, then fails with a
clear message. Readers (search, SQL, the catalog, reports) never touch it. The kernel drops the
lock when its holder exits, SIGKILL included, so a dead ingest never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

LOCK_FILE = ".ingest.lock"
POLL_S = 0.2  # how often a waiting ingest tries the lock again


class IngestBusy(RuntimeError):
    """Another ingest kept the knowledge base past the wait allowed."""


class WarehouseHeld(RuntimeError):
    """Another program (not a Dossier ingest, which writes a copy) holds the warehouse file read-write."""


def held_elsewhere(path: Path | str, exc: BaseException) -> WarehouseHeld | None:
    """DuckDB's raw "Could not set lock on file … (PID n)" as a sentence; None for any other error."""
    text = str(exc)
    if "Could not set lock" not in text:
        return None
    pid = re.search(r"PID (\d+)", text)
    who = f"process {pid[1]}" if pid else "another process"
    return WarehouseHeld(f"the warehouse {path} is open for writing in {who}, outside Dossier (an ingest "
                         "writes a copy and never holds it); close that program and try again")


@asynccontextmanager
async def ingest_lock(
    kb_dir: Path, *, wait_s: float, on_wait: Callable[[str], None] | None = None
) -> AsyncIterator[None]:
    """Hold the knowledge base's writer lock for the body; ``on_wait`` gets the one-line notice
    shown while waiting (default: stderr). Polled from the event loop, not a thread, so Ctrl-C
    ends a wait at once."""
    kb_dir = Path(kb_dir)
    handle = open(kb_dir / LOCK_FILE, "a+", encoding="utf-8")
    try:
        await _acquire(handle, kb_dir, wait_s, on_wait or _say)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # read by a waiting ingest, to name the holder
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock


async def _acquire(handle: TextIO, kb_dir: Path, wait_s: float, on_wait: Callable[[str], None]) -> None:
    end = time.monotonic() + wait_s
    told = False
    while not _try_lock(handle):
        holder = _holder(kb_dir)
        if time.monotonic() >= end:
            raise IngestBusy(
                f"another ingest ({holder}) is still writing the knowledge base {kb_dir} after {wait_s:g} s; "
                "run this one again when it has finished (DOSSIER_INGEST_LOCK_WAIT_S sets how long to wait)")
        if not told:
            on_wait(f"another ingest ({holder}) is writing the knowledge base {kb_dir}; "
                    f"waiting up to {wait_s:g} s for it to finish…")
            told = True
        await asyncio.sleep(min(POLL_S, max(end - time.monotonic(), 0)))


def _try_lock(handle: TextIO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(kb_dir: Path) -> str:
    """``PID n`` from the lock file (empty for the instant between the holder's lock and its write)."""
    try:
        pid = (kb_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "PID unknown"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
