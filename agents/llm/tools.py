"""The research tools as the model sees them, derived from one definition each: the Toolbox method.

A tool's name in the prompt, the schema offered to the model and the dispatch all come from the
method (its name, its docstring as the model's manual, its annotated parameters), so they cannot
drift apart. Models that answer in text instead of calling a tool (small local models often do)
are served too: ``parse_text_calls`` reads a plain-text tool protocol from the reply.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agents.toolbox import Toolbox, ToolOutcome


@dataclass(frozen=True)
class ToolDef:
    name: str
    manual: str
    args: type[BaseModel]

    def schema(self) -> dict[str, Any]:
        """The OpenAI tool definition offered to the model."""
        params = self.args.model_json_schema()
        params.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.manual, "parameters": params}}

    async def run(self, toolbox: Toolbox, args: dict[str, Any]) -> ToolOutcome:
        """Validate the model's arguments against the signature, then call the method."""
        valid = self.args.model_validate(args or {})
        return await getattr(toolbox, self.name)(**valid.model_dump())


def _define(method: Callable[..., Any]) -> ToolDef:
    params = list(inspect.signature(method, eval_str=True).parameters.values())[1:]  # drop self
    fields: dict[str, Any] = {
        p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default) for p in params
    }
    args = create_model(f"{method.__name__}_args", __config__=ConfigDict(extra="ignore"), **fields)
    return ToolDef(name=method.__name__, manual=inspect.getdoc(method) or method.__name__, args=args)


_METHODS: tuple[Callable[..., Any], ...] = (
    Toolbox.search_documents, Toolbox.list_tables, Toolbox.describe_table, Toolbox.run_sql,
)
TOOLS: dict[str, ToolDef] = {t.name: t for t in map(_define, _METHODS)}
SEARCH, LIST, DESCRIBE, SQL = TOOLS  # the names, for prompts


def tool_schemas() -> list[dict[str, Any]]:
    return [t.schema() for t in TOOLS.values()]


async def dispatch(name: str, args: dict[str, Any], toolbox: Toolbox) -> str:
    """Run one call; every problem comes back as text the model can act on."""
    tool = TOOLS.get(name)
    if tool is None:
        return f"unknown tool {name!r}; use one of {sorted(TOOLS)}"
    try:
        return (await tool.run(toolbox, args)).text
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        return f"bad arguments for {name}: {where}: {first['msg']}; check the tool's schema"


# -- the plain-text tool protocol ------------------------------------------------------------------

_FIRST_ARG = {SEARCH: "query", DESCRIBE: "name", SQL: "sql", LIST: ""}
_LINE = re.compile(rf"^\W*({'|'.join(TOOLS)})\W*(?:[:(=]\s*|\s+|$)(.*)$", re.M | re.I)
_JSON_START = re.compile(r"[\[{]")
MAX_TEXT_CALLS = 4  # per reply: a rambling model must not run dozens of queries


def parse_text_calls(text: str) -> list[dict[str, Any]]:
    """Tool calls written as text: JSON objects naming a tool (``{"name": ..., "arguments": ...}``,
    also inside ``<tool_call>`` tags or code fences), else lines like ``search_documents: query``."""
    calls = _json_calls(text) or _line_calls(text)
    return [{"name": c[0], "args": c[1], "id": f"text_{i}", "type": "tool_call"}
            for i, c in enumerate(calls[:MAX_TEXT_CALLS])]


def _json_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    decoder, out, pos = json.JSONDecoder(), [], 0
    while (m := _JSON_START.search(text, pos)) is not None:
        try:
            value, end = decoder.raw_decode(text, m.start())
        except ValueError:
            pos = m.start() + 1
            continue
        pos = end
        for item in value if isinstance(value, list) else [value]:
            call = _as_call(item)
            if call is not None:
                out.append(call)
    return out


def _as_call(item: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # the OpenAI wire shape, written out as text
        item = item["function"]
    name = item.get("name") or item.get("tool") or item.get("tool_name")
    if not isinstance(name, str) or name.lower() not in TOOLS:
        return None
    args = item.get("arguments", item.get("args", item.get("parameters", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = {_FIRST_ARG[name.lower()]: args} if _FIRST_ARG[name.lower()] else {}
    return (name.lower(), args) if isinstance(args, dict) else None


def _line_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for m in _LINE.finditer(text):
        name, rest = m.group(1).lower(), m.group(2).strip().rstrip(")").strip().strip("`'\"").strip()
        arg = _FIRST_ARG[name]
        if arg and rest:
            out.append((name, {arg: rest}))
        elif not arg:
            out.append((name, {}))
    return out
