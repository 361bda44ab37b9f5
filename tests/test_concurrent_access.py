"""Readers and writers in separate processes (issue 12, item 10).

DuckDB lets one process open a file read-write or many open it read-only. An ingest held the
write lock on ``kb/warehouse.duckdb`` while it imported, so `dossier sql`, `dossier tables` and
reports in another process failed with DuckDB's raw "Could not set lock on file … (PID n)", and of
two ingests one died the same way. Now an ingest writes a staging copy it publishes atomically
(``tools.warehouse``) and holds ``kb/.ingest.lock`` (``tools.kb_lock``): readers see the last
committed state, and a second ingest waits, saying so, or fails with a clear message.

Each test holds a real ingest in a second process, stopped inside a table import (after the
import's transaction, before the ingest publishes), and runs the other commands meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAW_LOCK_ERROR = "Could not set lock"
WAIT_S = 120  # for a process on 2 shared cores to reach the point where it holds the ingest

# Runs `dossier` with Warehouse._swap held open: the import's transaction is done, the ingest is not.
HOLD_INGEST = """
import pathlib, sys, time
from tools.warehouse import Warehouse
held, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
swap = Warehouse._swap
def held_swap(self, *args, **kwargs):
    swap(self, *args, **kwargs)
    held.write_text("held")
    while not release.exists():
        time.sleep(0.05)
