"""The research graph as LangGraph Studio, ``langgraph dev`` and LangGraph Server load it (see langgraph.json).

It is the same graph ``dossier.Researcher`` runs, compiled without a checkpointer (the server
provides persistence) and with a JSON-friendly context schema: a run carries at most
``{"approve_plan": true}`` as its context, and every node builds the rest -- the knowledge base in
``DOSSIER_KB_DIR``, the engine, the budgets -- from ``DOSSIER_*`` settings (``graphs.context.default_context``).

    await graph.ainvoke({"question": "What does RAG cost?", "run_id": "r1"})   # -> {"report": Report, ...}

With ``approve_plan`` the run pauses after planning; resume it with ``Command(resume=True)`` or with an
edited plan (``Command(resume=plan.model_dump())``), as Studio's interrupt panel does. The interrupt's
value is plain JSON, ``{"run_id": ..., "plan": {...}}``. The run remembers that it waits for review
(``review_requested`` in its state), so a resume needs no context of its own. Served over HTTP:
docs/serving.md, tests/test_langgraph_server.py.
"""

from __future__ import annotations

from langgraph.graph.state import CompiledStateGraph

from graphs.context import ContextOptions
from graphs.research import build_research_graph


def make_graph() -> CompiledStateGraph:
    builder = build_research_graph()
    # Studio renders the context schema as a form and the server coerces a run's context dict into it;
    # ResearchContext holds live objects (KB, engine), so the served graph takes ContextOptions instead.
    builder.context_schema = ContextOptions
    return builder.compile(name="dossier-research")


graph = make_graph()
