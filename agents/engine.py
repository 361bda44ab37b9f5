"""The contract every engine fulfils: the same six roles, each with one typed signature.

The graph calls these roles and never knows which engine answers, so settings can pick the engine
per run and a failing LLM engine can hand the rest of a run to the offline engine. Each role's inputs
are one dataclass below (the graph fills it from the state), so the list of what a role reads is
written once, here, and not again in every engine and in the fallback wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.models import TableInfo
from tools.vocabulary import Evidence, Finding, Gap, Outline, Plan, Reflection, Section, SectionPlan, SubQuestion

# The id of a section an outline may plan to be written after all the others, from their text: the
# graph holds it back from the parallel writers and hands it, with the written sections, to
# ``summarize``.
SUMMARY_LAST = "exec-summary"


@dataclass(kw_only=True)
class PlanTask:
    """The planner's input: the question and the tables it may plan SQL over."""

    question: str
    catalog: list[TableInfo]
    language: str
    max_sub_questions: int


@dataclass
class ResearchTask:
    """One branch's assignment: a sub-question in a round, with the gap that sent it back, if any."""

    question: str
    sub_question: SubQuestion
    round: int
    language: str
    gap: Gap | None = None
    tried_queries: list[str] = field(default_factory=list)
    tried_sql: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class ReflectTask:
    """The reflector's input: what every branch found so far, after one round."""

    question: str
    plan: Plan
    findings: list[Finding]
    evidence: Mapping[str, Evidence]
    round: int


@dataclass(kw_only=True)
class OutlineTask:
    """The outliner's input: everything found, and the last reflection's contradictions, if any."""

    question: str
    plan: Plan
    findings: list[Finding]
    evidence: Mapping[str, Evidence]
    language: str
    reflection: Reflection | None


@dataclass(kw_only=True)
class WriteTask:
    """One section to write. ``outline`` lets a writer say what the other sections cover."""

    section: SectionPlan
    question: str
    plan: Plan
    evidence: Mapping[str, Evidence]
    language: str
    reflection: Reflection | None
    outline: Outline | None = None


@dataclass(kw_only=True)
class SummaryTask(WriteTask):
    """The section written last (``SUMMARY_LAST``), with the sections already written."""

    sections: list[Section]


class Engine(Protocol):
    name: str

    def models(self) -> dict[str, str]: ...

    async def plan(self, task: PlanTask, *, trace: Trace) -> Plan: ...

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding: ...

    async def reflect(self, task: ReflectTask, *, trace: Trace) -> Reflection: ...

    async def outline(self, task: OutlineTask, *, trace: Trace) -> Outline: ...

    async def write(self, task: WriteTask, *, trace: Trace) -> Section: ...

    async def summarize(self, task: SummaryTask, *, trace: Trace) -> Section: ...
