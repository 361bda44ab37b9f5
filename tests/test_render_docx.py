"""The Word report (issue 14 item 3): opened with python-docx, it has the title, the question, the
sections as headings, SQL results as real Word tables, citations [n] linked to their reference,
the references, the method appendix and the charts as pictures; Chinese survives; no raw markers."""

from __future__ import annotations

import re
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn

from dossier.render_docx import render_docx
from tests.test_render_html import graph_reports, handmade_report  # noqa: F401  (fixtures)
from tools.vocabulary import Evidence, Reference, Report


def all_text(document) -> str:
    """Paragraphs and table cells, hyperlinked runs included."""
    parts = [p.text for p in document.paragraphs]
    parts += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join(parts)


def headings(document) -> list[tuple[str, str]]:
    return [(p.style.name, p.text) for p in document.paragraphs
            if p.style.name.startswith("Heading") or p.style.name == "Title"]


def table_rows(table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_handmade_report_docx(tmp_path: Path) -> None:
    report = handmade_report()
    document = docx.Document(render_docx(report, tmp_path / "out" / "hand.docx"))
    found = headings(document)
    assert found[0] == ("Title", "Spend <review>")  # hostile text is text
    assert ("Heading 1", "Executive summary") in found and ("Heading 1", "Spend & budgets") in found
    assert ("Heading 1", "References") in found and ("Heading 1", "Appendix: Method") in found
    assert ("Heading 2", "Plan") in found
    assert document.core_properties.title == "Spend <review>"

    text = all_text(document)
    assert "Question: How did spend change?" in text
    assert "Spend peaked at 2000 CNY in May [1]." in text and "Both sources agree [4, 5]." in text
    assert "[ev:" not in text and "\ue000" not in text and "\ue002" not in text
    assert "<script>alert(1)</script>" in text and "⚠ unverified" in text
    assert "1.  SQL on spend" in text and "docs/budget.md · chars 10-52 · ev:good000005" in text
    assert "The RAG programme is budgeted at 1.8M CNY." in text  # the cited passage in full
    assert "SELECT department, budget_cny FROM budgets" in text
    assert "raw block 42 <b>" in text  # a code block

    body_table = table_rows(document.tables[0])  # the Markdown table of the body, as a Word table
    assert body_table == [["month", "spend_cny"], ["2025-01", "1200"]]
    assert any(table_rows(t)[0] == ["department", "budget_cny"] and ["Customer Support", "1200000"] in table_rows(t)
               for t in document.tables)  # the SQL rows in the references
    facts = table_rows(document.tables[-1])
    assert ["Engine", "offline"] in facts and ["Stop rule", "covered"] in facts
    assert len(document.inline_shapes) == 2  # the line and the bar chart, not the one-row result
    assert "Figure 1: spend_cny by month — source [1]" in text


def test_citations_link_to_bookmarked_references(tmp_path: Path) -> None:
    report = handmade_report()
    document = docx.Document(render_docx(report, tmp_path / "hand.docx"))
    body = document.element.body
    anchors = {link.get(qn("w:anchor")) for link in body.iter(qn("w:hyperlink"))}
    marks = {mark.get(qn("w:name")) for mark in body.iter(qn("w:bookmarkStart"))}
    assert {f"ref_{r.number}" for r in report.references} == marks  # Word: letters, digits, _
    assert anchors and anchors <= marks
    header = document.tables[0].rows[0]._tr  # the header row repeats on every page
    assert header.find(f"{qn('w:trPr')}/{qn('w:tblHeader')}") is not None


def test_control_characters_in_evidence_do_not_break_the_file(tmp_path: Path) -> None:
    """python-docx refuses text that XML cannot hold: a passage with NUL or a vertical tab is cleaned."""
    report = handmade_report()
    dirty = Evidence(id="dirty00006", kind="passage", text="bell\x07 nul\x00 vt\x0b end\ufffe", doc_id="d3",
                     source="docs/dirty.txt", title="Dirty\x1b[31m", char_start=0, char_end=20)
    report = report.model_copy(update={
        "evidence": [*report.evidence, dirty],
        "references": [*report.references, Reference(number=6, evidence_id=dirty.id, label=dirty.label())],
    })
    text = all_text(docx.Document(render_docx(report, tmp_path / "dirty.docx")))
    assert "bell nul vt end" in text and "Dirty[31m" in text


async def test_chinese_report_docx(graph_reports: dict[str, Report], tmp_path: Path) -> None:
    report = graph_reports["zh"]
    document = docx.Document(render_docx(report, tmp_path / "zh.docx"))
    text = all_text(document)
    assert headings(document)[0] == ("Title", report.title)
    sentence = next(s for s in re.split(r"(?<=。)", report.sections[1].markdown) if re.search("[\u4e00-\u9fff]{6}", s))
    chinese = re.sub(r"\[\d+(?:, \d+)*\]|⚠unverified", "", sentence).strip()
    assert chinese[:20] in text
    assert "参考资料" in text and "附录：方法" in text and "[ev:" not in text
    fonts = document.styles["Normal"].element.rPr.rFonts
    assert fonts.get(qn("w:eastAsia"))  # an East Asian font is named for the Chinese text


async def test_english_graph_report_tables_and_references(graph_reports: dict[str, Report],
                                                          tmp_path: Path) -> None:
    report = graph_reports["en"]
    document = docx.Document(render_docx(report, tmp_path / "en.docx"))
    text = all_text(document)
    assert [s.title for s in report.sections] == [t for style, t in headings(document) if style == "Heading 1"][
        :len(report.sections)]
    assert len(re.findall(r"^\d+\.  ", text, re.M)) == len(report.references)
    sql = next(e for e in report.evidence if e.kind == "sql" and e.id in {r.evidence_id for r in report.references})
    assert document.tables and any(sql.columns[0] in table_rows(t)[0] for t in document.tables)
    assert "[ev:" not in text


@pytest.mark.parametrize("language", ["en", "zh"])
def test_labels_follow_the_report_language(language: str, tmp_path: Path) -> None:
    document = docx.Document(render_docx(handmade_report(language), tmp_path / f"{language}.docx"))
    names = [t for _, t in headings(document)]
    assert ("参考资料" if language == "zh" else "References") in names


def test_references_link_files_and_show_the_sql_rerun_line(tmp_path: Path) -> None:
    """Like the Markdown and HTML reports (issue 14 item 12): a passage's file name links to the file,
    relative to the report; a SQL reference shows the ``dossier sql`` line that runs it again."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "budget.md").write_text("# Budget\n\nThe RAG programme is budgeted at 1.8M CNY.\n")
    out = tmp_path / "out" / "r.docx"
    document = docx.Document(render_docx(handmade_report(), out, kb_dir=Path("kb"), sources_root=tmp_path))
    rels = {rel.rId: rel.target_ref for rel in document.part.rels.values() if rel.is_external}
    links = [link for link in document.element.body.iter(qn("w:hyperlink")) if link.get(qn("r:id"))]
    assert [rels[link.get(qn("r:id"))] for link in links] == ["../docs/budget.md"]  # the one file that exists
    assert (out.parent / "../docs/budget.md").is_file()
    text = all_text(document)
    assert "Re-run: dossier sql \"SELECT department, budget_cny FROM budgets WHERE department <> 'x'\" --kb kb" in text
