"""The connection to ``kb/runs.sqlite`` (every run's checkpoints), a damaged file said plainly, and the
run index ``dossier runs`` reads without loading LangGraph.

A truncated or overwritten runs.sqlite stopped every new report with sqlite's bare "file is not a
database" or "database disk image is malformed", naming no file. Here the file is probed when it
is opened, and damage found then or later (a bad page is only met when read) becomes ``RunStoreDamaged``
naming the file and the way out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import astuple, dataclass
from pathlib import Path

import aiosqlite

_DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_DAMAGE_TEXTS = ("file is not a database", "database disk image is malformed")


class RunStoreDamaged(RuntimeError):
    """runs.sqlite cannot be read as a database."""


@dataclass
class RunInfo:
    run_id: str
    question: str
    status: str  # "done", "awaiting approval", "interrupted"
    next_step: str
    updated_at: str


# One row per run, written beside its checkpoints after each step (with the checkpoint it describes),
# so `dossier runs` lists runs with sqlite3 alone instead of LangGraph reading every run's state.
_INDEX_DDL = ("CREATE TABLE IF NOT EXISTS dossier_runs (run_id TEXT PRIMARY KEY, question TEXT NOT NULL, "
              "status TEXT NOT NULL, next_step TEXT NOT NULL, updated_at TEXT NOT NULL, checkpoint_id TEXT)")


async def index_run(conn: aiosqlite.Connection, info: RunInfo, checkpoint_id: str | None) -> None:
    """Best effort: a row that cannot be written (a read-only folder, a lock held too long) only leaves the
    index behind its checkpoints, which read_run_index detects; it never fails the run or the listing."""
    try:
        await conn.execute(_INDEX_DDL)
        await conn.execute("INSERT OR REPLACE INTO dossier_runs VALUES (?, ?, ?, ?, ?, ?)",
                           (*astuple(info), checkpoint_id))
        await conn.commit()
    except sqlite3.OperationalError:
        await conn.rollback()


def read_run_index(path: Path) -> list[RunInfo] | None:
    """This knowledge base's runs, newest first, from the index; None when it cannot vouch for them all
    (runs from before the index, a step the index missed because the process was killed right after its
    checkpoint, a damaged file): then the caller asks LangGraph, which also rewrites the index."""
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "checkpoints" not in tables:
                return []
            if "dossier_runs" not in tables:
                return None
            latest = dict(conn.execute("SELECT thread_id, max(checkpoint_id) FROM checkpoints WHERE checkpoint_ns = ''"
                                        " GROUP BY thread_id"))
            rows = conn.execute("SELECT run_id, question, status, next_step, updated_at, checkpoint_id "
                                "FROM dossier_runs ORDER BY checkpoint_id DESC").fetchall()
    except sqlite3.Error:
        return None
    if {row[0]: row[5] for row in rows} != latest:
        return None
    return [RunInfo(*row[:5]) for row in rows]


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
