"""Typed routes: where the run goes after planning, reflection and outlining."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from agents.engine import SUMMARY_LAST
from graphs.state import BranchState, ResearchState, WriteState
from tools.vocabulary import Finding, Gap, SubQuestion


def to_research(state: ResearchState) -> list[Send]:
    """Round 1: one branch per sub-question of the (possibly edited) plan."""
    return [_branch(state, sq, None) for sq in state["plan"].sub_questions]


def after_reflect(state: ResearchState) -> list[Send] | Literal["outline"]:
    if state.get("stop_reason"):
        return "outline"
    by_id = {sq.id: sq for sq in state["plan"].sub_questions}
    sends = [_branch(state, by_id[g.sub_question_id], g) for g in state.get("pending_gaps", [])
             if g.sub_question_id in by_id]
    return sends or "outline"


def to_writers(state: ResearchState) -> list[Send] | Literal["summarize"]:
    """One writer per section, in parallel; the section written last waits for them (``summarize``)."""
    sends = [
        Send("write", WriteState(
            section=section, order=i, question=state["question"], language=state["language"],
            plan=state["plan"], evidence=state["evidence"], reflection=state.get("reflection"),
            degraded=bool(state.get("failures")), outline=state["outline"],
        ))
        for i, section in enumerate(state["outline"].sections) if section.id != SUMMARY_LAST
    ]
    return sends or "summarize"


def _branch(state: ResearchState, sq: SubQuestion, gap: Gap | None) -> Send:
    past = [f for f in state.get("findings", []) if f.sub_question_id == sq.id]
    return Send("research", BranchState(
        question=state["question"], language=state["language"], sub_question=sq, round=state["round"],
        gap=gap, tried_queries=_tried(past, "search_documents", "query"), tried_sql=_tried(past, "run_sql", "sql"),
        degraded=bool(state.get("failures")),
    ))


def _tried(findings: list[Finding], tool: str, arg: str) -> list[str]:
    return [str(c.arguments.get(arg)) for f in findings for c in f.tool_calls if c.tool == tool]
