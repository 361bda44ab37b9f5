"""Calling the chat model: construction, the concurrency limit, structured output, re-asks, bounds.

The OpenAI SDK retries what fails before an answer starts (429 honouring Retry-After, 5xx, timeouts,
refused or dropped connections); the attempts it made are counted (``calls.CallLog``) so a call that
succeeded after retries is recorded too. Three faults get past it and are handled here: a server that
refuses the structured-output method (the next method is tried, see ``structured``), an answer that
arrives but does not parse (re-asked once, with the error shown to the model), and a streamed answer
whose connection breaks off midway (streamed again from the start, with backoff).

Every call is bounded: a completion-token limit per step (``max_tokens_<step>``) and the request
timeout (``llm_timeout_s``, per HTTP attempt, streaming included: there it bounds the wait for each
chunk, and the token limit bounds the stream's length). Every answer loses its reasoning traces
(``<think>`` and kin) before it is parsed or rendered.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, SecretStr, ValidationError

from agents.config import EngineSettings
from agents.llm.calls import CALL_LOG, CallLog, http_client, retry_note
from agents.llm.structured import (
    STEP_OF_SCHEMA,
    FormatUnsupported,
    answer_text,
    is_bare_json,
    is_format_refusal,
    json_object_format,
    json_schema_format,
    methods_to_try,
    parse_answer,
    remember,
    remembered,
    schema_instruction,
)
from agents.trace import Trace
from tools.redact import redact, register_secret

T = TypeVar("T", bound=BaseModel)

# With json_schema structured output the SDK parses the answer itself and raises instead of
# returning a parsing error: bad JSON or a schema mismatch (ValidationError), a broken body (JSONDecodeError).
UNPARSABLE_ANSWER = (ValidationError, json.JSONDecodeError)
BACKOFF_FIRST_S = 0.5  # same schedule as the OpenAI SDK: 0.5 s, 1 s, 2 s ... minus up to 25 % jitter
BACKOFF_MAX_S = 8.0
# OpenAI's reasoning models reject ``max_tokens``; every other server (and OpenAI's other models) honours it,
# while llama-cpp-python's server ignores ``max_completion_tokens``.
_COMPLETION_ONLY = re.compile(r"^(o\d|gpt-5)")


class MalformedOutput(ValueError):
    """The model's output did not fit the schema, even after it was asked again."""


class StreamInterrupted(ConnectionError):
    """A streamed answer broke off after it had started, on every attempt."""


def make_chat_model(settings: EngineSettings, model: str) -> Any:
    from langchain_openai import ChatOpenAI  # lazy: no client is built at import time

    key = settings.api_key  # a server may echo it back in an error: mask it wherever it goes
    register_secret(key.get_secret_value() if isinstance(key, SecretStr) else key)
    return ChatOpenAI(
        model=model, base_url=settings.base_url, api_key=settings.api_key or "not-needed",
        temperature=settings.temperature, timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
        stream_usage=True, http_async_client=http_client(),
    )


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    return min(BACKOFF_FIRST_S * 2**attempt, BACKOFF_MAX_S) * (1 - 0.25 * random.random())


def step_limits(settings: EngineSettings) -> dict[str, int]:
    """Completion-token limit per step, from the settings."""
    steps = ("plan", "research", "reflect", "outline", "write")
    return {step: getattr(settings, f"max_tokens_{step}") for step in steps}


