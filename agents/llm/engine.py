"""The LLM engine: structured output for plan/reflect/outline, tool calling for research, streaming for write."""

from __future__ import annotations

import json
from typing import Any, Mapping

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from agents.config import EngineSettings
from agents.engine import ResearchTask
from agents.llm.client import ChatClient, MalformedOutput, make_chat_model
from agents.llm.prompts import LANGUAGE_NAMES, OUTLINE, PLAN, REFLECT, RESEARCH, WRITE
from agents.llm.schemas import TOOLS, EvidenceReview, ReportOutline, ResearchPlan
from agents.toolbox import Toolbox, catalog_line
from agents.trace import Trace
from tools.evidence import Evidence
from tools.models import TableInfo
from tools.research_models import (
    Contradiction, Finding, Gap, Outline, Plan, Reflection, Section, SectionPlan, SubQuestion,
)

EVIDENCE_CHARS = 700  # per passage in reflection/outline/write prompts
EMPTY_REASK = "Your answer was empty. Write the section now, citing the evidence as instructed."


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
                                 stream_retries=settings.llm_max_retries)

    def models(self) -> dict[str, str]:
        return {role: _model_name(m) for role, m in self.client.models.items()}

    async def plan(self, question: str, *, catalog: list[TableInfo], language: str, max_sub_questions: int,
                   trace: Trace) -> Plan:
        messages = PLAN.format_messages(
            min_n=2, max_n=max_sub_questions, question=question, language_name=LANGUAGE_NAMES[language],
            catalog="\n".join(catalog_line(t) for t in catalog) or "(no tables)",
        )
        out = await self.client.structured("fast", ResearchPlan, messages, trace)
        subs = [SubQuestion(id=f"q{i}", **sq.model_dump()) for i, sq in enumerate(out.sub_questions[:max_sub_questions], 1)]
        if not subs:
            raise ValueError("the plan has no sub-questions")
        return Plan(question=question, language=language, sub_questions=subs, rationale=out.rationale)

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding:
        gap = f"Still missing: {task.gap.description}. Try: {task.gap.follow_up_queries}" if task.gap else ""
        messages: list[BaseMessage] = RESEARCH.format_messages(
            question=task.question, sub_question_id=task.sub_question.id, sub_question=task.sub_question.question,
            gap=gap,
        )
        tools = list(TOOLS.values())
        note = ""
        unparsable_turns = 0
        for _ in range(self.settings.max_tool_steps):
            reply = await self.client.invoke("fast", messages, trace, tools=tools)
            messages.append(reply)
            if not reply.tool_calls and not reply.invalid_tool_calls:
                note = reply.content if isinstance(reply.content, str) else ""
                break
            unparsable_turns = unparsable_turns + 1 if not reply.tool_calls else 0
            if unparsable_turns > 1:  # re-asked once with the parse error, and still nothing usable
                raise MalformedOutput(f"tool call arguments still unparsable after a re-ask: "
                                      f"{_invalid_call_error(reply.invalid_tool_calls[0])}")
            messages += [await _run_tool(call, toolbox) for call in reply.tool_calls]
            messages += [_invalid_call_message(call) for call in reply.invalid_tool_calls]
        return Finding(sub_question_id=task.sub_question.id, round=task.round, notes=note[:1000])

    async def reflect(self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
                      round: int, trace: Trace) -> Reflection:
        messages = REFLECT.format_messages(question=question, sub_questions=_sub_questions(plan, findings),
                                           evidence=_digest(evidence, _ids(findings)))
        out = await self.client.structured("fast", EvidenceReview, messages, trace)
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
        contradictions = [Contradiction(description=c.description, evidence_ids=[e for e in c.evidence_ids if e in evidence])
                          for c in out.contradictions]
        return Reflection(covered=covered, gaps=gaps, contradictions=contradictions)

    async def outline(self, *, question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence],
                      language: str, reflection: Reflection | None, trace: Trace) -> Outline:
        notes = "\n".join(c.description for c in reflection.contradictions) if reflection else ""
        messages = OUTLINE.format_messages(
            question=question, sub_questions=_sub_questions(plan, findings), evidence=_digest(evidence, _ids(findings)),
            notes=notes or "(none)", language_name=LANGUAGE_NAMES[language],
        )
        out = await self.client.structured("strong", ReportOutline, messages, trace)
        if not out.sections:
            raise ValueError("the outline has no sections")
        sections = [SectionPlan(id=f"s{i}", title=s.title, goal=s.goal, sub_question_ids=s.sub_question_ids,
                                evidence_ids=[e for e in s.evidence_ids if e in evidence])
                    for i, s in enumerate(out.sections, 1)]
        return Outline(title=out.title, sections=sections)

    async def write(self, section: SectionPlan, *, question: str, plan: Plan, evidence: Mapping[str, Evidence],
                    language: str, reflection: Reflection | None, trace: Trace) -> Section:
        ids = section.evidence_ids or sorted(evidence)
        messages = WRITE.format_messages(question=question, title=section.title, goal=section.goal or section.title,
                                         evidence=_digest(evidence, ids), language_name=LANGUAGE_NAMES[language])
        text = await self.client.stream_text("strong", messages, trace)
        if not text.strip():  # an empty completion: ask once more before giving the section up
            text = await self.client.stream_text("strong", [*messages, HumanMessage(EMPTY_REASK)], trace)
        if not text.strip():
            raise ValueError(f"empty section text for {section.title!r}")
        return Section(id=section.id, title=section.title, markdown=text.strip())


