"""What every node gets at run time besides the state (never checkpointed: rebuilt on resume)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.fallback import FallbackEngine
from graphs.config import ResearchSettings
from tools.knowledge_base import KnowledgeBase


@dataclass
class ResearchContext:
    kb: KnowledgeBase
    engine: FallbackEngine
    settings: ResearchSettings
    approve_plan: bool = False
