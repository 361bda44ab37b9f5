"""The SQL worker: the child process in which guarded queries run, so the limits hold for any statement.

DuckDB folds constant expressions while it plans a query, outside its ``memory_limit`` and deaf to
``interrupt()``: nested ``replace()`` grew past 8 GB in 39 s under a 1 GB, 10 s limit. So the
guarded connection lives in this process, which ``tools.sqlguard`` starts and may kill at any
moment: at its hard deadline, or once the process holds more memory than allowed. Inside, DuckDB's
own limits still apply first (``memory_limit``, ``threads``, an interrupt at the time limit), the
address space is capped (``RLIMIT_AS``) so one huge allocation fails here instead of growing, and a
CPU-time cap ends a query the parent could no longer kill.

Protocol, on stdin (requests) and the original stdout (replies): frames of a 4-byte big-endian length
and UTF-8 JSON. The first request carries the connection settings and is answered ``{"ok": true}``
or ``{"ok": false, "kind": "failed", "message": …}``; then each ``{"sql", "row_limit", "timeout_s"}``
is answered ``{"ok": true, "columns", "rows", "truncated", "elapsed_ms"}`` (rows already JSON
values, as ``SqlResult`` holds them) or ``{"ok": false, "kind": "timeout"|"failed", "message"}``.
The worker exits when its stdin closes or its parent process goes away.

``spawn()`` starts one (``tools.sqlguard`` drives it). A caller that knows it will run SQL
(``dossier sql``) may call ``start_early()`` first: the worker's interpreter and DuckDB then load
while the caller loads its own modules, and the next ``spawn()`` takes that process.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # subprocess is for the parent's side; the worker itself never imports it
    from subprocess import Popen

# The engine alone, not the duckdb package's Python layer (tools.duckdb_core): this process starts
# for every `dossier sql`, and its imports are most of its start.
from tools.duckdb_core import DuckDBConfig, duckdb, one_row

HEADER = struct.Struct(">I")
# A reply bigger than this is refused in the worker: the parent must not grow with a result.
MAX_REPLY_BYTES = 32 * 2**20
_ZONED = "TIMESTAMP WITH TIME ZONE"
_CPU_SLACK_S = 30  # CPU seconds past the time limit × threads before the kernel ends an orphan
_ROOT = str(Path(__file__).resolve().parent.parent)  # where the ``tools`` package lives
_early: list[Popen] = []  # at most one worker started ahead of its spawn() (start_early)
_early_lock = threading.Lock()


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, allow_nan=False).encode()
    return HEADER.pack(len(body)) + body


def connect(db_path: str, *, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A read-only, locked-down connection: no external access, no extensions, configuration locked."""
    config: DuckDBConfig = {"enable_external_access": False, "autoinstall_known_extensions": False,
              "autoload_known_extensions": False, "allow_community_extensions": False,
              "memory_limit": memory_limit, "threads": threads}
    # No warehouse yet (nothing imported): an empty in-memory database answers the same way.
    target = db_path if os.path.exists(db_path) else ":memory:"
    con = duckdb.connect(target, read_only=target != ":memory:", config=config)
    try:
        if not one_row(con.execute("SELECT current_setting('lock_configuration')"))[0]:
            con.execute("SET GLOBAL TimeZone = 'UTC'")  # results independent of the host's zone
            con.execute("SET lock_configuration = true")  # one-way: queries cannot SET/RESET limits
    except BaseException:
        con.close()
        raise
    return con


def run_query(con: duckdb.DuckDBPyConnection, sql: str, *, row_limit: int, timeout_s: float) -> dict[str, Any]:
    """Run one (already checked) query; the reply frame's content."""
    watchdog = _Watchdog(con, timeout_s)
    started = time.perf_counter()
    try:
        con.execute(sql)
        description = con.description or []
        if any(_ZONED in str(d[1]) for d in description):
            con.abort()
            con.execute(_zoned_as_text(sql, description))
        # One row past the cap tells us whether the result was truncated.
        rows = con.fetchmany(row_limit + 1)
        elapsed = (time.perf_counter() - started) * 1000
    except duckdb.Error as exc:
        if watchdog.fired or isinstance(exc, duckdb.InterruptException):
            return {"ok": False, "kind": "timeout", "message": "interrupted"}
        return {"ok": False, "kind": "failed", "message": _failure_text(exc)}
    finally:
        watchdog.stop()
        with suppress(duckdb.Error):
            # A half-fetched execute() result blocks other work on the connection. Interrupt
            # first: abort() alone waited up to 17 s for the workers of a streaming endless
            # recursive CTE; an interrupt with no query running is a no-op.
            con.interrupt()
            con.abort()
    return {"ok": True, "columns": [d[0] for d in description], "truncated": len(rows) > row_limit,
            "rows": [[_jsonable(v) for v in row] for row in rows[:row_limit]], "elapsed_ms": round(elapsed, 3)}


def _zoned_as_text(sql: str, description: list[tuple]) -> str:
    """The query again with TIMESTAMPTZ columns as text: duckdb turns them into Python values
    through pytz, which is not installed. Positional refs survive duplicate column names."""
    columns = ", ".join(
        (f"CAST(#{i} AS VARCHAR)" if _ZONED in str(d[1]) else f"#{i}") + " AS " + _quote(d[0])
        for i, d in enumerate(description, start=1)
    )
    raw = sql.encode()  # the tokenizer's positions are byte offsets
    code = [pos for pos, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]
    end = len(raw)
    while code and raw[code[-1]:code[-1] + 1] == b";":  # a subquery may not end in ';'
        end = code.pop()
    return f"SELECT {columns} FROM (\n{raw[:end].decode()}\n) AS _dossier_result"


