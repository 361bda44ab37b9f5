"""The one place an engine is assembled from settings (the CLI, the Python API and LangGraph Server use it)."""

from __future__ import annotations

from typing import Any

from agents.config import EngineSettings
from agents.fallback import FallbackEngine
from agents.offline.engine import OfflineEngine


def make_engine(settings: EngineSettings, chat_models: dict[str, Any] | None = None, *,
                kb: Any = None) -> FallbackEngine:
    """The engine the settings ask for: the LLM engine with the offline engine behind it, or the offline
    engine alone. ``chat_models`` ({"fast": model, "strong": model}; tests pass scripted ones) stand in
    for the configured server. ``kb`` is the knowledge base whose glossary the offline engine uses.
    The result is not degraded; a run that resumes after a fall back takes ``.for_run(degraded=True)``."""
    offline = OfflineEngine(kb)
    if not settings.uses_llm() and chat_models is None:
        return FallbackEngine(offline, offline, enabled=False)
    from agents.llm.engine import LLMEngine  # imported only when an LLM is configured (CLI start-up time)

    primary = LLMEngine(settings, chat_models=chat_models)
    return FallbackEngine(primary, offline, enabled=settings.fallback_offline)
