"""The contract every engine fulfils: the same five roles with the same signatures.

The graph calls these roles and never knows which engine answers, so settings can pick the engine
per run and a failing LLM engine can hand the rest of a run to the offline engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.evidence import Evidence
from tools.models import TableInfo
from tools.research_models import (
    Finding, Gap, Outline, Plan, Reflection, Section, SectionPlan, SubQuestion,
)


# The id of a section an outline may plan to be written after all the others, from their text: the
# graph holds it back from the parallel writers and hands it, with the written sections, to
# ``summarize`` (an engine without that role writes it like any section; see agents/fallback.py).
SUMMARY_LAST = "exec-summary"


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


class Engine(Protocol):
    name: str

    def models(self) -> dict[str, str]: ...

    async def plan(
        self, question: str, *, catalog: list[TableInfo], language: str, max_sub_questions: int, trace: Trace
    ) -> Plan: ...

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding: ...

    async def reflect(
        self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
        round: int, trace: Trace,
    ) -> Reflection: ...

    async def outline(
        self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
        language: str, reflection: Reflection | None, trace: Trace,
    ) -> Outline: ...

    async def write(
        self, section: SectionPlan, *, question: str, plan: Plan, evidence: Mapping[str, Evidence],
        language: str, reflection: Reflection | None, trace: Trace,
    ) -> Section: ...
