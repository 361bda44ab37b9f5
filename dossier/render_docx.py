"""Render a Report as a Word document (.docx): title, question, sections with headings, result
tables as real Word tables, charts as pictures, citations ``[n]`` that jump to their reference,
the references with their passages and SQL, and the method appendix.

It walks the same parts as the HTML and PDF renderings (``dossier.report_parts``: section blocks
with citation placeholders, cell text, source lines, the method's facts; ``dossier.charts`` for
the charts, as PNG like the PDF). python-docx writes the file, so Word, LibreOffice and Google
Docs open it, and an analyst can edit the report before forwarding it. Chinese text is plain
Unicode with an East Asian font named for it; the viewer draws it with its own CJK font.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocxDocument
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it.token import Token

from dossier.charts import Chart
from dossier.ref_links import RefLinks
from dossier.render import body_rows
from dossier.report_parts import (
    CITE_RE,
    Block,
    cell_text,
    created_datetime,
    labels,
    laid_out,
    method_facts,
    method_lists,
    replace_marks,
    source_line,
    when,
)
from dossier.safe_text import plain
from tools.vocabulary import Evidence, Report

ACCENT, MUTED, WARN = RGBColor(0x2F, 0x66, 0x90), RGBColor(0x5D, 0x68, 0x75), RGBColor(0x8A, 0x4B, 0x00)
MONO = "Consolas"
CJK_FONT = "Microsoft YaHei"  # named for East Asian text; LibreOffice substitutes an installed CJK font
LANG_TAGS = {"en": "en-US", "zh": "zh-CN"}
_NOT_XML_RE = re.compile("[\ud800-\udfff\ufffe\uffff]")  # XML 1.0 has no place for these


def render_docx(report: Report, path: str | Path, *, kb_dir: Path | None = None,
                sources_root: Path | None = None) -> Path:
    """Write the report to ``path``. A passage's reference links to its file relative to ``path``, a
    SQL reference shows the ``dossier sql`` line that runs it again (``dossier.ref_links``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _Writer(report, RefLinks.for_output(path, kb_dir=kb_dir, sources_root=sources_root)).write().save(str(path))
    return path


def bookmark(number: int) -> str:
    """The bookmark of reference ``number``; Word allows letters, digits and '_' in its names."""
    return f"ref_{number}"


def xml_text(text: str) -> str:
    """Text Word can store: control characters and non-characters dropped (python-docx refuses them)."""
    return _NOT_XML_RE.sub("", plain(text.replace("\r\n", "\n")))


class _Writer:
    def __init__(self, report: Report, links: RefLinks | None = None) -> None:
        self.report, self.t, self.links = report, labels(report.language), links or RefLinks()
        self.doc: DocxDocument = Document()
        self.numbers = {r.number for r in report.references}
        self._bookmarks = 0
        self._setup()

    def _setup(self) -> None:
        report, doc = self.report, self.doc
        section = doc.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)  # A4, like the PDF
        section.left_margin = section.right_margin = Mm(18)
        section.top_margin = section.bottom_margin = Mm(16)
        normal = doc.styles["Normal"]
        normal.font.size = Pt(10.5)
        rpr = normal.element.get_or_add_rPr()
        rpr.get_or_add_rFonts().set(qn("w:eastAsia"), CJK_FONT)
        lang = OxmlElement("w:lang")
        lang.set(qn("w:val"), LANG_TAGS.get(report.language, "en-US"))
        lang.set(qn("w:eastAsia"), "zh-CN")
        rpr.append(lang)
        props = doc.core_properties
        props.title, props.author, props.language = xml_text(report.title), "dossier", report.language or "en"
        props.subject = xml_text(report.question)[:255]
        props.created = created_datetime(report.created_at)

    def write(self) -> DocxDocument:
        doc, report, t = self.doc, self.report, self.t
        doc.add_heading(xml_text(report.title), level=0)
        question = doc.add_paragraph()
        question.add_run(f"{t['question']}: ").bold = True
        question.add_run(xml_text(report.question))
        meta = f"{t['generated']} {when(report.created_at)} · {report.engine} · run {report.run_id}"
        self.muted(doc.add_paragraph(), meta, size=8)
        for section, placed in laid_out(report, self.numbers, png=True):
            doc.add_heading(xml_text(section.title), level=1)
            for block, charts in placed:
                self.block(block)
                for chart in charts:
                    self.chart(chart)
        self.references()
        self.method()
        return doc

    # --- blocks and inline text ---

    def block(self, block: Block) -> None:
        kind, tokens = block.kind, block.tokens
        if kind == "table":
            self.table(_table_rows(tokens), header=True)
        elif kind in ("bullet_list", "ordered_list"):
            self.items(tokens)
        elif kind in ("fence", "code_block"):
            self.code(tokens[0].content.rstrip("\n"))
        elif kind == "heading":
            level = min(max(int(tokens[0].tag[1:]), 2), 4)  # a section's own headings sit under its title
            self.inline(self.doc.add_heading("", level=level), tokens[1])
        else:  # paragraphs; a blockquote's paragraphs in the Quote style
            style = "Quote" if kind == "blockquote" else None
            for tok in (tok for tok in tokens if tok.type == "inline"):
                self.inline(self.doc.add_paragraph(style=style), tok)

    def items(self, tokens: list[Token]) -> None:
        """Lists keep their markers as text ('1.', '•'), so numbering restarts with every list."""
        stack: list[list] = []  # [ordered, current number] per open list
        first = False
        for tok in tokens:
            if tok.type in ("bullet_list_open", "ordered_list_open"):
                start = int(tok.attrGet("start") or 1) if tok.type == "ordered_list_open" else 1
                stack.append([tok.type == "ordered_list_open", start - 1])
            elif tok.type in ("bullet_list_close", "ordered_list_close"):
                stack.pop()
            elif tok.type == "list_item_open":
                stack[-1][1] += 1
                first = True
            elif tok.type == "inline":
                ordered, number = stack[-1]
                depth = min(len(stack), 3)
                p = self.doc.add_paragraph(style="List Continue" + (f" {depth}" if depth > 1 else ""))
                p.paragraph_format.first_line_indent = Mm(-5)
                p.add_run((f"{number}.\t" if ordered else "•\t") if first else "\t")
                self.inline(p, tok)
                first = False

    def inline(self, p: Paragraph, tok: Token, *, size: float | None = None) -> None:
        bold = italic = False
        for child in tok.children or []:
            if child.type in ("strong_open", "strong_close"):
                bold = child.type == "strong_open"
            elif child.type in ("em_open", "em_close"):
                italic = child.type == "em_open"
            elif child.type == "softbreak":
                p.add_run(" ")
            elif child.type == "hardbreak":
                p.add_run().add_break()
            elif child.content:
                mono = child.type == "code_inline"
                self.marked(p, child.content, bold=bold, italic=italic, mono=mono, size=size)

    def marked(self, p: Paragraph, text: str, *, bold: bool = False, italic: bool = False, mono: bool = False,
               size: float | None = None) -> None:
        """Text with citation placeholders: ``[n]`` linked to reference n, the unverified flag highlighted."""
        parts = replace_marks(xml_text(text), lambda ns: "\x00" + ",".join(map(str, ns)) + "\x00",
                              "\x00!\x00").split("\x00")
        for k, part in enumerate(parts):
            if k % 2 == 0:
                if part:
                    _style(p.add_run(part), bold=bold, italic=italic, mono=mono, size=size)
            elif part == "!":
                run = _style(p.add_run(f" ⚠ {self.t['unverified']}"), bold=True, size=size, color=WARN)
                run.font.highlight_color = 7  # WD_COLOR_INDEX.YELLOW
            else:
                self.cite(p, [int(n) for n in part.split(",")], bold=bold, italic=italic, size=size)

    def cite(self, p: Paragraph, numbers: list[int], **style) -> None:
        _style(p.add_run("["), **style)
        for k, n in enumerate(numbers):
            if k:
                _style(p.add_run(", "), **style)
            _link(p, _style(p.add_run(str(n)), color=ACCENT, **style), bookmark(n))
        _style(p.add_run("]"), **style)

    def code(self, text: str, *, size: float = 8.5, indent: float = 0) -> None:
        p = self.doc.add_paragraph()
        p.paragraph_format.left_indent = Mm(indent)
        lines = xml_text(text).split("\n")
        for k, line in enumerate(lines):
            run = _style(p.add_run(line), mono=True, size=size)
            if k < len(lines) - 1:
                run.add_break()

    def muted(self, p: Paragraph, text: str, *, size: float = 8, italic: bool = False) -> Paragraph:
        _style(p.add_run(xml_text(text)), size=size, italic=italic, color=MUTED)
        return p

    # --- tables, charts ---

    def table(self, rows: Sequence[Sequence[Token | str]], *, header: bool, indent: float = 0,
              bold_first: bool = False) -> Table:
        """A Word table; the header row bold, shaded and repeated on each page; cells of Markdown
        tables keep their citations as links."""
        width = max(len(r) for r in rows)
        table = self.doc.add_table(rows=0, cols=width)
        table.style = self.doc.styles["Table Grid"]
        if indent:
            _indent_table(table, indent)
        size = 9 if width <= 6 else 8
        for r, values in enumerate(rows):
            cells = table.add_row().cells
            is_head = header and r == 0
            if is_head:
                _repeat_header(table.rows[0])
            for c, value in enumerate(values):
                p = cells[c].paragraphs[0]
                if isinstance(value, Token):
                    self.inline(p, value, size=size)
                else:
                    _style(p.add_run(xml_text(value)), size=size)
                if is_head or (bold_first and c == 0):
                    for run in p.runs:
                        run.bold = True
                if is_head:
                    _shade(cells[c], "F3F6F9")
        self.doc.add_paragraph()
        return table

    def chart(self, chart: Chart) -> None:
        self.doc.add_picture(io.BytesIO(chart.png), width=Mm(160))
        caption = CITE_RE.sub(lambda m: "\ue000" + re.sub(r"\s", "", m.group(1)) + "\ue001", chart.caption)
        self.marked(self.doc.add_paragraph(style="Caption"), caption, italic=True)

    # --- references, method ---

    def references(self) -> None:
        doc, by_id, shown = self.doc, self.report.evidence_by_id(), body_rows(self.report)
        doc.add_page_break()
        doc.add_heading(self.t["references"], level=1)
        for ref in self.report.references:
            p = doc.add_paragraph()
            p.paragraph_format.keep_with_next = True
            p.add_run(f"{ref.number}.  ").bold = True
            p.add_run(xml_text(ref.label)).bold = True
            self._bookmark(p, bookmark(ref.number))
            ev = by_id.get(ref.evidence_id)
            if ev:
                self.evidence(ev, shown.get(ev.id, 0))

    def evidence(self, ev: Evidence, in_body: int = 0) -> None:
        """A passage in full; a SQL result's query, and its rows unless the body's table shows them
        (the rows a body table left out follow, so each row is shown once)."""
        line, href = source_line(ev, self.t), self.links.file_href(ev)
        if href and ev.source and line.startswith(ev.source):  # the file name links to the file
            p = self.doc.add_paragraph()
            _external_link(p, _style(p.add_run(xml_text(ev.source)), size=8, color=ACCENT), href)
            self.muted(p, line[len(ev.source):])
        else:
            self.muted(self.doc.add_paragraph(), line)
        if ev.kind != "sql":
            self.doc.add_paragraph(xml_text(ev.text.strip()), style="Quote")
            return
        self.code(ev.sql or "", size=8, indent=4)
        if command := self.links.sql_command(ev):  # the query again, from a terminal
            p = self.muted(self.doc.add_paragraph(), f"{self.t['rerun']}: ")
            p.paragraph_format.left_indent = Mm(4)
            _style(p.add_run(xml_text(command)), mono=True, size=7.5)
        if in_body:
            done = in_body >= len(ev.rows)
            note = self.t["in_body"] if done else self.t["rest"].format(a=in_body + 1, b=len(ev.rows), k=in_body)
            self.muted(self.doc.add_paragraph(), note, italic=True)
        if ev.columns and ev.rows[in_body:]:
            self.table([list(ev.columns), *([cell_text(v) for v in row] for row in ev.rows[in_body:])],
                       header=True, indent=4)
        if ev.row_count is not None and (ev.row_count > len(ev.rows) or ev.truncated):
            total = f"{ev.row_count}{'+' if ev.truncated else ''}"
            self.muted(self.doc.add_paragraph(), self.t["rows_shown"].format(shown=len(ev.rows), total=total),
                       italic=True)

    def method(self) -> None:
        doc = self.doc
        doc.add_page_break()
        doc.add_heading(self.t["method"], level=1)
        doc.add_heading(self.t["plan"], level=2)
        for i, sq in enumerate(self.report.plan.sub_questions, 1):
            p = doc.add_paragraph(style="List Continue")
            p.paragraph_format.first_line_indent = Mm(-5)
            p.add_run(f"{i}.\t{xml_text(sq.question)}  ")
            self.muted(p, f"({sq.needs})", size=9)
        self.table([[k, v] for k, v in method_facts(self.report)], header=False, bold_first=True)
        for name, found in method_lists(self.report):
            doc.add_heading(xml_text(name), level=2)
            for item in found:
                p = doc.add_paragraph(style="List Continue")
                p.paragraph_format.first_line_indent = Mm(-5)
                p.add_run(f"•\t{xml_text(item)}")

    def _bookmark(self, p: Paragraph, name: str) -> None:
        """A named place in the document: the target of the citation links ``[n]``."""
        self._bookmarks += 1
        start, end = OxmlElement("w:bookmarkStart"), OxmlElement("w:bookmarkEnd")
        start.set(qn("w:id"), str(self._bookmarks))
        start.set(qn("w:name"), name)
        end.set(qn("w:id"), str(self._bookmarks))
        p._p.insert(1 if p._p.pPr is not None else 0, start)
        p._p.append(end)


