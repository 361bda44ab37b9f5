"""The research graph served by the real LangGraph server: ``langgraph dev`` (in-memory) as a subprocess on
127.0.0.1, driven over HTTP with the official SDK (``langgraph_sdk``), as a team's client or Studio drives it.

One server with the offline engine serves most of the module's tests, one with the LLM engine (a scripted
OpenAI-compatible server on loopback) the last; the knowledge base is a tiny one built here, and nothing
leaves the machine (no LangSmith tracing, no analytics, no version check).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

pytest.importorskip("langgraph_api", reason="the LangGraph server is not installed: pip install -e '.[serve]'")
pytest.importorskip("langgraph_cli", reason="the LangGraph CLI is not installed: pip install -e '.[serve]'")
pytest.importorskip("langgraph_sdk", reason="the LangGraph SDK is not installed: pip install -e '.[serve]'")

from langgraph_sdk import get_client
from langgraph_sdk.schema import Command

from dossier.testing import OpenAIStub, stub_responder
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Report

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 90.0
# The server prints its address; it moves to another port when the one asked for was taken meanwhile.
API_LINE = re.compile(r"API: \S*?(http://127\.0\.0\.1:\d+)")
CITATION = re.compile(r"\[(\d+)\]")
SERVER_ENV = {  # the knowledge base's build settings, a small budget, and nothing sent anywhere
    "DOSSIER_EMBEDDER": "hash", "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8", "DOSSIER_MAX_ROUNDS": "1",
    "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true", "NO_COLOR": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_config(root: Path) -> Path:
    """The repo's langgraph.json with its paths made absolute, so the server runs in ``root``: the in-memory
    server keeps its files in ``./.langgraph_api``. Its ``env`` file is left out: the test sets the env."""
    config = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))
    config["graphs"] = {name: str(REPO / spec.removeprefix("./")) for name, spec in config["graphs"].items()}
    config["dependencies"] = [str((REPO / dep).resolve()) for dep in config["dependencies"]]
    config.pop("env", None)
    path = root / "langgraph.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def server_env(root: Path, settings: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIER_", "LANGSMITH_", "LANGCHAIN_"))}
    home = root / "home"
    return {**keep, **SERVER_ENV, **settings, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config")}


def stop(proc: subprocess.Popen) -> None:
    """The server and anything it started: its own process group, SIGTERM first, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


