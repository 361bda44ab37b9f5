"""langgraph.json: LangGraph Studio, ``langgraph dev`` and LangGraph Server load a compiled research graph
that runs with no context of its own, building its knowledge base and engine from DOSSIER_* settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from langchain_core.runnables import Runnable
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from dossier.testing import OpenAIStub, stub_responder
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Report

REPO = Path(__file__).resolve().parents[1]


def load_config() -> dict:
    return json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))


def load_graph(name: str = "research"):
    """Import the graph the way the LangGraph server does: the file path and the attribute named in langgraph.json."""
    path, _, attribute = load_config()["graphs"][name].rpartition(":")
    spec = importlib.util.spec_from_file_location(f"langgraph_json_{name}", (REPO / path).resolve())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


@pytest.fixture
async def studio_env(tmp_path, monkeypatch) -> Path:
    """A tiny knowledge base, and the environment a server would run the graph with."""
    kb_dir = tmp_path / "kb"
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    await kb.ingest(write_corpus(tmp_path / "corpus"))
    await kb.close()
    for name, value in {"DOSSIER_KB_DIR": str(kb_dir), "DOSSIER_EMBEDDER": "hash", "DOSSIER_ENGINE": "offline",
                        "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8"}.items():
        monkeypatch.setenv(name, value)
    return kb_dir


def test_config_names_a_compiled_graph_without_checkpointer():
    config = load_config()
    assert config["dependencies"] == ["."]
    assert set(config["graphs"]) == {"research"}
    assert config.get("python_version", "3.11") in {"3.11", "3.12", "3.13"}
    assert isinstance(config.get("env", {}), (str, dict))
    graph = load_graph()
    assert isinstance(graph, CompiledStateGraph) and isinstance(graph, Runnable)
    assert callable(graph.ainvoke) and callable(graph.astream)
    assert graph.checkpointer is None  # the server brings its own persistence
    nodes = set(graph.get_graph().nodes)
    assert {"plan", "review", "research", "reflect", "outline", "write", "verify", "finalize"} <= nodes
    # Studio renders the context schema as a form: it must be JSON-friendly.
    assert set(graph.get_context_jsonschema()["properties"]) == {"approve_plan"}


async def test_graph_runs_end_to_end_without_a_context(studio_env):
    out = await load_graph().ainvoke({"question": QUESTION, "run_id": "studio-1"})
    report = out["report"]
    assert isinstance(report, Report) and report.run_id == "studio-1"
    assert report.sections and report.references
    assert {e.kind for e in report.evidence} == {"passage", "sql"}
    assert report.engine == "offline" and report.kb_version["embedder"].startswith("hash")
    assert report.verification.markers_resolved == report.verification.markers_total > 0


async def test_plan_approval_through_the_server_checkpointer(studio_env):
    served = load_graph().copy(update={"checkpointer": InMemorySaver()})  # what langgraph-api does
    config = {"configurable": {"thread_id": "t1"}}
    context = {"approve_plan": True}  # a run's context arrives as JSON
    paused = await served.ainvoke({"question": QUESTION, "run_id": "studio-2"}, config, context=context)
    assert "report" not in paused and paused["__interrupt__"]
    plan = paused["plan"]
    edited = plan.model_copy(update={"sub_questions": plan.sub_questions[:2]})
    out = await served.ainvoke(Command(resume=edited.model_dump()), config, context=context)
    assert [sq.id for sq in out["report"].plan.sub_questions] == [sq.id for sq in edited.sub_questions]


async def test_llm_engine_from_settings(studio_env, monkeypatch):
    with OpenAIStub(stub_responder(AnalystScript())) as stub:
        for name, value in {"DOSSIER_ENGINE": "llm", "DOSSIER_BASE_URL": stub.base_url, "DOSSIER_API_KEY": "sk-test",
                            "DOSSIER_MODEL_FAST": "stub-model", "DOSSIER_MODEL_STRONG": "stub-model"}.items():
            monkeypatch.setenv(name, value)
        out = await load_graph().ainvoke({"question": QUESTION})
        assert stub.chat_requests
    report = out["report"]
    assert report.engine == "llm" and report.models == {"fast": "stub-model", "strong": "stub-model"}
    assert not report.failures and report.references
