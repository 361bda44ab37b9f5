"""Structured output on any OpenAI-compatible server: methods, reasoning traces, JSON repair, refusals.

Servers differ in what they accept: OpenAI, vLLM and llama.cpp's ``llama-server`` take
``response_format: json_schema``; llama-cpp-python's server answers it with HTTP 500 and takes only
``json_object`` (with the schema beside it); some servers only do tool calling; some ignore every
format and answer prose. The client tries the methods in ``METHODS`` order and remembers, per
endpoint, the first that works (``remember``), so only the first call of a process probes.

Whatever the method, an answer is cleaned the same way before it is parsed: reasoning traces
(``<think>`` and kin) are dropped, JSON is cut out of fences and prose and repaired (trailing commas,
single quotes, Python literals, missing closing brackets) before pydantic validates it.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

METHODS = ("json_schema", "json_object", "function_calling", "text")
# What a step is called in settings, traces and the report, by the schema it fills.
STEP_OF_SCHEMA = {"ResearchPlan": "plan", "EvidenceReview": "reflect", "ReportOutline": "outline"}
# The sentence the json_object and text methods add, with the schema; test doubles find the name in it.
SCHEMA_INSTRUCTION = ("Reply with one JSON object and nothing else: no prose, no code fence. It must follow "
                      "the JSON schema `{name}`:\n{schema}")

_TAGS = "think|thinking|reasoning"
_CLOSED_TRACE = re.compile(rf"<({_TAGS})>.*?</\1>", re.S | re.I)
_OPEN_TRACE = re.compile(rf"^\s*<({_TAGS})>.*\Z", re.S | re.I)  # cut off while still thinking
_HEADLESS_TRACE = re.compile(rf"^.*?</({_TAGS})>", re.S | re.I)  # the template opened it in the prompt
_FENCE = re.compile(r"```[a-zA-Z]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
# A server's refusal of a format names the format (or the parameter carrying it).
_FORMAT_WORDS = re.compile(r"response_format|response format|json_schema|json_object|structured output|"
                           r"\btools?\b|tool_choice|function|grammar|'text'", re.I)
_FORMAT_STATUSES = {400, 404, 415, 422, 500, 501}
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


class FormatUnsupported(RuntimeError):
    """The server refused the structured-output method (not a transient fault)."""


# --------------------------------------------------------------------------- reasoning traces
def strip_reasoning(text: str) -> str:
    """``text`` without reasoning traces: closed ``<think>``/``<thinking>``/``<reasoning>`` blocks, a
    block the chat template opened in the prompt (only its closing tag arrives), and a leading block
    left unclosed because the answer was cut off (then nothing of the answer is left)."""
    text = _CLOSED_TRACE.sub("", text)
    text = _HEADLESS_TRACE.sub("", text)
    return _OPEN_TRACE.sub("", text).strip()


def answer_text(message: Any) -> str:
    """The answer a message carries, reasoning left out.

    Content blocks of type reasoning/thinking are skipped; ``reasoning_content`` (DeepSeek, vLLM,
    llama-server's reasoning parser) never reaches ``content`` in langchain-openai, and is not read.
    """
    content = getattr(message, "content", message)
    if isinstance(content, list):
        content = "".join(b if isinstance(b, str) else str(b.get("text") or "") for b in content
                          if isinstance(b, str) or b.get("type") not in ("reasoning", "thinking"))
    return strip_reasoning(content or "")


# --------------------------------------------------------------------------- JSON from free text
def is_bare_json(text: str) -> bool:
    """True when the answer is JSON and nothing else (what a format-constrained server returns)."""
    return text.strip()[:1] in ("{", "[")


def extract_json(text: str) -> Any:
    """The JSON value in ``text``, repaired; raises ``json.JSONDecodeError`` when there is none."""
    text = strip_reasoning(text)
    candidate = _json_span(text)
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        return json.loads(repair_json(candidate))


def parse_answer(text: str, schema: type[T]) -> T:
    """Validate the JSON in ``text`` against ``schema`` (``ValidationError``/``JSONDecodeError`` if not)."""
    return schema.model_validate(extract_json(text))


def _json_span(text: str) -> str:
    for block in _FENCE.findall(text):  # a fenced block that holds JSON wins over the prose around it
        if block.strip()[:1] in ("{", "["):
            return block.strip()
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return text.strip()
    start = min(starts)
    end = _balanced_end(text, start)
    return text[start:end]


def _balanced_end(text: str, start: int) -> int:
    """Index after the bracket that closes the one at ``start`` (the text's end if none does)."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and not escaped:
                quote = ""
            escaped = not escaped and ch == "\\"
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def repair_json(text: str) -> str:
    """Common slips of models writing JSON by hand, fixed in one pass outside strings: single-quoted
    strings, Python's True/False/None, trailing commas, an unterminated string, missing closers."""
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            i = _copy_string(text, i, out)
            continue
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            _drop_trailing_comma(out)
            if stack:
                stack.pop()
        elif ch.isalpha() and (match := re.match(r"[A-Za-z_]+", text[i:])):
            # A non-ASCII letter starts no match: it is copied as is, and json.loads then reports it.
            word = match.group()
            out.append(_PY_LITERALS.get(word, word))
            i += len(word)
            continue
        out.append(ch)
        i += 1
    _drop_trailing_comma(out)
    out.extend(reversed(stack))
    return "".join(out)


def _copy_string(text: str, start: int, out: list[str]) -> int:
    """Copy the string literal at ``start`` to ``out`` as a double-quoted JSON string; returns its end."""
    quote, i, parts = text[start], start + 1, ['"']
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            parts.append(text[i:i + 2] if text[i + 1] != "'" else "'")
            i += 2
            continue
        if ch == quote:
            i += 1
            break
        parts.append('\\"' if ch == '"' else "\\n" if ch == "\n" else ch)
        i += 1
    parts.append('"')  # closes an unterminated string too
    out.append("".join(parts))
    return i


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j].isspace():
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]


