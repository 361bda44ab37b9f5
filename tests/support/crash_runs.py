"""Helpers for tests/test_crash_resume.py: run the hooked CLI, read its event log, and read what a
killed run had checkpointed, in the hook's units (see tests/support/crash_hook.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import lancedb
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from dossier.research import Researcher
from graphs.research import compile_research_graph
from graphs.state import SERIALIZED_TYPES
from tests.graph_fixtures import graph_settings
from tests.support import crash_hook
from tools.knowledge_base import KnowledgeBase

REPO = Path(__file__).resolve().parents[2]
KILLED = -signal.SIGKILL  # a subprocess's exit status after SIGKILL


# -- subprocesses and logs ---------------------------------------------------------------------

def cli_env(log: Path | None = None, kill_at: str | None = None, flush_chunks: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOSSIER_EMBEDDER": "hash", "DOSSIER_ENGINE": "offline",
           "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8"}
    for name, value in ((crash_hook.ENV_LOG, log), (crash_hook.ENV_KILL_AT, kill_at),
                        (crash_hook.ENV_FLUSH_CHUNKS, flush_chunks)):
        if value is not None:
            env[name] = str(value)
    return env


async def run_cli(slots: asyncio.Semaphore, args: list[Any], env: dict[str, str], *,
                  timeout_s: float = 180) -> tuple[int, str]:
    """The real CLI (with the crash hook) as a subprocess; returns (exit status, stdout + stderr)."""
    async with slots:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.crash_cli", *map(str, args), cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    return proc.returncode, out.decode(errors="replace")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def units_started(log: list[dict]) -> list[str]:
    return [e["unit"] for e in log if e["event"].startswith("node:") and e["event"].endswith(":start")]


def tool_calls(log: list[dict], units: set[str] | None = None) -> Counter:
    """Completed tool executions as (unit, tool, argument), optionally only those of some units."""
    return Counter((e["unit"], e["event"].split(":")[1], e["arg"]) for e in log
                   if e["event"].startswith("tool:") and e["event"].endswith(":end")
                   and (units is None or e["unit"] in units))


# -- checkpoints -------------------------------------------------------------------------------

async def checkpoint_state(kb_dir: Path, run_id: str) -> Any:
    async with AsyncSqliteSaver.from_conn_string(str(kb_dir / "runs.sqlite")) as saver:
        saver.serde = JsonPlusSerializer(allowed_msgpack_modules=SERIALIZED_TYPES)
        return await compile_research_graph(saver).aget_state({"configurable": {"thread_id": run_id}})


def units_in(values: dict) -> set[str]:
    """The units whose results are in a checkpoint: its channel values, or one task's saved writes."""
    units = {f"research:{f.sub_question_id}:r{f.round}" for f in values.get("findings", [])}
    units |= {f"write:{s.order}" for s in values.get("sections", [])}
    units |= {f"reflect:r{r}" for r in range(1, values.get("reflected_round", 0) + 1)}
    units |= {name for name, key in (("plan", "plan"), ("outline", "outline"), ("verify", "final_sections"),
                                     ("finalize", "report")) if key in values}
    return units


async def saved_units(kb_dir: Path, run_id: str) -> set[str]:
    """Units a resume must not run again: done in earlier steps, or done in the current step with
    their writes committed (LangGraph keeps a finished parallel task's writes as pending writes)."""
    state = await checkpoint_state(kb_dir, run_id)
    saved = units_in(state.values)
    if "plan" in saved and not {"plan", "review"} & set(state.next):
        saved.add("review")  # review writes nothing; it is done once the run moved past it
    for task in state.tasks:
        if task.result is not None:
            saved |= units_in(task.result) | ({"review"} if task.name == "review" else set())
    return saved


async def run_status(kb_dir: Path) -> tuple[str, str]:
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    try:
        runs = await Researcher(kb).runs()
    finally:
        await kb.close()
        kb.corpus.close()
    assert len(runs) == 1, f"expected the one killed run in {kb_dir}, found {[r.run_id for r in runs]}"
    return runs[0].run_id, runs[0].status


def copy_kb(template: Path, to: Path) -> Path:
    shutil.copytree(template, to)
    return to


async def chunk_rows(kb_dir: Path) -> list[dict]:
    db = await lancedb.connect_async(str(kb_dir / "lancedb"))
    table = await db.open_table("chunks")
    rows = (await table.query().select(["chunk_id", "doc_id", "source"]).to_arrow()).to_pylist()
    table.close()
    return rows


async def manifest(kb_dir: Path) -> dict[str, Any]:
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    try:
        return await kb.corpus.document_records()
    finally:
        await kb.close()
        kb.corpus.close()