async def _run_tool(call: dict, toolbox: Toolbox) -> ToolMessage:
    args = call.get("args") or {}
    name = call["name"]
    try:
        if name == "SearchDocuments":
            outcome = await toolbox.search_documents(str(args["query"]), int(args.get("k") or 6), args.get("source"))
        elif name == "ListTables":
            outcome = await toolbox.list_tables()
        elif name == "DescribeTable":
            outcome = await toolbox.describe_table(str(args["name"]))
        elif name == "RunSql":
            outcome = await toolbox.run_sql(str(args["sql"]))
        else:
            return ToolMessage(f"unknown tool {name!r}; use one of {sorted(TOOLS)}", tool_call_id=call["id"])
    except (KeyError, TypeError, ValueError) as exc:
        return ToolMessage(f"bad arguments for {name}: {exc!r}; check the tool's schema", tool_call_id=call["id"])
    return ToolMessage(outcome.text, tool_call_id=call["id"])


def _invalid_call_message(call: dict) -> ToolMessage:
    return ToolMessage(f"{_invalid_call_error(call)}; call the tool again with valid JSON arguments",
                       tool_call_id=call.get("id") or "invalid")


def _invalid_call_error(call: dict) -> str:
    detail = " ".join(str(call.get("error") or "invalid JSON").split())  # one line: it ends up in the report
    return f"could not parse the arguments of {call.get('name')}: {detail[:300]}"


def _ids(findings: list[Finding]) -> list[str]:
    return sorted({e for f in findings for e in f.evidence_ids})


def _sub_questions(plan: Plan, findings: list[Finding]) -> str:
    lines = []
    for sq in plan.sub_questions:
        ids = sorted({e for f in findings if f.sub_question_id == sq.id for e in f.evidence_ids})
        lines.append(f"{sq.id}: {sq.question} (evidence: {', '.join(ids) or 'none'})")
    return "\n".join(lines)


def _digest(evidence: Mapping[str, Evidence], ids: list[str]) -> str:
    parts = []
    for eid in ids:
        ev = evidence.get(eid)
        if ev is None:
            continue
        body = f"SQL: {ev.sql}\n{ev.text}" if ev.kind == "sql" else ev.text[:EVIDENCE_CHARS]
        parts.append(f"[ev:{ev.id}] {ev.label()}\n{body}")
    return "\n\n".join(parts) or "(no evidence)"


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
