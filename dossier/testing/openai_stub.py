"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 (stdlib only).

Lets the real ``langchain_openai.ChatOpenAI`` / ``OpenAIEmbeddings`` (and the CLI, notebooks)
run offline against scripted answers and scripted failures::

    with OpenAIStub(lambda req: Reply.text("hi")) as stub:
        llm = ChatOpenAI(base_url=stub.base_url, api_key="sk-test", model="stub-model")
        llm.invoke("hello").content            # -> "hi"
        stub.requests[-1].json["messages"]     # what the client sent

Endpoints: ``POST /v1/chat/completions`` (JSON, or SSE when ``stream: true``: ``role`` in the
first chunk, content deltas, tool-call deltas, a chunk with ``finish_reason``, a usage chunk
with empty ``choices`` when ``stream_options.include_usage``, then ``data: [DONE]``),
``POST /v1/embeddings`` (deterministic blake2b vectors, float lists or base64 float32 -- the
openai SDK asks for base64 unless told otherwise), ``GET /v1/models``.

Each chat request is answered by, in order: the first matching fault rule
(``stub.inject(...)``), the queue (``stub.queue(...)``), the responder ``(request_json) ->
Reply | str | dict | None``, and a default echo.  A ``str`` means ``Reply.text``, a ``dict``
means ``Reply.json``, ``None`` means the default.

The server speaks HTTP/1.1 with keep-alive; streamed bodies use chunked transfer encoding, so
a dropped connection is a protocol error for the client (not a silently short answer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast, overload

if TYPE_CHECKING:  # personalities imports this module for Reply
    from dossier.testing.personalities import Personality

__all__ = [
    "FAULT_KINDS",
    "FaultEvent",
    "FaultRule",
    "OpenAIStub",
    "RecordedRequest",
    "Reply",
    "ToolCallSpec",
    "forced_tool",
    "last_user_text",
    "schema_name",
    "stub_embedding",
    "tool_names",
]

FAULT_KINDS = frozenset(
    {"429", "500", "502", "503", "error", "hang", "drop", "malformed", "invalid_tool_args", "empty"}
)
_FAULT_ALIASES = {
    "rate_limit": "429",
    "server_error": "500",
    "bad_gateway": "502",
    "unavailable": "503",
    "timeout": "hang",
    "close": "drop",
    "disconnect": "drop",
    "mid_stream_close": "drop",
    "bad_json": "malformed",
    "malformed_json": "malformed",
    "invalid_args": "invalid_tool_args",
    "bad_tool_args": "invalid_tool_args",
    "empty_completion": "empty",
}
_UNSET: Any = object()


# --------------------------------------------------------------------------- request helpers
def content_text(content: Any) -> str:
    """The text of a chat message's content: a string, or its text blocks joined (images and the rest left out)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def last_user_text(request_json: dict) -> str:
    """Text of the last ``user`` message of a chat request ("" if none)."""
    for message in reversed(request_json.get("messages") or []):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def tool_names(request_json: dict) -> list[str]:
    """Names of the function tools offered in a chat request."""
    names = []
    for tool in request_json.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            names.append(fn["name"])
    return names


def forced_tool(request_json: dict) -> str | None:
    """The single tool the request forces (``tool_choice`` by name, or ``required`` + one tool)."""
    choice = request_json.get("tool_choice")
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and fn.get("name"):
            return fn["name"]
        return choice.get("name")
    names = tool_names(request_json)
    if isinstance(choice, str) and choice in names:
        return choice
    if choice == "required" and len(names) == 1:
        return names[0]
    return None


def schema_name(request_json: dict) -> str | None:
    """Name of the structured-output schema asked for.

    From ``response_format.json_schema.name`` (``method="json_schema"``), the single forced
    tool (``method="function_calling"``), or, for json_object / text structured output, the
    schema the prompt asks the model to "follow the JSON schema `Name`" of (else ``None``).
    """
    response_format = request_json.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        if spec.get("name"):
            return spec["name"]
    forced = forced_tool(request_json)
    if forced or request_json.get("tools"):
        return forced
    # json_object / text structured output: the schema rides in the prompt (agents/llm/structured.py).
    found = _PROMPT_SCHEMA.findall(json.dumps(request_json.get("messages") or []))
    return found[-1] if found else None


_PROMPT_SCHEMA = re.compile(r"follow the JSON schema `(\w+)`")


def _estimate_tokens(text: str) -> int:
    return 0 if not text else max(1, math.ceil(len(text) / 4))


def stub_embedding(text: str, dim: int) -> list[float]:
    """The stub's deterministic, unit-length embedding of ``text`` (blake2b, any process)."""
    data = text.encode("utf-8")
    values: list[float] = []
    block = 0
    while len(values) < dim:
        digest = hashlib.blake2b(data + b"\x00" + block.to_bytes(4, "little"), digest_size=64).digest()
        values.extend(v / 32767.5 - 1.0 for v in struct.unpack("<32H", digest))
        block += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _mask(value: str) -> str:
    scheme, sep, secret = value.partition(" ")
    if not sep:
        scheme, secret = "", value
    masked = "****" + secret[-4:] if len(secret) > 4 else "****"
    return f"{scheme} {masked}" if scheme else masked


_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "openai-api-key"}


