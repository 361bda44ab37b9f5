"""PostgreSQL as the run store (``DOSSIER_RUNS_URL``): LangGraph's ``AsyncPostgresSaver`` over a shared pool.

All runs of a process share one connection pool per URL, opened by the first run and closed by the
last, so 50 concurrent runs hold at most ``runs_pool_size`` connections, not 50. LangGraph's tables
are created once per process under an advisory lock: processes starting together would otherwise
race on ``CREATE TABLE`` and on the migrations table. The URL's password is never shown: messages
use ``safe_url``, and the password is registered with ``tools.redact`` for every other exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tools.redact import register_secret

KB_KEY = "dossier_kb"  # checkpoint metadata: the id of the knowledge base a run belongs to
KB_PATH_KEY = "dossier_kb_path"  # and where that knowledge base was, to name it when refusing a resume
CONNECT_TIMEOUT_S = 10  # unless the URL sets connect_timeout: an unreachable host fails now, not in minutes
SETUP_WAIT_S = 120.0  # how long a process waits for another one creating the tables
_SETUP_LOCK_KEY = 0x646F7373  # pg_advisory_lock key ("doss") held while the tables are created
# What AsyncPostgresSaver expects of its connections (see its from_conn_string).
_CONN_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
# `dossier runs` lists one knowledge base's runs among all of them: an index on the owner keeps that
# a lookup, not a scan of every checkpoint ever written.
_KB_INDEX_SQL = (f"CREATE INDEX CONCURRENTLY IF NOT EXISTS dossier_checkpoints_kb_idx "
                 f"ON checkpoints ((metadata ->> '{KB_KEY}'))")
_LIST_SQL = (f"SELECT thread_id, max(checkpoint_id) AS last FROM checkpoints "
             f"WHERE checkpoint_ns = '' AND metadata ->> '{KB_KEY}' = %s GROUP BY thread_id ORDER BY last DESC")
_HAS_RUN_SQL = "SELECT 1 FROM checkpoints WHERE thread_id = %s LIMIT 1"


class RunStoreUnavailable(RuntimeError):
    """The PostgreSQL run store cannot be reached or used."""


def safe_url(url: str) -> str:
    """The URL as it may be shown: its password, in the user part or in the query, masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def register_password(url: str) -> None:
    """Mask the password wherever a message might carry it (errors, failures, log records)."""
    parts = urlsplit(url)
    for password in (parts.password, *(v for k, v in parse_qsl(parts.query) if k == "password")):
        if password:
            register_secret(password)
            register_secret(unquote(password))


@asynccontextmanager
async def postgres_saver(url: str, *, pool_size: int, serde: SerializerProtocol) -> AsyncIterator[AsyncPostgresSaver]:
    async with _shared_pool(url, pool_size) as pool:
        yield AsyncPostgresSaver(pool, serde=serde)


async def kb_run_ids(saver: AsyncPostgresSaver, kb_id: str) -> list[str]:
    """This knowledge base's runs, newest first."""
    async with _connection(saver) as conn:
        cursor = await conn.execute(_LIST_SQL, (kb_id,))
        return [row["thread_id"] for row in await cursor.fetchall()]


def has_run(url: str, run_id: str) -> bool:
    """Whether a run has a checkpoint; blocking and quick, for the CLI's parting hint."""
    try:
        with psycopg.connect(url, **_timeout(url, 2)) as conn:
            return conn.execute(_HAS_RUN_SQL, (run_id,)).fetchone() is not None
    except (psycopg.Error, RunStoreUnavailable):
        return False


@asynccontextmanager
async def _connection(saver: AsyncPostgresSaver) -> AsyncIterator[AsyncConnection[DictRow]]:
    pool = saver.conn
    assert isinstance(pool, AsyncConnectionPool)  # postgres_saver always gives it the shared pool
    async with pool.connection() as conn:
        yield conn


async def _connect(url: str) -> AsyncConnection[DictRow]:
    return await AsyncConnection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                                         **_timeout(url))


# -- one pool per URL and event loop, shared by every run that is open ---------------------------

@dataclass
class _Shared:
    pool: Pool
    ready: asyncio.Future[None]
    users: int = 0


_pools: dict[tuple[asyncio.AbstractEventLoop, str], _Shared] = {}
_tables_ready: set[str] = set()


@asynccontextmanager
async def _shared_pool(url: str, size: int) -> AsyncIterator[Pool]:
    key = (asyncio.get_running_loop(), url)
    shared = _pools.get(key)
    if shared is None:  # no await between the lookup and the insert: one pool per key
        pool: Pool = AsyncConnectionPool(
            url, connection_class=AsyncConnection[DictRow], kwargs={**_CONN_KWARGS, **_timeout(url)}, min_size=1,
            max_size=size, open=False, check=AsyncConnectionPool.check_connection, name="dossier-runs")
        shared = _pools[key] = _Shared(pool, asyncio.ensure_future(_open(url, pool)))
    shared.users += 1
    try:
        await asyncio.shield(shared.ready)
        yield shared.pool
    finally:
        shared.users -= 1
        if shared.users == 0:
            if _pools.get(key) is shared:
                del _pools[key]
            await asyncio.shield(_close(shared))  # a cancelled run still returns its connections


async def _open(url: str, pool: Pool) -> None:
    await ensure_tables(url)  # also the first connection: a bad URL or password is said plainly here
    try:
        await pool.open(wait=True, timeout=float(_timeout(url)["connect_timeout"]) + 5)
    except PoolTimeout as exc:
        raise RunStoreUnavailable(f"the run store {safe_url(url)} gave no connection in time ({exc})") from exc


async def _close(shared: _Shared) -> None:
    with contextlib.suppress(BaseException):
        await shared.ready  # its error, if any, was raised to every user already
    await shared.pool.close()


async def ensure_tables(url: str) -> None:
    """LangGraph's checkpoint tables (its ``setup()``) and the owner index, once per process."""
    if url in _tables_ready:
        return
    try:
        async with await _connect(url) as conn:
            await _take_setup_lock(conn, url)
            try:
                await AsyncPostgresSaver(conn).setup()
                await conn.execute(_KB_INDEX_SQL)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
    except psycopg.Error as exc:
        raise RunStoreUnavailable(f"cannot use the run store {safe_url(url)}: {_first_line(exc)}") from exc
    _tables_ready.add(url)


async def _take_setup_lock(conn: AsyncConnection[DictRow], url: str) -> None:
    """Polled, not waited for: a session blocked in pg_advisory_lock is a transaction in progress, which
    CREATE INDEX CONCURRENTLY (in LangGraph's migrations) waits out while holding the lock: a deadlock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETUP_WAIT_S
    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (_SETUP_LOCK_KEY,))
        row = await cursor.fetchone()
        if row is not None and row["got"]:
            return
        if loop.time() > deadline:
            raise RunStoreUnavailable(f"another process has been creating the tables in {safe_url(url)} for "
                                      f"{SETUP_WAIT_S:.0f} s; is one stuck?")
        await asyncio.sleep(0.05)


def _timeout(url: str, default: int = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    try:
        given = conninfo_to_dict(url).get("connect_timeout")
    except psycopg.ProgrammingError as exc:  # a malformed URL: its text may hold the password
        raise RunStoreUnavailable(f"the run store URL {safe_url(url)} is not valid: {_first_line(exc)}") from None
    return {"connect_timeout": int(given) if given else default}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
