"""The citation verifier: markers resolved in code, unknown ids removed, numbers checked against evidence."""

from __future__ import annotations

import hashlib

import pytest

from agents.verify import FLAG, verify_sections
from tools.evidence import evidence_from_sql
from tools.models import SqlResult
from tools.vocabulary import Evidence, Section


def passage(text: str, source: str) -> Evidence:
    digest = hashlib.sha256(f"{source}\x1f{text}".encode()).hexdigest()[:10]
    return Evidence(id=digest, kind="passage", text=text, source=source, doc_id=source, title=source.split("/")[-1])


RAG = passage("RAG costs 0.2M-3M CNY and needs 5-8 people.", "docs/costs.md")
FINAL = passage("The RAG programme budget for 2026 is 1,800,000 CNY, 12.5% of the AI spend.", "docs/budget.md")
ZH = passage("微调的成本为500万至2000万元，需要5-10人。", "docs/zh.md")
SPEND = passage("In 2025 we spent 10,864,500 CNY on sixteen projects.", "docs/memo.md")
SQL = evidence_from_sql(SqlResult(
    sql="SELECT approach, max_team, satisfaction FROM llm_projects WHERE budget_cny > 1000000",
    columns=["approach", "max_team", "satisfaction"],
    rows=[["rag", 8, 4.35], ["fine_tuning", 10, 3.866666667]], row_count=2, truncated=False,
    tables=["llm_projects"], elapsed_ms=1.0))
EVIDENCE = {e.id: e for e in (RAG, FINAL, ZH, SPEND, SQL)}


def check(*bodies: str) -> tuple[list[str], object]:
    sections = [Section(id=f"s{i}", title=f"Section {i}", markdown=b) for i, b in enumerate(bodies)]
    result = verify_sections(sections, EVIDENCE)
    return [s.markdown for s in result.sections], result


def test_markers_become_numbers_in_first_appearance_order() -> None:
    (a, b), result = check(f"RAG needs 5-8 people [ev:{RAG.id}]. The budget is 1.8M CNY [ev:{FINAL.id}].",
                           f"Fine-tuning needs 5-10 people [ev:{ZH.id}]. RAG costs 0.2M-3M CNY [ev:{RAG.id}].")
    assert a == "RAG needs 5-8 people [1]. The budget is 1.8M CNY [2]."
    assert b == "Fine-tuning needs 5-10 people [3]. RAG costs 0.2M-3M CNY [1]."
    assert result.cited_ids == [RAG.id, FINAL.id, ZH.id]
    assert [(r.number, r.evidence_id, r.label) for r in result.references] == [
        (1, RAG.id, "costs.md"), (2, FINAL.id, "budget.md"), (3, ZH.id, "zh.md")]
    v = result.verification
    assert (v.markers_total, v.markers_resolved, v.unknown_markers_removed) == (4, 4, 0)


def test_an_invented_id_is_removed_and_counted() -> None:
    (body,), result = check("RAG costs 0.2M-3M CNY [ev:deadbeef00]. "
                            f"RAG needs 5-8 people [ev:{RAG.id}][ev:0badc0ffee].")
    assert body == "RAG costs 0.2M-3M CNY ⚠unverified. RAG needs 5-8 people [1]."
    v = result.verification
    assert (v.markers_total, v.markers_resolved, v.unknown_markers_removed) == (3, 1, 2)
    assert v.unknown_marker_ids == ["deadbeef00", "0badc0ffee"]
    assert v.uncited_sentences == 1 and v.sentences == 2
    assert [r.evidence_id for r in result.references] == [RAG.id]


def test_an_invented_number_is_flagged() -> None:
    (body,), result = check(f"RAG costs 0.2M-9M CNY and needs 5-8 people [ev:{RAG.id}]. "
                            f"RAG needs 5-8 people [ev:{RAG.id}].")
    assert body == f"RAG costs 0.2M-9M CNY and needs 5-8 people [1]{FLAG}. RAG needs 5-8 people [1]."
    v = result.verification
    assert (v.numeric_claims, v.numeric_claims_supported) == (2, 1)
    assert v.flagged_claims == ["RAG costs 0.2M-9M CNY and needs 5-8 people."]


def test_a_number_must_come_from_the_cited_evidence_not_any_evidence() -> None:
    (body,), result = check(f"The budget is 1.8M CNY [ev:{RAG.id}].")
    assert body.endswith(FLAG + ".") and result.verification.flagged_claims == ["The budget is 1.8M CNY."]


@pytest.mark.parametrize("claim", [
    "1.8M CNY", "1,800,000 CNY", "1800000 CNY", "1.8 million CNY", "180万元", "1.8百万元", "１８０万元", "12.5%",
    "0.125 of the spend",
])
def test_equivalent_number_forms_are_accepted(claim: str) -> None:
    _, result = check(f"The programme gets {claim} [ev:{FINAL.id}].")
    assert result.verification.flagged_claims == []
    assert result.verification.numeric_claims_supported == 1


@pytest.mark.parametrize(("claim", "ok"), [
    ("200k", True), ("200,000", True), ("0.2 million", True), ("20万", True), ("0.3M", False), ("2M", False),
])
def test_range_ends_normalise(claim: str, ok: bool) -> None:
    _, result = check(f"RAG starts at {claim} CNY [ev:{RAG.id}].")
    assert (result.verification.flagged_claims == []) is ok


