"""The research graph's typed state and the reducers that merge parallel branches' updates."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic (LangGraph Studio's input form) rejects typing.TypedDict on 3.11

from tools import vocabulary
from tools.vocabulary import (
    Evidence,
    Finding,
    Gap,
    Outline,
    Plan,
    Reference,
    Reflection,
    Report,
    Section,
    SectionPlan,
    SubQuestion,
    Usage,
    Verification,
)


def merge_evidence(left: dict[str, Evidence] | None, right: dict[str, Evidence] | None) -> dict[str, Evidence]:
    # Ids are content hashes: the same id from two branches is the same evidence, so a union is exact.
    return {**(left or {}), **(right or {})}


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    return (left or Usage()).add(right or Usage())


def add_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    merged = dict(left or {})
    for stage, seconds in (right or {}).items():
        merged[stage] = round(merged.get(stage, 0.0) + seconds, 4)
    return merged


class ResearchState(TypedDict, total=False):
    run_id: str
    question: str
    language: str
    started_at: float  # epoch seconds, for the time budget
    kb_version: dict[str, Any]  # the knowledge base the run started on: a resume checks it is still the same
    plan: Plan
    review_requested: bool  # plan approval asked when planned: a resume without the context still reviews
    round: int
    evidence: Annotated[dict[str, Evidence], merge_evidence]
    findings: Annotated[list[Finding], operator.add]
    reflection: Reflection
    reflected_round: int
    covered: dict[str, bool]
    pending_gaps: list[Gap]
    stop_reason: str
    outline: Outline
    sections: Annotated[list[Section], operator.add]
    final_sections: list[Section]  # markers resolved to [n] by verify
    references: list[Reference]
    verification: Verification
    usage: Annotated[Usage, add_usage]
    failures: Annotated[list[str], operator.add]
    llm_notes: Annotated[list[str], operator.add]  # structured-output methods, retries, re-asks (Trace.llm_notes)
    timings: Annotated[dict[str, float], add_timings]
    report: Report


class BranchState(TypedDict):
    """What ``Send`` hands one research branch."""

    question: str
    language: str
    sub_question: SubQuestion
    round: int
    gap: Gap | None
    tried_queries: list[str]
    tried_sql: list[str]
    degraded: bool


class WriteState(TypedDict):
    """What ``Send`` hands one section writer."""

    section: SectionPlan
    order: int
    question: str
    language: str
    plan: Plan
    evidence: dict[str, Evidence]
    reflection: Reflection | None
    degraded: bool
    outline: Outline  # what the other sections cover, so a writer does not repeat them


# Every record type of the research vocabulary, as the checkpoint serializer must allow them: derived from
# the module, so a new record type is allowed without a second list to keep.
SERIALIZED_TYPES = [(vocabulary.__name__, name) for name, obj in vars(vocabulary).items()
                    if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == vocabulary.__name__]
