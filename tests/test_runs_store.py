"""A damaged ``kb/runs.sqlite`` (issue 12, item 15).

It stopped every new report with sqlite's bare "file is not a database" or "database disk image is
malformed", naming no file. Now the message names the file, what it holds and how to recover, and
moving it aside is enough for the next report to run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dossier.cli import main
from dossier.research import Researcher
from dossier.runs_store import RunStoreDamaged
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase

PAGE = 4096


@pytest.fixture
async def kb(tmp_path: Path):
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(write_corpus(tmp_path / "corpus"))
    yield kb
    await kb.close()


def _damage_pages(path: Path) -> None:
    """Overwrite everything after the first page: the header still reads, the tables do not."""
    size = path.stat().st_size
    assert size > 2 * PAGE
    with open(path, "r+b") as handle:
        handle.seek(PAGE)
        handle.write(os.urandom(size - PAGE))


async def test_garbage_file_is_named_with_the_way_out(kb, tmp_path):
    store = kb.path / "runs.sqlite"
    store.write_bytes(os.urandom(3000))
    with pytest.raises(RunStoreDamaged) as caught:
        await Researcher(kb).run(QUESTION)
    message = str(caught.value)
    assert f"the run store {store} is damaged (file is not a database)" in message
    assert f"mv {store} {store}.damaged" in message

    store.rename(store.with_name("runs.sqlite.damaged"))  # the advice works
    report = await Researcher(kb).run(QUESTION)
    assert report.sections


async def test_damaged_pages_met_during_a_run_are_named(kb):
    researcher = Researcher(kb)
    await researcher.run(QUESTION)
    _damage_pages(kb.path / "runs.sqlite")
    with pytest.raises(RunStoreDamaged, match=r"runs.sqlite is damaged"):
        await researcher.run(QUESTION)
    with pytest.raises(RunStoreDamaged, match=r"runs.sqlite is damaged"):
        await researcher.runs()


def test_cli_says_it_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Budget\n\nThe budget is 5 dollars.\n")
    assert main(["--kb", str(tmp_path / "kb"), "ingest", str(docs), "-q"]) == 0
    (tmp_path / "kb" / "runs.sqlite").write_bytes(b"not a database, truncated by a crash" * 100)
    capsys.readouterr()
    for argv in (["runs"], ["report", "What is the budget?"]):
        assert main(["--kb", str(tmp_path / "kb"), *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: the run store {tmp_path / 'kb' / 'runs.sqlite'} is damaged"), err
        assert err.count("\n") == 1 and "Move it aside" in err


async def test_the_run_index_vouches_only_for_what_the_checkpoints_say(kb):
    """`dossier runs` reads the index alone only while it describes every run's latest checkpoint."""
    import sqlite3

    from dossier.runs_store import read_run_index

    report = await Researcher(kb).run(QUESTION)
    path = kb.path / "runs.sqlite"
    (info,) = read_run_index(path)
    assert (info.run_id, info.status, info.question) == (report.run_id, "done", QUESTION)
    assert [(r.run_id, r.status) for r in await Researcher(kb).runs()] == [(info.run_id, "done")]
    with sqlite3.connect(path) as conn:  # as if the process died between a checkpoint and its index row
        conn.execute("UPDATE dossier_runs SET checkpoint_id = 'older'")
    assert read_run_index(path) is None
    await Researcher(kb).runs()  # LangGraph reads the run and writes its row again
    assert read_run_index(path) == [info]
    assert read_run_index(kb.path / "absent.sqlite") == []


async def test_an_index_row_that_cannot_be_written_never_fails_the_run():
    """The index is an optimisation: a read-only folder or a lock held too long leaves it behind its
    checkpoints (read_run_index then says None and `dossier runs` asks LangGraph), never fails the run."""
    import sqlite3

    from dossier.runs_store import RunInfo, index_run

    class ReadOnly:
        rolled_back = False

        async def execute(self, *_args):
            raise sqlite3.OperationalError("attempt to write a readonly database")

        async def rollback(self):
            self.rolled_back = True

    conn = ReadOnly()
    await index_run(conn, RunInfo("r1", "q", "done", "-", "now"), "c1")  # type: ignore[arg-type]
    assert conn.rolled_back
