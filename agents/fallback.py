"""Run the LLM engine, and when it keeps failing, finish the run on the offline engine.

Before an exception reaches here the LLM side has already done what could help: the client retried
transient faults with backoff (429 honouring Retry-After, 5xx, timeouts, dropped connections, streams
cut off midway), and the engine re-asked once for malformed structured output, unparsable tool
arguments and an empty section. So a failure here is final for that role: it is recorded, and every
later role of the run uses the offline engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from agents.engine import Engine, OutlineTask, PlanTask, ReflectTask, ResearchTask, SummaryTask, WriteTask
from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.redact import redact, scrub_exception
from tools.vocabulary import Finding, Outline, Plan, Reflection, Section

T = TypeVar("T")


class FallbackEngine:
    """An engine (agents.engine.Engine) that answers each role from ``primary``, or from ``offline``
    once ``primary`` has failed (or at once when ``degraded``: a resumed run that had fallen back)."""

    def __init__(self, primary: Engine, offline: Engine, *, enabled: bool = True, degraded: bool = False) -> None:
        self.primary = primary
        self.offline = offline
        self.enabled = enabled
        self.degraded = degraded and primary is not offline  # with nothing to fall back from, never degraded
        self.name = primary.name

    def for_run(self, *, degraded: bool) -> FallbackEngine:
        """A wrapper for one run over the same engines: ``degraded`` belongs to the run, not the engines."""
        return FallbackEngine(self.primary, self.offline, enabled=self.enabled, degraded=degraded)

    def models(self) -> dict[str, str]:
        return self.primary.models()

    async def plan(self, task: PlanTask, *, trace: Trace) -> Plan:
        return await self._call("plan", trace, lambda e: e.plan(task, trace=trace))

    async def research(self, task: ResearchTask, *, toolbox: Toolbox, trace: Trace) -> Finding:
        return await self._call(f"research {task.sub_question.id}", trace,
                                lambda e: e.research(task, toolbox=toolbox, trace=trace))

    async def reflect(self, task: ReflectTask, *, trace: Trace) -> Reflection:
        return await self._call("reflect", trace, lambda e: e.reflect(task, trace=trace))

    async def outline(self, task: OutlineTask, *, trace: Trace) -> Outline:
        return await self._call("outline", trace, lambda e: e.outline(task, trace=trace))

    async def write(self, task: WriteTask, *, trace: Trace) -> Section:
        return await self._call(f"write {task.section.id}", trace, lambda e: e.write(task, trace=trace))

    async def summarize(self, task: SummaryTask, *, trace: Trace) -> Section:
        return await self._call(f"write {task.section.id}", trace, lambda e: e.summarize(task, trace=trace))

    async def _call(self, role: str, trace: Trace, call: Callable[[Engine], Awaitable[T]]) -> T:
        if self.degraded:
            trace.engine_used = self.offline.name
            return await call(self.offline)
        try:
            trace.engine_used = self.primary.name
            return await call(self.primary)
        except Exception as exc:  # any LLM-side failure after retries; the run must not die
            if not self.enabled:
                raise scrub_exception(exc) from None  # a server may echo the key; the graph stores this exception
            self.degraded = True
            trace.failures.append(redact(f"{role}: {type(exc).__name__}: {_first_line(exc)}; continued offline"))
            trace.engine_used = self.offline.name
            return await call(self.offline)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]
