"""Runs in PostgreSQL (issue 16): ``DOSSIER_RUNS_URL`` puts every run's checkpoints in a real server.

A throwaway server (tests/support/postgres.py) serves a fresh database per test. What is checked:
a run SIGKILLed in one process resumes in another to a finished report; 50 concurrent runs from 4
processes end without an error; a run of another knowledge base sharing the store is neither listed
nor resumed; `dossier runs` reads both stores alike; and the URL's password is never printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from dossier.cli import main
from dossier.events import PlanEvent
from dossier.research import ForeignRun, Researcher
from dossier.settings import Settings
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tools.knowledge_base import KnowledgeBase

pytest.importorskip("langgraph.checkpoint.postgres", reason="needs the 'postgres' extra")

REPO = Path(__file__).resolve().parents[1]
RUN_LINE = re.compile(r"^(r\d{8}-\d{6}-[0-9a-f]{6})\s+(done|awaiting approval|interrupted)\s", re.MULTILINE)
PROCESSES, RUNS = 4, 50


async def ingested(kb_dir: Path, corpus: Path, **overrides) -> KnowledgeBase:
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir, **overrides))
    await kb.ingest(write_corpus(corpus) if not corpus.exists() else [corpus / "docs", corpus / "tables"])
    return kb


@pytest.fixture
async def kb_dir(tmp_path: Path) -> Path:
    kb = await ingested(tmp_path / "kb", tmp_path / "corpus")
    await kb.close()
    return tmp_path / "kb"


def cli_env(url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env.update(PYTHONPATH=str(REPO), DOSSIER_EMBEDDER="hash", DOSSIER_ENGINE="offline", DOSSIER_CHUNK_TOKENS="64",
               DOSSIER_CHUNK_OVERLAP="8", COLUMNS="200", **extra)
    if url:
        env["DOSSIER_RUNS_URL"] = url
    return env


def dossier(args: list[str], env: dict[str, str], *, module: str = "dossier.cli") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def listed(out: str) -> dict[str, str]:
    return dict(RUN_LINE.findall(out))


def password_of(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


# -- a killed run resumes in another process ----------------------------------------------------

def test_a_run_killed_in_one_process_resumes_in_another(kb_dir, postgres_url, tmp_path):
    env, password = cli_env(postgres_url), password_of(postgres_url)
    # Killed right after its third checkpoint is committed (input, start, plan): mid-run, no cleanup.
    killed = dossier(["kill-after", "3", "--kb", str(kb_dir), "report", QUESTION, "-q"], env,
                     module="tests.support.pg_runs")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    runs = dossier(["--kb", str(kb_dir), "runs"], env)
    assert runs.returncode == 0, runs.stderr
    (run_id, status), = listed(runs.stdout).items()
    assert status == "interrupted" and "next: review" in runs.stdout  # the plan survived the kill

    resumed = dossier(["--kb", str(kb_dir), "resume", run_id, "-q", "-o", str(tmp_path / "r.md")], env)
    assert resumed.returncode == 0, resumed.stderr
    report = (tmp_path / "r.md").read_text()
    assert "## References" in report and "[1]" in report
    assert listed(dossier(["--kb", str(kb_dir), "runs"], env).stdout) == {run_id: "done"}
    assert not (kb_dir / "runs.sqlite").exists()  # the checkpoints were in PostgreSQL, not in the folder
    for out in (killed, runs, resumed):
        assert password not in out.stdout + out.stderr


# -- fifty runs from four processes -------------------------------------------------------------

@pytest.mark.slow
def test_fifty_concurrent_runs_from_four_processes(kb_dir, postgres_url):
    # A pool of 4 per process: 12-13 runs each take turns on it, so the pool's queue is exercised too.
    env = cli_env(postgres_url, DOSSIER_RUNS_POOL_SIZE="4")
    shares = [RUNS // PROCESSES + (i < RUNS % PROCESSES) for i in range(PROCESSES)]
    started = time.perf_counter()
    with ConnectionCounter(postgres_url) as connections:
        procs = [subprocess.Popen([sys.executable, "-m", "tests.support.pg_runs", "many", str(kb_dir), str(n)],
                                  env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in shares]
        outputs = [proc.communicate(timeout=600) for proc in procs]
    wall = time.perf_counter() - started
    results = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for r in results for e in r["errors"]]
    done = [run_id for r in results for run_id in r["done"]]
    print(f"\n{RUNS} runs from {PROCESSES} processes on PostgreSQL: {wall:.1f} s wall "
          f"(in-process {[r['wall_s'] for r in results]} s), {len(errors)} errors, "
          f"at most {connections.peak} server connections")
    assert errors == []
    assert len(set(done)) == RUNS
    runs = listed(dossier(["--kb", str(kb_dir), "runs"], env).stdout)
    assert set(done) == set(runs) and set(runs.values()) == {"done"}
    # Each process's runs share its pool: 4 processes x 4, plus a set-up connection each, plus the counter.
    assert connections.peak <= PROCESSES * 5 + 1


class ConnectionCounter:
    """The most connections to the test's database seen at once, sampled every 50 ms from pg_stat_activity."""

    def __init__(self, url: str) -> None:
        self.url, self.peak = url, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                self.peak = max(self.peak, (row.fetchone() or (0,))[0])


