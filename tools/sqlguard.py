"""Guarded SQL: the executor that runs a checked query (``tools.sqlcheck``) in a worker process
(``tools.sql_worker``) whose limits hold for any statement.

The parse-tree check is the first line of defence and runs here, before anything is sent. The
second is the worker: a read-only, locked-down DuckDB connection (no external access, no
extensions, configuration locked) with DuckDB's memory limit, threads and an interrupt at the time
limit. The third is the process itself, for what DuckDB cannot stop (constant folding while it
plans ignores both its memory limit and interrupts): this side kills the worker at the time limit
plus ``KILL_GRACE_S``, or as soon as it holds more than ``rss_cap`` bytes, reports a clean
``SqlTimeout`` / ``SqlFailed``, and starts a fresh worker on the next query.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from tools.models import SqlResult
from tools.sql_worker import HEADER, MAX_REPLY_BYTES, encode_frame, spawn

# The check's names are re-exported: callers import the guard as one module.
from tools.sqlcheck import (  # noqa: F401
    INTERNAL_PREFIX,
    MAX_SQL_CHARS,
    SqlFailed,
    SqlRefused,
    SqlTimeout,
    _first_line,
    check_sql,
    is_reserved_table_name,
)

KILL_GRACE_S = 0.5  # after the worker's own interrupt: time for it to answer before it is killed
POLL_S = 0.02  # how often the worker's memory is read while a query runs
START_TIMEOUT_S = 60.0  # a cold start on a loaded machine; not counted against the query
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


class GuardedExecutor:
    """Runs checked queries with row, time and memory limits in one long-lived worker process.

    Concurrency: one worker per executor and a lock around it, so calls from several threads
    (``asyncio.to_thread``) queue and run one at a time; ``KnowledgeBase.sql`` already runs one
    query at a time per knowledge base, so a pool would only hold more memory. The worker starts
    on the first query (about 0.1 s; ``dossier sql`` starts it ahead: ``sql_worker.start_early``) and
    is reused; ``close()`` ends it (so do garbage collection and interpreter exit), and it ends by
    itself when this process dies.
    """

    def __init__(self, db_path: Path, *, allowed_tables: set[str], row_limit: int, timeout_s: float,
                 memory_limit: str, threads: int):
        self.db_path = Path(db_path)
        self.allowed_tables = set(allowed_tables)
        self.row_limit = row_limit
        self.timeout_s = timeout_s
        self.memory_limit = memory_limit
        self.threads = threads
        limit = memory_bytes(memory_limit)
        # DuckDB keeps its buffers under memory_limit; the interpreter, the rows being converted
        # and allocations outside the buffer manager need room on top.
        self.rss_cap = limit + max(limit // 2, 256 * 2**20)
        self._address_space_extra = 2 * limit + 512 * 2**20
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def execute(self, sql: str) -> SqlResult:
        tables = check_sql(sql, allowed_tables=self.allowed_tables)
        with self._lock:
            reply = self._ask({"sql": sql, "row_limit": self.row_limit, "timeout_s": self.timeout_s})
        if not reply["ok"]:
            raise self._error(reply)
        rows = reply["rows"]
        return SqlResult(sql=sql, columns=reply["columns"], rows=rows, row_count=len(rows),
                         truncated=reply["truncated"], tables=tables, elapsed_ms=reply["elapsed_ms"])

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (None before the first query and after a kill)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._worker is not None and not self._worker.alive():
            self._worker.stop()  # died between queries (killed from outside): start afresh
            self._worker = None
        if self._worker is None:
            self._worker = _Worker.start({
                "db_path": str(self.db_path), "memory_limit": self.memory_limit, "threads": self.threads,
                "address_space_extra": self._address_space_extra})
        try:
            return self._worker.ask(request, deadline_s=self.timeout_s + KILL_GRACE_S, rss_cap=self.rss_cap)
        except _Stopped as stopped:
            self._worker = None  # killed or dead; the next query starts a fresh one
            return {"ok": False, "kind": stopped.kind, "message": stopped.detail}

    def _error(self, reply: dict[str, Any]) -> Exception:
        kind, message = reply.get("kind"), str(reply.get("message", ""))
        if kind == "timeout":
            return SqlTimeout(f"query stopped: exceeded the {self.timeout_s:g} s time limit; "
                              "add filters or aggregate first")
        if kind == "memory":
            return SqlFailed(f"query stopped: exceeded the {_shown(self.memory_limit)} memory limit; "
                             "add filters or aggregate first")
        if kind == "died":
            return SqlFailed(f"query stopped: the SQL process ended ({message}), at its memory or CPU "
                             f"limit ({_shown(self.memory_limit)}, {self.timeout_s:g} s); "
                             "add filters or aggregate first")
        return SqlFailed(message)


def memory_bytes(text: str) -> int:
    """DuckDB's reading of a memory setting: '1GB' is 10^9 bytes, '1GiB' 2^30."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?)B\s*", text.upper())
    if match is None:
        raise ValueError(f"not a memory size: {text!r} (expected e.g. 512MB or 1GB)")
    return int(float(match[1]) * _UNITS[match[2]])