def _style(run, *, bold: bool = False, italic: bool = False, mono: bool = False, size: float | None = None,
           color: RGBColor | None = None):
    run.bold = bold or None
    run.italic = italic or None
    if mono:
        run.font.name = MONO
    if size:
        run.font.size = Pt(size)
    if color is not None:
        run.font.color.rgb = color
    return run


def _link(p: Paragraph, run, anchor: str) -> None:
    """Wrap a run in an internal hyperlink to the bookmark ``anchor`` (python-docx has no API for it)."""
    link = OxmlElement("w:hyperlink")
    link.set(qn("w:anchor"), anchor)
    link.set(qn("w:history"), "1")
    run._r.addprevious(link)
    link.append(run._r)


def _external_link(p: Paragraph, run, url: str) -> None:
    """Wrap a run in a hyperlink to ``url`` (a path relative to the document opens that file)."""
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), p.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True))
    run._r.addprevious(link)
    link.append(run._r)


def _table_rows(tokens: list[Token]) -> list[list[Token | str]]:
    """A Markdown table's cells as inline tokens, header row first."""
    rows: list[list[Token | str]] = []
    for tok in tokens:
        if tok.type == "tr_open":
            rows.append([])
        elif tok.type == "inline" and rows:
            rows[-1].append(tok)
    return rows


def _repeat_header(row) -> None:
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(flag)


def _shade(cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _indent_table(table: Table, mm: float) -> None:
    indent = OxmlElement("w:tblInd")
    indent.set(qn("w:w"), str(int(mm * 56.7)))  # twentieths of a point
    indent.set(qn("w:type"), "dxa")
    look = table._tbl.tblPr.find(qn("w:tblLook"))  # the schema's order: tblInd comes before tblLook
    if look is not None:
        look.addprevious(indent)
    else:
        table._tbl.tblPr.append(indent)