# --------------------------------------------------------------------------- replies
@dataclass
class ToolCallSpec:
    name: str
    arguments: str
    """Raw JSON text of the arguments (may be deliberately invalid)."""
    id: str | None = None


@dataclass
class Reply:
    """What the stub answers to one request.  Build with the class-method helpers."""

    content: str | None = None
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    json_obj: Any = _UNSET
    refusal: str | None = None
    fault_kind: str | None = None
    """Set by ``Reply.fault``/``Reply.error``; ``None`` for a normal answer."""
    status: int = 200
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    hang_s: float = 30.0
    drop_after: int = 2
    delay_s: float = 0.0
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    reasoning: str | None = None
    """Sent as ``reasoning_content`` beside the content (DeepSeek / vLLM / llama-server style)."""

    # -- helpers
    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        """Assistant text."""
        return cls(content=content, **kw)

    @classmethod
    def tool_call(
        cls,
        name: str,
        args: dict[str, Any] | str | None = None,
        *,
        id: str | None = None,
        content: str | None = None,
        **kw: Any,
    ) -> Reply:
        """One tool call; ``args`` a dict (JSON-encoded) or a raw string (sent verbatim)."""
        return cls(content=content, tool_calls=[_spec(name, args, id)], **kw)

    @classmethod
    def parallel_tool_calls(cls, calls: Iterable[tuple[str, dict | str | None]], **kw: Any) -> Reply:
        """Several tool calls in one assistant message."""
        return cls(tool_calls=[_spec(name, args, None) for name, args in calls], **kw)

    @classmethod
    def json(cls, obj: Any, **kw: Any) -> Reply:
        """A structured answer.

        Sent as JSON text content for ``response_format`` requests (json_schema / json_mode)
        and plain requests, and as a call of the forced tool for function-calling structured
        output -- so one responder serves all three ``with_structured_output`` methods.
        """
        return cls(json_obj=obj, **kw)

    @classmethod
    def refuse(cls, refusal: str = "I can't help with that.", **kw: Any) -> Reply:
        """A structured-output refusal (``message.refusal``)."""
        return cls(refusal=refusal, **kw)

    @classmethod
    def error(cls, status: int, message: str | None = None, **kw: Any) -> Reply:
        """An HTTP error with an OpenAI-style error body."""
        return cls(fault_kind="error", status=status, message=message, **kw)

    @classmethod
    def fault(cls, kind: str | int, **kw: Any) -> Reply:
        """A scripted failure.

        Kinds: ``429`` (``retry_after=`` seconds, default 0.05, sent as ``Retry-After``),
        ``500``/``502``/``503``, ``hang`` (no answer for ``hang_s``, capped by the stub's
        ``max_hang_s``; ends early when the client disconnects or the stub stops),
        ``drop`` (send ``drop_after`` content chunks -- or half the JSON body -- then close
        the socket), ``malformed`` (200 with a broken JSON body / SSE event),
        ``invalid_tool_args`` (a tool call whose arguments are not JSON; ``name=``, ``raw=``),
        ``empty`` (content "" and no tool calls).
        """
        kind = _FAULT_ALIASES.get(str(kind), str(kind))
        if kind not in FAULT_KINDS:
            msg = f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}"
            raise ValueError(msg)
        if kind == "invalid_tool_args":
            name = kw.pop("name", None)
            raw = kw.pop("raw", '{"query": "unterminated')
            return cls(fault_kind=kind, tool_calls=[ToolCallSpec(name or "", raw)], **kw)
        if kind == "empty":
            return cls(fault_kind=kind, content="", **kw)
        if kind in {"429", "500", "502", "503"}:
            kw.setdefault("status", int(kind))
            if kind == "429":
                kw.setdefault("retry_after", 0.05)
        return cls(fault_kind=kind, **kw)

    @property
    def is_http_error(self) -> bool:
        return self.fault_kind in {"429", "500", "502", "503", "error"}


