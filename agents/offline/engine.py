"""The offline engine: deterministic planning, retrieval, schema-linked SQL, reflection and writing.

Same question + same knowledge-base version → same report. No model is called.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agents.engine import OutlineTask, PlanTask, ReflectTask, ResearchTask, SummaryTask, WriteTask
from agents.offline.decompose import decompose
from agents.offline.reflect import reflect as reflect_offline
from agents.offline.schema_link import link_schema, relevant_links
from agents.offline.sql_answer import matched_nothing
from agents.offline.sql_build import build_sql
from agents.offline.sql_probe import probed_catalog
from agents.offline.text import use_glossary
from agents.offline.write import SUMMARY, write_section
from agents.offline.write import outline as outline_offline
from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.models import TableInfo
from tools.vocabulary import Finding, Outline, Plan, Reflection, Section

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

    async def plan(self, task: PlanTask, *, trace: Trace) -> Plan:
        with use_glossary(await _glossary(self._kb)):
            plan = decompose(task.question, task.catalog, max_sub_questions=task.max_sub_questions)
        return plan.model_copy(update={"language": task.language})

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding:
        with use_glossary(await _glossary(toolbox.kb)):
            return await self._research(task, toolbox)

    async def _research(self, task: ResearchTask, toolbox: Toolbox) -> Finding:
        for query in _queries(task)[:MAX_QUERIES]:
            await toolbox.search_documents(query)
        if task.sub_question.needs != "documents":
            await self._query_tables(task, toolbox)
        elif not toolbox.evidence and await toolbox.kb.tables():  # no passage at all: the tables are what is left
            await self._query_tables(task, toolbox)
        elif await self._probed_links(task, toolbox):  # a row label the catalog's samples did not show
            await self._query_tables(task, toolbox)
        return Finding(sub_question_id=task.sub_question.id, round=task.round,
                       notes=f"{len(toolbox.calls)} tool calls, {len(toolbox.evidence)} pieces of evidence")

    async def _probed_catalog(self, task: ResearchTask, toolbox: Toolbox) -> list[TableInfo]:
        """The catalog with the question's phrases found as cells added to the samples ("Appliances"
        beyond the samples), memoised per question and tables' content."""
        catalog = await toolbox.kb.tables()
        key = (task.sub_question.question, tuple(f"{t.name}:{t.source_hash}" for t in catalog))
        if key not in self._probed:
            if len(self._probed) >= 256:  # a long-lived engine: keep the memo small
                self._probed.clear()
            self._probed[key] = await probed_catalog(toolbox.kb, task.sub_question.question, catalog)
        return self._probed[key]

    async def _probed_links(self, task: ResearchTask, toolbox: Toolbox) -> bool:
        """A sub-question planned for documents names a value some table holds: ask the tables too."""
        catalog = await self._probed_catalog(task, toolbox)
        return any(link.values for link in relevant_links(link_schema(task.sub_question.question, catalog)))

    async def _query_tables(self, task: ResearchTask, toolbox: Toolbox) -> None:
        text = task.sub_question.question
        if task.gap is not None:
            text += " " + " ".join(task.gap.follow_up_queries)
        catalog = await self._probed_catalog(task, toolbox)
        candidates = [c.sql for c in build_sql(text, catalog)]
        if task.gap is not None:
            candidates = task.gap.follow_up_sql + candidates
        attempts = successes = 0
        for sql in dict.fromkeys(candidates):
            if sql in task.tried_sql:
                continue
            outcome = await toolbox.run_sql(sql)
            # A filtered count of nothing (often the wrong one of several alike tables) is kept as evidence
            # but does not end the search.
            useful = outcome.ok and not any(matched_nothing(ev) for ev in outcome.evidence)
            successes += useful
            attempts += not useful
            if successes >= MAX_SQL_RESULTS or attempts >= MAX_SQL_ATTEMPTS:
                break

    async def reflect(self, task: ReflectTask, *, trace: Trace) -> Reflection:
        with use_glossary(await _glossary(self._kb)):
            return reflect_offline(task.plan, task.findings, task.evidence, round=task.round)

    async def outline(self, task: OutlineTask, *, trace: Trace) -> Outline:
        with use_glossary(await _glossary(self._kb)):
            return outline_offline(task.question, task.plan, task.findings, task.evidence, language=task.language,
                                   reflection=task.reflection)

    async def write(self, task: WriteTask, *, trace: Trace) -> Section:
        """One section from its evidence; the offline writer does not read the outline."""
        with use_glossary(await _glossary(self._kb)):
            return write_section(task.section, question=task.question, plan=task.plan, evidence=task.evidence,
                                 language=task.language, reflection=task.reflection)

    async def summarize(self, task: SummaryTask, *, trace: Trace) -> Section:
        """The section another engine's outline held back to write last (agents.engine.SUMMARY_LAST):
        written as this engine's own executive summary, from the evidence, not from the other sections."""
        ours = replace(task, section=task.section.model_copy(update={"id": SUMMARY}))
        written = await self.write(ours, trace=trace)
        return written.model_copy(update={"id": task.section.id})


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
