"""Calling the chat model: construction, the concurrency limit, re-asks and the retries the SDK cannot do.

The OpenAI SDK retries what fails before an answer starts (429 honouring Retry-After, 5xx, timeouts,
refused or dropped connections). Two faults get past it and are handled here: an answer that arrives
but does not parse (re-asked once, with the error shown to the model), and a streamed answer whose
connection breaks off midway (streamed again from the start, with backoff).
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from agents.config import EngineSettings
from agents.trace import Trace
from tools.redact import register_secret

T = TypeVar("T", bound=BaseModel)

# With json_schema structured output the SDK parses the answer itself and raises instead of
# returning a parsing error: bad JSON or a schema mismatch (ValidationError), a broken body (JSONDecodeError).
UNPARSABLE_ANSWER = (ValidationError, json.JSONDecodeError)
BACKOFF_FIRST_S = 0.5  # same schedule as the OpenAI SDK: 0.5 s, 1 s, 2 s ... minus up to 25 % jitter
BACKOFF_MAX_S = 8.0


class MalformedOutput(ValueError):
    """The model's output did not fit the schema, even after it was asked again."""


class StreamInterrupted(ConnectionError):
    """A streamed answer broke off after it had started, on every attempt."""


def make_chat_model(settings: EngineSettings, model: str) -> Any:
    from langchain_openai import ChatOpenAI  # lazy: no client is built at import time

    if settings.api_key is not None:  # a server may echo it back in an error: mask it wherever it goes
        register_secret(settings.api_key.get_secret_value())
    return ChatOpenAI(
        model=model, base_url=settings.base_url, api_key=settings.api_key or "not-needed",
        temperature=settings.temperature, timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
        stream_usage=True,
    )


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    return min(BACKOFF_FIRST_S * 2**attempt, BACKOFF_MAX_S) * (1 - 0.25 * random.random())


class ChatClient:
    """One per run: every LLM request of the run passes through its semaphore."""

    def __init__(self, models: dict[str, Any], *, concurrency: int, prices: tuple[float, float] | None = None,
                 stream_retries: int = 0) -> None:
        self.models = models
        self.prices = prices  # USD per 1k prompt / completion tokens, when known
        self.stream_retries = stream_retries
        self._limit = asyncio.Semaphore(concurrency)

    async def structured(self, role: str, schema: type[T], messages: list[BaseMessage], trace: Trace) -> T:
        """Ask for ``schema``; if the answer does not parse, show the model the error and ask once more."""
        bound = self.models[role].with_structured_output(schema, include_raw=True)
        error: Any = None
        for _ in range(2):
            out = await self._structured_once(bound, messages)
            self._record_usage(out.get("raw"), trace)
            if out.get("parsed") is not None and out.get("parsing_error") is None:
                return out["parsed"]
            error = out.get("parsing_error") or "no structured answer"
            messages = [*messages, HumanMessage(f"Your answer did not match the schema ({_short(error)}). "
                                                "Answer again, following the schema exactly.")]
        raise MalformedOutput(f"{schema.__name__}: {_short(error)}")

    async def _structured_once(self, bound: Any, messages: list[BaseMessage]) -> dict[str, Any]:
        try:
            async with self._limit:
                return await bound.ainvoke(messages)
        except UNPARSABLE_ANSWER as exc:
            return {"raw": None, "parsed": None, "parsing_error": exc}

    async def invoke(self, role: str, messages: list[BaseMessage], trace: Trace, tools: list | None = None) -> AIMessage:
        model = self.models[role].bind_tools(tools) if tools else self.models[role]
        async with self._limit:
            message = await model.ainvoke(messages)
        self._record_usage(message, trace)
        return message

    async def stream_text(self, role: str, messages: list[BaseMessage], trace: Trace) -> str:
        """Stream a text answer; one that breaks off midway is discarded and streamed again, with backoff."""
        attempt = 0
        while True:
            try:
                return await self._stream_once(role, messages, trace)
            except StreamInterrupted:
                if attempt >= self.stream_retries:
                    raise
                await asyncio.sleep(backoff_s(attempt))
                attempt += 1

    async def _stream_once(self, role: str, messages: list[BaseMessage], trace: Trace) -> str:
        parts: list[str] = []
        final = None
        async with self._limit:
            try:
                async for chunk in self.models[role].astream(messages):
                    parts.append(chunk.content if isinstance(chunk.content, str) else "")
                    final = chunk if final is None else final + chunk
            except Exception as exc:
                if final is None:  # nothing arrived: the SDK has already retried what it could
                    raise
                self._record_usage(final, trace)  # the broken attempt was a call, too
                # Started, then broke off (connection closed, broken event): a transport fault.
                raise StreamInterrupted(f"the streamed answer broke off after {len(parts)} chunks "
                                        f"({type(exc).__name__}: {_short(exc)})") from exc
        self._record_usage(final, trace)
        return "".join(parts)

    def _record_usage(self, message: Any, trace: Trace) -> None:
        usage = getattr(message, "usage_metadata", None) or {}
        prompt, completion = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cost = None
        if self.prices is not None:
            cost = (prompt * self.prices[0] + completion * self.prices[1]) / 1000
        trace.add_usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)


def _short(error: Any) -> str:
    if isinstance(error, ValidationError):  # the first problem tells the model what to fix
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return f"{error.error_count()} validation error(s); first at {where}: {first['msg']}"
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
