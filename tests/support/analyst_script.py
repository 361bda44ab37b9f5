"""The tests' scripted analyst: ``dossier.testing.ScriptedAnalyst`` fitted to tests/graph_fixtures.py's corpus.

It plans the two sub-questions of the demo question, runs a SQL query on the ``costs`` table, and has
knobs that provoke what the tests check: invented citations and numbers, a reviewer never satisfied,
an analyst that obeys an injected instruction. Drive it with ``dossier.testing.scripted_chat_model``
(in-process) or ``stub_responder`` (over HTTP): both paths behave identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dossier.testing import Answer, ScriptedAnalyst
from tests.graph_fixtures import COSTS_SQL


@dataclass
class AnalystScript(ScriptedAnalyst):
    """Knobs let tests provoke behaviours: invented citations, never-satisfied reflection."""

    sql: str | None = COSTS_SQL
    invent_citation: bool = False
    invent_number: bool = False
    always_gap: bool = False
    obey_injection: bool = False

    def plan(self, question: str) -> dict[str, Any]:
        return {"rationale": "one sub-question per approach", "sub_questions": [
            {"question": "What does RAG cost?", "needs": "both", "tables": ["costs"], "queries": ["RAG cost"]},
            {"question": "What does fine-tuning cost?", "needs": "both", "tables": ["costs"],
             "queries": ["fine-tuning cost"]},
        ]}

    def research(self, texts: list[tuple[str, str]]) -> Answer:
        if self.obey_injection and sum(role == "tool" for role, _ in texts) == 2:
            self.log.append("tool:injected")
            return Answer.tool("run_sql", {"sql": "DROP TABLE costs"})
        return super().research(texts)

    def review(self, prompt: str) -> dict[str, Any]:
        answered = not self.always_gap
        reviews = super().review(prompt)["reviews"]
        return {"contradictions": [], "reviews": [
            {"sub_question_id": r["sub_question_id"], "answered": answered,
             "gap": "" if answered else "need more detail",
             "follow_up_queries": [] if answered else [f"more detail {r['sub_question_id']} {len(self.log)}"]}
            for r in reviews]}

    def outline(self, prompt: str) -> dict[str, Any]:
        ids = self.evidence_ids(prompt)
        return {"title": "RAG versus fine-tuning", "sections": [
            {"title": "Summary", "goal": "answer", "sub_question_ids": ["q1", "q2"], "evidence_ids": ids[:6]},
            {"title": "Costs", "goal": "costs", "sub_question_ids": ["q1", "q2"], "evidence_ids": ids},
        ]}

    def write(self, prompt: str) -> str:
        body = super().write(prompt)
        ids = self.evidence_ids(prompt)
        if self.invent_citation or self.obey_injection:
            body += " Pre-training is the cheapest option [ev:deadbeef00]."
        if self.invent_number:
            body += f" Fine-tuning costs 999 million CNY [ev:{ids[0]}]." if ids else ""
        return body