# -- runs belong to their knowledge base --------------------------------------------------------

async def test_a_run_of_another_knowledge_base_is_refused(tmp_path, postgres_url):
    kb_a = await ingested(tmp_path / "a", tmp_path / "corpus", runs_url=postgres_url)
    kb_b = await ingested(tmp_path / "b", tmp_path / "corpus", runs_url=postgres_url)  # same documents
    try:
        events = [e async for e in Researcher(kb_a, approve_plan=True).stream(QUESTION)]
        assert isinstance(events[-1], PlanEvent) and events[-1].awaiting_approval
        run_id = events[-1].run_id
        other = Researcher(kb_b, approve_plan=True)
        with pytest.raises(ForeignRun, match=f"run {run_id} belongs to another knowledge base \\({tmp_path / 'a'}\\)"):
            await other.resume(run_id)
        with pytest.raises(ForeignRun):
            await other.pending_plan(run_id)
        with pytest.raises(ForeignRun):  # nor may a new run take over its id
            [e async for e in other.stream(QUESTION, run_id=run_id)]
        assert run_id not in {r.run_id for r in await other.runs()}

        # Its own knowledge base approves the plan from a new Researcher (as another process would).
        owner = Researcher(kb_a, approve_plan=True)
        plan = await owner.pending_plan(run_id)
        report = await owner.resume(run_id, plan=plan)
        assert report.references
        assert {r.run_id: r.status for r in await owner.runs()} == {run_id: "done"}
    finally:
        await kb_a.close()
        await kb_b.close()

    refused = dossier(["--kb", str(tmp_path / "b"), "resume", run_id], cli_env(postgres_url))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: run {run_id} belongs to another knowledge base"), refused.stderr
    assert password_of(postgres_url) not in refused.stdout + refused.stderr


# -- `dossier runs` on both stores --------------------------------------------------------------

@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_dossier_runs_lists_runs_on_both_stores(store, kb_dir, request, monkeypatch, capsys):
    url = request.getfixturevalue("postgres_url") if store == "postgres" else None
    for name, value in cli_env(url).items():
        if name.startswith("DOSSIER_"):
            monkeypatch.setenv(name, value)
    assert main(["--kb", str(kb_dir), "runs"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    assert main(["--kb", str(kb_dir), "report", QUESTION, "-q"]) == 0
    assert main(["--kb", str(kb_dir), "runs"]) == 0
    out = capsys.readouterr().out
    (run_id, status), = listed(out).items()
    assert status == "done" and QUESTION in out
    assert (kb_dir / "runs.sqlite").exists() == (store == "sqlite")
    assert (kb_dir / "kb_id").exists() == (store == "postgres")  # the SQLite store is left exactly as it was
    assert main(["--kb", str(kb_dir), "resume", run_id, "-q"]) == 0  # a finished run: its report again
    assert "## References" in capsys.readouterr().out


# -- the password is never shown ----------------------------------------------------------------

def test_a_wrong_password_is_said_without_any_password(kb_dir, postgres_url, monkeypatch, capsys):
    wrong = postgres_url.replace(password_of(postgres_url), "not-the-password-4711")
    monkeypatch.setenv("DOSSIER_RUNS_URL", wrong)
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    assert main(["--kb", str(kb_dir), "runs"]) == 1
    err = capsys.readouterr().err
    assert "error: cannot use the run store postgresql://dossier:***@127.0.0.1:" in err, err
    assert "password authentication failed" in err
    assert "not-the-password-4711" not in err and password_of(postgres_url) not in err


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:s3cret@db:5432/runs", "postgresql://u:***@db:5432/runs"),
    ("postgresql://u:p%40ss@db/runs?sslmode=require", "postgresql://u:***@db/runs?sslmode=require"),
    ("postgres://db/runs?user=u&password=s3cret", "postgres://db/runs?user=u&password=***"),
    ("postgresql://u@db/runs", "postgresql://u@db/runs"),
])
def test_safe_url_masks_the_password(url, shown):
    from dossier.runs_postgres import safe_url

    assert safe_url(url) == shown


def test_runs_url_must_be_postgresql():
    with pytest.raises(ValidationError, match="must be a postgresql://") as caught:
        Settings(runs_url="mysql://u:s3cret-password@db/runs")
    assert "s3cret-password" not in str(caught.value)
    assert repr(Settings(runs_url="postgresql://u:s3cret-password@db/runs")).count("s3cret-password") == 0
