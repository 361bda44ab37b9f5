"""Parsing: every supported format, every kind of bad file, and the block offset property."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
from fpdf import FPDF

from tools import parsing
from tools.models import ParsedDocument
from tools.parsing import DOC_SUFFIXES, ParseError, parse_bytes
from tools.text.encoding import decode_bytes
from tools.text.language import detect_language, is_cjk

MB = 2**20


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def parse(tmp_path: Path, name: str, data: bytes | str, *, max_bytes: int = 64 * MB) -> ParsedDocument:
    path = write(tmp_path, name, data)
    return parse_bytes(path.read_bytes(), suffix=path.suffix, source=name, max_bytes=max_bytes)


def assert_offsets(doc: ParsedDocument) -> None:
    assert doc.blocks
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text
        assert block.text == block.text.strip()
    starts = [b.start for b in doc.blocks]
    assert starts == sorted(starts)


def make_pdf(pages: list[str], *, title: str | None = "Quarterly Review") -> bytes:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(*, core_title: str = "") -> bytes:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_heading("Overview", level=1)
    document.add_paragraph("The overview paragraph explains the scope.")
    document.add_heading("Details", level=2)
    document.add_paragraph("Detail paragraph one.")
    table = document.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "metric", (0, 1): "value", (1, 0): "recall", (1, 1): "0.95"}.items():
        table.cell(r, c).text = text
    document.add_heading("Appendix", level=1)
    document.add_paragraph("Appendix text.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


MARKDOWN = """---
title: Front Matter Title
tags: [alpha, beta]
year: 2024
---

# Guide

Intro paragraph.

## Setup

- step one
- step two

```python
print("hi")
```

| name | value |
|------|-------|
| a    | 1     |

### Deep

Deep text.

# Second Part

