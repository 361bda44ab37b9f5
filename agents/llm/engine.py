"""The LLM engine: structured output for plan/reflect/outline, tool calling for research, streaming for write.

Every prompt is fitted to the model's context window (agents/llm/budget.py). Research gathers
evidence even from a model that never calls a tool (agents/llm/research.py). The executive summary
is planned by the outline but written last, from the written sections (``summarize``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from agents.config import EngineSettings
from agents.engine import SUMMARY_LAST, OutlineTask, PlanTask, ReflectTask, ResearchTask, SummaryTask, WriteTask
from agents.llm.budget import cut_tokens, estimate_tokens, fit_evidence, fit_lines, messages_tokens, prompt_budget
from agents.llm.client import ChatClient, make_chat_model
from agents.llm.prompts import LANGUAGE_NAMES, OUTLINE, PLAN, REFLECT, SUMMARY, WRITE
from agents.llm.research import research as research_branch
from agents.llm.schemas import EvidenceReview, ReportOutline, ResearchPlan
from agents.offline.item import item_named
from agents.offline.summary import write_summary
from agents.offline.support import holds_nothing
from agents.toolbox import Toolbox, catalog_line
from agents.trace import Trace
from tools.vocabulary import (
    Contradiction,
    Evidence,
    Finding,
    Gap,
    Outline,
    Plan,
    Reflection,
    Section,
    SectionPlan,
    SubQuestion,
)

EMPTY_REASK = "Your answer was empty. Write the section now, citing the evidence as instructed."
SUMMARY_TITLE = {"en": "Executive summary", "zh": "摘要"}
MAX_LISTED_IDS = 20  # evidence ids listed per sub-question: the digest below shows the rest that fit
SECTIONS_SHARE = 0.6  # of the summary prompt's room left for the written sections; the rest is evidence
_SUMMARY_LIKE = re.compile(r"executive summary|^summary$|^overview$|摘要|概要|总结|概述", re.IGNORECASE)


class LLMEngine:
    name = "llm"

    def __init__(self, settings: EngineSettings, *, chat_models: dict[str, Any] | None = None) -> None:
        self.settings = settings
        models = chat_models or {"fast": make_chat_model(settings, settings.model_fast),
                                 "strong": make_chat_model(settings, settings.model_strong)}
        prices = None
        if settings.price_per_1k_prompt_usd is not None or settings.price_per_1k_completion_usd is not None:
            prices = (settings.price_per_1k_prompt_usd or 0.0, settings.price_per_1k_completion_usd or 0.0)
        self.client = ChatClient(models, concurrency=settings.llm_concurrency, prices=prices,
                                 stream_retries=settings.llm_max_retries, settings=settings)

    def models(self) -> dict[str, str]:
        return {role: _model_name(m) for role, m in self.client.models.items()}

    async def plan(self, task: PlanTask, *, trace: Trace) -> Plan:
        most = task.max_sub_questions
        fields = dict(min_n=2, max_n=most, question=task.question, language_name=LANGUAGE_NAMES[task.language])
        room = self._room("plan", PLAN.format_messages(catalog="", **fields))
        lines = fit_lines([catalog_line(t) for t in task.catalog], room)
        out = await self.client.structured("fast", ResearchPlan, PLAN.format_messages(
            catalog=lines or "(no tables)", **fields), trace)
        subs = [SubQuestion(id=f"q{i}", **sq.model_dump()) for i, sq in enumerate(out.sub_questions[:most], 1)]
        if not subs:
            raise ValueError("the plan has no sub-questions")
        return Plan(question=task.question, language=task.language, sub_questions=subs, rationale=out.rationale)

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding:
        return await research_branch(self.client, self.settings, task, toolbox=toolbox, trace=trace)

    async def reflect(self, task: ReflectTask, *, trace: Trace) -> Reflection:
        question, plan, evidence = task.question, task.plan, task.evidence
        subs = _sub_questions(plan, task.findings)
        digest = self._evidence("reflect", REFLECT, dict(question=question, sub_questions=subs), evidence,
                                _ids(task.findings), focus=_focus(question, plan))
        out = await self.client.structured("fast", EvidenceReview, REFLECT.format_messages(
            question=question, sub_questions=subs, evidence=digest), trace)
        known = {sq.id for sq in plan.sub_questions}
        covered = {sq.id: False for sq in plan.sub_questions}
        gaps = []
        for review in out.reviews:
            if review.sub_question_id not in known:
                continue
            covered[review.sub_question_id] = review.answered
            if not review.answered:
                gaps.append(Gap(sub_question_id=review.sub_question_id, description=review.gap or "not answered",
                                follow_up_queries=review.follow_up_queries, follow_up_sql=review.follow_up_sql))
        contradictions = [Contradiction(description=c.description,
                                        evidence_ids=[e for e in c.evidence_ids if e in evidence])
                          for c in out.contradictions]
        return Reflection(covered=covered, gaps=gaps, contradictions=contradictions)

    async def outline(self, task: OutlineTask, *, trace: Trace) -> Outline:
        question, plan, findings, evidence = task.question, task.plan, task.findings, task.evidence
        language = task.language
        notes = "\n".join(c.description for c in task.reflection.contradictions) if task.reflection else ""
        fields = dict(question=question, sub_questions=_sub_questions(plan, findings), notes=notes or "(none)",
                      language_name=LANGUAGE_NAMES[language])
        digest = self._evidence("outline", OUTLINE, fields, evidence, _ids(findings), focus=_focus(question, plan))
        out = await self.client.structured("strong", ReportOutline, OUTLINE.format_messages(evidence=digest, **fields),
                                           trace)
        body = [s for s in out.sections if not _SUMMARY_LIKE.search(s.title.strip())]  # the summary is ours
        if not body:
            raise ValueError("the outline has no sections")
        sections = [SectionPlan(id=f"s{i}", title=s.title, goal=s.goal, sub_question_ids=s.sub_question_ids,
                                evidence_ids=[e for e in s.evidence_ids if e in evidence])
                    for i, s in enumerate(body, 1)]
        summary = SectionPlan(id=SUMMARY_LAST, title=SUMMARY_TITLE.get(language, SUMMARY_TITLE["en"]),
                              goal="The direct answer to the question.",
                              sub_question_ids=[sq.id for sq in plan.sub_questions], evidence_ids=_ids(findings))
        return Outline(title=out.title, sections=[summary, *sections])

    async def write(self, task: WriteTask, *, trace: Trace) -> Section:
        section, evidence = task.section, task.evidence
        fields = dict(question=task.question, title=section.title, goal=section.goal or section.title,
                      others=_others(section, task.outline), language_name=LANGUAGE_NAMES[task.language])
        focus = " ".join([section.title, section.goal, *_questions(task.plan, section.sub_question_ids)])
        digest = self._evidence("write", WRITE, fields, evidence, section.evidence_ids or sorted(evidence), focus=focus)
        text = await self._text(WRITE.format_messages(evidence=digest, **fields), trace)
        if not text:
            raise ValueError(f"empty section text for {section.title!r}")
        return Section(id=section.id, title=section.title, markdown=text)

    async def summarize(self, task: SummaryTask, *, trace: Trace) -> Section:
        """The executive summary, written last: the answer first, from the sections and the evidence.
        When the evidence holds nothing on the question (a name it asks about is in no piece, no piece
        reaches the support bar, or no piece names the item a figure question is about), the summary is
        the offline engine's abstention, decided in code: the prompt asks the model to abstain, but a
        small model writes a confident answer from unrelated passages."""
        section, evidence = task.section, task.evidence
        pieces = list(evidence.values())
        if holds_nothing(task.question, pieces) or not item_named(task.question, pieces):
            trace.llm_notes.append("summary: the evidence holds nothing on the question; abstained in code")
            text = write_summary(task.question, [], pieces, [], task.language)
            return Section(id=section.id, title=section.title, markdown=text)
        fields = dict(question=task.question, language_name=LANGUAGE_NAMES[task.language])
        room = self._room("write", SUMMARY.format_messages(sections="", evidence="", **fields))  # a write step
        written = _sections_text(task.sections, int(room * SECTIONS_SHARE))
        digest = fit_evidence(evidence, section.evidence_ids or sorted(evidence), focus=task.question,
                              budget=room - estimate_tokens(written)).text
        text = await self._text(SUMMARY.format_messages(sections=written or "(none)", evidence=digest, **fields),
                                trace)
        if not text:
            raise ValueError("empty executive summary")
        return Section(id=section.id, title=section.title, markdown=text)

    async def _text(self, messages: list[BaseMessage], trace: Trace) -> str:
        text = await self.client.stream_text("strong", messages, trace)
        if not text.strip():  # an empty completion: ask once more before giving the section up
            text = await self.client.stream_text("strong", [*messages, HumanMessage(EMPTY_REASK)], trace)
        return text.strip()

    def _room(self, role: str, empty_prompt: list[BaseMessage]) -> int:
        """Tokens left for the variable part of a role's prompt."""
        return max(0, prompt_budget(self.settings, role) - messages_tokens(empty_prompt))

    def _evidence(self, role: str, prompt: Any, fields: dict[str, Any], evidence: Mapping[str, Evidence],
                  ids: list[str], *, focus: str) -> str:
        room = self._room(role, prompt.format_messages(evidence="", **fields))
        return fit_evidence(evidence, ids, focus=focus, budget=room).text


