"""Scripts: one decision function that answers both test doubles the same way.

A script is a function ``(Turn) -> Answer``. It sees one model call as a ``Turn`` (the messages as
(role, text) pairs, the tools offered, the structured-output schema asked for) and answers with an
``Answer``: a JSON object for the schema, a tool call, or text. ``scripted_chat_model`` runs a script
in-process (a LangChain chat model, for ``Researcher(chat_models=...)``); ``stub_responder`` runs the
same script behind the OpenAI-compatible HTTP stub (for the CLI, notebooks, anything that takes a
``base_url``). A script may also return anything the double itself accepts (an ``AIMessage``, a
``Reply``, a string...), which passes through unchanged.

``ScriptedAnalyst`` is a ready script for Dossier's LLM engine: it answers the plan, research,
reflect, outline and write roles sensibly from what each prompt contains, so a whole research run
completes on any knowledge base without a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from agents.llm.schemas import EvidenceReview, ReportOutline, ResearchPlan
from agents.llm.tools import SEARCH, SQL
from dossier.testing.openai_stub import Reply, schema_name, tool_names
from dossier.testing.scripted_chat import ScriptedChatModel, _forced_tool, _tool_name, ai_tool_call

__all__ = ["Answer", "Script", "ScriptedAnalyst", "Turn", "scripted_chat_model", "stub_responder"]

_ROLE_NAMES = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}  # OpenAI -> LangChain
_EVIDENCE_ID = re.compile(r"\[ev:([0-9a-f]{10})\]")
_SUB_QUESTION_ID = re.compile(r"^(q\d+):", re.M)


@dataclass(frozen=True)
class Turn:
    """One model call as a script sees it, whichever double carries it.

    Attributes:
        messages: (role, text) pairs with LangChain's role names: ``system``, ``human``, ``ai``, ``tool``.
        tools: names of the tools offered.
        schema: name of the structured-output schema asked for (the single forced tool, or the
            ``response_format`` schema over HTTP), else ``None``.
    """

    messages: list[tuple[str, str]]
    tools: list[str] = field(default_factory=list)
    schema: str | None = None

    @property
    def prompt(self) -> str:
        """Every non-system text, joined by newlines (the system prompt shows example ids)."""
        return "\n".join(text for role, text in self.messages if role != "system")

    @classmethod
    def from_chat(cls, messages: list[BaseMessage], tools: list[dict[str, Any]] | None,
                  kwargs: dict[str, Any]) -> Turn:
        """The turn of a ``ScriptedChatModel`` call (its responder's three arguments)."""
        texts = [(m.type, m.content if isinstance(m.content, str) else str(m.content)) for m in messages]
        names = [n for n in (_tool_name(t) for t in tools or []) if n]
        # Structured output binds exactly one tool and forces it; a research turn offers several.
        schema = _forced_tool(tools, kwargs.get("tool_choice")) if len(names) == 1 else None
        return cls(texts, names, schema)

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Turn:
        """The turn of an OpenAI chat-completions request (what ``OpenAIStub`` receives)."""
        texts = []
        for message in request.get("messages", []):
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                p.get("text", "") for p in (content or []) if isinstance(p, dict))
            texts.append((_ROLE_NAMES.get(message.get("role"), message.get("role")), text or ""))
        return cls(texts, tool_names(request), schema_name(request))


@dataclass(frozen=True)
class Answer:
    """A script's answer, in a form both doubles understand. Build it with ``json``, ``tool`` or ``text``."""

    kind: Literal["json", "tool", "text"]
    name: str = ""
    payload: Any = None

    @classmethod
    def json(cls, obj: dict[str, Any] | BaseModel, name: str = "") -> Answer:
        """A structured answer: a pydantic instance, or a dict; sent as the schema asked for."""
        return cls("json", name or (type(obj).__name__ if isinstance(obj, BaseModel) else ""), obj)

    @classmethod
    def tool(cls, name: str, args: dict[str, Any] | None = None) -> Answer:
        """One call of tool ``name``."""
        return cls("tool", name, dict(args or {}))

    @classmethod
    def text(cls, content: str) -> Answer:
        """Plain assistant text."""
        return cls("text", payload=content)

    def for_chat(self) -> Any:
        """What ``ScriptedChatModel`` serves for this answer."""
        if self.kind == "tool":
            return ai_tool_call(self.name, self.payload)
        return self.payload  # a str, a pydantic instance, or a dict for the forced tool

    def for_stub(self, **reply_kw: Any) -> Reply:
        """The ``Reply`` the HTTP stub sends for this answer; ``reply_kw`` go to the ``Reply`` (``delay_s=``...)."""
        if self.kind == "json":
            obj = self.payload
            if isinstance(obj, BaseModel):  # only what the script set: the JSON a model would write
                obj = obj.model_dump(mode="json", exclude_unset=True)
            return Reply.json(obj, **reply_kw)
        if self.kind == "tool":
            return Reply.tool_call(self.name, self.payload, **reply_kw)
        return Reply.text(self.payload, **reply_kw)


Script = Callable[[Turn], Any]
"""``(Turn) -> Answer``, or anything the double itself accepts (passed through unchanged)."""


