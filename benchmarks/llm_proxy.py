"""A recording pass-through between Dossier and a real OpenAI-compatible server, for the real-model test and
``llm_real.py``: it sees every call on the wire, so what it counts does not depend on what the engine records.

Per chat request it notes the step (plan, research, reflect, outline, write, summary; from the system
prompt's first sentence or the schema name), the structured-output form used (json_schema, json_object,
tools, text), whether the request is a re-ask (a second user turn appended after the first prompt, no tool
turns), and whether the answer would parse as that step needs on the first try (JSON with the schema's
required keys; research: tool calls with JSON arguments or a text note; write: non-empty text).

Bytes are relayed as they arrive, and when the client hangs up (its timeout) the upstream connection is
closed too, so the server stops generating for a caller that is gone. Loopback only.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

JSON_STEPS = ("plan", "reflect", "outline")  # answered in JSON whatever the form of the request
STEPS = ("plan", "research", "reflect", "outline", "write", "summary", "other")
SCHEMA_STEPS = {"researchplan": "plan", "evidencereview": "reflect", "reportoutline": "outline",
                "executivesummary": "summary", "summary": "summary"}
REASK_MARK = "did not match the schema"  # in every structured-output re-ask the engine sends
_THINK_RE = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


@dataclass
class Call:
    step: str
    mode: str
    reask: bool
    stream: bool
    started: float
    seconds: float = 0.0
    status: int = 0
    client_gone: bool = False
    finish_reason: str | None = None
    tool_calls: int = 0
    content_chars: int = 0
    parsed: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def classify(request: dict) -> tuple[str, str, bool]:
    """(step, structured-output mode, is a re-ask) of one chat request."""
    messages = request.get("messages") or []
    fmt = request.get("response_format") or {}
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    named = choice.get("function", {}).get("name", "") if isinstance(choice, dict) else ""
    schema = (fmt.get("json_schema") or {}).get("name", "") if isinstance(fmt, dict) else ""
    mode = fmt.get("type") if isinstance(fmt, dict) and fmt.get("type") else ("tools" if tools else "text")
    step = SCHEMA_STEPS.get((schema or named).lower().replace("_", ""), "")
    if not step:
        system = next((_text(m.get("content")) for m in messages if m.get("role") == "system"), "")
        step = _step_from_prompt(system.strip().split(". ")[0].lower(), bool(tools))
    roles = [m.get("role") for m in messages]
    # A re-ask is a later user turn that names the mismatch; a second user turn alone is not one (the
    # json_object and text methods put the schema in a user turn of its own, after the prompt).
    later_users = [_text(m.get("content")) for m in messages if m.get("role") == "user"][1:]
    reask = "tool" not in roles and any(REASK_MARK in text for text in later_users)
    return step, mode, reask


def _step_from_prompt(first: str, has_tools: bool) -> str:
    for word, step in (("outline", "outline"), ("plan", "plan"), ("review", "reflect"), ("summary", "summary"),
                       ("section", "write"), ("research", "research")):
        if word in first:
            return step
    return "research" if has_tools else "other"


def _json_object(text: str) -> dict | None:
    text = _THINK_RE.sub("", text).strip()
    match = _FENCE_RE.match(text)
    try:
        value = json.loads(match[1] if match else text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def judge(call: Call, request: dict, content: str, tool_args: list[str]) -> bool:
    """Would this answer parse as its step needs, without a re-ask?"""
    if call.status != 200 or call.client_gone:
        return False
    if call.step == "research":
        return bool(content.strip()) or (bool(tool_args) and all(_json_object(a) is not None for a in tool_args))
    fmt = request.get("response_format") or {}
    wants_json = bool(fmt) or bool(tool_args and request.get("tool_choice")) or call.step in JSON_STEPS
    if not wants_json:  # write, summary: prose
        return bool(_THINK_RE.sub("", content).strip())
    value = _json_object(tool_args[0]) if tool_args else _json_object(content)
    schema = (fmt.get("json_schema") or {}).get("schema") or {}
    return value is not None and all(k in value for k in schema.get("required", []))


def _decode_body(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return status, headers, body


def _complete(raw: bytes) -> bool:
    """Has the whole HTTP response arrived (by Content-Length, the chunked terminator, or SSE's [DONE])?"""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if length:
        return len(body) >= int(length[1])
    return body.endswith(b"0\r\n\r\n") or b"data: [DONE]" in body


def digest(call: Call, request: dict, raw: bytes) -> None:
    """Fill the call's outcome from the raw upstream response (JSON or an SSE stream)."""
    call.status, headers, body = _decode_body(raw)
    content, args, usage = "", {}, {}
    if "event-stream" in headers.get("content-type", ""):
        for line in body.decode("utf-8", "replace").splitlines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                content += delta.get("content") or ""
                call.finish_reason = choice.get("finish_reason") or call.finish_reason
                for tc in delta.get("tool_calls") or []:
                    piece = (tc.get("function") or {}).get("arguments", "")
                    args[tc.get("index", 0)] = args.get(tc.get("index", 0), "") + piece
    else:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        usage = payload.get("usage") or {}
        choice = (payload.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        content, call.finish_reason = message.get("content") or "", choice.get("finish_reason")
        calls = enumerate(message.get("tool_calls") or [])
        args = {i: (tc.get("function") or {}).get("arguments", "") for i, tc in calls}
    call.prompt_tokens, call.completion_tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    call.tool_calls, call.content_chars = len(args), len(content)
    call.extras["head"] = (content or " ".join(args.values()))[:200]  # what the model began with
    call.parsed = judge(call, request, content, [args[k] for k in sorted(args)])


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer

    def log_message(self, *args: Any) -> None:  # quiet: the recording is the log
        pass

    def do_GET(self) -> None:
        self._relay(b"", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = None
        if self.path.rstrip("/").endswith("/chat/completions"):
            try:
                request = json.loads(body)
            except ValueError:
                request = None
        self._relay(body, request)

    def _relay(self, body: bytes, request: dict | None) -> None:
        proxy = self.server.owner
        call = None
        if request is not None:
            step, mode, reask = classify(request)
            call = Call(step=step, mode=mode, reask=reask, stream=bool(request.get("stream")), started=time.time(),
                        extras={"max_tokens": request.get("max_tokens") or request.get("max_completion_tokens")})
        t0 = time.perf_counter()
        raw, gone = self._pipe(body, proxy)
        if call is not None:
            call.seconds, call.client_gone = round(time.perf_counter() - t0, 3), gone
            digest(call, request, raw)
            with proxy.lock:
                proxy.calls.append(call)

    def _pipe(self, body: bytes, proxy: RecordingProxy) -> tuple[bytes, bool]:
        keep = ("content-type", "authorization", "accept")
        head = [f"{self.command} {self.path} HTTP/1.1", f"Host: {proxy.upstream_host}:{proxy.upstream_port}",
                f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() in keep]
        raw, gone = b"", False
        with socket.create_connection((proxy.upstream_host, proxy.upstream_port)) as up:
            up.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            client = self.connection
            while True:
                ready, _, _ = select.select([up, client], [], [], 1.0)
                if client in ready and not client.recv(1, socket.MSG_PEEK):
                    gone = not _complete(raw)  # hung up before the answer was whole: its timeout
                    break  # either way, stop the server's work for a caller that is gone
                if up in ready:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    raw += chunk
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        gone = True
                        break
        self.close_connection = True
        return raw, gone


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingProxy


class RecordingProxy:
    """``with RecordingProxy("http://127.0.0.1:8080/v1") as proxy: proxy.base_url; proxy.calls``."""

    def __init__(self, upstream_base_url: str) -> None:
        parts = urlsplit(upstream_base_url)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path.rstrip("/")
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take(self) -> list[Call]:
        """The calls recorded since the last take (one report's worth)."""
        with self.lock:
            out, self.calls = self.calls, []
        return out


def step_table(calls: list[Call]) -> dict[str, dict[str, Any]]:
    """Per step: calls, first attempts, share of first attempts that parsed, re-asks, timeouts, tokens."""
    out: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        mine = [c for c in calls if c.step == step]
        if not mine:
            continue
        first = [c for c in mine if not c.reask]
        out[step] = {
            "calls": len(mine), "first_attempts": len(first),
            "parsed_first_try": round(sum(c.parsed for c in first) / len(first), 3) if first else None,
            "reasks": sum(c.reask for c in mine), "client_gave_up": sum(c.client_gone for c in mine),
            "http_errors": sum(c.status not in (200, 0) for c in mine),
            "with_tool_calls": sum(c.tool_calls > 0 for c in mine),
            "finish_length": sum(c.finish_reason == "length" for c in mine),
            "modes": sorted({c.mode for c in mine}),
            "prompt_tokens": sum(c.prompt_tokens for c in mine),
            "completion_tokens": sum(c.completion_tokens for c in mine),
            "seconds": round(sum(c.seconds for c in mine), 1),
        }
    return out


def as_dicts(calls: list[Call]) -> list[dict[str, Any]]:
    return [asdict(c) for c in calls]


def _step_of(line: str) -> str:
    """'research q1: ...' -> 'research'; 'write s2: ...' -> 'write'."""
    head = line.split(":", 1)[0].strip().lower().split(" ")[0]
    return head if head in STEPS else "other"


def outcomes(failures: list[str], notes: list[str], calls: list[Call]) -> dict[str, str]:
    """Per step of the run, what happened to it, from the report's records and the calls on the wire:
    'fell back' (a failure recorded, the rest of the run offline), 're-asked' / 'repaired' (JSON fixed in
    code) / 'retried' (recovered on the model), 'succeeded', or 'offline' (no call reached the server: an
    earlier step had fallen back)."""
    seen = {c.step for c in calls}
    out: dict[str, str] = {}
    for step in ("plan", "research", "reflect", "outline", "write", "summary"):
        mine_f = [f for f in failures if _step_of(f) == step]
        mine_n = [n for n in notes if _step_of(n) == step]
        if mine_f:
            out[step] = "fell back"
        elif any("re-ask" in n for n in mine_n) or any(c.reask and c.step == step for c in calls):
            out[step] = "re-asked"
        elif any("repaired" in n for n in mine_n):
            out[step] = "repaired"
        elif any("retr" in n for n in mine_n):
            out[step] = "retried"
        elif step in seen:
            out[step] = "succeeded"
        elif failures:
            out[step] = "offline"
    return out
