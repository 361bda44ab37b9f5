"""Render a Report as PDF: title, summary, sections with tables and charts, references, method.

Why fpdf2 with a font from PyPI: it is pure Python (fontTools and Pillow underneath), so the PDF
comes from ``pip install`` alone, offline, on any OS, with no system packages. WeasyPrint would
reuse the HTML, but it needs Pango from the system package manager and a CJK font from somewhere
all the same; Noto Sans CJK on PyPI comes as a variable font that fpdf2 takes minutes to instance,
or as old wheels tied to other tools. So Latin text is set in DejaVu Sans (shipped by matplotlib)
and CJK text falls back to WenQuanYi Micro Hei (TrueType; Apache-2.0, or GPLv3 with a font
embedding exception) from the ``paperang-p2-fonts-cjk`` wheel, or a system one (``dossier.fonts``).
fpdf2 embeds subsets of both with their Unicode maps, so Chinese renders, searches and copies.
Line breaking is done in ``dossier.pdf_layout``, since fpdf2 breaks lines at spaces only.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextMode
from fpdf.fonts import FontFace
from markdown_it.token import Token

from dossier.charts import Chart
from dossier.pdf_layout import CELL_PAD, CJK_RUN_RE, INK, MUTED, Doc, Run, column_widths, lines, load_fonts, wrap
from dossier.render import body_rows
from dossier.report_parts import (
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
from tools.vocabulary import Evidence, Report

ACCENT, WARN, SOFT, WARN_BG = (47, 102, 144), (138, 75, 0), (243, 246, 249), (255, 244, 214)
NUMERIC_RE = re.compile(r"^[-+]?[\d,.]+%?$")


def render_pdf(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _Writer(report).write().output(str(path))
    return path


class _Writer:
    def __init__(self, report: Report) -> None:
        self.report, self.t = report, labels(report.language)
        self.pdf = Doc(format="A4")
        self.pdf.title_text = report.title
        self.pdf.set_margins(18, 16, 18)
        self.pdf.set_auto_page_break(True, margin=18)
        self.pdf.c_margin = 0  # runs are placed side by side: no inner margin between their cells
        load_fonts(self.pdf)
        self.pdf.set_title(report.title)
        self.pdf.set_lang(report.language)
        self.pdf.set_creator("dossier")
        self.pdf.set_creation_date(created_datetime(report.created_at))
        self.links = {r.number: f"#ref-{r.number}" for r in report.references}

    def write(self) -> FPDF:
        pdf, report = self.pdf, self.report
        pdf.add_page()
        self.text([Run(report.title, "B")], size=18, leading=1.3)
        self.text([Run(f"{self.t['question']}: ", "B"), Run(report.question)], size=10.5)
        meta = f"{self.t['generated']} {when(report.created_at)} · {report.engine} · run {report.run_id}"
        self.text([Run(meta, color=MUTED)], size=8)
        for section, placed in laid_out(report, set(self.links), png=True):
            self.heading(section.title)
            for block, charts in placed:
                self.block(block)
                for chart in charts:
                    self.chart(chart)
        self.references()
        self.method()
        return pdf

    # --- text ---

    def text(self, runs: list[Run], *, size: float = 10, indent: float = 0, leading: float = 1.45,
             after: float = 2.2, mark: str = "") -> None:
        """Runs laid out in lines at ``indent`` mm; ``mark`` (a bullet) hangs 5 mm to the left of the first."""
        pdf, h = self.pdf, size * leading * 0.3528  # pt to mm
        for k, line in enumerate(lines(pdf, runs, pdf.epw - indent, size)):
            if pdf.y + h > pdf.page_break_trigger:
                pdf.add_page()
            if mark and k == 0:
                pdf.set_font("sans", "", size)
                pdf.set_text_color(*INK)
                pdf.set_x(pdf.l_margin + indent - 5)
                pdf.cell(5, h, mark)
            pdf.set_x(pdf.l_margin + indent)
            for text, run in line:
                for piece in CJK_RUN_RE.split(text) if "B" in run.style else [text]:
                    if piece:
                        self.cell(piece, run, size, h)
            pdf.ln(h)
        pdf.ln(after)

    def cell(self, text: str, run: Run, size: float, h: float) -> None:
        pdf = self.pdf
        pdf.set_font(run.family, run.style, size)
        pdf.set_text_color(*run.color)
        if run.fill:
            pdf.set_fill_color(*run.fill)
        # The CJK font has no bold face: stroke the outlines too, so Chinese headings still look bold.
        fake_bold = "B" in run.style and bool(CJK_RUN_RE.fullmatch(text))
        if fake_bold:
            pdf.set_draw_color(*run.color)
            pdf.set_line_width(size * 0.012)
        pdf.text_mode = TextMode.FILL_STROKE if fake_bold else TextMode.FILL
        # fpdf2 2.8.9 sets the font inside q/Q when a cell starts with a fallback (CJK) glyph, so the
        # cells after it have no font at all ('No font in show'): have it set the font on every cell.
        pdf.current_font_is_set_on_page = False
        pdf.cell(pdf.get_string_width(text), h, text, fill=bool(run.fill), link=run.link or "")
        pdf.text_mode = TextMode.FILL
        pdf.set_fill_color(255, 255, 255)  # fpdf2 tables fill their cells with the current colour

    def heading(self, title: str, level: int = 0) -> None:
        size = 14 if level == 0 else 11.5
        if self.pdf.y > self.pdf.page_break_trigger - 40:
            self.pdf.add_page()
        self.pdf.ln(3 if level == 0 else 1)
        self.pdf.start_section(title[:120], level=level)
        self.text([Run(title, "B", color=ACCENT if level == 0 else INK)], size=size, leading=1.3, after=1.5)

    def block(self, block: Block) -> None:
        if block.kind == "table":
            header, rows = _table_cells(block.tokens, self.plain)
            self.table(header, rows)
        elif block.kind in ("bullet_list", "ordered_list"):
            self.items(block.tokens)
        elif block.kind in ("fence", "code_block"):
            self.text([Run(self.plain(block.tokens[0].content.rstrip("\n")), family="mono")], size=8, leading=1.35)
        else:
            heading = block.kind == "heading"
            for tok in (tok for tok in block.tokens if tok.type == "inline"):
                runs = self.runs(tok)
                self.text([replace(r, style="B") for r in runs] if heading else runs, size=11 if heading else 10)

    def items(self, tokens: list[Token]) -> None:
        number, ordered = 0, tokens[0].type == "ordered_list_open"
        for tok in tokens:
            if tok.type == "list_item_open":
                number += 1
            elif tok.type == "inline":
                depth = (tok.level - 1) // 2
                mark = f"{number}." if ordered else "•"
                self.text(self.runs(tok), size=10, indent=9 + 5 * depth, after=0.8, mark=mark)
        self.pdf.ln(1.5)

    def runs(self, inline: Token) -> list[Run]:
        """Inline Markdown to styled runs; citations become links to their reference."""
        runs, style = [], ""
        for child in inline.children or []:
            if child.type in ("strong_open", "strong_close", "em_open", "em_close"):
                flip = "B" if child.type.startswith("strong") else "I"
                style = "".join(sorted(set(style) ^ {flip}))
            elif child.type in ("softbreak", "hardbreak"):
                runs.append(Run(" " if child.type == "softbreak" else "\n", style))
            elif child.content:
                runs += self.marked(child.content, style, "mono" if child.type == "code_inline" else "sans")
        return runs

    def marked(self, text: str, style: str, family: str) -> list[Run]:
        out: list[Run] = []
        parts = replace_marks(text, lambda ns: "\x00" + ",".join(map(str, ns)) + "\x00", "\x00!\x00").split("\x00")
        for k, part in enumerate(parts):
            if k % 2 == 0:
                out += [Run(part, style, family)] if part else []
            elif part == "!":
                out.append(Run(f" ⚠ {self.t['unverified']} ", "B", color=WARN, fill=WARN_BG))
            else:
                out += self.cite([int(n) for n in part.split(",")], style)
        return out

    def cite(self, numbers: list[int], style: str) -> list[Run]:
        runs = [Run("[", style)]
        for k, n in enumerate(numbers):
            runs += ([Run(", ", style)] if k else []) + [Run(str(n), style, color=ACCENT, link=self.links.get(n))]
        return [*runs, Run("]", style)]

    def plain(self, text: str) -> str:
        return replace_marks(text, lambda ns: "[" + ", ".join(map(str, ns)) + "]", f" ⚠ {self.t['unverified']}")

    # --- tables, charts ---

    def table(self, header: list[str], rows: list[list[str]], *, indent: float = 0) -> None:
        """A grid with a bold header row (none when ``header`` is empty); numeric columns right-aligned."""
        cells = ([header] if header else []) + rows
        pdf, size = self.pdf, 8 if len(cells[0]) <= 6 else 7
        margin = pdf.l_margin
        pdf.set_left_margin(margin + indent)
        styles = ["B" if header and k == 0 else "" for k in range(len(cells))]
        widths = column_widths(pdf, cells, styles, pdf.epw, size)
        align = tuple("RIGHT" if rows and all(NUMERIC_RE.match(r[i]) or not r[i] for r in rows) else "LEFT"
                      for i in range(len(cells[0])))
        pdf.set_font("sans", size=size)
        pdf.set_text_color(*INK)
        pdf.set_draw_color(210, 216, 224)
        style = FontFace(emphasis="BOLD", fill_color=SOFT, color=INK)
        with pdf.table(width=sum(widths), col_widths=widths, align="LEFT", text_align=align, padding=(0.8, 1.2),
                       borders_layout="HORIZONTAL_LINES", headings_style=style, line_height=size * 0.45,
                       first_row_as_headings=bool(header)) as table:
            for values, bold in zip(cells, styles):
                row = table.row()
                for width, cell in zip(widths, values):
                    row.cell("\n".join(wrap(pdf, cell, width - CELL_PAD, size, bold)))
        pdf.set_left_margin(margin)
        pdf.ln(3)

    def chart(self, chart: Chart) -> None:
        pdf = self.pdf
        width = pdf.epw * 0.9
        height = width * 3.0 / 6.4
        if pdf.y + height + 10 > pdf.page_break_trigger:
            pdf.add_page()
        pdf.image(io.BytesIO(chart.png), x=pdf.l_margin + (pdf.epw - width) / 2, w=width, h=height)
        pdf.ln(1)
        self.text(self.marked(_cite_marks(chart.caption), "I", "sans"), size=8, indent=(pdf.epw - width) / 2, after=3)

    # --- references, method ---

    def references(self) -> None:
        pdf, by_id, shown = self.pdf, self.report.evidence_by_id(), body_rows(self.report)
        pdf.add_page()
        self.heading(self.t["references"])
        for ref in self.report.references:
            ev = by_id.get(ref.evidence_id)
            if pdf.y > pdf.page_break_trigger - 25:
                pdf.add_page()
            pdf.set_link(name=f"ref-{ref.number}", page=pdf.page_no(), y=pdf.y)
            self.text([Run(f"{ref.number}.  ", "B"), Run(ref.label, "B")], size=9.5, after=0.5)
            if ev:
                self.evidence(ev, shown.get(ev.id, 0))

    def evidence(self, ev: Evidence, in_body: int = 0) -> None:
        """A SQL result's rows only where the body's table does not show them: each row once."""
        self.text([Run(source_line(ev, self.t), color=MUTED)], size=7.5, indent=6, after=1)
        if ev.kind != "sql":
            self.text([Run(_passage(ev.text), color=(54, 64, 76))], size=8.5, indent=6, after=4)
            return
        self.text([Run(ev.sql or "", family="mono", color=(54, 64, 76))], size=7.5, indent=6, leading=1.35, after=1.5)
        if in_body:
            done = in_body >= len(ev.rows)
            note = self.t["in_body"] if done else self.t["rest"].format(a=in_body + 1, b=len(ev.rows), k=in_body)
            self.text([Run(note, "I", color=MUTED)], size=7.5, indent=6, after=1)
        if ev.columns and ev.rows[in_body:]:
            self.table(list(ev.columns), [[cell_text(v) for v in row] for row in ev.rows[in_body:]], indent=6)
        if ev.row_count is not None and ev.row_count > len(ev.rows):
            note = self.t["rows_shown"].format(shown=len(ev.rows), total=ev.row_count)
            self.text([Run(note, "I", color=MUTED)], size=7.5, indent=6)
        self.pdf.ln(2)

    def method(self) -> None:
        self.pdf.add_page()
        self.heading(self.t["method"])
        self.heading(self.t["plan"], level=1)
        for i, sq in enumerate(self.report.plan.sub_questions, 1):
            self.text([Run(f"{sq.question}  "), Run(f"({sq.needs})", color=MUTED)], size=9.5, indent=9, after=0.8,
                      mark=f"{i}.")
        self.pdf.ln(3)
        self.table([], [[k, v] for k, v in method_facts(self.report)])
        for name, found in method_lists(self.report):
            self.heading(name, level=1)
            for item in found:
                self.text([Run(item)], size=9, indent=9, after=0.8, mark="•")


def _table_cells(tokens: list[Token], plain) -> tuple[list[str], list[list[str]]]:
    rows: list[list[str]] = []
    for tok in tokens:
        if tok.type == "tr_open":
            rows.append([])
        elif tok.type == "inline":
            rows[-1].append(plain("".join(c.content for c in tok.children or [] if c.content) or tok.content))
    return (rows[0], rows[1:]) if rows else ([], [])


def _passage(text: str) -> str:
    """A passage's lines kept (lists stay lists), blank lines and runs of spaces squeezed."""
    lines = (" ".join(line.split()) for line in text.strip().splitlines())
    return "\n".join(line for line in lines if line)


def _cite_marks(caption: str) -> str:
    return re.sub(r"\[(\d+)\]$", "\ue000\\1\ue001", caption)