def _ids(findings: list[Finding]) -> list[str]:
    return sorted({e for f in findings for e in f.evidence_ids})


def _focus(question: str, plan: Plan) -> str:
    return " ".join([question, *(sq.question for sq in plan.sub_questions)])


def _questions(plan: Plan, ids: list[str]) -> list[str]:
    return [sq.question for sq in plan.sub_questions if sq.id in ids]


def _sub_questions(plan: Plan, findings: list[Finding]) -> str:
    lines = []
    for sq in plan.sub_questions:
        ids = sorted({e for f in findings if f.sub_question_id == sq.id for e in f.evidence_ids})
        more = f" and {len(ids) - MAX_LISTED_IDS} more" if len(ids) > MAX_LISTED_IDS else ""
        lines.append(f"{sq.id}: {sq.question} (evidence: {', '.join(ids[:MAX_LISTED_IDS]) or 'none'}{more})")
    return "\n".join(lines)


def _others(section: SectionPlan, outline: Outline | None) -> str:
    """One line per other body section: what it covers, so this one does not repeat it."""
    others = [s for s in (outline.sections if outline else []) if s.id not in (section.id, SUMMARY_LAST)]
    return "\n".join(f"- {s.title}: {s.goal or s.title}" for s in others) or "(none)"


def _sections_text(sections: list[Section], budget: int) -> str:
    """The written sections, in report order, each shortened at a sentence boundary to its share."""
    body = [s for s in sorted(sections, key=lambda s: s.order) if s.id != SUMMARY_LAST]
    share = budget // max(1, len(body))
    return "\n\n".join(f"## {s.title}\n{cut_tokens(s.markdown, max(0, share - estimate_tokens(s.title) - 4))}"
                       for s in body)


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
