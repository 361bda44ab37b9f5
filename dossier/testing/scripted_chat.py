"""An in-process, scripted chat model for testing Dossier's LLM engine offline.

langchain_core's fake chat models raise NotImplementedError for ``bind_tools`` and
``with_structured_output``.  ``ScriptedChatModel`` subclasses ``GenericFakeChatModel`` and
adds both, so code written against ``ChatOpenAI`` (structured output via pydantic schemas,
tool calling, streaming, async) runs unchanged against a script.

Each call is answered by, in order:

1. the next item of the queue (``responses=[...]`` at construction, or ``model.queue(...)``),
2. the next item of ``messages`` (the ``GenericFakeChatModel`` iterator, for compatibility),
3. ``responder(messages, tools, kwargs)`` (it may also take just ``(messages)`` or
   ``(messages, tools)``),

otherwise ``ScriptExhaustedError`` is raised.  An answer may be:

* ``str`` -> ``AIMessage(content=...)``;
* a pydantic ``BaseModel`` instance -> an ``AIMessage`` with one tool call named after the
  schema (``model_config["title"]`` or the class name, exactly what ``convert_to_openai_tool``
  and ``PydanticToolsParser`` use), args = ``model_dump(mode="json")``.  This is what the
  default ``BaseChatModel.with_structured_output`` expects: in langchain-core 1.8 it pops
  ``method``/``strict`` (so ``"function_calling"``, ``"json_schema"``, ``"json_mode"`` and the
  default all take this path), calls ``bind_tools([schema], tool_choice="any")`` and parses
  the first tool call with ``PydanticToolsParser``;
* a ``dict`` -> a tool call to the forced tool (``tool_choice`` naming one tool, or exactly
  one bound tool with ``tool_choice`` "any"/"required"), else JSON text content;
* an ``AIMessage`` -> returned as is (usage metadata filled in when missing);
* an exception instance or class -> raised (after the delay, and recorded);
* a callable (queue items only) -> called like the responder.

Every returned ``AIMessage`` carries ``usage_metadata`` estimated from text length
(``estimate_tokens``: ~4 characters per token) so token budgets can be tested.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, PrivateAttr

from dossier.testing.openai_stub import content_text

__all__ = [
    "RecordedCall",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ai_tool_call",
    "estimate_tokens",
    "message_text",
]


class ScriptExhaustedError(RuntimeError):
    """The queue is empty and no responder was given."""


def estimate_tokens(text: str) -> int:
    """Rough token count: one token per 4 characters (0 for empty text)."""
    return 0 if not text else max(1, math.ceil(len(text) / 4))


def message_text(message: BaseMessage) -> str:
    """The plain text of a message (text blocks joined; tool-call args appended)."""
    text = content_text(message.content)
    if isinstance(message, AIMessage) and message.tool_calls:
        text += "".join(
            tc["name"] + json.dumps(tc["args"], sort_keys=True)
            for tc in message.tool_calls
        )
    return text


def ai_tool_call(
    name: str,
    args: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    content: str = "",
) -> AIMessage:
    """Build an ``AIMessage`` carrying one tool call (for queues and responders)."""
    return AIMessage(
        content=content,
        tool_calls=[
            {"name": name, "args": dict(args or {}), "id": id or f"call_{name}", "type": "tool_call"}
        ],
    )


def _schema_tool_name(schema: type[BaseModel]) -> str:
    try:
        return convert_to_openai_tool(schema)["function"]["name"]
    except Exception:
        return schema.model_config.get("title") or schema.__name__


def _tool_name(tool: dict[str, Any]) -> str | None:
    if isinstance(tool.get("function"), dict):
        return tool["function"].get("name")
    return tool.get("name")


def _forced_tool(tools: list[dict] | None, tool_choice: Any) -> str | None:
    """The single tool the caller forces, if any."""
    names = [n for n in (_tool_name(t) for t in tools or []) if n]
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        if isinstance(fn, dict) and fn.get("name"):
            return fn["name"]
        if tool_choice.get("name"):
            return tool_choice["name"]
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    if len(names) == 1 and tool_choice in ("any", "required", True):
        return names[0]
    return None


@dataclass
class RecordedCall:
    """One call of the model, as the model saw it."""

    index: int
    messages: list[BaseMessage]
    tools: list[dict[str, Any]] | None
    kwargs: dict[str, Any]
    response: AIMessage | BaseException | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def tool_names(self) -> list[str]:
        return [n for n in (_tool_name(t) for t in self.tools or []) if n]

    @property
    def tool_choice(self) -> Any:
        return self.kwargs.get("tool_choice")

    @property
    def forced_tool(self) -> str | None:
        return _forced_tool(self.tools, self.tool_choice)

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if isinstance(m, HumanMessage):
                return message_text(m)
        return ""


Responder = Callable[..., Any]


def _call_responder(fn: Responder, call: RecordedCall) -> Any:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return fn(call.messages, call.tools, call.kwargs)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) == 1:
        return fn(call.messages)
    if len(positional) == 2:
        return fn(call.messages, call.tools)
    return fn(call.messages, call.tools, call.kwargs)


class ScriptedChatModel(GenericFakeChatModel):
    """A scripted chat model with tool binding, structured output, async and streaming.

    Args:
        responses: initial queue of answers, served first, in order.
        responder: ``(messages, tools, kwargs) -> answer`` for calls the queue does not cover.
        delay_s: per-call latency (``asyncio.sleep`` on the async path, ``time.sleep`` on sync).
        chunk_delay_s: pause between streamed chunks on the async path.
        model_name: reported in ``response_metadata["model_name"]``.
    """

    messages: Iterator[Any] = Field(default_factory=lambda: iter(()))
    responses: list[Any] = Field(default_factory=list)
    responder: Responder | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    model_name: str = "scripted-chat"

    _queue: deque = PrivateAttr(default_factory=deque)
    _calls: list[RecordedCall] = PrivateAttr(default_factory=list)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _max_concurrency: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._queue.extend(self.responses)

    # ------------------------------------------------------------------ public API
    @property
    def calls(self) -> list[RecordedCall]:
        """Every call so far, in the order they started."""
        return self._calls

    @property
    def last_call(self) -> RecordedCall:
        return self._calls[-1]

    @property
    def max_concurrency(self) -> int:
        """Peak number of calls in flight at once."""
        return self._max_concurrency

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def pending(self) -> int:
        """Answers left in the queue."""
        return len(self._queue)

    def queue(self, *responses: Any) -> ScriptedChatModel:
        """Append answers to the queue (served before the responder)."""
        with self._lock:
            self._queue.extend(responses)
        return self

    def reset(self) -> None:
        """Forget recorded calls and the concurrency peak (the queue is kept)."""
        with self._lock:
            self._calls.clear()
            self._max_concurrency = self._in_flight

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Bind tools (converted to OpenAI tool dicts); the responder receives them."""
        strict = kwargs.pop("strict", None)
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    # ------------------------------------------------------------------ generation
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._begin(messages, stop, kwargs)
        try:
            if self.delay_s > 0:
                time.sleep(self.delay_s)
            message = self._answer(call)
        finally:
            self._end(call)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._begin(messages, stop, kwargs)
        try:
            if self.delay_s > 0:
                await asyncio.sleep(self.delay_s)
            message = self._answer(call)
        finally:
            self._end(call)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop=stop, **kwargs)
        message = result.generations[0].message
        for chunk in self._chunks(message):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        result = await self._agenerate(messages, stop=stop, **kwargs)
        message = result.generations[0].message
        for i, chunk in enumerate(self._chunks(message)):
            if i and self.chunk_delay_s > 0:
                await asyncio.sleep(self.chunk_delay_s)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    # ------------------------------------------------------------------ internals
    def _begin(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict) -> RecordedCall:
        kw = {k: v for k, v in kwargs.items() if k != "tools"}
        if stop is not None:
            kw["stop"] = stop
        with self._lock:
            call = RecordedCall(
                index=len(self._calls),
                messages=list(messages),
                tools=kwargs.get("tools"),
                kwargs=kw,
            )
            self._calls.append(call)
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
        return call

    def _end(self, call: RecordedCall) -> None:
        with self._lock:
            self._in_flight -= 1
            call.finished_at = time.monotonic()

    def _next_scripted(self, call: RecordedCall) -> Any:
        with self._lock:
            if self._queue:
                item = self._queue.popleft()
                if callable(item) and not isinstance(item, BaseModel) and not (
                    isinstance(item, type) and issubclass(item, BaseException)
                ):
                    item = _Deferred(item)
                return item
        sentinel = object()
        item = next(self.messages, sentinel)
        if item is not sentinel:
            return item
        if self.responder is not None:
            return _call_responder(self.responder, call)
        msg = (
            f"ScriptedChatModel: no scripted response left for call #{call.index} "
            f"(last user text: {call.last_user_text[:80]!r}); queue more or pass responder="
        )
        raise ScriptExhaustedError(msg)

    def _answer(self, call: RecordedCall) -> AIMessage:
        try:
            item = self._next_scripted(call)
            if isinstance(item, _Deferred):
                item = _call_responder(item.fn, call)
            if isinstance(item, type) and issubclass(item, BaseException):
                item = item(f"scripted failure on call #{call.index}")
            if isinstance(item, BaseException):
                raise item
            message = self._to_message(item, call)
        except BaseException as exc:
            call.response = exc
            raise
        call.response = message
        return message

    def _to_message(self, item: Any, call: RecordedCall) -> AIMessage:
        finish = "stop"
        if isinstance(item, AIMessage):
            message = item.model_copy(deep=True)
        elif isinstance(item, BaseMessage):
            msg = f"ScriptedChatModel answers must be AI messages, got {type(item).__name__}"
            raise TypeError(msg)
        elif isinstance(item, str):
            message = AIMessage(content=item)
        elif isinstance(item, BaseModel):
            name = _schema_tool_name(type(item))
            message = ai_tool_call(name, item.model_dump(mode="json"), id=f"call_{call.index}_0")
        elif isinstance(item, dict):
            forced = call.forced_tool
            if forced:
                message = ai_tool_call(forced, item, id=f"call_{call.index}_0")
            else:
                message = AIMessage(content=json.dumps(item))
        else:
            msg = f"ScriptedChatModel cannot answer with {type(item).__name__}: {item!r}"
            raise TypeError(msg)
        if message.tool_calls:
            finish = "tool_calls"
        if message.usage_metadata is None:
            input_tokens = sum(estimate_tokens(message_text(m)) for m in call.messages)
            output_tokens = estimate_tokens(message_text(message))
            message.usage_metadata = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
        message.response_metadata = {
            "model_name": self.model_name,
            "finish_reason": finish,
            **message.response_metadata,
        }
        return message

    def _chunks(self, message: BaseMessage) -> Iterator[ChatGenerationChunk]:
        """Split an AIMessage into streamable chunks that merge back into it."""
        assert isinstance(message, AIMessage)
        content = message.content
        pieces: list[Any]
        if isinstance(content, str):
            pieces = [p for p in re.findall(r"\S+\s*|\s+", content) if p]
        else:
            pieces = [content] if content else []
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece, id=message.id))
        tool_chunks = [
            tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc.get("id"), index=i)
            for i, tc in enumerate(message.tool_calls)
        ]
        offset = len(tool_chunks)
        tool_chunks += [
            tool_call_chunk(name=tc.get("name"), args=tc.get("args"), id=tc.get("id"), index=offset + i)
            for i, tc in enumerate(message.invalid_tool_calls)
        ]
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=message.id,
                tool_call_chunks=tool_chunks,
                additional_kwargs=dict(message.additional_kwargs),
                response_metadata=dict(message.response_metadata),
                usage_metadata=message.usage_metadata,
                chunk_position="last",
            )
        )


@dataclass
class _Deferred:
    fn: Callable[..., Any]
