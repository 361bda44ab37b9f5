"""The connection to ``kb/runs.sqlite`` (every run's checkpoints), and a damaged file said plainly.

A truncated or overwritten runs.sqlite stopped every new report with sqlite's bare "file is not a
database" or "database disk image is malformed", naming no file. Here the file is probed when it
is opened, and damage found then or later (a bad page is only met when read) becomes ``RunStoreDamaged``
naming the file and the way out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

_DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_DAMAGE_TEXTS = ("file is not a database", "database disk image is malformed")


class RunStoreDamaged(RuntimeError):
    """runs.sqlite cannot be read as a database."""


@asynccontextmanager
async def runs_connection(path: Path, *, timeout: float) -> AsyncIterator[aiosqlite.Connection]:
    conn = await aiosqlite.connect(str(path), timeout=timeout)
    try:
        try:
            await (await conn.execute("SELECT count(*) FROM sqlite_master")).close()  # reads the header
            yield conn
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise RunStoreDamaged(damage_message(Path(path), exc)) from exc
            raise
    finally:
        # Shielded: a run cancelled mid-checkpoint must still close (and so roll back), or its open
        # transaction keeps runs.sqlite's write lock and the next run or resume waits on it.
        await asyncio.shield(conn.close())


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Corruption, not contention: "database is locked" is an OperationalError that waiting cures."""
    name = getattr(exc, "sqlite_errorname", None)
    return name in _DAMAGE_CODES or any(text in str(exc).lower() for text in _DAMAGE_TEXTS)


def damage_message(path: Path, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"the run store {path} is damaged ({first}); it holds the checkpoints of past runs, for "
            f"`dossier runs` and `dossier resume`. Move it aside (mv {path} {path}.damaged) and run "
            "again: a new, empty run history starts; reports already written are not affected.")