async def wait_ready(proc: subprocess.Popen, log: Path) -> str:
    """The address the server printed, once it answers there (a port taken by then is not ours to probe)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_tail(log)}")
            if found := API_LINE.search(log.read_text(encoding="utf-8", errors="replace")):
                try:
                    if (await http.get(f"{found.group(1)}/ok")).status_code == 200:
                        return found.group(1)
                except httpx.TransportError:
                    pass
            await asyncio.sleep(0.25)
    pytest.fail(f"langgraph dev was not ready after {READY_TIMEOUT_S:.0f}s:\n{log_tail(log)}")


def log_tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@asynccontextmanager
async def langgraph_dev(root: Path, settings: dict[str, str]) -> AsyncIterator[str]:
    """``langgraph dev`` on 127.0.0.1 in ``root`` with ``settings`` in its env; yields its URL, stops it after."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "server.log"
    command = [sys.executable, "-m", "langgraph_cli", "dev", "--config", str(server_config(root)),
               "--host", "127.0.0.1", "--port", str(free_port()), "--no-browser", "--no-reload"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=root, env=server_env(root, settings), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield await wait_ready(proc, log)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
async def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served-kb")
    with pytest.MonkeyPatch.context() as env:  # module scope: conftest's hermetic_env has not run yet
        for name in [n for n in os.environ if n.startswith("DOSSIER_")]:
            env.delenv(name)
        kb = await KnowledgeBase.open(settings=graph_settings(root / "kb"))
        await kb.ingest(write_corpus(root / "corpus"))
        await kb.close()
    return root / "kb"


@pytest.fixture(scope="module")
async def server(kb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The offline engine's server, shared by the module's tests."""
    root = tmp_path_factory.mktemp("langgraph-dev")
    async with langgraph_dev(root, {"DOSSIER_KB_DIR": str(kb_dir), "DOSSIER_ENGINE": "offline"}) as url:
        yield url


def edit(plan: dict) -> dict:
    """What a reviewer does in a client: drops the last sub-question and rewords the first."""
    first, *middle, _dropped = plan["sub_questions"]
    return {**plan, "sub_questions": [{**first, "question": "How much does a RAG programme cost in CNY?"}, *middle]}


def assert_citations_resolve(report: Report) -> None:
    numbers = {ref.number for ref in report.references}
    cited = {int(n) for section in report.sections for n in CITATION.findall(section.markdown)}
    assert cited and cited <= numbers, (cited, numbers)
    assert {ref.evidence_id for ref in report.references} <= {ev.id for ev in report.evidence}
    assert report.verification.markers_resolved == report.verification.markers_total > 0


async def test_plan_approval_edit_and_resume_over_http(server: str):
    client = get_client(url=server)
    thread = await client.threads.create()
    context = {"approve_plan": True}
    first = [part async for part in client.runs.stream(
        thread["thread_id"], "research", input={"question": QUESTION, "run_id": "served-1"},
        context=context, stream_mode="updates")]
    assert not [p for p in first if p.event == "error"], first
    paused = [p.data["__interrupt__"] for p in first if p.event == "updates" and "__interrupt__" in p.data]
    assert len(paused) == 1 and len(paused[0]) == 1
    payload = paused[0][0]["value"]  # plain JSON: what a client shows a reviewer and edits
    assert payload["run_id"] == "served-1" and len(payload["plan"]["sub_questions"]) >= 2

    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"] and "report" not in state["values"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"

    edited = edit(payload["plan"])
    # resumed WITHOUT the context: the run itself remembers that it waits for review (state review_requested)
    resumed = [part async for part in client.runs.stream(
        thread["thread_id"], "research", command=Command(resume=edited), stream_mode="updates")]
    assert not [p for p in resumed if p.event == "error"], resumed
    values = (await client.threads.get_state(thread["thread_id"]))["values"]
    report = Report.model_validate(values["report"])
    assert report.run_id == "served-1"
    assert report.plan.model_dump(mode="json") == edited
    assert {f["sub_question_id"] for f in values["findings"]} == {sq["id"] for sq in edited["sub_questions"]}
    assert_citations_resolve(report)
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_an_assistant_carries_plan_approval_into_the_resume(server: str):
    """A team's "reviewed" assistant: its context reaches every run on it, the resume included, so a client
    resumes with the edited plan alone (a run's own context would have to be sent again with the resume)."""
    client = get_client(url=server)
    reviewed = await client.assistants.create("research", context={"approve_plan": True}, name="research-reviewed")
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], reviewed["assistant_id"], input={"question": QUESTION})
    plan = (await client.threads.get_state(thread["thread_id"]))["interrupts"][0]["value"]["plan"]
    edited = edit(plan)
    values = await client.runs.wait(thread["thread_id"], reviewed["assistant_id"], command=Command(resume=edited))
    assert Report.model_validate(values["report"]).plan.model_dump(mode="json") == edited


async def test_plain_run_returns_a_report(server: str):
    client = get_client(url=server)
    values = await client.runs.wait(None, "research", input={"question": QUESTION, "run_id": "served-2"})
    report = Report.model_validate(values["report"])
    assert report.run_id == "served-2" and report.engine == "offline"
    assert report.sections and report.references
    assert {e.kind for e in report.evidence} == {"passage", "sql"}
    assert_citations_resolve(report)


async def test_llm_engine_from_the_servers_settings(kb_dir: Path, tmp_path: Path):
    """The LLM engine as a deployment sets it (``DOSSIER_ENGINE=llm`` + an OpenAI-compatible server: here a
    scripted one on loopback), with the dev server's blocking-call detector on."""
    with OpenAIStub(stub_responder(AnalystScript())) as stub:
        settings = {"DOSSIER_KB_DIR": str(kb_dir), "DOSSIER_ENGINE": "llm", "DOSSIER_BASE_URL": stub.base_url,
                    "DOSSIER_API_KEY": "sk-test", "DOSSIER_MODEL_FAST": "stub-model",
                    "DOSSIER_MODEL_STRONG": "stub-model"}
        async with langgraph_dev(tmp_path / "llm-server", settings) as url:
            values = await get_client(url=url).runs.wait(None, "research", input={"question": QUESTION})
        assert stub.chat_requests
    report = Report.model_validate(values["report"])
    assert report.engine == "llm" and report.models == {"fast": "stub-model", "strong": "stub-model"}
    assert not report.failures
    assert_citations_resolve(report)
