"""Graph nodes: each unpacks the state, calls one role of the engine, and returns an update.

Nodes never mutate the state they receive, and hold no research logic of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.dedupe import dedupe_sections
from agents.engine import SUMMARY_LAST, OutlineTask, PlanTask, ReflectTask, ResearchTask, SummaryTask, WriteTask
from agents.stopping import decide_stop, new_evidence_in_round
from agents.toolbox import Toolbox
from agents.trace import Trace
from agents.verify import verify_sections
from graphs.context import ResearchContext, default_context
from graphs.report import build_report
from graphs.state import BranchState, ResearchState, WriteState
from tools.text.language import question_language
from tools.vocabulary import Plan

Ctx = Runtime[ResearchContext]


async def _ctx(runtime: Ctx, *, degraded: bool = False) -> ResearchContext:
    """The run's context; a run started without one (LangGraph Studio / Server) gets one from settings."""
    if isinstance(runtime.context, ResearchContext):
        return runtime.context
    return await default_context(runtime.context, degraded=degraded)


@contextmanager
def _traced(stage: str) -> Iterator[tuple[Trace, dict[str, Any]]]:
    trace = Trace()
    update: dict[str, Any] = {}
    started = time.perf_counter()
    yield trace, update
    update["usage"] = trace.usage
    update["failures"] = trace.failures
    update["llm_notes"] = trace.llm_notes + trace.fallbacks  # the report's Method section shows both
    update["timings"] = {stage: time.perf_counter() - started}


async def plan_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime)
    language = question_language(state["question"], ctx.settings.report_language)
    catalog = await ctx.kb.tables()
    with _traced("plan") as (trace, update):
        task = PlanTask(question=state["question"], catalog=catalog, language=language,
                        max_sub_questions=ctx.settings.max_sub_questions)
        plan = await ctx.engine.plan(task, trace=trace)
        update.update(plan=plan, language=language, round=1, started_at=state.get("started_at") or time.time(),
                      review_requested=ctx.approve_plan)
    update["kb_version"] = state.get("kb_version") or asdict(await ctx.kb.version())
    return update


async def review_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    """Plan approval: pause the run here; the caller resumes with the plan it approved or edited.
    Whether to pause was settled when the plan was made: a server client that resumes without sending
    ``approve_plan`` again still gets its edited plan used."""
    if not state.get("review_requested", (await _ctx(runtime)).approve_plan):
        return {}
    answer = interrupt({"run_id": state.get("run_id"), "plan": state["plan"].model_dump()})
    if answer is True or answer is None:
        return {}
    return {"plan": Plan.model_validate(answer)}


# Branch nodes name their input `state` too: LangGraph's node protocol (add_node's typing) passes it so.
async def research_node(state: BranchState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime, degraded=state["degraded"])
    toolbox = Toolbox(ctx.kb, search_k=ctx.settings.tool_search_k)
    task = ResearchTask(
        question=state["question"], sub_question=state["sub_question"], round=state["round"],
        language=state["language"], gap=state["gap"], tried_queries=state["tried_queries"],
        tried_sql=state["tried_sql"],
    )
    with _traced("research") as (trace, update):
        finding = await ctx.engine.research(task, toolbox=toolbox, trace=trace)
        finding = finding.model_copy(update={"tool_calls": toolbox.calls,
                                             "evidence_ids": sorted(toolbox.evidence)})
        update.update(findings=[finding], evidence=dict(toolbox.evidence))
    return update


async def reflect_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime, degraded=bool(state.get("failures")))
    settings = ctx.settings
    round_ = state["round"]
    with _traced("reflect") as (trace, update):
        reflection = await ctx.engine.reflect(ReflectTask(
            question=state["question"], plan=state["plan"], findings=state["findings"],
            evidence=state["evidence"], round=round_,
        ), trace=trace)
    usage = (state.get("usage") or trace.usage).add(trace.usage)
    stop = decide_stop(
        covered=reflection.covered, round=round_, max_rounds=settings.max_rounds, usage=usage,
        new_evidence=new_evidence_in_round(state["findings"], round_), started_at=state["started_at"],
        token_budget=settings.token_budget, time_budget_s=settings.time_budget_s,
        cost_budget_usd=settings.cost_budget_usd, has_follow_ups=bool(reflection.gaps),
    )
    update.update(reflection=reflection, covered=reflection.covered, pending_gaps=reflection.gaps,
                  reflected_round=round_)
    if stop is None:
        update["round"] = round_ + 1
    else:
        update["stop_reason"] = stop
    return update


async def outline_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime, degraded=bool(state.get("failures")))
    with _traced("outline") as (trace, update):
        outline = await ctx.engine.outline(OutlineTask(
            question=state["question"], plan=state["plan"], findings=state["findings"],
            evidence=state["evidence"], language=state["language"], reflection=state.get("reflection"),
        ), trace=trace)
        update["outline"] = outline
    return update


async def write_node(state: WriteState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime, degraded=state["degraded"])
    with _traced("write") as (trace, update):
        section = await ctx.engine.write(WriteTask(
            section=state["section"], question=state["question"], plan=state["plan"], evidence=state["evidence"],
            language=state["language"], reflection=state["reflection"], outline=state.get("outline"),
        ), trace=trace)
        update["sections"] = [section.model_copy(update={"order": state["order"]})]
    return update


async def summarize_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    """The section the outline holds back (the LLM engine's executive summary), written from the others."""
    last = [(i, s) for i, s in enumerate(state["outline"].sections) if s.id == SUMMARY_LAST]
    if not last:
        return {}
    ctx = await _ctx(runtime, degraded=bool(state.get("failures")))
    order, planned = last[0]
    with _traced("summarize") as (trace, update):
        section = await ctx.engine.summarize(SummaryTask(
            section=planned, question=state["question"], plan=state["plan"], evidence=state["evidence"],
            language=state["language"], reflection=state.get("reflection"),
            sections=sorted(state.get("sections", []), key=lambda s: s.order),
        ), trace=trace)
        update["sections"] = [section.model_copy(update={"order": order})]
    return update


async def verify_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    """Citations are checked in code: unknown ids removed, numbers matched against cited evidence."""
    started = time.perf_counter()
    sections = dedupe_sections(sorted(state.get("sections", []), key=lambda s: s.order))  # one fact once
    verified = verify_sections(sections, state["evidence"])
    return {
        "final_sections": verified.sections, "references": verified.references,
        "verification": verified.verification, "timings": {"verify": time.perf_counter() - started},
    }


async def finalize_node(state: ResearchState, runtime: Ctx) -> dict[str, Any]:
    ctx = await _ctx(runtime, degraded=bool(state.get("failures")))
    version = await ctx.kb.version()
    timings = {**(state.get("timings") or {}), "total_wall": time.time() - state["started_at"]}
    report = build_report(state, engine=ctx.engine, settings=ctx.settings, kb_version=version, timings=timings)
    return {"report": report}
