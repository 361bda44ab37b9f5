"""SQL limits that hold for any statement (issue 12, items 3 and 12).

DuckDB folds constant expressions while planning, outside its memory limit and deaf to
interrupts, so guarded queries run in a worker process (``tools.sql_worker``) that the executor
kills at the time limit or past its memory cap. These tests send such statements through
``GuardedExecutor`` with small limits and check: a clean refusal within the time limit plus a
margin, the parent's memory unchanged, the worker's memory bounded, the next query answered, and
no worker left behind when the executor, the knowledge base or the parent process goes away.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dossier.cli import main
from dossier.settings import Settings
from tools.corpus import EmbedderMismatch
from tools.embeddings import HashEmbedder
from tools.knowledge_base import KnowledgeBase
from tools.sqlguard import KILL_GRACE_S, GuardedExecutor, SqlFailed, SqlTimeout, memory_bytes
from tools.warehouse import Warehouse

TIMEOUT_S = 2.0
MEMORY = "256MB"
MARGIN_S = 1.5  # killing and reaping a worker that holds hundreds of MB, on 2 shared cores
PARENT_GROWTH_MB = 100


def _nested_replace(depth: int) -> str:
    inner = "repeat('x', 10000)"
    for _ in range(depth):
        inner = f"replace({inner}, 'x', 'xxxxxxxxxx')"
    return f"SELECT length({inner})"


GROWTH = [  # each passes the parse-tree check; each outgrows any limit DuckDB itself enforces
    _nested_replace(8),
    "SELECT list_reduce(list_transform(range(31), lambda x: 'ab'), lambda a, b: a || a)",
    "SELECT approx_quantile(x, 0.5), histogram(x % 1000000) FROM range(50000000) t(x)",
    "SELECT length(list_reduce(list_transform(range(40), lambda x: 'abababab'), lambda a, b: a || a || a))",
    "SELECT count(*) FROM range(100000) a, range(100000) b, sales WHERE a.range * b.range % 7 = sales.id",
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("limits")
    (folder / "sales.csv").write_text("id,region,amount,day\n1,north,10.5,2024-01-05\n2,south,4,2024-02-01\n")
    wh = Warehouse(folder / "warehouse.duckdb")
    wh.import_file(folder / "sales.csv", source="sales.csv", source_hash="s")
    wh.close()
    return wh.path


@pytest.fixture
def guard(db):
    executor = GuardedExecutor(db, allowed_tables={"sales"}, row_limit=20, timeout_s=TIMEOUT_S,
                               memory_limit=MEMORY, threads=2)
    yield executor
    executor.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper that is not ours counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


class PeakSampler:
    """The worker's resident memory, sampled every 5 ms while a query runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, ValueError, IndexError):
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


@pytest.mark.parametrize("sql", GROWTH, ids=["nested-replace", "list-reduce-doubling", "quantile-histogram",
                                             "list-reduce-tripling", "cross-join"])
def test_growth_is_stopped_cleanly_and_the_worker_recovers(guard, sql):
    assert guard.execute("SELECT count(*) FROM sales").rows == [[2]]
    parent_before = rss_mb(os.getpid())
    sampler = PeakSampler(guard.worker_pid)
    started = time.monotonic()
    with pytest.raises((SqlTimeout, SqlFailed)) as caught:
        guard.execute(sql)
    elapsed = time.monotonic() - started
    worker_peak = sampler.stop()
    message = str(caught.value)
    assert elapsed < TIMEOUT_S + KILL_GRACE_S + MARGIN_S, (elapsed, message)
    assert message.startswith("query stopped: exceeded the 2 s time limit") or \
        message.startswith("query stopped: exceeded the 256 MB memory limit") or \
        message.startswith("query ran out of memory"), message
    assert rss_mb(os.getpid()) - parent_before < PARENT_GROWTH_MB
    # The cap is checked every 20 ms; the address-space limit stops a single huge allocation.
    assert worker_peak < guard.rss_cap / 2**20 + 512, worker_peak
    print(f"\n{sql[:50]}: {type(caught.value).__name__} after {elapsed:.2f} s, worker peak {worker_peak:.0f} MB")
    assert guard.execute("SELECT region, amount FROM sales ORDER BY id").rows == [["north", 10.5], ["south", 4.0]]


def test_results_keep_their_types_through_the_worker(guard):
    result = guard.execute(
        "SELECT DATE '2024-01-02' AS d, TIMESTAMPTZ '2024-01-01 10:00:00+02' AS tz, 1.25::DECIMAL(10,2) AS dec, "
        "'nan'::DOUBLE AS f, 12345678901234567890::HUGEINT AS big, [1.5, NULL] AS l, '中文' AS s")
    assert result.rows == [["2024-01-02", "2024-01-01 08:00:00+00", 1.25, "nan", 12345678901234567890,
                            [1.5, None], "中文"]]
    assert result.columns == ["d", "tz", "dec", "f", "big", "l", "s"]
    # The TIMESTAMPTZ rewrite cuts a trailing ';' by the tokenizer's byte offsets, after non-ASCII text.
    again = guard.execute("SELECT '中文' AS s, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t; -- 注释")
    assert again.rows == [["中文", "2024-01-01 00:00:00+00"]]


def test_a_reply_too_big_to_send_is_refused_in_the_worker(guard):
    parent_before = rss_mb(os.getpid())
    with pytest.raises(SqlFailed, match=r"the result is \d+ MB \(limit 32 MB\); select fewer or shorter values"):
        guard.execute("SELECT string_agg('xxxxxxxxxx', '') FROM range(4000000)")
    assert rss_mb(os.getpid()) - parent_before < PARENT_GROWTH_MB
    assert guard.execute("SELECT 1").rows == [[1]]


