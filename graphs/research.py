"""The research graph: plan → review → research (fan-out) → reflect ⟲ → outline → write (fan-out)
→ summarize (the section written last, if the outline holds one back) → verify → finalize."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graphs.context import ResearchContext
from graphs.nodes import (
    finalize_node,
    outline_node,
    plan_node,
    reflect_node,
    research_node,
    review_node,
    summarize_node,
    verify_node,
    write_node,
)
from graphs.routes import after_reflect, to_research, to_writers
from graphs.state import ResearchState


# The context type is Any: a ResearchContext from dossier.Researcher, but a ContextOptions or nothing in
# LangGraph Studio / Server (graphs.studio swaps the schema; nodes._ctx builds the ResearchContext then).
def build_research_graph() -> StateGraph[ResearchState, Any, ResearchState, ResearchState]:
    graph = StateGraph(ResearchState, context_schema=ResearchContext)
    graph.add_node("plan", plan_node)
    graph.add_node("review", review_node)
    graph.add_node("research", research_node)
    graph.add_node("reflect", reflect_node)
    graph.add_node("outline", outline_node)
    graph.add_node("write", write_node)
    graph.add_node("summarize", summarize_node)
    graph.add_node("verify", verify_node)
    graph.add_node("finalize", finalize_node)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "review")
    graph.add_conditional_edges("review", to_research, ["research"])
    graph.add_edge("research", "reflect")
    graph.add_conditional_edges("reflect", after_reflect, ["research", "outline"])
    graph.add_conditional_edges("outline", to_writers, ["write", "summarize"])
    graph.add_edge("write", "summarize")
    graph.add_edge("summarize", "verify")
    graph.add_edge("verify", "finalize")
    graph.add_edge("finalize", END)
    return graph


def compile_research_graph(
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph[ResearchState, Any, ResearchState, ResearchState]:
    return build_research_graph().compile(checkpointer=checkpointer, name="dossier-research")
