"""Start-up work of the quick commands (issue 14 item 5) and closing what they open (issue 15 item 7).

* ``dossier sql`` starts its guarded worker before it loads its own modules: the query runs in that
  process, under the same limits as in a worker started on demand, and one no query took is ended.
* ``KnowledgeBase.close()`` closes the corpus too, and ``search``, ``tables`` and ``glossary`` close
  the knowledge base they opened.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import test_cli
from tools import sql_worker
from tools.config import KBSettings
from tools.corpus import Corpus
from tools.knowledge_base import KnowledgeBase
from tools.sqlguard import GuardedExecutor, SqlTimeout

cli_env, corpus, cli, ingested = test_cli.cli_env, test_cli.corpus, test_cli.cli, test_cli.ingested


def _executor(db: Path, timeout_s: float = 5.0) -> GuardedExecutor:
    return GuardedExecutor(db, allowed_tables={"sales"}, row_limit=10, timeout_s=timeout_s,
                           memory_limit="256MB", threads=1)


def test_the_early_worker_runs_the_query(ingested) -> None:
    executor = _executor(ingested.kb / "warehouse.duckdb")
    try:
        with sql_worker.started_early() as early:
            assert executor.execute("SELECT sum(amount) AS s FROM sales").rows == [[30]]
            assert executor.worker_pid == early.pid
    finally:
        executor.close()
    assert early.poll() is not None  # closed with the executor, as a worker started on demand is


def test_the_early_worker_keeps_the_time_limit(ingested) -> None:
    executor = _executor(ingested.kb / "warehouse.duckdb", timeout_s=1.0)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    try:
        with sql_worker.started_early() as early:
            started = time.monotonic()
            with pytest.raises(SqlTimeout, match="exceeded the 1 s time limit"):
                executor.execute(endless)
            assert time.monotonic() - started < 2.0
            assert executor.execute("SELECT count(*) FROM sales").rows == [[2]]  # a fresh worker or the same
            assert early.poll() is None or executor.worker_pid != early.pid
    finally:
        executor.close()


def test_an_early_worker_no_query_took_is_ended() -> None:
    with sql_worker.started_early() as early:
        assert early.poll() is None
    assert early.poll() is not None
    with sql_worker.started_early(False) as none:
        assert none is None


def test_a_refused_query_leaves_no_worker(ingested, capsys) -> None:
    code, _, err = ingested("sql", "DROP TABLE sales")
    assert code == 1 and "only SELECT/WITH" in err
    assert sql_worker._early == []  # the worker started for it was ended


async def test_close_closes_the_corpus(ingested, monkeypatch) -> None:
    closed: list[str] = []
    real_close = Corpus.close
    monkeypatch.setattr(Corpus, "close", lambda self: (closed.append("corpus"), real_close(self)))
    settings = KBSettings(kb_dir=ingested.kb, embedder="hash")
    kb = await KnowledgeBase.open(settings=settings)
    await kb.close()
    assert closed == ["corpus"]
    deferred = await KnowledgeBase.open(settings=settings, tables_only=True)
    await deferred.close()  # never opened: nothing to close
    assert closed == ["corpus"]
    deferred = await KnowledgeBase.open(settings=settings, tables_only=True)
    assert await deferred.search("heron", mode="text")
    await deferred.close()
    assert closed == ["corpus", "corpus"]


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One True per KnowledgeBase.close() call made while the test runs."""
    calls: list[bool] = []
    real_close = KnowledgeBase.close

    async def close(self: KnowledgeBase) -> None:
        calls.append(True)
        await real_close(self)

    monkeypatch.setattr(KnowledgeBase, "close", close)
    return calls


@pytest.mark.parametrize("args", [["search", "heron"], ["search", "heron", "--json"], ["tables"],
                                  ["tables", "--json"], ["tables", "sales"], ["glossary"], ["sql", "SELECT 1"]])
def test_reading_commands_close_the_knowledge_base(ingested, closed: list[bool], args: list[str]) -> None:
    code, _, err = ingested(*args)
    assert code == 0, err
    assert closed == [True]


def test_a_failing_reading_command_still_closes(ingested, closed: list[bool]) -> None:
    code, _, err = ingested("tables", "no_such_table")
    assert code == 1 and 'unknown table "no_such_table"' in err
    assert closed == [True]