def scripted_chat_model(script: Script, **model_kw: Any) -> ScriptedChatModel:
    """An in-process chat model answered by ``script``; ``model_kw`` go to ``ScriptedChatModel`` (``delay_s=``...)."""

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]] | None, kwargs: dict[str, Any]) -> Any:
        answer = script(Turn.from_chat(messages, tools, kwargs))
        return answer.for_chat() if isinstance(answer, Answer) else answer

    return ScriptedChatModel(responder=responder, **model_kw)


def stub_responder(script: Script, **reply_kw: Any) -> Callable[[dict[str, Any]], Any]:
    """``script`` as ``OpenAIStub``'s responder; ``reply_kw`` go to every ``Reply`` made from an ``Answer``."""

    def respond(request: dict[str, Any]) -> Any:
        answer = script(Turn.from_request(request))
        return answer.for_stub(**reply_kw) if isinstance(answer, Answer) else answer

    return respond


@dataclass
class ScriptedAnalyst:
    """A script that plays every role of Dossier's LLM engine, from what each prompt contains.

    It plans one sub-question (the question itself), searches the documents for it (and runs
    ``sql`` when given), finds every sub-question answered, outlines one section citing all the
    evidence, and writes sentences citing the first evidence ids it is shown. Subclass and override
    ``plan``, ``research``, ``review``, ``outline`` or ``write`` to provoke other behaviour; ``log``
    records the roles in the order they were played.
    """

    sql: str | None = None
    search_k: int = 4
    log: list[str] = field(default_factory=list)

    def __call__(self, turn: Turn) -> Answer:
        prompt = turn.prompt
        if turn.schema == ResearchPlan.__name__:
            self.log.append("plan")
            return Answer.json(ResearchPlan.model_validate(self.plan(_line_after("Question:", prompt))))
        if turn.schema == EvidenceReview.__name__:
            self.log.append("reflect")
            return Answer.json(EvidenceReview.model_validate(self.review(prompt)))
        if turn.schema == ReportOutline.__name__:
            self.log.append("outline")
            return Answer.json(ReportOutline.model_validate(self.outline(prompt)))
        if SEARCH in turn.tools:
            return self.research(turn.messages)
        self.log.append("write")
        return Answer.text(self.write(prompt))

    @staticmethod
    def evidence_ids(text: str) -> list[str]:
        """The distinct evidence ids ``[ev:...]`` in ``text``, in order of appearance."""
        return list(dict.fromkeys(_EVIDENCE_ID.findall(text)))

    def plan(self, question: str) -> dict[str, Any]:
        """The ``ResearchPlan`` (as a dict) for ``question``."""
        return {"rationale": "the question as one sub-question", "sub_questions": [
            {"question": question, "needs": "both" if self.sql else "documents", "queries": [question]}]}

    def research(self, texts: list[tuple[str, str]]) -> Answer:
        """One research turn: search, then ``sql`` if set, then a closing note."""
        tool_results = [text for role, text in texts if role == "tool"]
        if not tool_results:
            self.log.append("tool:search")
            question = next((text for role, text in texts if role == "human"), "")
            return Answer.tool(SEARCH, {"query": _sub_question(question), "k": self.search_k})
        if self.sql and len(tool_results) == 1:
            self.log.append("tool:sql")
            return Answer.tool(SQL, {"sql": self.sql})
        self.log.append("research-done")
        return Answer.text("Found passages and a SQL result." if self.sql else "Found passages.")

    def review(self, prompt: str) -> dict[str, Any]:
        """The ``EvidenceReview``: every sub-question answered."""
        return {"contradictions": [], "reviews": [
            {"sub_question_id": i, "answered": True} for i in _SUB_QUESTION_ID.findall(prompt)]}

    def outline(self, prompt: str) -> dict[str, Any]:
        """The ``ReportOutline``: one section on every sub-question, drawing on all the evidence."""
        return {"title": _line_after("Question:", prompt), "sections": [
            {"title": "Findings", "goal": "answer the question", "sub_question_ids": _SUB_QUESTION_ID.findall(prompt),
             "evidence_ids": self.evidence_ids(prompt)}]}

    def write(self, prompt: str) -> str:
        """A section: one sentence per cited id (the first two passages and the first SQL result)."""
        ids = self.evidence_ids(prompt)
        sql_ids = re.findall(r"\[ev:([0-9a-f]{10})\] SQL on", prompt)
        chosen = list(dict.fromkeys(ids[:2] + sql_ids[:1]))
        return " ".join(f"The evidence addresses the question [ev:{i}]." for i in chosen)


def _line_after(label: str, text: str) -> str:
    """The rest of the first line starting with ``label`` (or the first line of ``text``)."""
    found = re.search(rf"^{re.escape(label)}\s*(.*)$", text, re.M)
    return (found.group(1) if found else text.partition("\n")[0]).strip()


def _sub_question(research_prompt: str) -> str:
    """The sub-question of a research prompt ("Sub-question (q1): ..."), else the whole prompt."""
    if "):" not in research_prompt:
        return research_prompt
    return research_prompt.split("):", 1)[-1].strip().splitlines()[0]