Closing words.
"""


def test_suffixes_cover_the_documented_formats() -> None:
    assert {".md", ".markdown", ".rst", ".rest", ".txt", ".text", ".html", ".htm", ".pdf", ".docx"} == DOC_SUFFIXES


def test_markdown_front_matter_sections_and_blocks(tmp_path: Path) -> None:
    doc = parse(tmp_path, "docs/guide.md", MARKDOWN)
    assert doc.source == "docs/guide.md"
    assert doc.title == "Front Matter Title"
    assert doc.metadata["tags"] == "alpha, beta"
    assert doc.metadata["year"] == "2024"
    assert "title:" not in doc.text
    sections = {b.text.splitlines()[0]: b.section for b in doc.blocks}
    assert sections["Intro paragraph."] == ("Guide",)
    assert sections["- step one"] == ("Guide", "Setup")
    assert sections["```python"] == ("Guide", "Setup")
    assert sections["| name | value |"] == ("Guide", "Setup")
    assert sections["Deep text."] == ("Guide", "Setup", "Deep")
    assert sections["Closing words."] == ("Second Part",)
    assert doc.language == "en"
    assert_offsets(doc)


def test_markdown_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    assert parse(tmp_path, "a.md", "Some text\n\n# First Heading\n\nBody").title == "First Heading"
    assert parse(tmp_path, "notes.markdown", "just a paragraph\n\n## Sub\n\nmore").title == "notes"


def test_markdown_with_invalid_front_matter_keeps_text(tmp_path: Path) -> None:
    doc = parse(tmp_path, "x.md", "---\n: [unclosed\n---\n\n# Title\n\nBody text.")
    assert doc.metadata == {}
    assert doc.title == "Title"
    assert_offsets(doc)


def test_plain_text_paragraphs_and_title(tmp_path: Path) -> None:
    text = "Annual Report\n\nFirst paragraph\ncontinues here.\n\n\n\nSecond one.\n"
    doc = parse(tmp_path, "report.txt", text)
    assert doc.title == "Annual Report"
    assert [b.text for b in doc.blocks] == [
        "Annual Report",
        "First paragraph\ncontinues here.",
        "Second one.",
    ]
    assert all(b.section == () and b.page is None for b in doc.blocks)
    assert_offsets(doc)
    long_first = parse(tmp_path, "long.text", "word " * 60 + "\n\nrest")
    assert long_first.title == "long"


def test_text_is_normalised(tmp_path: Path) -> None:
    doc = parse(tmp_path, "n.txt", b"line one\r\nline two\r\n\r\n\r\n\r\n\r\n\r\nnext")
    assert "\r" not in doc.text
    assert "\n\n\n\n" not in doc.text
    assert doc.blocks[0].text == "line one\nline two"
    assert_offsets(doc)
    # A NUL in the first 8 KB marks a binary file; one further on is only dropped.
    late_nul = parse(tmp_path, "late.txt", b"word " * 2000 + b"\x00tail")
    assert "\x00" not in late_nul.text and late_nul.text.endswith("word tail")


def test_html_title_sections_tables_and_dropped_elements(tmp_path: Path) -> None:
    html = """<!DOCTYPE html><html><head><title>Page Title</title><style>p {color: red}</style></head>
    <body><nav>Home | About</nav><script>alert('x')</script>
    <h1>Main</h1><p>First <b>bold</b> paragraph.</p>
    <h2>Data</h2><table><tr><th>city</th><th>pop</th></tr><tr><td>Paris</td><td>2.1</td></tr></table>
    <ul><li>item one</li><li>item two</li></ul>
    <blockquote>A quote.</blockquote><pre>code  line\n  indented</pre>
    <h2>Other</h2><div>loose div text<!-- a comment --></div>
    </body></html>"""
    doc = parse(tmp_path, "page.html", html)
    assert doc.title == "Page Title"
    texts = {b.text: b.section for b in doc.blocks}
    assert texts["First bold paragraph."] == ("Main",)
    assert texts["city | pop\nParis | 2.1"] == ("Main", "Data")
    assert texts["item one"] == ("Main", "Data")
    assert texts["A quote."] == ("Main", "Data")
    assert texts["code  line\n  indented"] == ("Main", "Data")
    assert texts["loose div text"] == ("Main", "Other")
    for dropped in ("alert", "color", "About", "a comment"):
        assert dropped not in doc.text
    assert_offsets(doc)


def test_html_title_from_h1_when_no_title_tag(tmp_path: Path) -> None:
    assert parse(tmp_path, "x.htm", "<h1>Heading Title</h1><p>Body</p>").title == "Heading Title"


def test_deeply_nested_html_parses(tmp_path: Path) -> None:
    html = "<html><body>" + "<div>" * 5000 + "<p>deep text</p>" + "</div>" * 5000 + "</body></html>"
    doc = parse(tmp_path, "deep.html", html)
    assert [b.text for b in doc.blocks] == ["deep text"]
    unclosed = parse(tmp_path, "unclosed.html", "<span>" * 5000 + "tail text")
    assert "tail text" in unclosed.text


def test_pdf_pages_title_and_offsets(tmp_path: Path) -> None:
    data = make_pdf([f"Page {n} text about retrieval systems. " * 8 for n in (1, 2, 3)])
    doc = parse(tmp_path, "papers/review.pdf", data)
    assert doc.title == "Quarterly Review"
    assert {b.page for b in doc.blocks} == {1, 2, 3}
    for block in doc.blocks:
        assert f"Page {block.page} text" in block.text
    assert_offsets(doc)


def test_pdf_title_falls_back_to_stem(tmp_path: Path) -> None:
    assert parse(tmp_path, "untitled.pdf", make_pdf(["Hello world"], title=None)).title == "untitled"


def test_docx_headings_tables_and_title(tmp_path: Path) -> None:
    doc = parse(tmp_path, "spec.docx", make_docx())
    assert doc.title == "Overview"
    sections = {b.text: b.section for b in doc.blocks}
    assert sections["The overview paragraph explains the scope."] == ("Overview",)
    assert sections["Detail paragraph one."] == ("Overview", "Details")
    assert sections["metric | value\nrecall | 0.95"] == ("Overview", "Details")
    assert sections["Appendix text."] == ("Appendix",)
    assert_offsets(doc)
    assert parse(tmp_path, "titled.docx", make_docx(core_title="Core Title")).title == "Core Title"


def test_gbk_chinese_decodes(tmp_path: Path) -> None:
    text = "第一章 总则\n\n本办法适用于所有员工。请认真阅读以下条款。"
    doc = parse(tmp_path, "zh.txt", text.encode("gbk"))
    assert doc.text == text
    assert doc.language == "zh"
    short = parse(tmp_path, "short.txt", "中文测试".encode("gbk"))
    assert short.text == "中文测试"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("你好", "gbk"),
        ("向量检索的召回率很高", "gbk"),
        ("Revenue 收入 grew 12%，增长很快。", "gbk"),
        ("镕基与喆的名字", "gb18030"),
        ("utf-16 文本", "utf-16"),
        ("\ufeffBOM text", "utf-8"),
        ("The café served crème brûlée.", "latin-1"),
        ("crème brûlée", "cp1252"),
        ("Привет, как дела? Это тестовый текст на русском языке.", "cp1251"),
        ("這是一個繁體中文的測試文件，內容包括資料庫與檢索系統的說明。", "big5"),
        ("日本語のテキストです。これは長い文章です。", "shift_jis"),
        ("한국어 텍스트입니다. 안녕하세요.", "euc_kr"),
    ],
)
def test_legacy_encodings_decode(text: str, encoding: str) -> None:
    assert decode_bytes(text.encode(encoding)) == text.lstrip("\ufeff")


def test_invalid_utf8_still_decodes(tmp_path: Path) -> None:
    data = "中文内容，这是正常的 UTF-8 文本。".encode() + b"\xff" + "更多内容".encode()
    doc = parse(tmp_path, "bad.txt", data)
    assert doc.text.startswith("中文内容，这是正常的 UTF-8 文本。")
    assert doc.text.endswith("更多内容")
    latin = "The café served crème brûlée to naïve guests."
    assert parse(tmp_path, "latin.txt", latin.encode("latin-1")).text == latin


def test_parse_bytes_matches_parse_file(tmp_path: Path) -> None:
    from_file = parse(tmp_path, "g.md", MARKDOWN)
    from_bytes = parse_bytes(MARKDOWN.encode(), suffix=".MD", source="g.md", max_bytes=MB)
    assert from_bytes == from_file


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("zero.txt", b"", "empty file"),
        ("blank.md", b"  \n\t\n  ", "empty file"),
        ("blank.pdf", b"\n\n", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary content in a .txt file"),
        ("nul.md", b"text\x00more text", "binary content in a .md file"),
        ("notzip.docx", b"this is plain text, not a zip archive", "not a valid .docx (zip) file"),
        ("notpdf.pdf", b"hello, I am not a PDF", "corrupt PDF"),
        ("scripts.html", b"<script>only()</script>", "no text content"),
        ("data.csv", b"a,b\n1,2", "unsupported file type: .csv"),
    ],
)
def test_bad_files_raise_parse_error(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(tmp_path, name, data)
    assert str(info.value).startswith(reason)
    assert "\n" not in str(info.value)


def test_truncated_pdf(tmp_path: Path) -> None:
    data = make_pdf(["Some text on a page. " * 20, "More text. " * 20])
    for cut in (len(data) // 2, len(data) - 40):
        with pytest.raises(ParseError, match=r"^corrupt PDF: "):
            parse(tmp_path, "cut.pdf", data[:cut])


def test_encrypted_pdf(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["Secret text"]))))
    writer.encrypt("user-password", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ParseError, match=r"^encrypted PDF$"):
        parse(tmp_path, "locked.pdf", out.getvalue())


def test_pdf_with_only_owner_password_opens(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["Readable text"]))))
    writer.encrypt("", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert "Readable text" in parse(tmp_path, "owner.pdf", out.getvalue()).text


def test_pdf_without_text(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"^no extractable text \(scanned PDF\?\)$"):
        parse(tmp_path, "scan.pdf", make_pdf(["", ""]))


def zip_with_member(size: int, *, random: bool = False) -> bytes:
    """A zip whose one member is ``size`` bytes of zeros (compresses ~1000x) or random bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as member,
    ):
        for _ in range(size // MB):
            member.write(os.urandom(MB) if random else bytes(MB))
    return out.getvalue()


def test_zip_bomb_by_ratio(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"^zip bomb guard: .*ratio"):
        parse(tmp_path, "bomb.docx", zip_with_member(4 * MB))


def test_zip_bomb_by_total_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "MAX_DOCX_UNZIPPED_BYTES", 2 * MB)
    with pytest.raises(ParseError, match=r"^zip bomb guard: .*unpack"):
        parse(tmp_path, "big.docx", zip_with_member(3 * MB, random=True))


def test_zip_that_is_not_a_docx(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ParseError, match=r"^not a valid \.docx: "):
        parse(tmp_path, "fake.docx", out.getvalue())


def test_oversize_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"^file larger than .* MB limit$"):
        parse(tmp_path, "big.txt", "x" * 2000, max_bytes=1000)
    with pytest.raises(ParseError, match="MB limit"):
        parse_bytes(b"x" * 2000, suffix=".txt", source="big.txt", max_bytes=1000)


def test_language_detection() -> None:
    assert detect_language("The quick brown fox jumps over the lazy dog.") == "en"
    assert detect_language("我们使用 LanceDB 进行向量检索，并与全文检索融合。") == "zh"
    assert (
        detect_language("Hybrid retrieval fuses dense and sparse results. 混合检索融合稠密与稀疏结果。")
        == "mixed"
    )
    assert detect_language("12345 !!!") == "en"
    assert detect_language("", default="zh") == "zh"
    assert is_cjk("中") and is_cjk("か") and not is_cjk("a") and not is_cjk("。") and not is_cjk("中文")
