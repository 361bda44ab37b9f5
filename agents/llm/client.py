"""Calling the chat model: construction, the concurrency limit, structured output with one re-ask."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from agents.config import EngineSettings
from agents.trace import Trace

T = TypeVar("T", bound=BaseModel)


class MalformedOutput(ValueError):
    """The model's output did not fit the schema, even after it was asked again."""


def make_chat_model(settings: EngineSettings, model: str) -> Any:
    from langchain_openai import ChatOpenAI  # lazy: no client is built at import time

    return ChatOpenAI(
        model=model, base_url=settings.base_url, api_key=settings.api_key or "not-needed",
        temperature=settings.temperature, timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
        stream_usage=True,
    )


class ChatClient:
    """One per run: every LLM request of the run passes through its semaphore."""

    def __init__(self, models: dict[str, Any], *, concurrency: int, prices: tuple[float, float] | None = None) -> None:
        self.models = models
        self.prices = prices  # USD per 1k prompt / completion tokens, when known
        self._limit = asyncio.Semaphore(concurrency)

    async def structured(self, role: str, schema: type[T], messages: list[BaseMessage], trace: Trace) -> T:
        """Ask for ``schema``; if the answer does not parse, show the model the error and ask once more."""
        bound = self.models[role].with_structured_output(schema, include_raw=True)
        for attempt in range(2):
            async with self._limit:
                out = await bound.ainvoke(messages)
            self._record_usage(out.get("raw"), trace)
            if out.get("parsed") is not None and out.get("parsing_error") is None:
                return out["parsed"]
            error = out.get("parsing_error") or "no structured answer"
            messages = [*messages, HumanMessage(f"Your answer did not match the schema ({_short(error)}). "
                                                "Answer again, following the schema exactly.")]
        raise MalformedOutput(f"{schema.__name__}: {_short(error)}")

    async def invoke(self, role: str, messages: list[BaseMessage], trace: Trace, tools: list | None = None) -> AIMessage:
        model = self.models[role].bind_tools(tools) if tools else self.models[role]
        async with self._limit:
            message = await model.ainvoke(messages)
        self._record_usage(message, trace)
        return message

    async def stream_text(self, role: str, messages: list[BaseMessage], trace: Trace) -> str:
        parts: list[str] = []
        final = None
        async with self._limit:
            async for chunk in self.models[role].astream(messages):
                parts.append(chunk.content if isinstance(chunk.content, str) else "")
                final = chunk if final is None else final + chunk
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
    if isinstance(error, ValidationError):
        return f"{error.error_count()} validation errors"
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