class _Watchdog:
    """Interrupts the connection after ``timeout_s`` unless stopped first; the lock keeps a late
    timer from interrupting a later query. The parent's kill is the backstop for what ignores it."""

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
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"query ran out of memory; add filters or aggregate first ({first})"
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


# -- starting a worker (the parent's side) ----------------------------------------------------------


def spawn() -> Popen:
    """A worker process waiting for its setup frame: the one ``start_early`` started, if it still
    runs, else a new one. Either way a fresh process that has answered nothing yet."""
    with _early_lock:
        early = _early.pop() if _early else None
    if early is not None and early.poll() is None:
        return early
    if early is not None:
        _end(early)
    return _popen()


def start_early() -> Popen:
    """Start the next ``spawn()``'s worker now (one at most: one already waiting is returned)."""
    with _early_lock:
        if not _early:
            _early.append(_popen())
        return _early[0]


@contextmanager
def started_early(wanted: bool = True) -> Iterator[Popen | None]:
    """``start_early()`` for the block (yields the process); a worker no ``spawn()`` took (the query
    was refused before it ran, say) is ended when the block ends."""
    if not wanted:
        yield None
        return
    try:
        yield start_early()
    finally:
        with _early_lock:
            unused = _early.pop() if _early else None
        if unused is not None:
            _end(unused)


def _popen() -> Popen:
    import subprocess

    code = f"import sys; sys.path.insert(0, {_ROOT!r}); from tools.sql_worker import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C goes to the parent only
    )


def _end(proc: Popen) -> None:
    """Kill and reap a worker that never got a request (nothing of it is worth waiting for)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        with suppress(OSError):
            if pipe is not None:  # always piped here; None only for a Popen made without stdin/stdout=PIPE
                pipe.close()


# -- the process ------------------------------------------------------------------------------------


def main() -> None:
    # Replies go to a private copy of stdout; fd 1 then points at stderr, so nothing DuckDB or
    # Python prints can corrupt the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent(os.getppid())
    requests = sys.stdin.buffer
    setup = _read_frame(requests)
    if setup is None:
        return
    try:
        con = connect(setup["db_path"], memory_limit=setup["memory_limit"], threads=setup["threads"])
        _cap_address_space(int(setup["address_space_extra"]))
    except Exception as exc:  # a locked or corrupt warehouse: said once, the parent reports it
        from tools.kb_lock import held_elsewhere  # asyncio and more: loaded only for this message

        held = held_elsewhere(setup["db_path"], exc)
        _write(replies, {"ok": False, "kind": "failed",
                         "message": str(held) if held else f"the warehouse could not be opened: {exc}"})
        return
    _write(replies, {"ok": True})
    while (request := _read_frame(requests)) is not None:
        _cap_cpu(float(request["timeout_s"]), int(setup["threads"]))
        try:
            reply = run_query(con, request["sql"], row_limit=int(request["row_limit"]),
                              timeout_s=float(request["timeout_s"]))
            frame = encode_frame(reply)
        except MemoryError:  # the address-space cap, met while converting the rows
            frame = encode_frame({"ok": False, "kind": "memory", "message": "out of memory"})
        except Exception as exc:  # a value JSON cannot carry: said, not fatal
            frame = encode_frame({"ok": False, "kind": "failed", "message": f"the result could not be sent: {exc}"})
        if len(frame) > MAX_REPLY_BYTES:
            frame = encode_frame({"ok": False, "kind": "failed", "message": (
                f"the result is {len(frame) / 2**20:.0f} MB (limit {MAX_REPLY_BYTES // 2**20} MB); "
                "select fewer or shorter values")})
        replies.write(frame)
        replies.flush()
    # End of input: the parent is done. DuckDB closes (its spill files go), then the process ends
    # without the interpreter's teardown, which the parent would otherwise wait for (`dossier sql`).
    con.close()
    os._exit(0)


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the parent closed the pipe: time to go
    body = stream.read(HEADER.unpack(header)[0])
    return json.loads(body)


def _write(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode_frame(message))
    stream.flush()


def _exit_with_parent(parent: int) -> None:
    """End this process soon after its parent dies, even in the middle of a query (DuckDB
    releases the GIL while it runs one, so this thread gets to run)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _cap_address_space(extra: int) -> None:
    """Allow what the process maps now (interpreter, DuckDB's thread stacks and arenas) plus
    ``extra``: an allocation past that fails here (DuckDB reports it as out of memory)."""
    with suppress(ImportError, OSError, ValueError):
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _set_soft_limit(resource.RLIMIT_AS, mapped + extra)


def _cap_cpu(timeout_s: float, threads: int) -> None:
    """The kernel ends the process (SIGXCPU) if one query burns far more CPU than its time limit
    allows: the backstop for a worker whose parent can no longer kill it."""
    with suppress(ImportError, OSError, ValueError):
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        budget = usage.ru_utime + usage.ru_stime + timeout_s * max(threads, 1) + _CPU_SLACK_S
        _set_soft_limit(resource.RLIMIT_CPU, math.ceil(budget))


def _set_soft_limit(kind: int, value: int) -> None:
    import resource

    hard = resource.getrlimit(kind)[1]  # an unprivileged process may not raise its hard limit
    resource.setrlimit(kind, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


if __name__ == "__main__":
    main()
