"""Typed progress events from a research run, for progress bars and notebook displays."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from tools.vocabulary import Gap, Plan, Report, Verification


class PlanEvent(BaseModel):
    kind: Literal["plan"] = "plan"
    run_id: str
    plan: Plan
    awaiting_approval: bool = False


class ToolCallEvent(BaseModel):
    kind: Literal["tool_call"] = "tool_call"
    sub_question_id: str
    round: int
    tool: str
    arguments: dict[str, Any]
    ok: bool
    summary: str


class EvidenceEvent(BaseModel):
    kind: Literal["evidence"] = "evidence"
    sub_question_id: str
    round: int
    evidence_ids: list[str]


class GapEvent(BaseModel):
    kind: Literal["gap"] = "gap"
    round: int
    covered: dict[str, bool]
    gaps: list[Gap]
    stop_reason: str | None = None


class SectionEvent(BaseModel):
    kind: Literal["section"] = "section"
    section_id: str
    title: str


class VerificationEvent(BaseModel):
    kind: Literal["verification"] = "verification"
    verification: Verification


class FailureEvent(BaseModel):
    kind: Literal["failure"] = "failure"
    message: str


class DoneEvent(BaseModel):
    kind: Literal["done"] = "done"
    report: Report


Event = (
    PlanEvent | ToolCallEvent | EvidenceEvent | GapEvent | SectionEvent | VerificationEvent | FailureEvent | DoneEvent
)


def events_from_update(node: str, update: dict[str, Any], run_id: str) -> list[Event]:
    """Translate one node's state update (LangGraph ``updates`` stream) into progress events."""
    if not update:
        return []
    events: list[Event] = [FailureEvent(message=m) for m in update.get("failures") or []]
    if node == "plan" and "plan" in update:
        events.append(PlanEvent(run_id=run_id, plan=update["plan"]))
    elif node == "research":
        for f in update.get("findings", []):
            events += [ToolCallEvent(sub_question_id=f.sub_question_id, round=f.round, tool=c.tool,
                                     arguments=c.arguments, ok=c.ok, summary=c.summary) for c in f.tool_calls]
            events.append(EvidenceEvent(sub_question_id=f.sub_question_id, round=f.round,
                                        evidence_ids=f.evidence_ids))
    elif node == "reflect" and "reflection" in update:
        r = update["reflection"]
        events.append(GapEvent(round=update.get("reflected_round", 0),
                               covered=r.covered, gaps=r.gaps, stop_reason=update.get("stop_reason")))
    elif node in ("write", "summarize"):
        events += [SectionEvent(section_id=s.id, title=s.title) for s in update.get("sections", [])]
    elif node == "verify" and "verification" in update:
        events.append(VerificationEvent(verification=update["verification"]))
    elif node == "finalize" and "report" in update:
        events.append(DoneEvent(report=update["report"]))
    return events