def test_rounding_is_accepted_only_at_the_written_precision() -> None:
    _, good = check(f"We spent 10.9M CNY [ev:{SPEND.id}].")
    _, bad = check(f"We spent 11.2M CNY [ev:{SPEND.id}].")
    _, coarse = check(f"We spent 10M CNY [ev:{SPEND.id}].")
    assert good.verification.flagged_claims == []
    assert bad.verification.flagged_claims and coarse.verification.flagged_claims


def test_dates_years_ordinals_and_section_numbers_are_not_claims() -> None:
    (body,), result = check(
        f"On 8 January 2026 the 2nd review (see section 4.2) kept the plan for 2027 [ev:{RAG.id}].\n\n"
        f"1. Project NW-008 on GPT-4 ended on 2025-11-28 [ev:{RAG.id}].")
    assert FLAG not in body and result.verification.numeric_claims == 0


def test_marker_forms_are_all_understood() -> None:
    (body,), result = check(
        f"A costs 0.2M-3M CNY [ev: {RAG.id}]. B is 1.8M CNY [ev:{RAG.id}, ev:{FINAL.id}]. "
        f"C is 1.8M CNY [ev:{FINAL.id}][ev:{RAG.id}]. D needs 5-10 people [ev:{ZH.id.upper()}; {RAG.id}]. "
        f"E needs 5-8 people [ev:{RAG.id}] [ev:nothere12].")
    assert body == ("A costs 0.2M-3M CNY [1]. B is 1.8M CNY [1, 2]. C is 1.8M CNY [2, 1]. "
                    "D needs 5-10 people [3, 1]. E needs 5-8 people [1].")
    v = result.verification
    assert (v.markers_total, v.markers_resolved, v.unknown_markers_removed) == (9, 8, 1)
    assert v.flagged_claims == [] and v.uncited_sentences == 0


def test_a_marker_after_the_full_stop_belongs_to_its_sentence() -> None:
    (body,), result = check(f"RAG costs 0.2M-3M CNY. [ev:{RAG.id}] Fine-tuning needs 5-10 people。[ev:{ZH.id}]")
    assert body == "RAG costs 0.2M-3M CNY. [1] Fine-tuning needs 5-10 people。[2]"
    v = result.verification
    assert v.sentences == 2 and v.uncited_sentences == 0 and v.flagged_claims == []


def test_uncited_sentences_are_counted_but_headings_and_tables_are_not_sentences() -> None:
    (body,), result = check(
        "### Costs 2026\n\n"
        f"RAG is cheaper than fine-tuning. It needs 5-8 people [ev:{RAG.id}]. Teams like it.\n\n"
        "- An uncited bullet\n\n"
        "| approach | max_team |\n| --- | --- |\n| rag | 8 |\n\n"
        "```\ncode. not prose.\n```")
    v = result.verification
    assert (v.sentences, v.uncited_sentences) == (4, 3)
    assert body.startswith("### Costs 2026\n\n")


def test_table_rows_are_checked_against_the_lead_in_evidence() -> None:
    table = (f"The warehouse query over llm_projects returns 2 rows [ev:{SQL.id}].\n\n"
             "| approach | max_team | satisfaction |\n| --- | --- | --- |\n"
             "| rag | 8 | 4.35 |\n| fine_tuning | 10 | 3.86667 |\n| pre_training | 12 | 3.9 |")
    (body,), result = check(table)
    lines = body.split("\n")
    assert lines[0] == "The warehouse query over llm_projects returns 2 rows [1]."
    assert lines[4:6] == ["| rag | 8 | 4.35 |", "| fine_tuning | 10 | 3.86667 |"]
    assert lines[6] == f"| pre_training | 12 | 3.9{FLAG} |"
    v = result.verification
    assert (v.numeric_claims, v.numeric_claims_supported, v.sentences) == (4, 3, 1)
    assert v.flagged_claims == ["pre_training | 12 | 3.9"]


def test_a_table_without_a_cited_lead_in_is_unsupported() -> None:
    (body,), result = check("### Data\n\n| approach | max_team |\n| --- | --- |\n| rag | 8 |")
    assert body.endswith(f"| rag | 8{FLAG} |") and result.verification.numeric_claims_supported == 0


def test_numbers_in_sql_evidence_include_cells_and_row_count() -> None:
    _, result = check(f"Two approaches [ev:{SQL.id}] score 4.35 and 3.87 with teams of at most 10 people, "
                      f"2 rows in all [ev:{SQL.id}].")
    assert result.verification.flagged_claims == []


def test_chinese_claims() -> None:
    (body,), result = check(f"微调的成本为500万至2000万元，需要5-10人[ev:{ZH.id}]。微调需要12人[ev:{ZH.id}]。")
    assert body == f"微调的成本为500万至2000万元，需要5-10人[1]。微调需要12人[1]{FLAG}。"
    assert result.verification.flagged_claims == ["微调需要12人。"]


def test_verification_does_not_change_the_input_sections() -> None:
    section = Section(id="s", title="t", markdown=f"RAG needs 5-8 people [ev:{RAG.id}].")
    verify_sections([section], EVIDENCE)
    assert section.markdown == f"RAG needs 5-8 people [ev:{RAG.id}]."
