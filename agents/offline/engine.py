"""The offline engine: deterministic planning, retrieval, schema-linked SQL, reflection and writing.

Same question + same knowledge-base version → same report. No model is called.
"""

from __future__ import annotations

from typing import Any, Mapping

from agents.engine import ResearchTask
from agents.offline.decompose import decompose
from agents.offline.reflect import reflect as reflect_offline
from agents.offline.sql_build import build_sql
from agents.offline.sql_probe import probed_catalog
from agents.offline.text import use_glossary
from agents.offline.write import outline as outline_offline
from agents.offline.write import write_section
from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.evidence import Evidence
from tools.models import TableInfo
from tools.research_models import (
    Finding,
    Outline,
    Plan,
    Reflection,
    Section,
    SectionPlan,
)

MAX_QUERIES = 3  # searches per branch and round
MAX_SQL_ATTEMPTS = 3  # failed or empty candidates tried before giving up on tables this round
MAX_SQL_RESULTS = 2  # successful queries kept per branch and round


class OfflineEngine:
    name = "offline"

    def __init__(self, kb: Any = None):
        # The knowledge base whose glossary (its own terms, tools/glossary.py) planning and writing use;
        # research reads it from the toolbox's knowledge base.
        self._kb = kb
        self._probed: dict[tuple[str, tuple[str, ...]], list[TableInfo]] = {}  # later rounds ask again

    def models(self) -> dict[str, str]:
        return {}

    async def plan(
        self, question: str, *, catalog: list[TableInfo], language: str, max_sub_questions: int, trace: Trace
    ) -> Plan:
        with use_glossary(await _glossary(self._kb)):
            plan = decompose(question, catalog, max_sub_questions=max_sub_questions)
        return plan.model_copy(update={"language": language})

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding:
        with use_glossary(await _glossary(toolbox.kb)):
            return await self._research(task, toolbox)

    async def _research(self, task: ResearchTask, toolbox: Toolbox) -> Finding:
        for query in _queries(task)[:MAX_QUERIES]:
            await toolbox.search_documents(query)
        if task.sub_question.needs != "documents":
            await self._query_tables(task, toolbox)
        return Finding(sub_question_id=task.sub_question.id, round=task.round,
                       notes=f"{len(toolbox.calls)} tool calls, {len(toolbox.evidence)} pieces of evidence")

    async def _query_tables(self, task: ResearchTask, toolbox: Toolbox) -> None:
        catalog = await toolbox.kb.tables()
        text = task.sub_question.question
        if task.gap is not None:
            text += " " + " ".join(task.gap.follow_up_queries)
        # Row labels beyond the catalog's samples ("Appliances") are looked up in the tables first.
        key = (task.sub_question.question, tuple(f"{t.name}:{t.source_hash}" for t in catalog))
        if key not in self._probed:
            if len(self._probed) >= 256:  # a long-lived engine: keep the memo small
                self._probed.clear()
            self._probed[key] = await probed_catalog(toolbox.kb, task.sub_question.question, catalog)
        catalog = self._probed[key]
        candidates = [c.sql for c in build_sql(text, catalog)]
        if task.gap is not None:
            candidates = task.gap.follow_up_sql + candidates
        attempts = successes = 0
        for sql in dict.fromkeys(candidates):
            if sql in task.tried_sql:
                continue
            outcome = await toolbox.run_sql(sql)
            successes += outcome.ok
            attempts += not outcome.ok
            if successes >= MAX_SQL_RESULTS or attempts >= MAX_SQL_ATTEMPTS:
                break

    async def reflect(
        self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
        round: int, trace: Trace,
    ) -> Reflection:
        with use_glossary(await _glossary(self._kb)):
            return reflect_offline(plan, findings, evidence, round=round)

    async def outline(
        self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
        language: str, reflection: Reflection | None, trace: Trace,
    ) -> Outline:
        with use_glossary(await _glossary(self._kb)):
            return outline_offline(question, plan, findings, evidence, language=language, reflection=reflection)

    async def write(
        self, section: SectionPlan, *, question: str, plan: Plan, evidence: Mapping[str, Evidence],
        language: str, reflection: Reflection | None, trace: Trace,
    ) -> Section:
        with use_glossary(await _glossary(self._kb)):
            return write_section(section, question=question, plan=plan, evidence=evidence, language=language,
                                 reflection=reflection)


async def _glossary(kb: Any) -> list:
    """The knowledge base's glossary entries; none for a knowledge base (or test double) without one."""
    load = getattr(kb, "glossary", None)
    return list(await load()) if load is not None else []


def _queries(task: ResearchTask) -> list[str]:
    """Gap follow-ups first (they target what is missing), then the plan's queries, never repeats."""
    candidates = list(task.gap.follow_up_queries) if task.gap else []
    candidates += task.sub_question.queries or [task.sub_question.question]
    tried = set(task.tried_queries)
    return [q for q in dict.fromkeys(candidates) if q.strip() and q not in tried]
