"""Routes and the stop rule, deterministically, without running the graph."""

from __future__ import annotations

import time

import pytest
from langgraph.types import Send

from agents.stopping import decide_stop, new_evidence_in_round
from graphs.routes import after_reflect, to_research, to_writers
from tools.vocabulary import Finding, Gap, Outline, Plan, SectionPlan, SubQuestion, ToolCall, Usage

PLAN = Plan(question="q", sub_questions=[SubQuestion(id="q1", question="a"), SubQuestion(id="q2", question="b")])


def stop(**overrides):
    args = dict(covered={"q1": False}, round=1, max_rounds=3, usage=Usage(), new_evidence=3,
                started_at=time.time(), token_budget=None, time_budget_s=None, cost_budget_usd=None,
                has_follow_ups=True)
    return decide_stop(**{**args, **overrides})


@pytest.mark.parametrize("overrides, expected", [
    ({"covered": {"q1": True, "q2": True}}, "covered"),
    ({"usage": Usage(prompt_tokens=900, completion_tokens=200), "token_budget": 1000}, "token_budget"),
    ({"usage": Usage(cost_usd=0.02), "cost_budget_usd": 0.01}, "cost_budget"),
    ({"started_at": time.time() - 10, "time_budget_s": 5}, "time_budget"),
    ({"round": 3}, "max_rounds"),
    ({"round": 2, "new_evidence": 0}, "no_progress"),
    ({"has_follow_ups": False}, "no_progress"),
    ({}, None),
])
def test_each_stop_rule(overrides, expected):
    assert stop(**overrides) == expected


def test_covered_wins_over_budgets():
    assert stop(covered={"q1": True}, round=3, token_budget=1, usage=Usage(prompt_tokens=5)) == "covered"


def test_new_evidence_counts_only_unseen_ids():
    findings = [Finding(sub_question_id="q1", round=1, evidence_ids=["a", "b"]),
                Finding(sub_question_id="q1", round=2, evidence_ids=["b", "c"])]
    assert new_evidence_in_round(findings, 2) == 1


def test_to_research_sends_one_branch_per_sub_question():
    sends = to_research({"plan": PLAN, "question": "q", "language": "en", "round": 1, "findings": []})
    assert [s.arg["sub_question"].id for s in sends] == ["q1", "q2"]
    assert all(isinstance(s, Send) and s.node == "research" and s.arg["gap"] is None for s in sends)


def test_after_reflect_routes_gaps_back_with_tried_queries():
    past = Finding(sub_question_id="q2", round=1, tool_calls=[
        ToolCall(tool="search_documents", arguments={"query": "b"}, ok=True, summary=""),
        ToolCall(tool="run_sql", arguments={"sql": "SELECT 1"}, ok=True, summary="")])
    state = {"plan": PLAN, "question": "q", "language": "en", "round": 2, "findings": [past],
             "pending_gaps": [Gap(sub_question_id="q2", description="x", follow_up_queries=["b more"]),
                              Gap(sub_question_id="q9", description="unknown sub-question")]}
    sends = after_reflect(state)
    assert len(sends) == 1 and sends[0].arg["sub_question"].id == "q2"
    assert sends[0].arg["tried_queries"] == ["b"] and sends[0].arg["tried_sql"] == ["SELECT 1"]
    assert sends[0].arg["round"] == 2


def test_after_reflect_goes_to_outline_when_stopped_or_no_gaps():
    assert after_reflect({"plan": PLAN, "stop_reason": "covered", "pending_gaps": []}) == "outline"
    assert after_reflect({"plan": PLAN, "pending_gaps": [], "round": 2}) == "outline"


def test_to_writers_keeps_outline_order():
    outline = Outline(title="t", sections=[SectionPlan(id="s1", title="A"), SectionPlan(id="s2", title="B")])
    sends = to_writers({"outline": outline, "question": "q", "language": "en", "plan": PLAN, "evidence": {}})
    assert [(s.arg["order"], s.arg["section"].id) for s in sends] == [(0, "s1"), (1, "s2")]