def _spec(name: str, args: dict | str | None, id_: str | None) -> ToolCallSpec:
    arguments = args if isinstance(args, str) else json.dumps(args or {})
    return ToolCallSpec(name=name, arguments=arguments, id=id_)


@overload
def _as_reply(value: Reply | str | dict | list) -> Reply: ...
@overload
def _as_reply(value: Any) -> Reply | None: ...
def _as_reply(value: Any) -> Reply | None:
    if value is None or isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.text(value)
    if isinstance(value, dict | list):
        return Reply.json(value)
    msg = f"stub responder returned {type(value).__name__}; expected Reply, str, dict or None"
    raise TypeError(msg)


# --------------------------------------------------------------------------- records
@dataclass
class RecordedRequest:
    index: int
    method: str
    path: str
    json: Any
    headers: dict[str, str]
    """Lower-case names; secrets masked to their last 4 characters."""
    at: float
    reply: Reply | None = None

    @property
    def fault(self) -> str | None:
        return self.reply.fault_kind if self.reply else None


@dataclass
class FaultEvent:
    request_index: int
    path: str
    kind: str
    status: int | None
    at: float


@dataclass
class FaultRule:
    reply: Reply
    times: int | None = 1
    """How many matching requests to fail; ``None`` for every one."""
    when: Callable[[dict], bool] | None = None
    path: str | None = "/chat/completions"
    """Suffix of the request path to match; ``None`` for every POST endpoint."""
    hits: int = 0

    def matches(self, path: str, request_json: Any) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.path is not None and not path.endswith(self.path):
            return False
        if self.when is not None:
            try:
                return bool(self.when(request_json))
            except Exception:
                return False
        return True


