"""Offline reflection and writing over a small RAG vs fine-tuning corpus in English and Chinese."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from agents.offline.reflect import find_contradictions, reflect
from agents.offline.write import outline, write_section
from agents.verify import verify_sections
from tools.evidence import evidence_from_sql
from tools.models import SqlResult
from tools.text.numbers import claim_numbers
from tools.text.sentences import split_sentences
from tools.text.terms import terms
from tools.vocabulary import Evidence, Finding, Plan, Reflection, Section, SubQuestion, ToolCall

ROOT = Path(__file__).resolve().parents[1]


def passage(text: str, source: str, title: str | None = None) -> Evidence:
    digest = hashlib.sha256(f"{source}\x1f{text}".encode()).hexdigest()[:10]
    return Evidence(id=digest, kind="passage", text=text, source=source, doc_id=source, title=title or source)


def sql_evidence(sql: str, columns: list[str], rows: list[list], tables: list[str]) -> Evidence:
    return evidence_from_sql(SqlResult(sql=sql, columns=columns, rows=rows, row_count=len(rows), truncated=False,
                                       tables=tables, elapsed_ms=1.0))


COSTS = passage(
    "RAG costs 0.2M-3M CNY and needs 5-8 people. Its decisive advantage is that the knowledge base can be "
    "updated at any time, with no retraining. Fine-tuning costs 5M-20M CNY, needs 5-10 people and heavy compute, "
    "e.g. rented GPU clusters.", "docs/cost_comparison.md", "Cost comparison of four approaches")
DRAFT = passage("The RAG programme budget for 2026 is 2.4M CNY. The programme starts in January.",
                "docs/rag_budget_2026_draft.md", "RAG budget 2026 (draft)")
FINAL = passage("The steering committee approved the plan on 8 January 2026. The RAG programme budget for 2026 is "
                "1.8M CNY.", "docs/rag_budget_2026.md", "RAG budget 2026")
ZH = passage("微调的成本为500万至2000万元，需要5-10人。RAG 的成本为20万至300万元，"
             "知识库可以随时更新。微调需要大量算力。",
             "docs/路线说明.md", "技术路线说明")
BENCH = sql_evidence(
    "SELECT approach, min_cost_cny, max_cost_cny, min_team, max_team FROM approach_benchmarks",
    ["approach", "min_cost_cny", "max_cost_cny", "min_team", "max_team"],
    [["prompt_engineering", 20000, 50000, 1, 2], ["rag", 200000, 3000000, 5, 8],
     ["fine_tuning", 5000000, 20000000, 5, 10], ["pre_training", 20000000, None, 11, None]],
    ["approach_benchmarks"])
EVIDENCE = {e.id: e for e in (COSTS, DRAFT, FINAL, ZH, BENCH)}

PLAN = Plan(question="How do RAG and fine-tuning compare on cost and team size?", sub_questions=[
    SubQuestion(id="q1", question="How much does RAG cost and how many people does it need?", needs="documents",
                queries=["RAG cost people"]),
    SubQuestion(id="q2", question="What is the RAG programme budget for 2026?", needs="documents"),
    SubQuestion(id="q3", question="What cost ranges do the approach benchmarks give?", needs="tables",
                tables=["approach_benchmarks"]),
    SubQuestion(id="q4", question="What are the regulatory compliance risks of pre-training?", needs="documents"),
])
PLAN_ZH = Plan(question="RAG 和微调在成本和团队规模上有何区别？", language="zh", sub_questions=[
    SubQuestion(id="q1", question="微调的成本是多少，需要多少人？", needs="documents"),
    SubQuestion(id="q2", question="各技术路线的成本基准", needs="tables", tables=["approach_benchmarks"]),
])


def search(query: str, *evs: Evidence) -> ToolCall:
    return ToolCall(tool="search_documents", arguments={"query": query, "k": 6, "source": None}, ok=True,
                    summary="", evidence_ids=[e.id for e in evs])


def findings() -> list[Finding]:
    return [
        Finding(sub_question_id="q1", round=1, evidence_ids=sorted([COSTS.id, ZH.id]),
                tool_calls=[search("RAG cost people", COSTS, ZH)]),
        Finding(sub_question_id="q2", round=1, evidence_ids=sorted([DRAFT.id, FINAL.id]),
                tool_calls=[search("RAG programme budget 2026", FINAL, DRAFT)]),
        Finding(sub_question_id="q3", round=1, evidence_ids=[BENCH.id]),
        Finding(sub_question_id="q4", round=1, evidence_ids=[COSTS.id],
                tool_calls=[search("regulatory compliance risks pre-training", COSTS)]),
    ]


def zh_findings() -> list[Finding]:
    return [Finding(sub_question_id="q1", round=1, evidence_ids=[ZH.id]),
            Finding(sub_question_id="q2", round=1, evidence_ids=[BENCH.id])]


def write_all(plan: Plan, found: list[Finding], language: str) -> tuple[Reflection, list[Section]]:
    reflection = reflect(plan, found, EVIDENCE, round=1)
    out = outline(plan.question, plan, found, EVIDENCE, language=language, reflection=reflection)
    sections = [write_section(s, question=plan.question, plan=plan, evidence=EVIDENCE, language=language,
                              reflection=reflection) for s in out.sections]
    return reflection, sections


# --- text helpers ------------------------------------------------------------------------------

def test_sentences_keep_numbers_and_abbreviations_whole() -> None:
    assert split_sentences(COSTS.text)[0] == "RAG costs 0.2M-3M CNY and needs 5-8 people."
    assert split_sentences(COSTS.text)[2].endswith("e.g. rented GPU clusters.")
    assert split_sentences("预算为3.5万元。真的吗？是的！") == ["预算为3.5万元。", "真的吗？", "是的！"]
    assert split_sentences("- first item\n- second item; with more\n# Heading") == [
        "first item", "second item;", "with more"]


def test_terms_and_numbers() -> None:
    assert terms("What are the costs of RAG?") == ["cost", "rag"]
    assert terms("微调的成本是多少") == ["微调", "成本"]
    assert [n.value for n in claim_numbers("0.2M-3M CNY, 180万 and 1.8 million in 2026")] == [
        200000, 3000000, 1800000, 1800000]


# --- reflection --------------------------------------------------------------------------------

def test_coverage_marks_answered_and_unanswered_sub_questions() -> None:
    reflection = reflect(PLAN, findings(), EVIDENCE, round=1)
    assert reflection.covered == {"q1": True, "q2": True, "q3": True, "q4": False}
    [gap] = reflection.gaps
    assert gap.sub_question_id == "q4"
    assert "regulatory" in gap.description and "compliance" in gap.description


def test_follow_up_queries_skip_what_was_tried() -> None:
    tried = "regulatory compliance risks pre-training"
    gap = reflect(PLAN, findings(), EVIDENCE, round=1).gaps[0]
    assert 1 <= len(gap.follow_up_queries) <= 3
    assert tried not in gap.follow_up_queries
    assert all("regulatory" in q or "compliance" in q or "risks" in q for q in gap.follow_up_queries)
    # Tried again under the first follow-up: the next reflection offers different ones.
    again = [*findings(), Finding(sub_question_id="q4", round=2, tool_calls=[search(gap.follow_up_queries[0])])]
    gap2 = reflect(PLAN, again, EVIDENCE, round=2).gaps[0]
    assert gap.follow_up_queries[0] not in gap2.follow_up_queries and gap2.follow_up_queries


def test_table_sub_question_without_sql_gets_a_sql_follow_up() -> None:
    found = [f for f in findings() if f.sub_question_id != "q3"] + [
        Finding(sub_question_id="q3", round=1, evidence_ids=[COSTS.id])]
    gap = next(g for g in reflect(PLAN, found, EVIDENCE, round=1).gaps if g.sub_question_id == "q3")
    assert gap.follow_up_sql == ['SELECT * FROM "approach_benchmarks" LIMIT 50']
    assert "table query" in gap.description


def test_later_rounds_are_ignored() -> None:
    found = [f for f in findings() if f.sub_question_id != "q2"]
    found.append(Finding(sub_question_id="q2", round=3, evidence_ids=[FINAL.id]))
    assert reflect(PLAN, found, EVIDENCE, round=2).covered["q2"] is False


def test_draft_and_final_budgets_contradict() -> None:
    [c] = reflect(PLAN, findings(), EVIDENCE, round=1).contradictions
    assert c.evidence_ids == [DRAFT.id, FINAL.id]  # the draft first
    assert "draft" in c.description and "2.4M CNY" in c.description and "1.8M CNY" in c.description


def test_no_contradiction_between_different_measures_or_years() -> None:
    other = passage("Fine-tuning costs 6M-20M CNY and needs 5-10 people.", "docs/other.md")
    year = passage("The RAG programme budget for 2025 was 1.2M CNY.", "docs/2025.md")
    same = passage("As approved, the RAG programme budget for 2026 is 1,800,000 CNY.", "docs/minutes.md")
    assert find_contradictions([COSTS, year, FINAL, same]) == []
    assert len(find_contradictions([COSTS, other])) == 1  # 5M-20M vs 6M-20M for fine-tuning


def test_document_figure_against_warehouse_figure() -> None:
    budget = sql_evidence("SELECT programme, year, budget_cny FROM programme_budgets WHERE programme = 'RAG'",
                          ["programme", "year", "budget_cny"], [["RAG", 2026, 1800000]], ["programme_budgets"])
    [c] = find_contradictions([DRAFT, budget])
    assert c.evidence_ids == [DRAFT.id, budget.id]
    assert "2.4M CNY" in c.description and "1800000" in c.description


def test_chinese_draft_contradiction_is_described_in_chinese() -> None:
    a = passage("2026年RAG项目预算为240万元。", "docs/预算草稿.md", "预算草稿")
    b = passage("2026年RAG项目预算为180万元。", "docs/预算.md", "预算定稿")
    [c] = find_contradictions([b, a], language="zh")
    assert c.evidence_ids == [a.id, b.id] and "草稿" in c.description and "240万元" in c.description


# --- outline and writing -----------------------------------------------------------------------

def test_outline_sections() -> None:
    reflection = reflect(PLAN, findings(), EVIDENCE, round=1)
    out = outline(PLAN.question, PLAN, findings(), EVIDENCE, language="en", reflection=reflection)
    assert out.title == "How do RAG and fine-tuning compare on cost and team size"
    # q4: nothing on topic; its own section says so, the open section holds the contradiction
    assert [s.id for s in out.sections] == ["summary", "s1", "s2", "s3", "s4", "open"]
    assert out.sections[4].sub_question_ids == ["q4"] and out.sections[4].goal.startswith("Say it is not")
    assert out.sections[-1].sub_question_ids == ["q4"]
    assert out.sections[0].title == "Executive summary"
    assert out.sections[-1].title == "Contradictions and open questions"
    assert out.sections[2].evidence_ids == [FINAL.id, DRAFT.id]  # retrieval order, not sorted ids


def test_sub_questions_sharing_all_evidence_are_merged() -> None:
    plan = PLAN.model_copy(update={"sub_questions": PLAN.sub_questions[:2]})
    found = [Finding(sub_question_id=q, round=1, evidence_ids=[COSTS.id, FINAL.id]) for q in ("q1", "q2")]
    out = outline(plan.question, plan, found, EVIDENCE, language="en")
    assert [s.sub_question_ids for s in out.sections] == [["q1", "q2"], ["q1", "q2"]]
    assert " / " in out.sections[1].title


def test_every_written_sentence_is_cited_and_every_marker_resolves() -> None:
    _, sections = write_all(PLAN, findings(), "en")
    answers = [s for s in sections if s.id not in ("open", "s4")]
    v = verify_sections(answers, EVIDENCE).verification
    assert v.sentences > 5 and v.uncited_sentences == 1  # the summary's line that q4 is not in the knowledge base
    assert v.markers_total == v.markers_resolved and v.unknown_markers_removed == 0
    assert v.numeric_claims > 3 and v.flagged_claims == []
    full = verify_sections(sections, EVIDENCE).verification
    assert full.flagged_claims == [] and full.uncited_sentences == 3  # + q4's section: abstention, closest material


def test_sql_evidence_becomes_a_table() -> None:
    _, sections = write_all(PLAN, findings(), "en")
    body = next(s for s in sections if s.id == "s3").markdown
    lead = body.split("\n\n")[0]
    assert lead.endswith(f"[ev:{BENCH.id}].") and "pre_training" in lead  # what it shows, not how many rows
    assert "rows" not in body and "query" not in body
    assert "| approach | min_cost_cny | max_cost_cny | min_team | max_team |" in body
    assert "| rag | 200000 | 3000000 | 5 | 8 |" in body


def test_summary_and_sections_prefer_the_final_figure() -> None:
    _, sections = write_all(PLAN, findings(), "en")
    summary = sections[0].markdown
    assert f"1.8M CNY [ev:{FINAL.id}]" in summary and "2.4M" not in summary
    budget = next(s for s in sections if s.id == "s2").markdown
    assert budget.index("1.8M") < budget.index("2.4M")  # both shown; the contradiction explains why


def test_off_topic_evidence_is_not_quoted() -> None:
    _, sections = write_all(PLAN, findings(), "en")
    s4 = next(s for s in sections if s.id == "s4").markdown
    assert s4 == ("The knowledge base does not contain an answer to “What are the regulatory compliance risks of "
                  "pre-training”. The closest material it holds: Cost comparison of four approaches.")
    plan = PLAN.model_copy(update={"sub_questions": PLAN.sub_questions[3:]})
    out = outline(plan.question, plan, findings()[3:], EVIDENCE, language="en")
    # The one sub-question is off topic, but the question as asked is answered by what was gathered:
    # the report answers the question itself, and no cost sentence sits under the risks heading.
    assert [s.id for s in out.sections] == ["summary", "s1"] and out.sections[1].title == _plain_q(plan.question)
    body = write_section(out.sections[1], question=plan.question, plan=plan, evidence=EVIDENCE, language="en")
    assert "0.2M-3M CNY" in body.markdown and "regulatory" not in body.markdown
    off = PLAN.model_copy(update={"question": "What are the regulatory compliance risks of pre-training?",
                                  "sub_questions": PLAN.sub_questions[3:]})
    out = outline(off.question, off, findings()[3:], EVIDENCE, language="en")
    assert [s.id for s in out.sections] == ["summary"]  # nothing to answer with: a short report that says so
    body = write_section(out.sections[0], question=off.question, plan=off, evidence=EVIDENCE, language="en")
    assert body.markdown.startswith("The knowledge base does not contain an answer to “What are the regulatory")


def _plain_q(question: str) -> str:
    return question.rstrip("?")


def test_contradictions_and_gaps_section() -> None:
    _, sections = write_all(PLAN, findings(), "en")
    body = sections[-1].markdown
    assert "### Contradictions" in body and f"[ev:{DRAFT.id}][ev:{FINAL.id}]." in body
    assert "### Open questions" not in body  # q4 says in its own section that it is not in the knowledge base


def test_chinese_report_has_chinese_headings_and_lead_ins() -> None:
    reflection, sections = write_all(PLAN_ZH, zh_findings(), "zh")
    out = outline(PLAN_ZH.question, PLAN_ZH, zh_findings(), EVIDENCE, language="zh", reflection=reflection)
    assert [s.title for s in out.sections] == ["摘要", "微调的成本是多少，需要多少人", "各技术路线的成本基准"]
    assert f"微调的成本为500万至2000万元，需要5-10人[ev:{ZH.id}]。" in sections[1].markdown
    assert sections[2].markdown.split("\n\n")[0].endswith(f"[ev:{BENCH.id}]。") and "行" not in sections[2].markdown
    gone = Plan(question="预训练的合规风险是什么？", language="zh",
                sub_questions=[SubQuestion(id="q1", question="Kubernetes 预训练的合规风险是什么？")])
    found = [Finding(sub_question_id="q1", round=1, evidence_ids=[ZH.id])]
    [summary] = outline(gone.question, gone, found, EVIDENCE, language="zh").sections
    text = write_section(summary, question=gone.question, plan=gone, evidence=EVIDENCE, language="zh").markdown
    assert text.startswith("知识库中没有")
    v = verify_sections(sections[:-1], EVIDENCE).verification
    assert v.uncited_sentences == 0 and v.flagged_claims == []


def test_english_evidence_is_quoted_as_is_in_a_chinese_report() -> None:
    plan = Plan(question="预训练的成本", language="zh", sub_questions=[SubQuestion(id="q1", question="预训练的成本")])
    found = [Finding(sub_question_id="q1", round=1, evidence_ids=[COSTS.id])]
    out = outline(plan.question, plan, found, EVIDENCE, language="zh")
    body = write_section(out.sections[1], question=plan.question, plan=plan, evidence=EVIDENCE, language="zh")
    assert f"RAG costs 0.2M-3M CNY and needs 5-8 people [ev:{COSTS.id}]." in body.markdown


def test_writing_is_deterministic_across_hash_seeds() -> None:
    script = ("from tests.test_offline_writing import *\n"
              "r, s = write_all(PLAN, findings(), 'en')\n"
              "print(r.model_dump_json()); print([x.markdown for x in s])")
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert write_all(PLAN, findings(), "en") == write_all(PLAN, findings(), "en")


def test_float_aggregates_are_shown_plainly_and_still_verify() -> None:
    agg = sql_evidence("SELECT approach, avg(actual_cost_cny) AS avg_cost, avg(team_size) AS avg_team "
                       "FROM llm_projects GROUP BY approach", ["approach", "avg_cost", "avg_team"],
                       [["fine_tuning", 3210000.0, 7.5], ["rag", 685833.3333333334, 5.777777777777778]],
                       ["llm_projects"])
    plan = Plan(question="Average cost per approach", sub_questions=[
        SubQuestion(id="q1", question="What is the average cost per approach?", needs="tables")])
    found = [Finding(sub_question_id="q1", round=1, evidence_ids=[agg.id])]
    evidence = {agg.id: agg}
    out = outline(plan.question, plan, found, evidence, language="en")
    sections = [write_section(s, question=plan.question, plan=plan, evidence=evidence, language="en")
                for s in out.sections]
    assert "| fine_tuning | 3210000 | 7.5 |" in sections[1].markdown
    assert "| rag | 685833 | 5.77778 |" in sections[1].markdown
    v = verify_sections(sections, evidence).verification
    assert v.flagged_claims == [] and v.numeric_claims == 4  # two lead-ins, two rows
