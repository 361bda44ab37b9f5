"""Server personalities for the OpenAI stub: what real OpenAI-compatible servers accept and return.

``OpenAIStub(responder, personality=Personality("no_json_schema"))`` answers like:

- ``full``: everything (OpenAI, vLLM, llama.cpp's ``llama-server``).
- ``no_json_schema``: llama-cpp-python's server: ``response_format: json_schema`` gets HTTP 500
  ("Input should be 'text' or 'json_object'"); ``json_object`` (with a ``schema``) and tools work.
- ``json_object_only``: json_schema refused (HTTP 400); ``json_object`` works; tools work unless
  ``tools=False`` (then refused with HTTP 400 too).
- ``tools_only``: any ``response_format`` refused (HTTP 400); tool calling works.
- ``text_only``: ignores ``response_format`` and tools; answers prose, JSON in a ```json fence,
  tool calls written as text (``<tool_call>{"name": ..., "arguments": ...}</tool_call>``).

``think=True`` puts a ``<think>`` block before every prose answer (and a ``reasoning_content``
field beside it); ``sloppy=True`` writes the fenced JSON with trailing commas.
The stub checks ``refusal`` before its fault rules, and passes every reply through ``shape``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from dossier.testing.openai_stub import _UNSET, Reply

KINDS = ("full", "no_json_schema", "json_object_only", "tools_only", "text_only")
LLAMA_CPP_PYTHON_500 = ("1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                        "'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]")
THINK = "<think>\nThe user wants JSON. Let me think about {\"draft\": true} first.\n</think>\n"


@dataclass
class Personality:
    """What the stub's server accepts and how it answers: ``kind`` is one of ``KINDS`` (see the module doc)."""

    kind: str = "full"
    tools: bool = True  # json_object_only: whether tool calling works
    think: bool = False
    sloppy: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown personality {self.kind!r}; expected one of {KINDS}")

    def refusal(self, request: dict) -> Reply | None:
        """The error reply this server gives a request it does not take, or None."""
        fmt = (request.get("response_format") or {}).get("type")
        if self.kind == "no_json_schema" and fmt == "json_schema":
            return Reply.error(500, LLAMA_CPP_PYTHON_500)
        if self.kind == "json_object_only" and fmt == "json_schema":
            return Reply.error(400, "response_format type 'json_schema' is not supported; use 'json_object'")
        if self.kind == "json_object_only" and not self.tools and request.get("tools"):
            return Reply.error(400, "this server does not support tools")
        if self.kind == "tools_only" and fmt:
            return Reply.error(400, "Unsupported parameter: 'response_format'")
        return None

    def shape(self, request: dict, reply: Reply) -> Reply:
        """The reply as this server would send it."""
        if reply.fault_kind and reply.fault_kind != "empty":
            return reply
        if self.kind == "text_only" and reply.json_obj is not _UNSET:
            reply = replace(reply, json_obj=_UNSET, content=self._prose(reply.json_obj))
        elif self.kind == "text_only" and reply.tool_calls:
            calls = "\n".join(f'<tool_call>{{"name": "{c.name}", "arguments": {c.arguments}}}</tool_call>'
                              for c in reply.tool_calls)
            reply = replace(reply, tool_calls=[], content=calls)
        if self.think and reply.content and reply.json_obj is _UNSET:  # prose answers think out loud first
            reply = replace(reply, content=THINK + reply.content, reasoning="Reasoning the client must not show.")
        return reply

    def _prose(self, obj: Any) -> str:
        body = json.dumps(obj, indent=2, ensure_ascii=False)
        if self.sloppy:  # a comma before every closing bracket, as models writing JSON by hand do
            body = re.sub(r'(["\d\]}el])(\n\s*[\]}])', r"\1,\2", body)
        return f"Here is the answer you asked for:\n\n```json\n{body}\n```\n\nLet me know if you need more."
