"""One typed signature per engine role, and one factory that assembles the engine from settings."""

from __future__ import annotations

import inspect

import pytest

from agents.engine import Engine
from agents.factory import make_engine
from agents.fallback import FallbackEngine
from agents.llm.engine import LLMEngine
from agents.offline.engine import OfflineEngine
from tests.graph_fixtures import graph_settings

ROLES = ["models", "plan", "research", "reflect", "outline", "write", "summarize"]


def _signature(method) -> list[tuple]:
    sig = inspect.signature(method)
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()] + [sig.return_annotation]


@pytest.mark.parametrize("engine", [OfflineEngine, LLMEngine, FallbackEngine])
@pytest.mark.parametrize("role", ROLES)
def test_every_engine_has_the_protocols_signature_for_every_role(engine, role):
    assert _signature(getattr(engine, role)) == _signature(getattr(Engine, role)), (engine.__name__, role)


def test_offline_settings_make_the_offline_engine_alone(tmp_path):
    engine = make_engine(graph_settings(tmp_path / "kb"))
    assert isinstance(engine.primary, OfflineEngine) and engine.primary is engine.offline
    assert engine.name == "offline" and not engine.enabled
    resumed = engine.for_run(degraded=True)  # nothing to fall back from: never "fell back to offline"
    assert not resumed.degraded and resumed.primary is engine.primary


def test_llm_settings_make_the_llm_engine_with_the_offline_one_behind(tmp_path):
    settings = graph_settings(tmp_path / "kb", engine="llm", base_url="http://127.0.0.1:9/v1", fallback_offline=False)
    engine = make_engine(settings)
    assert isinstance(engine.primary, LLMEngine) and isinstance(engine.offline, OfflineEngine)
    assert engine.name == "llm" and not engine.enabled and not engine.degraded
    resumed = engine.for_run(degraded=True)
    assert resumed.degraded and resumed.primary is engine.primary and resumed.offline is engine.offline
    assert not engine.degraded  # the shared engine is not the run's


def test_chat_models_make_the_llm_engine_whatever_the_settings_say(tmp_path):
    model = object()  # never called: the engine is only assembled
    engine = make_engine(graph_settings(tmp_path / "kb"), {"fast": model, "strong": model})
    assert isinstance(engine.primary, LLMEngine) and engine.primary.client.models["fast"] is model
    assert engine.enabled  # fallback_offline defaults to on