# --------------------------------------------------------------------------- server
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: OpenAIStub

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = cast(str, host)  # an AF_INET host is a str; typeshed also allows bytes for other families

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # client went away, or we dropped it on purpose
            return
        self.stub.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing
    def setup(self) -> None:
        super().setup()
        self.server.stub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.stub._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def stub(self) -> OpenAIStub:
        return self.server.stub

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self._send_raw(status, body, "application/json", headers)

    def _send_raw(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error_json(self, status: int, message: str, etype: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": etype, "param": None, "code": str(status)}}
        self._send_json(status, body, headers)

    def _abort(self) -> None:
        """Drop the connection without finishing the response."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    def _wait(self, seconds: float, *, watch_client: bool = False) -> bool:
        """Sleep up to ``seconds``; False if the stub stopped or the client left."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self.stub._stopping.wait(min(remaining, 0.05)):
                return False
            if watch_client and self._client_gone():
                return False

    # -- SSE (chunked transfer encoding)
    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _sse_raw(self, payload: str) -> None:
        data = f"data: {payload}\n\n".encode()
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _sse(self, obj: Any) -> None:
        self._sse_raw(json.dumps(obj))

    def _end_sse(self) -> None:
        self._sse_raw("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- routing
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        self.stub._record("GET", path, None, self.headers)
        with self.stub._flight():
            if path.endswith("/models"):
                self._send_json(200, {"object": "list", "data": [self._model(m) for m in self.stub.models]})
            elif "/models/" in path:
                model = path.rsplit("/", 1)[1]
                if model in self.stub.models:
                    self._send_json(200, self._model(model))
                else:
                    self._send_error_json(404, f"model {model!r} not found", "invalid_request_error")
            else:
                self._send_error_json(404, f"no route for GET {path}", "invalid_request_error")

    @staticmethod
    def _model(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": "openai-stub"}

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            request_json = json.loads(raw) if raw else {}
        except ValueError:
            request_json = None
        record = self.stub._record("POST", path, request_json, self.headers)
        with self.stub._flight():
            if request_json is None:
                self._send_error_json(400, "request body is not valid JSON", "invalid_request_error")
                return
            if path.endswith("/chat/completions"):
                kind = "chat"
            elif path.endswith("/embeddings"):
                kind = "embeddings"
            else:
                self._send_error_json(404, f"no route for POST {path}", "invalid_request_error")
                return
            try:
                reply = self.stub._resolve(path, request_json, record, chat=kind == "chat")
            except Exception as exc:
                self.stub.errors.append(traceback.format_exc())
                self._send_error_json(
                    500, f"stub responder raised {exc!r}", "stub_error", {"x-should-retry": "false"}
                )
                return
            if reply.delay_s and not self._wait(reply.delay_s):
                self._abort()
                return
            stream = bool(request_json.get("stream")) and kind == "chat"
            if reply.fault_kind and reply.fault_kind not in {"invalid_tool_args", "empty"}:
                self._serve_fault(reply, stream=stream, record=record, kind=kind)
            elif kind == "chat":
                self._serve_chat(request_json, reply, record, stream=stream)
            else:
                self._serve_embeddings(request_json)

    # -- faults
    def _serve_fault(self, reply: Reply, *, stream: bool, record: RecordedRequest, kind: str) -> None:
        fault = reply.fault_kind
        if reply.is_http_error:
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers.setdefault("Retry-After", f"{reply.retry_after:g}")
            etype = "rate_limit_error" if reply.status == 429 else "server_error"
            message = reply.message or f"stub fault: HTTP {reply.status}"
            self._send_error_json(reply.status, message, etype, headers)
        elif fault == "hang":
            hang_s = min(reply.hang_s, self.stub.max_hang_s)
            if self._wait(hang_s, watch_client=True):
                try:
                    self._send_error_json(504, "stub fault: gateway timeout after hang", "server_error")
                except OSError:
                    pass
            else:
                self._abort()
        elif fault == "drop":
            if stream:
                self._start_sse()
                words = _split_words(reply.content or "This answer is cut off in the middle of")
                self._sse(self._chunk(record, {"role": "assistant", "content": ""}))
                for word in words[: max(reply.drop_after, 0)]:
                    self._sse(self._chunk(record, {"content": word}))
                self._abort()
            else:
                body = json.dumps(self._completion(record, {}, Reply.text(reply.content or "cut off"))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self._abort()
        elif fault == "malformed":
            if stream:
                self._start_sse()
                self._sse(self._chunk(record, {"role": "assistant", "content": ""}))
                self._sse_raw('{"id": "chatcmpl-broken", "choices": [{"index": 0, "delta": {"content": "oo')
                self._end_sse()
            elif kind == "embeddings":
                self._send_raw(200, b'{"object": "list", "data": [{"embedding": [0.1, ', "application/json")
            else:
                broken = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{'
                self._send_raw(200, broken, "application/json")
        else:  # pragma: no cover - guarded by Reply.fault
            self._send_error_json(500, f"unknown fault {fault!r}", "stub_error")

    # -- chat
    def _chunk(self, record: RecordedRequest, delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": f"chatcmpl-stub{record.index:06d}",
            "object": "chat.completion.chunk",
            "created": int(record.at),
            "model": self._model_name(record),
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    @staticmethod
    def _model_name(record: RecordedRequest) -> str:
        return str((record.json or {}).get("model") or "stub-model")

    def _usage(self, request_json: dict, reply: Reply, content: str | None, calls: list[ToolCallSpec]) -> dict:
        if reply.usage is not None:
            usage = dict(reply.usage)
            usage.setdefault("total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
            return usage
        prompt = sum(_estimate_tokens(content_text(m.get("content"))) for m in request_json.get("messages") or [])
        if request_json.get("tools"):
            prompt += _estimate_tokens(json.dumps(request_json["tools"]))
        called = "".join(c.name + c.arguments for c in calls)
        completion = _estimate_tokens((content or "") + (reply.refusal or "") + called)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _materialise(
        self, request_json: dict, reply: Reply, record: RecordedRequest
    ) -> tuple[str | None, list[ToolCallSpec]]:
        """Content text and tool calls for a reply, resolving ``Reply.json``."""
        content = reply.content
        calls = [
            ToolCallSpec(
                name=c.name or forced_tool(request_json) or (tool_names(request_json) or ["tool"])[0],
                arguments=c.arguments,
                id=c.id or f"call_{record.index}_{i}",
            )
            for i, c in enumerate(reply.tool_calls)
        ]
        if reply.json_obj is not _UNSET:
            text = json.dumps(reply.json_obj)
            target = forced_tool(request_json)
            if not request_json.get("response_format") and target:
                calls.append(ToolCallSpec(name=target, arguments=text, id=f"call_{record.index}_{len(calls)}"))
            else:
                content = text
        if content is None and not calls and reply.refusal is None:
            content = ""
        return content, calls

    def _completion(self, record: RecordedRequest, request_json: dict, reply: Reply) -> dict:
        content, calls = self._materialise(request_json, reply, record)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": reply.refusal}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        return {
            "id": f"chatcmpl-stub{record.index:06d}",
            "object": "chat.completion",
            "created": int(record.at),
            "model": self._model_name(record),
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(request_json, reply, content, calls),
        }

    def _serve_chat(self, request_json: dict, reply: Reply, record: RecordedRequest, *, stream: bool) -> None:
        if not stream:
            self._send_json(200, self._completion(record, request_json, reply))
            return
        content, calls = self._materialise(request_json, reply, record)
        self._start_sse()
        self._sse(self._chunk(record, {"role": "assistant", "content": "", "refusal": None}))
        if reply.reasoning:
            self._sse(self._chunk(record, {"reasoning_content": reply.reasoning}))
        for word in _split_words(content or ""):
            self._sse(self._chunk(record, {"content": word}))
            if self.stub.chunk_delay_s:
                self._wait(self.stub.chunk_delay_s)
        for piece in _split_words(reply.refusal or ""):
            self._sse(self._chunk(record, {"refusal": piece}))
        for i, call in enumerate(calls):
            head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            self._sse(self._chunk(record, {"tool_calls": [head]}))
            for piece in _split_args(call.arguments):
                self._sse(self._chunk(record, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        self._sse(self._chunk(record, {}, finish_reason=finish))
        if (request_json.get("stream_options") or {}).get("include_usage"):
            usage_chunk = self._chunk(record, {})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(request_json, reply, content, calls)
            self._sse(usage_chunk)
        self._end_sse()

    # -- embeddings
    def _serve_embeddings(self, request_json: dict) -> None:
        raw_input = request_json.get("input")
        if isinstance(raw_input, str):
            texts = [raw_input]
        elif isinstance(raw_input, list) and raw_input and all(isinstance(t, int) for t in raw_input):
            texts = [" ".join(map(str, raw_input))]
        elif isinstance(raw_input, list):
            texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in raw_input]
        else:
            self._send_error_json(400, "'input' must be a string or a list", "invalid_request_error")
            return
        dim = int(request_json.get("dimensions") or self.stub.embedding_dim)
        as_base64 = request_json.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = stub_embedding(text, dim)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(_estimate_tokens(t) for t in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": request_json.get("model") or "stub-embedding",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _split_words(text: str) -> list[str]:
    return [p for p in re.findall(r"\S+\s*|\s+", text) if p]


def _split_args(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


# --------------------------------------------------------------------------- the stub
class OpenAIStub:
    """A scripted OpenAI-compatible server; use as a context manager.

    Args:
        responder: ``(request_json) -> Reply | str | dict | None`` for chat requests not
            covered by fault rules or the queue.  Default: echo the last user text.
        embedding_dim: length of embedding vectors (a request's ``dimensions`` overrides it).
        models: ids listed by ``GET /v1/models``.
        max_hang_s: upper bound on any ``hang`` fault (the server never blocks longer).
        chunk_delay_s: pause between streamed content chunks.
        personality: what the server accepts and how it answers
            (``dossier.testing.Personality``); default: everything.
    """

    def __init__(
        self,
        responder: Callable[[dict], Any] | None = None,
        *,
        embedding_dim: int = 64,
        models: Iterable[str] = ("stub-model",),
        max_hang_s: float = 30.0,
        chunk_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        personality: Personality | None = None,
    ) -> None:
        self.responder = responder
        self.personality = personality
        self.embedding_dim = embedding_dim
        self.models = list(models)
        self.max_hang_s = max_hang_s
        self.chunk_delay_s = chunk_delay_s
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.fault_log: list[FaultEvent] = []
        self.errors: list[str] = []
        self.rules: list[FaultRule] = []
        self.max_in_flight = 0
        self.in_flight = 0
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> OpenAIStub:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.stub = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"openai-stub:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` -- pass as ``base_url`` to the OpenAI clients."""
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting
    def queue(self, *replies: Reply | str | dict) -> OpenAIStub:
        """Serve these replies (faults allowed) to the next chat requests, in order."""
        with self._lock:
            self._replies.extend(_as_reply(r) for r in replies)
        return self

    def inject(
        self,
        fault: Reply | str | int,
        *,
        times: int | None = 1,
        when: Callable[[dict], bool] | None = None,
        path: str | None = "/chat/completions",
        **params: Any,
    ) -> FaultRule:
        """Fail the next ``times`` requests (``None``: all) to ``path`` matching ``when``.

        ``fault`` is a ``Reply`` or a fault kind (``params`` go to ``Reply.fault``).  Rules
        are checked before the queue, first added first.
        """
        reply = fault if isinstance(fault, Reply) else Reply.fault(fault, **params)
        rule = FaultRule(reply=reply, times=times, when=when, path=path)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_next(self, n: int, kind: str | int, **params: Any) -> FaultRule:
        """Shorthand: the next ``n`` chat requests get fault ``kind``."""
        return self.inject(kind, times=n, **params)

    def clear(self) -> None:
        """Drop queued replies and fault rules."""
        with self._lock:
            self._replies.clear()
            self.rules.clear()

    def reset(self) -> None:
        """Clear replies, rules, records and counters."""
        with self._lock:
            self._replies.clear()
            self.rules.clear()
            self.requests.clear()
            self.fault_log.clear()
            self.errors.clear()
            self.max_in_flight = self.in_flight

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    # -- internals (called from handler threads)
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, method: str, path: str, request_json: Any, headers: Any) -> RecordedRequest:
        cleaned = {}
        for key, value in headers.items():
            key = key.lower()
            cleaned[key] = _mask(value) if key in _SECRET_HEADERS else value
        with self._lock:
            record = RecordedRequest(
                index=len(self.requests), method=method, path=path, json=request_json, headers=cleaned, at=time.time()
            )
            self.requests.append(record)
        return record

    def _flight(self) -> _InFlight:
        return _InFlight(self)

    def _resolve(self, path: str, request_json: dict, record: RecordedRequest, *, chat: bool) -> Reply:
        reply: Reply | None = None
        if chat and self.personality is not None:  # a request this server refuses never reaches the script
            reply = self.personality.refusal(request_json)
        with self._lock:
            for rule in self.rules if reply is None else ():
                if rule.matches(path, request_json):
                    rule.hits += 1
                    reply = rule.reply
                    break
            if reply is None and chat and self._replies:
                reply = self._replies.popleft()
        if reply is None and chat and self.responder is not None:
            reply = _as_reply(self.responder(request_json))
        if reply is None:
            reply = Reply.text(f"stub reply to: {last_user_text(request_json)[:200]}") if chat else Reply()
        if chat and self.personality is not None:
            reply = self.personality.shape(request_json, reply)
        record.reply = reply
        if reply.fault_kind:
            with self._lock:
                self.fault_log.append(
                    FaultEvent(
                        request_index=record.index,
                        path=path,
                        kind=reply.fault_kind,
                        status=reply.status if reply.is_http_error else None,
                        at=time.time(),
                    )
                )
        return reply


class _InFlight:
    def __init__(self, stub: OpenAIStub) -> None:
        self.stub = stub

    def __enter__(self) -> None:
        with self.stub._lock:
            self.stub.in_flight += 1
            self.stub.max_in_flight = max(self.stub.max_in_flight, self.stub.in_flight)

    def __exit__(self, *exc: Any) -> None:
        with self.stub._lock:
            self.stub.in_flight -= 1