class ChatClient:
    """One per engine: every LLM request passes through its semaphore."""

    def __init__(self, models: dict[str, Any], *, concurrency: int, prices: tuple[float, float] | None = None,
                 stream_retries: int = 0, settings: EngineSettings | None = None) -> None:
        self.models = models
        self.prices = prices  # USD per 1k prompt / completion tokens, when known
        self.stream_retries = stream_retries
        self.structured_output = settings.structured_output if settings else "auto"
        self.max_tokens: Mapping[str, int] = step_limits(settings) if settings else {}
        self.base_url = (settings.base_url if settings else None) or "default"
        self._limit = asyncio.Semaphore(concurrency)

    # ------------------------------------------------------------------ structured output
    async def structured(self, role: str, schema: type[T], messages: list[BaseMessage], trace: Trace, *,
                         step: str | None = None) -> T:
        """Ask for ``schema`` with the endpoint's method (auto: probed once, then remembered); an answer
        that does not parse is shown its error and asked once more."""
        step = step or STEP_OF_SCHEMA.get(schema.__name__, schema.__name__.lower())
        endpoint = (self.base_url, _model_name(self.models[role]))
        methods = methods_to_try(self.structured_output, remembered(endpoint))
        auto, index, asks, error = self.structured_output == "auto", 0, 0, None
        while True:
            method = methods[index]
            try:
                value, error, ignored = await self._ask(method, role, step, schema, messages, trace)
            except FormatUnsupported as exc:
                if index + 1 >= len(methods):
                    raise
                index += 1
                _note(trace, f"{step}: {exc}; trying {methods[index]}")
                continue
            if ignored and auto and method != "text":  # the server answered prose: the text method is what works
                _note(trace, f"{step}: the server ignored {method} and answered in prose; using text")
                methods, index, method = ["text"], 0, "text"
                if value is None:
                    continue  # ask again, this time with the schema in the prompt
            if value is not None:
                if auto:
                    remember(endpoint, method)
                _note(trace, f"{step}: structured output via {method} ({endpoint[1]})")
                if asks:
                    _note(trace, f"{step}: parsed after a re-ask ({_short(error)})")
                return value
            asks += 1
            if asks >= 2:
                raise MalformedOutput(f"{schema.__name__}: {_short(error)}")
            messages = [*messages, HumanMessage(f"Your answer did not match the schema ({_short(error)}). "
                                                "Answer again, following the schema exactly.")]

    async def _ask(self, method: str, role: str, step: str, schema: type[T], messages: list[BaseMessage],
                   trace: Trace) -> tuple[T | None, Any, bool]:
        """One request with ``method``: (value or None, the parse error, whether the server ignored the format)."""
        model, limit = self.models[role], self._limit_kwargs(role, step)
        try:
            if method == "json_schema" and _is_openai(model):  # parsed here: the SDK would reject a <think> prefix
                reply = await self._send(model.bind(response_format=json_schema_format(schema), **limit),
                                         messages, trace, step)
                self._record_usage(reply, trace)
                return _from_text(answer_text(reply), schema, reply.additional_kwargs.get("refusal"))
            if method == "json_schema":  # other chat models: their own structured output (takes no kwargs)
                bound = model.with_structured_output(schema, method="json_schema", include_raw=True)
                out = await self._send(bound, messages, trace, step)
                self._record_usage(out.get("raw"), trace)
                if out.get("parsed") is not None and out.get("parsing_error") is None:
                    return out["parsed"], None, False
                return _from_text(answer_text(out.get("raw") or ""), schema, out.get("parsing_error"))
            if method == "function_calling":
                reply = await self._send(model.bind_tools([schema], tool_choice=schema.__name__, **limit),
                                         messages, trace, step)
                self._record_usage(reply, trace)
                return _from_tool_call(reply, schema)
            extra = {"response_format": json_object_format(schema)} if method == "json_object" else {}
            asked = [*messages, HumanMessage(schema_instruction(schema))]
            reply = await self._send(model.bind(**extra, **limit), asked, trace, step)
            self._record_usage(reply, trace)
            value, error, ignored = _from_text(answer_text(reply), schema, None)
            return value, error, ignored and method == "json_object"
        except UNPARSABLE_ANSWER as exc:
            return None, exc, False
        except Exception as exc:
            if type(exc).__name__ == "LengthFinishReasonError":  # the SDK's verdict on an answer cut off
                return self._cut_off(exc, schema, step, trace)
            if is_format_refusal(exc):
                raise FormatUnsupported(redact(f"{method} refused by the server ({_short(exc)})")) from exc
            raise

    # ------------------------------------------------------------------ tool calls and text
    async def invoke(self, role: str, messages: list[BaseMessage], trace: Trace, tools: list | None = None, *,
                     tool_choice: Any = None, step: str = "research") -> AIMessage:
        """One answer (tool calls or text); its text comes without reasoning traces."""
        limit = self._limit_kwargs(role, step)
        if tools:
            choice = {"tool_choice": tool_choice} if tool_choice else {}
            model = self.models[role].bind_tools(tools, **choice, **limit)
        else:
            model = self.models[role].bind(**limit)
        message = await self._send(model, messages, trace, step)
        self._record_usage(message, trace)
        text = answer_text(message)
        return message if text == message.content else message.model_copy(update={"content": text})

    async def stream_text(self, role: str, messages: list[BaseMessage], trace: Trace, *, step: str = "write") -> str:
        """Stream a text answer; one that breaks off midway is discarded and streamed again, with backoff."""
        attempt = 0
        while True:
            try:
                text = await self._stream_once(role, messages, trace, step)
            except StreamInterrupted:
                if attempt >= self.stream_retries:
                    raise
                await asyncio.sleep(backoff_s(attempt))
                attempt += 1
                continue
            if attempt:
                _note(trace, f"{step}: streamed again after the stream broke off, then completed")
            return answer_text(text)

    async def _stream_once(self, role: str, messages: list[BaseMessage], trace: Trace, step: str) -> str:
        parts: list[str] = []
        final = None
        log, token = CallLog(), None
        async with self._limit:
            token = CALL_LOG.set(log)
            try:
                async for chunk in self.models[role].bind(**self._limit_kwargs(role, step)).astream(messages):
                    parts.append(chunk.content if isinstance(chunk.content, str) else "")
                    final = chunk if final is None else final + chunk
            except Exception as exc:
                if final is None:  # nothing arrived: the SDK has already retried what it could
                    raise
                self._record_usage(final, trace)  # the broken attempt was a call, too
                # Started, then broke off (connection closed, broken event): a transport fault.
                raise StreamInterrupted(f"the streamed answer broke off after {len(parts)} chunks "
                                        f"({type(exc).__name__}: {_short(exc)})") from exc
            finally:
                CALL_LOG.reset(token)
        self._record_usage(final, trace)
        _note(trace, retry_note(step, log))
        return "".join(parts)

    # ------------------------------------------------------------------ plumbing
    async def _send(self, runnable: Any, messages: list[BaseMessage], trace: Trace, step: str) -> Any:
        """``runnable.ainvoke`` under the concurrency limit, counting the SDK's attempts."""
        log = CallLog()
        async with self._limit:
            token = CALL_LOG.set(log)
            try:
                out = await runnable.ainvoke(messages)
            finally:
                CALL_LOG.reset(token)
        _note(trace, retry_note(step, log))
        return out

    def _limit_kwargs(self, role: str, step: str) -> dict[str, Any]:
        """The completion-token limit for ``step``, in the form the model's server honours."""
        limit = self.max_tokens.get(step) or self.max_tokens.get("write" if role == "strong" else "research")
        if not limit:
            return {}
        model = self.models[role]
        if not _is_openai(model):
            return {"max_tokens": limit}
        # langchain-openai renames max_tokens to max_completion_tokens, which llama-cpp-python's server
        # ignores: send the field itself, through the SDK's extra_body.
        field = "max_completion_tokens" if _COMPLETION_ONLY.match(_model_name(model)) else "max_tokens"
        return {"extra_body": {**(getattr(model, "extra_body", None) or {}), field: limit}}

    def _cut_off(self, exc: Any, schema: type[T], step: str, trace: Trace) -> tuple[T | None, Any, bool]:
        """An answer that hit the completion-token limit: kept if its repaired JSON fits, else re-asked."""
        completion = getattr(exc, "completion", None)
        usage = getattr(completion, "usage", None)
        self._add_usage(trace, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
        text = completion.choices[0].message.content if completion and completion.choices else ""
        value, _, _ = _from_text(answer_text(text or ""), schema, None)
        if value is not None:
            _note(trace, f"{step}: the answer was cut off at max_tokens_{step}; its JSON was repaired")
        return value, "the answer was cut off at the completion-token limit; answer shorter", False

    def _record_usage(self, message: Any, trace: Trace) -> None:
        usage = getattr(message, "usage_metadata", None) or {}
        self._add_usage(trace, usage.get("input_tokens", 0), usage.get("output_tokens", 0))

    def _add_usage(self, trace: Trace, prompt: int, completion: int) -> None:
        cost = None
        if self.prices is not None:
            cost = (prompt * self.prices[0] + completion * self.prices[1]) / 1000
        trace.add_usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)