# --------------------------------------------------------------------------- methods and refusals
def schema_instruction(schema: type[BaseModel]) -> str:
    """The schema in the prompt, for the methods whose request does not carry it to the model."""
    compact = json.dumps(schema.model_json_schema(), separators=(",", ":"), ensure_ascii=False)
    return SCHEMA_INSTRUCTION.format(name=schema.__name__, schema=compact)


def json_schema_format(schema: type[BaseModel]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}


def json_object_format(schema: type[BaseModel]) -> dict[str, Any]:
    # llama-cpp-python's server turns ``schema`` into a grammar; other servers ignore the extra key.
    return {"type": "json_object", "schema": schema.model_json_schema()}


def is_format_refusal(exc: BaseException) -> bool:
    """An HTTP error saying the server does not take this request shape (not worth retrying as is)."""
    status = getattr(exc, "status_code", None)
    if status not in _FORMAT_STATUSES:
        return False
    body = getattr(exc, "body", None)
    text = f"{exc} {json.dumps(body) if isinstance(body, dict | list) else body or ''}"
    return bool(_FORMAT_WORDS.search(text))


def methods_to_try(setting: str, remembered: str | None) -> list[str]:
    """The methods a call tries, in order: the setting alone, or (auto) the fallback chain."""
    if setting != "auto":
        return [setting]
    return list(METHODS[METHODS.index(remembered):] if remembered else METHODS)


# --------------------------------------------------------------------------- memory per endpoint
_remembered: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def remembered(endpoint: tuple[str, str]) -> str | None:
    with _lock:
        return _remembered.get(endpoint)


def remember(endpoint: tuple[str, str], method: str) -> None:
    """Keep the method that worked for (base URL, model) for the rest of the process."""
    with _lock:
        _remembered[endpoint] = method


def forget_methods() -> None:
    """Forget every endpoint's method (tests; a server that was swapped for another)."""
    with _lock:
        _remembered.clear()
