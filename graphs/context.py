"""What every node gets at run time besides the state (never checkpointed: rebuilt on resume)."""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

from agents.factory import make_engine
from agents.fallback import FallbackEngine
from graphs.config import ResearchSettings
from tools.knowledge_base import KnowledgeBase


@dataclass
class ResearchContext:
    kb: KnowledgeBase
    engine: FallbackEngine
    settings: ResearchSettings
    approve_plan: bool = False


@dataclass
class ContextOptions:
    """The per-run options a LangGraph Studio / Server caller may pass as ``context`` (JSON-friendly).

    Everything else (knowledge base, engine, budgets) comes from ``DOSSIER_*`` settings on the server.
    """

    approve_plan: bool = False


# Per event loop (LanceDB handles, locks and LLM clients belong to one loop), per settings:
# the opened knowledge base and its engine, shared by every run that has no context of its own.
_Cache = dict[str, tuple[KnowledgeBase, FallbackEngine]]
_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Cache] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def default_context(
    options: ContextOptions | dict[str, Any] | None = None, *, degraded: bool = False,
    settings: ResearchSettings | None = None,
) -> ResearchContext:
    """A context for runs started without one (LangGraph Studio, ``langgraph dev``, LangGraph Server).

    The knowledge base is ``DOSSIER_KB_DIR`` and the engine follows ``DOSSIER_ENGINE`` /
    ``DOSSIER_BASE_URL`` / ``DOSSIER_API_KEY``, exactly as ``dossier.Settings()`` reads them. The KB
    and the engine are made once per event loop and settings; the fallback wrapper is new on every
    call, since its ``degraded`` flag belongs to one run (the nodes derive it from the state).
    """
    settings = settings or ResearchSettings()
    if isinstance(options, dict):
        options = ContextOptions(**{k: v for k, v in options.items() if k in ContextOptions.__dataclass_fields__})
    approve_plan = bool(getattr(options, "approve_plan", False))
    loop = asyncio.get_running_loop()
    key = settings_key(settings)
    async with _locks.setdefault(loop, asyncio.Lock()):
        cache = _shared.setdefault(loop, {})
        if key not in cache:
            kb = await KnowledgeBase.open(settings=settings)
            cache[key] = (kb, make_engine(settings, kb=kb))
        kb, engine = cache[key]
    return ResearchContext(kb=kb, engine=engine.for_run(degraded=degraded), settings=settings,
                           approve_plan=approve_plan)


def settings_key(settings: ResearchSettings) -> str:
    """A cache key for the real settings: the JSON dump masks secrets (two keys would share one engine),
    so the secret values are hashed in. A digest, so the key itself never holds a secret in the clear."""
    secrets = [v.get_secret_value() for v in (getattr(settings, n) for n in type(settings).model_fields)
               if hasattr(v, "get_secret_value")]
    material = "\0".join([settings.model_dump_json(), *secrets])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
