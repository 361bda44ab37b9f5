"""Guarded SQL: the executor that runs a checked query (``tools.sqlcheck``) on a locked-down,
read-only DuckDB connection: no external access, extensions neither installed nor auto-loaded,
configuration locked, with row, time and memory limits. It is the second line of defence.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tools.models import SqlResult
# The check's names are re-exported: callers import the guard as one module.
from tools.sqlcheck import (INTERNAL_PREFIX, MAX_SQL_CHARS, SqlFailed, SqlRefused, SqlTimeout,  # noqa: F401
                            _first_line, check_sql, is_reserved_table_name)


class GuardedExecutor:
    """Runs checked queries on one read-only connection with row, time and memory limits.

    Calls are serialised by a lock, so it is safe to call from worker threads one at a time.
    """

    def __init__(self, db_path: Path, *, allowed_tables: set[str], row_limit: int, timeout_s: float,
                 memory_limit: str, threads: int):
        self.db_path = Path(db_path)
        self.allowed_tables = set(allowed_tables)
        self.row_limit = row_limit
        self.timeout_s = timeout_s
        self.memory_limit = memory_limit
        self.threads = threads
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def execute(self, sql: str) -> SqlResult:
        tables = check_sql(sql, allowed_tables=self.allowed_tables)
        with self._lock:
            con = self._connect()
            started = time.perf_counter()
            columns, rows = self._run(con, sql)
            elapsed = (time.perf_counter() - started) * 1000
        truncated = len(rows) > self.row_limit
        rows = [[_jsonable(v) for v in row] for row in rows[: self.row_limit]]
        return SqlResult(sql=sql, columns=columns, rows=rows, row_count=len(rows), truncated=truncated,
                         tables=tables, elapsed_ms=round(elapsed, 3))

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            config = {"enable_external_access": False, "autoinstall_known_extensions": False,
                      "autoload_known_extensions": False, "allow_community_extensions": False,
                      "memory_limit": self.memory_limit, "threads": self.threads}
            # No warehouse yet (nothing imported): an empty in-memory database answers the same way.
            target = str(self.db_path) if self.db_path.exists() else ":memory:"
            con = duckdb.connect(target, read_only=target != ":memory:", config=config)
            try:
                _lock_configuration(con)
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
        watchdog = _Watchdog(con, self.timeout_s)
        try:
            con.execute(sql)
            description = con.description or []
            if any(_ZONED in str(d[1]) for d in description):
                con.abort()
                con.execute(_zoned_as_text(sql, description))
            # One row past the cap tells us whether the result was truncated.
            return [d[0] for d in description], con.fetchmany(self.row_limit + 1)
        except duckdb.Error as exc:
            if watchdog.fired or isinstance(exc, duckdb.InterruptException):
                raise SqlTimeout(f"query interrupted after {self.timeout_s:.1f} s; "
                                 "add filters or aggregate") from None
            raise SqlFailed(_failure_text(exc)) from None
        finally:
            watchdog.stop()
            with suppress(duckdb.Error):
                # A half-fetched execute() result blocks other work on the connection. Interrupt
                # first: abort() alone waited up to 17 s for the workers of a streaming endless
                # recursive CTE; an interrupt with no query running is a no-op.
                con.interrupt()
                con.abort()


_ZONED = "TIMESTAMP WITH TIME ZONE"


def _zoned_as_text(sql: str, description: list[tuple]) -> str:
    """The query again with TIMESTAMPTZ columns as text: duckdb turns them into Python values
    through pytz, which is not installed. Positional refs survive duplicate column names."""
    columns = ", ".join(
        (f"CAST(#{i} AS VARCHAR)" if _ZONED in str(d[1]) else f"#{i}") + " AS " + _quote(d[0])
        for i, d in enumerate(description, start=1)
    )
    code = [pos for pos, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]
    end = len(sql)
    while code and sql[code[-1]] == ";":  # a subquery may not end in ';'
        end = code.pop()
    return f"SELECT {columns} FROM (\n{sql[:end]}\n) AS _dossier_result"


def _lock_configuration(con: duckdb.DuckDBPyConnection) -> None:
    # Connections to one file in one process share a DuckDB instance: a second executor finds
    # the configuration already locked, and then even SET lock_configuration is refused.
    if not con.execute("SELECT current_setting('lock_configuration')").fetchone()[0]:
        con.execute("SET GLOBAL TimeZone = 'UTC'")  # results independent of the host's zone
        con.execute("SET lock_configuration = true")  # one-way: queries cannot SET/RESET limits


class _Watchdog:
    """Interrupts the connection after ``timeout_s`` unless stopped first; the lock keeps a late
    timer from interrupting a later query."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timeout_s: float):
        self._con = con
        self._lock = threading.Lock()
        self._active = True
        self.fired = False
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._active:
                self.fired = True
                self._con.interrupt()

    def stop(self) -> None:
        with self._lock:
            self._active = False
        self._timer.cancel()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _failure_text(exc: duckdb.Error) -> str:
    text = str(exc).strip()
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"query ran out of memory; add filters or aggregate first ({_first_line(exc)})"
    return text if len(text) <= 800 else text[:800] + " …"


def _jsonable(value: Any) -> Any:
    """DuckDB's Python values as JSON-friendly ones: dates as ISO text, Decimal as float, …"""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)  # timedelta, UUID, …