def test_worker_is_reused_and_restarted_after_an_outside_kill(guard):
    guard.execute("SELECT 1")
    pid = guard.worker_pid
    guard.execute("SELECT 2")
    assert guard.worker_pid == pid
    os.kill(pid, signal.SIGKILL)
    # Wait until the process can be reaped, not only until /proc shows its main thread a zombie:
    # DuckDB's other threads may still be exiting, and a query sent then meets a dying worker.
    deadline = time.monotonic() + 30
    while guard.worker_pid is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(pid) and guard.worker_pid is None, "the killed worker is still running"
    assert guard.execute("SELECT 3").rows == [[3]]
    assert guard.worker_pid not in (None, pid)


def test_a_worker_killed_mid_query_is_reported_and_replaced(guard):
    guard.execute("SELECT 1")
    pid = guard.worker_pid
    threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(SqlFailed, match=r"query stopped: the SQL process ended \(signal 9\)"):
        guard.execute("SELECT count(*) FROM range(100000) a, range(100000) b")
    assert guard.execute("SELECT 5").rows == [[5]] and guard.worker_pid != pid


def test_concurrent_calls_queue_on_one_worker(guard):
    results: dict[int, list] = {}

    def ask(n: int) -> None:
        results[n] = guard.execute(f"SELECT {n} * 2 AS v").rows

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [[n * 2]] for n in range(8)}


def test_close_leaves_no_worker(db):
    executor = GuardedExecutor(db, allowed_tables={"sales"}, row_limit=5, timeout_s=TIMEOUT_S,
                               memory_limit=MEMORY, threads=1)
    executor.execute("SELECT 1")
    pid = executor.worker_pid
    executor.close()
    assert gone(pid) and executor.worker_pid is None
    assert executor.execute("SELECT 4").rows == [[4]]  # a closed executor starts a new worker
    executor.close()


def test_worker_exits_when_its_parent_is_killed_mid_query(db):
    script = (
        "import sys\nfrom pathlib import Path\nfrom tools.sqlguard import GuardedExecutor\n"
        f"ex = GuardedExecutor(Path({str(db)!r}), allowed_tables={{'sales'}}, row_limit=5, timeout_s=60, "
        "memory_limit='256MB', threads=1)\n"
        "ex.execute('SELECT 1')\nprint(ex.worker_pid, flush=True)\n"
        "ex.execute('SELECT count(*) FROM range(100000000) a, range(100000000) b')\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        time.sleep(0.5)  # the long query is running in the worker
        assert not gone(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(worker)


async def test_knowledge_base_close_ends_its_worker(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prices.csv").write_text("Date,MSFT,AAPL\n2010-01-04,30.95,30.57\n2010-01-05,30.96,30.63\n")
    settings = Settings(kb_dir=tmp_path / "kb", embedder="hash", sql_timeout_s=TIMEOUT_S, sql_memory_limit=MEMORY)
    kb = await KnowledgeBase.open(settings=settings, embedder=HashEmbedder())
    await kb.ingest([tmp_path / "data"])
    assert (await kb.sql("SELECT max(MSFT) FROM prices")).rows == [[30.96]]
    pid = kb._executor.worker_pid
    await kb.close()
    kb.corpus.close()
    assert gone(pid)


async def test_sql_and_tables_work_despite_an_embedder_mismatch(tmp_path, capsys):
    """Issue 12 item 12: SQL needs no embeddings, so another configured embedder must not stop it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "packages.csv").write_text("name,version,license,size_kb\nrequests,2.31,Apache-2.0,62\nattrs,23.1,MIT,60\n")
    (data / "notes.md").write_text("# Notes\n\nPackages are vendored for offline builds.\n")
    kb = await KnowledgeBase.open(settings=Settings(kb_dir=tmp_path / "kb", embedder="hash"), embedder=HashEmbedder())
    await kb.ingest([data])
    await kb.close()
    kb.corpus.close()

    other = Settings(kb_dir=tmp_path / "kb", embedder="minilm")
    with pytest.raises(EmbedderMismatch):
        await KnowledgeBase.open(settings=other)
    tables_kb = await KnowledgeBase.open(settings=other, tables_only=True)
    try:
        assert (await tables_kb.sql("SELECT sum(size_kb) FROM packages")).rows == [[122]]
        assert [t.name for t in await tables_kb.tables()] == ["packages"]
        with pytest.raises(EmbedderMismatch, match="built with hash"):
            await tables_kb.search("offline builds")
    finally:
        await tables_kb.close()


def test_cli_sql_ignores_an_embedder_mismatch(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "budget.csv").write_text("project,budget,actual\nBridge,100,130\nTunnel,200,190\n")
    (data / "scope.md").write_text("# Scope\n\nThe bridge deck was widened.\n")
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    assert main(["ingest", str(data), "--kb", str(tmp_path / "kb"), "--quiet"]) == 0
    monkeypatch.setenv("DOSSIER_EMBEDDER", "minilm")
    capsys.readouterr()
    assert main(["sql", "SELECT project FROM budget WHERE actual > budget", "--kb", str(tmp_path / "kb"),
                 "--json"]) == 0
    assert '"Bridge"' in capsys.readouterr().out
    assert main(["tables", "--kb", str(tmp_path / "kb")]) == 0
    assert main(["search", "bridge deck", "--kb", str(tmp_path / "kb")]) == 1  # search still refuses
    assert "built with hash" in capsys.readouterr().err


def test_memory_settings_are_read_as_duckdb_reads_them():
    assert memory_bytes("1GB") == 10**9 and memory_bytes("256MB") == 256 * 10**6
    assert memory_bytes("1.5GiB") == int(1.5 * 2**30) and memory_bytes("512 KiB") == 512 * 2**10
    with pytest.raises(ValueError):
        memory_bytes("lots")