Warehouse._swap = held_swap
from dossier.cli import main
sys.exit(main(sys.argv[3:]))
"""

HOLD_READ_ONLY = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print('ready', flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'extra'").fetchone()[0], flush=True)
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_") and k != "PYTHONPATH"}
    env.update(DOSSIER_EMBEDDER="hash", HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               COLUMNS="200", **extra)
    return env


def _start(tmp_path: Path, argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=tmp_path, env=_env(tmp_path, **env),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _dossier(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = _start(tmp_path, ["-m", "dossier.cli", "--kb", "kb", *args], **env)
    out, err = proc.communicate(timeout=300)
    assert RAW_LOCK_ERROR not in out + err
    return proc.returncode, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An ingested knowledge base (kb/) over data/: one document, one table."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "budget.md").write_text("# Budget\n\nThe pelican budget for the pilot is 40 dollars.\n")
    (data / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\neast,5\n")
    code, _, err = _dossier(tmp_path, "ingest", "data", "-q")
    assert code == 0, err
    (data / "extra.csv").write_text("k,v\na,1\n")  # what the held ingest imports next
    return data


class HeldIngest:
    """`dossier ingest data` in another process, stopped inside its import of extra.csv."""

    def __init__(self, tmp_path: Path):
        self.held, self.release = tmp_path / "held", tmp_path / "release"
        self.proc = _start(tmp_path, ["-c", HOLD_INGEST, str(self.held), str(self.release),
                                      "--kb", "kb", "ingest", "data", "-q"])
        deadline = time.monotonic() + WAIT_S
        while not self.held.exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the ingest never reached the table import"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        self.release.touch()
        out, err = self.proc.communicate(timeout=300)
        return self.proc.returncode, out, err

    def stop(self) -> None:
        self.release.touch()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def held(tmp_path: Path, folder: Path):
    ingest = HeldIngest(tmp_path)
    yield ingest
    ingest.stop()


def test_readers_work_during_an_ingest_and_see_the_last_committed_state(tmp_path: Path, held: HeldIngest):
    code, out, err = _dossier(tmp_path, "sql", "SELECT sum(amount) AS total FROM sales", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == [[35]]
    code, out, err = _dossier(tmp_path, "tables", "--json")
    assert code == 0, err
    assert [t["name"] for t in json.loads(out)] == ["sales"]  # extra is not committed yet
    code, out, err = _dossier(tmp_path, "sql", "SELECT * FROM extra")
    assert code == 1 and 'unknown table "extra"' in err
    code, out, err = _dossier(tmp_path, "search", "pelican budget", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["chunk"]["source"].endswith("budget.md")
    code, out, err = _dossier(tmp_path, "report", "What is the pelican budget?")
    assert code == 0, err
    assert "40" in out

    code, _, err = held.finish()
    assert code == 0, err
    code, out, err = _dossier(tmp_path, "sql", "SELECT v FROM extra", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == [[1]]
    assert not (tmp_path / "kb" / "warehouse.duckdb.staging").exists()


def test_a_second_ingest_fails_clearly_when_the_wait_runs_out(tmp_path: Path, held: HeldIngest):
    code, _out, err = _dossier(tmp_path, "ingest", "data", "-q", DOSSIER_INGEST_LOCK_WAIT_S="0.5")
    assert code == 1
    lines = err.strip().splitlines()
    assert f"another ingest (PID {held.proc.pid}) is writing the knowledge base kb; waiting up to 0.5 s" in err
    assert lines[-1].startswith(f"error: another ingest (PID {held.proc.pid}) is still writing the "
                                "knowledge base kb after 0.5 s")
    assert "DOSSIER_INGEST_LOCK_WAIT_S" in lines[-1]
    code, _, err = held.finish()  # the first ingest is unharmed
    assert code == 0, err


def test_a_second_ingest_waits_then_runs(tmp_path: Path, held: HeldIngest, folder: Path):
    (folder / "later.csv").write_text("x\n7\n")
    second = _start(tmp_path, ["-m", "dossier.cli", "--kb", "kb", "ingest", "data", "-q", "--json"])
    try:
        notice = second.stderr.readline()  # printed as soon as it finds the lock taken
        assert notice.startswith(f"another ingest (PID {held.proc.pid}) is writing the knowledge base kb; waiting")
        assert second.poll() is None
        code, _, err = held.finish()
        assert code == 0, err
        out, err = second.communicate(timeout=300)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err
    assert RAW_LOCK_ERROR not in err
    summary = json.loads(out)
    assert summary["tables_new"] == 1 and summary["tables_unchanged"] == 2  # the first one's work is kept
    code, out, err = _dossier(tmp_path, "sql", "SELECT (SELECT x FROM later) + (SELECT v FROM extra) AS n", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == [[8]]


def test_an_ingest_runs_while_a_reader_holds_the_file(tmp_path: Path, folder: Path):
    """The writer never opens the committed file read-write, so a reader holding it (a long query,
    a report's SQL worker) blocks nothing, and keeps reading the state it opened."""
    reader = _start(tmp_path, ["-c", HOLD_READ_ONLY, str(tmp_path / "kb" / "warehouse.duckdb")])
    try:
        assert reader.stdout.readline().strip() == "ready"
        code, out, err = _dossier(tmp_path, "ingest", "data", "-q", "--json")
        assert code == 0, err
        assert json.loads(out)["tables_new"] == 1
        out, err = reader.communicate("go\n", timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert out.split() == ["0"]  # its snapshot predates the ingest
    code, out, err = _dossier(tmp_path, "sql", "SELECT v FROM extra", "--json")
    assert code == 0, err


HOLD_READ_WRITE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print('ready', flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("command", [["sql", "SELECT 1 AS one FROM sales"], ["tables"]])
def test_a_foreign_writer_is_named_not_dumped(tmp_path: Path, folder: Path, command: list[str]):
    """Another program (the duckdb CLI, a notebook) holding the file read-write is the one case a
    reader can still meet DuckDB's lock: it is said as a sentence naming the process."""
    holder = _start(tmp_path, ["-c", HOLD_READ_WRITE, str(tmp_path / "kb" / "warehouse.duckdb")])
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, out, err = _dossier(tmp_path, *command)
    finally:
        holder.communicate("done\n", timeout=60)
    assert code == 1 and out == ""
    assert err.startswith(f"error: the warehouse kb/warehouse.duckdb is open for writing in process {holder.pid}, "
                          "outside Dossier"), err
