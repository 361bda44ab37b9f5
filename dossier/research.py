"""The public research API: run, stream, review the plan, resume a killed run, list runs."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Command

from agents.factory import make_engine
from agents.fallback import FallbackEngine
from dossier.events import DoneEvent, Event, PlanEvent, events_from_update
from dossier.progress import live_progress
from dossier.runs_backend import ForeignRun as ForeignRun  # re-exported: dossier.research is the public API
from dossier.runs_backend import RunNotFound, RunStore, open_run_store
from dossier.runs_store import RunInfo as RunInfo  # re-exported: dossier.research is the public API
from dossier.settings import Settings
from dossier.sync import run_sync
from graphs.context import ResearchContext
from graphs.research import compile_research_graph
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Plan, Report

Review = Callable[[Plan], Plan | bool | Awaitable[Plan | bool | None] | None]


class StaleRun(RuntimeError):
    """The knowledge base changed since the run started: its evidence may cite what is gone."""


class Researcher:
    """Answers questions over one knowledge base; every run is checkpointed in ``kb/runs.sqlite``, or in
    PostgreSQL with ``runs_url`` (see dossier.runs_backend)."""

    def __init__(
        self, kb: KnowledgeBase, *, settings: Settings | None = None, approve_plan: bool = False,
        chat_models: dict[str, Any] | None = None,
    ) -> None:
        self.kb = kb
        self.settings = settings or Settings(**kb.settings.model_dump())
        self.approve_plan = approve_plan
        self._chat_models = chat_models  # {"fast": model, "strong": model}; tests pass scripted models

    async def run(self, question: str, *, run_id: str | None = None, review: Review | None = None,
                  progress: bool = False) -> Report:
        """Run to the end and return the report. With ``approve_plan``, ``review`` gets the plan first.
        ``progress=True`` shows the run live (stage, sub-questions, evidence) in a terminal or notebook."""
        if self.approve_plan and review is None:
            raise ValueError("approve_plan=True needs review=callable(plan) -> plan, or use stream() + resume()")
        report, paused = None, None
        async for event in self.stream(question, run_id=run_id, progress=progress):
            if isinstance(event, PlanEvent) and event.awaiting_approval:
                paused = event  # let the stream finish so the interrupt is checkpointed before resuming
            elif isinstance(event, DoneEvent):
                report = event.report
        if paused is not None:
            assert review is not None  # approve_plan without review was refused above
            decision = review(paused.plan)
            decision = await decision if inspect.isawaitable(decision) else decision
            return await self.resume(paused.run_id, plan=decision if isinstance(decision, Plan) else None,
                                     progress=progress)
        assert report is not None, "the graph ended without a report"
        return report

    async def stream(self, question: str, *, run_id: str | None = None,
                     progress: bool = False) -> AsyncIterator[Event]:
        """Yield typed progress events; with ``approve_plan`` the stream pauses after the plan event.
        ``progress=True`` also shows them live, as ``run`` does."""
        run_id = run_id or new_run_id()
        inputs = {"run_id": run_id, "question": question}
        with live_progress(progress, question=question) as show:
            async with aclosing(self._drive(run_id, inputs)) as events:
                async for event in events:
                    show(event)
                    yield event

    async def resume(self, run_id: str, *, plan: Plan | None = None, progress: bool = False) -> Report:
        """Continue a run from its last completed step (after a crash, or after plan review)."""
        report = None
        async for event in self.resume_stream(run_id, plan=plan, progress=progress):
            if isinstance(event, DoneEvent):
                report = event.report
        if report is None:
            raise RuntimeError(f"run {run_id} paused again; approve its plan with resume(run_id, plan=...)")
        return report

    async def resume_stream(self, run_id: str, *, plan: Plan | None = None,
                            progress: bool = False) -> AsyncIterator[Event]:
        async with self._graph() as (graph, store):
            state = await graph.aget_state(store.config(run_id))
        if not state.values:
            raise RunNotFound(f"no run with id {run_id!r} in {store.where}")
        store.check_owner(run_id, state.metadata)
        if "report" in state.values:
            yield DoneEvent(report=state.values["report"])
            return
        await self._check_same_kb(run_id, state.values.get("kb_version"))
        command: Command | None = Command(resume=plan.model_dump() if plan else True) if state.interrupts else None
        with live_progress(progress, question=state.values.get("question"),
                           plan=plan or state.values.get("plan")) as show:
            async with aclosing(self._drive(run_id, command, degraded=bool(state.values.get("failures")))) as events:
                async for event in events:
                    show(event)
                    yield event

    async def _check_same_kb(self, run_id: str, started_on: dict[str, Any] | None) -> None:
        """Refuse to resume on another knowledge-base state (documents pruned or changed, tables
        re-imported, or the run copied into another knowledge base): its evidence could cite what is
        no longer there, under the new version's stamp. A run from before this check has no record."""
        if not started_on:
            return
        now = asdict(await self.kb.version())
        changed = [k for k in ("corpus_version", "catalog_hash", "embedder") if started_on.get(k) != now.get(k)]
        if changed:
            was = ", ".join(f"{k} {started_on.get(k)}" for k in changed)
            raise StaleRun(f"run {run_id} started on another state of this knowledge base ({was}; now "
                           + ", ".join(f"{k} {now.get(k)}" for k in changed)
                           + "): its evidence may be gone or changed. Start a new report instead.")

    async def pending_plan(self, run_id: str) -> Plan | None:
        async with self._graph() as (graph, store):
            state = await graph.aget_state(store.config(run_id))
        store.check_owner(run_id, state.metadata)
        return state.values.get("plan") if state.interrupts else None

    async def runs(self) -> list[RunInfo]:
        async with self._graph() as (graph, store):
            return [await _run_info(graph, store, run_id) for run_id in await store.list_ids()]  # re-indexes

    def run_sync(self, question: str, **kwargs: Any) -> Report:
        return run_sync(self.run(question, **kwargs))

    async def _drive(self, run_id: str, graph_input: Any, *, degraded: bool = False) -> AsyncGenerator[Event, None]:
        context = ResearchContext(kb=self.kb, engine=self._engine(degraded), settings=self.settings,
                                  approve_plan=self.approve_plan)
        interrupted = False
        async with self._graph() as (graph, store):
            config = store.config(run_id) | {"max_concurrency": self.settings.branch_concurrency}
            if store.kb_id is not None and graph_input is not None and not isinstance(graph_input, Command):
                # A caller's own run_id must not continue another knowledge base's run in a shared store.
                store.check_owner(run_id, (await graph.aget_state(config)).metadata)
            # aclosing: a caller that stops iterating closes the graph run and the checkpoint connection now.
            # durability="sync": each step's checkpoint is committed before the next step starts. The
            # default ("async") commits in the background, so a run killed during planning left no
            # checkpoint at all (neither `dossier runs` nor resume knew it) and later kills lost steps.
            stream = graph.astream(graph_input, config, context=context, stream_mode="updates",
                                   durability="sync")
            async with aclosing(stream) as chunks:
                async for chunk in chunks:
                    if store.record is not None:  # the SQLite index follows each committed step
                        await _run_info(graph, store, run_id)
                    for node, update in chunk.items():
                        if node == "__interrupt__":
                            interrupted = True
                            continue
                        for event in events_from_update(node, update or {}, run_id):
                            yield event
            if interrupted:
                # Yielded after the graph stream has ended, so the pause is checkpointed even if the
                # caller stops iterating at this event.
                plan = (await graph.aget_state(config)).values["plan"]
                yield PlanEvent(run_id=run_id, plan=plan, awaiting_approval=True)

    def _engine(self, degraded: bool) -> FallbackEngine:
        return make_engine(self.settings, self._chat_models, kb=self.kb).for_run(degraded=degraded)

    @asynccontextmanager
    async def _graph(self) -> AsyncIterator[tuple[Any, RunStore]]:
        async with open_run_store(self.settings, self.kb.path) as store:
            yield compile_research_graph(store.saver), store


def new_run_id() -> str:
    return datetime.now(UTC).strftime("r%Y%m%d-%H%M%S-") + secrets.token_hex(3)


async def _run_info(graph: Any, store: RunStore, run_id: str) -> RunInfo:
    """The run as its latest checkpoint has it, written to the store's run index on the way."""
    state = await graph.aget_state(store.config(run_id))
    values = state.values
    if "report" in values:
        status = "done"
    elif state.interrupts:
        status = "awaiting approval"
    else:
        status = "interrupted"
    info = RunInfo(run_id=run_id, question=values.get("question", ""), status=status,
                   next_step=",".join(state.next) or "-", updated_at=str(state.created_at or ""))
    if store.record is not None and values:
        await store.record(info, (state.config or {}).get("configurable", {}).get("checkpoint_id"))
    return info
