"""A scripted analyst: answers the LLM engine's five roles sensibly, from what the prompt contains.

The same decision function drives the in-process ScriptedChatModel and the HTTP OpenAIStub, so
the graph is exercised end to end through both paths with identical behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.support.openai_stub import Reply, schema_name, tool_names

EV_RE = re.compile(r"\[ev:([0-9a-f]{10})\]")
SUBQ_RE = re.compile(r"^(q\d+):", re.M)


@dataclass
class Action:
    kind: str  # "json" | "tool" | "text"
    name: str = ""
    payload: Any = None


@dataclass
class AnalystScript:
    """Knobs let tests provoke behaviours: invented citations, never-satisfied reflection."""

    sql: str = "SELECT approach, min(cost_cny) AS min_cost, max(cost_cny) AS max_cost FROM costs GROUP BY approach ORDER BY approach"
    invent_citation: bool = False
    invent_number: bool = False
    always_gap: bool = False
    obey_injection: bool = False
    log: list[str] = field(default_factory=list)

    def decide(self, texts: list[tuple[str, str]], tools: list[str], schema: str | None) -> Action:
        prompt = "\n".join(t for role, t in texts if role != "system")  # the system prompt shows an example id
        if schema == "ResearchPlan":
            self.log.append("plan")
            return Action("json", schema, self._plan())
        if schema == "EvidenceReview":
            self.log.append("reflect")
            return Action("json", schema, self._review(prompt))
        if schema == "ReportOutline":
            self.log.append("outline")
            return Action("json", schema, self._outline(prompt))
        if "search_documents" in tools:
            return self._research(texts)
        self.log.append("write")
        return Action("text", payload=self._write(prompt))

    def _plan(self) -> dict:
        return {"rationale": "one sub-question per approach", "sub_questions": [
            {"question": "What does RAG cost?", "needs": "both", "tables": ["costs"], "queries": ["RAG cost"]},
            {"question": "What does fine-tuning cost?", "needs": "both", "tables": ["costs"],
             "queries": ["fine-tuning cost"]},
        ]}

    def _research(self, texts: list[tuple[str, str]]) -> Action:
        tool_results = [t for role, t in texts if role == "tool"]
        question = next((t for role, t in texts if role in ("human", "user")), "")
        sub = question.split("):", 1)[-1].strip().splitlines()[0] if "):" in question else question
        if not tool_results:
            self.log.append("tool:search")
            return Action("tool", "search_documents", {"query": sub, "k": 4})
        if len(tool_results) == 1:
            self.log.append("tool:sql")
            return Action("tool", "run_sql", {"sql": self.sql})
        if self.obey_injection and len(tool_results) == 2:
            self.log.append("tool:injected")
            return Action("tool", "run_sql", {"sql": "DROP TABLE costs"})
        self.log.append("research-done")
        return Action("text", payload="Found passages and a SQL result.")

    def _review(self, prompt: str) -> dict:
        ids = SUBQ_RE.findall(prompt)
        answered = not self.always_gap
        return {"contradictions": [], "reviews": [
            {"sub_question_id": i, "answered": answered, "gap": "" if answered else "need more detail",
             "follow_up_queries": [] if answered else [f"more detail {i} {len(self.log)}"]}
            for i in ids]}

    def _outline(self, prompt: str) -> dict:
        ids = list(dict.fromkeys(EV_RE.findall(prompt)))
        return {"title": "RAG versus fine-tuning", "sections": [
            {"title": "Summary", "goal": "answer", "sub_question_ids": ["q1", "q2"], "evidence_ids": ids[:6]},
            {"title": "Costs", "goal": "costs", "sub_question_ids": ["q1", "q2"], "evidence_ids": ids},
        ]}

    def _write(self, prompt: str) -> str:
        ids = list(dict.fromkeys(EV_RE.findall(prompt)))
        sql_ids = re.findall(r"\[ev:([0-9a-f]{10})\] SQL on", prompt)
        chosen = list(dict.fromkeys(ids[:2] + sql_ids[:1]))
        body = " ".join(f"The evidence addresses the question [ev:{i}]." for i in chosen)
        if self.invent_citation or self.obey_injection:
            body += " Pre-training is the cheapest option [ev:deadbeef00]."
        if self.invent_number:
            body += f" Fine-tuning costs 999 million CNY [ev:{ids[0]}]." if ids else ""
        return body


def message_texts(messages: list[Any]) -> list[tuple[str, str]]:
    """(role, text) pairs from LangChain messages."""
    return [(m.type, m.content if isinstance(m.content, str) else str(m.content)) for m in messages]


def request_texts(request_json: dict) -> list[tuple[str, str]]:
    """(role, text) pairs from an OpenAI chat-completions request, with LangChain's role names."""
    names = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}
    out = []
    for m in request_json.get("messages", []):
        content = m.get("content")
        text = content if isinstance(content, str) else " ".join(
            p.get("text", "") for p in (content or []) if isinstance(p, dict))
        out.append((names.get(m.get("role"), m.get("role")), text or ""))
    return out


def stub_responder(script: AnalystScript) -> Callable[[dict], Any]:
    """The scripted analyst as the OpenAI stub's responder: JSON, a tool call or text per request."""
    def respond(request: dict) -> Reply:
        action = script.decide(request_texts(request), tool_names(request), schema_name(request))
        if action.kind == "json":
            return Reply.json(action.payload)
        if action.kind == "tool":
            return Reply.tool_call(action.name, action.payload)
        return Reply.text(action.payload)

    return respond
