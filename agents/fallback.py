"""Run the LLM engine, and when it keeps failing, finish the run on the offline engine.

Before an exception reaches here the LLM side has already done what could help: the client retried
transient faults with backoff (429 honouring Retry-After, 5xx, timeouts, dropped connections, streams
cut off midway), and the engine re-asked once for malformed structured output, unparsable tool
arguments and an empty section. So a failure here is final for that role: it is recorded, and every
later role of the run uses the offline engine.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from agents.engine import Engine
from agents.trace import Trace
from tools.redact import redact, scrub_exception

T = TypeVar("T")


class FallbackEngine:
    def __init__(self, primary: Engine, offline: Engine, *, enabled: bool = True, degraded: bool = False) -> None:
        self.primary = primary
        self.offline = offline
        self.enabled = enabled
        self.degraded = degraded
        self.name = primary.name

    def models(self) -> dict[str, str]:
        return self.primary.models()

    async def _call(self, role: str, trace: Trace, call: Callable[[Engine], Awaitable[T]]) -> T:
        if self.degraded:
            trace.engine_used = self.offline.name
            return await call(self.offline)
        try:
            trace.engine_used = self.primary.name
            return await call(self.primary)
        except Exception as exc:  # any LLM-side failure after retries; the run must not die
            if not self.enabled:
                raise scrub_exception(exc)  # a server may echo the key; the graph stores this exception
            self.degraded = True
            trace.failures.append(redact(f"{role}: {type(exc).__name__}: {_first_line(exc)}; continued offline"))
            trace.engine_used = self.offline.name
            return await call(self.offline)

    async def plan(self, question: str, **kw: Any):
        return await self._call("plan", kw["trace"], lambda e: e.plan(question, **kw))

    async def research(self, task, **kw: Any):
        return await self._call(f"research {task.sub_question.id}", kw["trace"], lambda e: e.research(task, **kw))

    async def reflect(self, **kw: Any):
        return await self._call("reflect", kw["trace"], lambda e: e.reflect(**kw))

    async def outline(self, **kw: Any):
        return await self._call("outline", kw["trace"], lambda e: e.outline(**kw))

    async def write(self, section, *, outline=None, **kw: Any):
        def call(e: Any) -> Awaitable[Any]:  # only an engine that reads the outline is given it
            extra = {"outline": outline} if getattr(e, "sees_outline", False) else {}
            return e.write(section, **extra, **kw)
        return await self._call(f"write {section.id}", kw["trace"], call)

    async def summarize(self, section, *, sections, **kw: Any):
        """The section written last (agents.engine.SUMMARY_LAST), from the written sections. An engine
        without this role (the offline one) writes it as its own executive summary."""
        def call(e: Any) -> Awaitable[Any]:
            if hasattr(e, "summarize"):
                return e.summarize(section, sections=sections, **kw)
            return _as_summary(e, section, kw)
        return await self._call(f"write {section.id}", kw["trace"], call)


async def _as_summary(engine: Any, section: Any, kw: dict[str, Any]) -> Any:
    from agents.offline.write import SUMMARY  # the offline engine's id for its executive summary

    written = await engine.write(section.model_copy(update={"id": SUMMARY}), **kw)
    return written.model_copy(update={"id": section.id})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]