def _shown(limit: str) -> str:
    return re.sub(r"(\d)\s*([KMGT]?i?B)$", r"\1 \2", limit.strip())


class _Stopped(Exception):
    """The worker is gone (killed here, or dead): ``kind`` is timeout, memory, died or failed."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(kind, detail)
        self.kind, self.detail = kind, detail


class _Worker:
    """One ``tools.sql_worker`` process and the pipes to it."""

    def __init__(self, proc: subprocess.Popen):
        self._proc = proc
        self.pid = proc.pid
        self._finalizer = weakref.finalize(self, _reap, proc)  # no orphan if close() is never called
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("the SQL worker must be started with stdin and stdout piped")
        self._stdin, self._stdout = proc.stdin, proc.stdout

    @classmethod
    def start(cls, setup: dict[str, Any]) -> _Worker:
        worker = cls(spawn())  # new, or the one `dossier sql` started while it loaded (start_early)
        try:
            ready = worker.ask(setup, deadline_s=START_TIMEOUT_S, rss_cap=None)
        except _Stopped as stopped:
            raise SqlFailed(f"the SQL worker did not start ({stopped.kind} {stopped.detail})".strip()) from None
        if not ready.get("ok"):
            worker.stop()
            raise SqlFailed(str(ready.get("message", "the SQL worker did not start")))
        return worker

    def alive(self) -> bool:
        return self._proc.poll() is None

    def ask(self, request: dict[str, Any], *, deadline_s: float, rss_cap: int | None) -> dict[str, Any]:
        """Send one request and wait for its reply; past the deadline or the memory cap, kill."""
        try:
            self._stdin.write(encode_frame(request))
            self._stdin.flush()
        except OSError:  # the worker is gone
            raise self._dead() from None
        end = time.monotonic() + deadline_s
        fd = self._stdout.fileno()
        poller = select.poll()  # not select(): the knowledge base may hold more than 1,024 fds
        poller.register(fd, select.POLLIN)
        buffer = bytearray()
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.kill()
                raise _Stopped("timeout")
            if poller.poll(min(left, POLL_S) * 1000):
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._dead()
                buffer += chunk
                if (reply := self._complete(buffer)) is not None:
                    return reply
            if rss_cap is not None and _rss(self.pid) > rss_cap:
                self.kill()
                raise _Stopped("memory")

    def _complete(self, buffer: bytearray) -> dict[str, Any] | None:
        if len(buffer) < HEADER.size:
            return None
        size = HEADER.unpack_from(buffer)[0]
        if size > MAX_REPLY_BYTES + 2**20:  # the worker caps its replies; this one is not sane
            self.kill()
            raise _Stopped("failed", f"the SQL worker sent a {size:,}-byte reply")
        if len(buffer) < HEADER.size + size:
            return None
        return json.loads(bytes(buffer[HEADER.size: HEADER.size + size]))

    def _dead(self) -> _Stopped:
        code = self._proc.wait()
        self.stop()
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return _Stopped("died", how)

    def kill(self) -> None:
        _reap(self._proc)
        self._finalizer.detach()

    def stop(self) -> None:
        """Close its stdin (the worker exits on end of input); kill it if it does not."""
        try:
            self._stdin.close()
            self._proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _reap(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()  # reaped, so its memory and its lock on the warehouse file are released
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:  # always piped here; None only for a Popen made without stdin/stdout=PIPE
                pipe.close()
        except OSError:
            pass


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` (0 where /proc is missing: the address-space cap still holds)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
