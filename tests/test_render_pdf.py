"""The PDF report: pages with the title, Chinese text that extracts (the CJK font is embedded and
mapped), tables, charts, references and method; ``report -o out.pdf`` and ``--format pdf``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from dossier.cli import main
from dossier.render_pdf import render_pdf
from dossier.report_parts import cell_text
from tests.graph_fixtures import QUESTION
from tests.test_render_html import cli_kb, graph_reports, handmade_report  # noqa: F401  (fixtures)
from tools.vocabulary import Report


def pdf_text(path: Path) -> tuple[PdfReader, str]:
    reader = PdfReader(path)
    return reader, "".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def font_names(reader: PdfReader) -> set[str]:
    names = set()
    for page in reader.pages:
        for font in (page.get("/Resources") or {}).get("/Font", {}).values():
            names.add(str(font.get_object().get("/BaseFont")))
    return names


def text_without_font(reader: PdfReader) -> int:
    """Text shown with no font selected (viewers draw nothing): the graphics state is saved and
    restored by q/Q, so a font chosen inside q...Q is gone after it."""
    missing = 0
    for page in reader.pages:
        font, saved = False, []
        for _operands, op in ContentStream(page.get_contents(), reader).operations:
            if op == b"q":
                saved.append(font)
            elif op == b"Q":
                font = saved.pop()
            elif op == b"Tf":
                font = True
            elif op in (b"Tj", b"TJ", b"'", b'"'):
                missing += not font
    return missing


async def test_english_report_pdf(graph_reports: dict[str, Report], tmp_path: Path) -> None:
    report = graph_reports["en"]
    path = render_pdf(report, tmp_path / "en" / "report.pdf")
    assert path.read_bytes().startswith(b"%PDF-")
    reader, text = pdf_text(path)
    assert len(reader.pages) >= 1
    assert squash(report.title) in squash(text)
    assert "References" in text and "Appendix: Method" in text
    sql = next(e for e in report.evidence if e.kind == "sql" and e.id in {r.evidence_id for r in report.references})
    assert squash(sql.columns[0]) in squash(text)
    assert squash(cell_text(sql.rows[0][-1])) in squash(text)  # a table cell value
    assert reader.metadata.title == report.title


async def test_chinese_report_pdf_extracts_chinese(graph_reports: dict[str, Report], tmp_path: Path) -> None:
    report = graph_reports["zh"]
    path = render_pdf(report, tmp_path / "zh.pdf")
    reader, text = pdf_text(path)
    assert squash(report.title) in squash(text)
    sentence = next(s for s in re.split(r"(?<=。)", report.sections[1].markdown) if re.search("[\u4e00-\u9fff]{6}", s))
    chinese = re.sub(r"\[\d+(?:, \d+)*\]|⚠unverified", "", sentence).strip()
    assert squash(chinese) in squash(text)
    assert "参考资料" in text and "附录：方法" in text
    assert text_without_font(reader) == 0  # citations after Chinese text are drawn, not lost
    assert any("WenQuanYi" in name or "CJK" in name or "Droid" in name for name in font_names(reader))


def test_handmade_report_pdf_tables_charts_links(tmp_path: Path) -> None:
    report = handmade_report()
    path = render_pdf(report, tmp_path / "hand.pdf")
    reader, text = pdf_text(path)
    flat = squash(text)
    assert "Spend<review>" in flat and "1500.5" in flat and "Customer Support" in text
    assert squash("Figure 1: spend_cny by month — source [1]") in flat and "Figure2:" in flat
    assert sum(len(page.images) for page in reader.pages) == 2  # the line and the bar chart, not the one row
    assert squash("<script>alert(1)</script>") in flat  # hostile text is text, nothing more
    assert "unverified" in text and "engine fell back" in text and "raw block 42 <b>" in text
    links = [a.get_object() for page in reader.pages for a in page.get("/Annots") or []]
    assert any(a.get("/Subtype") == "/Link" and a.get("/Dest") for a in links)  # [n] jumps to its reference


@pytest.mark.parametrize("args", [["-o", "out.pdf"], ["-o", "out.md", "--format", "pdf"]])
def test_cli_report_writes_pdf(cli_kb: Path, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / args[1]
    argv = ["--kb", str(cli_kb), "report", QUESTION, "--offline", "-q", args[0], str(out), *args[2:]]
    assert main(argv) == 0
    reader, text = pdf_text(out)
    assert out.read_bytes().startswith(b"%PDF-") and len(reader.pages) >= 1 and "References" in text


def test_cli_pdf_without_output_is_a_clear_error(cli_kb: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--kb", str(cli_kb), "report", QUESTION, "--offline", "-q", "--format", "pdf"]) == 1
    assert "error: a PDF report needs a file" in capsys.readouterr().err