def _from_text(text: str, schema: type[T], sdk_error: Any) -> tuple[T | None, Any, bool]:
    """Parse (and repair) a text answer; ``ignored`` when it was prose, not the bare JSON a format yields."""
    ignored = bool(text) and not is_bare_json(text)
    if not text:
        return None, sdk_error or "no structured answer", False
    try:
        return parse_answer(text, schema), None, ignored
    except UNPARSABLE_ANSWER as exc:
        return None, exc, ignored


def _from_tool_call(reply: AIMessage, schema: type[T]) -> tuple[T | None, Any, bool]:
    """The schema from the reply's tool call; a reply without one means the server ignored the tools."""
    for call in reply.tool_calls:
        try:
            return schema.model_validate(call.get("args") or {}), None, False
        except ValidationError as exc:
            return None, exc, False
    for bad_call in reply.invalid_tool_calls:
        value, error, _ = _from_text(str(bad_call.get("args") or ""), schema, None)
        return value, error, False
    value, error, _ = _from_text(answer_text(reply), schema, "no tool call in the reply")
    return value, error, True


def _note(trace: Trace, note: str | None) -> None:
    if note:
        trace.llm_notes.append(redact(note))


def _is_openai(model: Any) -> bool:
    return hasattr(model, "extra_body") and hasattr(model, "root_async_client")


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)


def _short(error: Any) -> str:
    if isinstance(error, ValidationError):  # the first problem tells the model what to fix
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return f"{error.error_count()} validation error(s); first at {where}: {first['msg']}"
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
