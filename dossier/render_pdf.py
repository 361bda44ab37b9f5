"""Render a Report as PDF: title, summary, sections with tables and charts, references, method.

Why fpdf2 with a font from PyPI: it is pure Python (fontTools and Pillow underneath), so the PDF
works from ``pip install`` alone, offline, on any OS. WeasyPrint would reuse the HTML, but it needs
Pango from the system package manager and still a CJK font from somewhere; Noto Sans CJK from PyPI
only comes as a variable font that fpdf2 takes minutes to instance, or bundled with unrelated
packages. So Latin text is set in DejaVu Sans, which matplotlib ships, and CJK text falls back to
WenQuanYi Micro Hei (TrueType, Apache-2.0 or GPLv3 with a font-embedding exception), which the
``paperang-p2-fonts-cjk`` wheel ships; a system WenQuanYi or Droid font is used when that package
is missing (see ``dossier.charts.cjk_font``). fpdf2 embeds subsets of both fonts with their Unicode
maps, so Chinese text renders and can be searched and copied.

fpdf2 wraps lines at spaces only, so paragraphs and table cells are laid out here: a line may break
after any CJK character (never before closing punctuation), at spaces, or after ``_`` and ``/`` in
long identifiers.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fpdf import FPDF
from fpdf.enums import TextMode
from fpdf.fonts import FontFace
from markdown_it.token import Token

from dossier.charts import Chart, charts_for, cjk_font, place_charts
from dossier.render_html import (
    Block, cell_text, labels, method_facts, method_lists, replace_marks, section_blocks, source_line, when,
)
from tools.evidence import Evidence
from tools.research_models import Report

INK, MUTED, ACCENT, WARN = (29, 35, 43), (93, 104, 117), (47, 102, 144), (138, 75, 0)
SOFT, WARN_BG = (243, 246, 249), (255, 244, 214)
CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
OPEN, CLOSE = "（「『【《〈“‘(\\[", "，。、；：？！）」』】》〉”’,.;:?!)\\]%"
CITE = r"(?: ?\[\d+(?:, ?\d+)*\])?"
CJK_RUN_RE = re.compile(f"([{CJK}]+)")
ATOM_RE = re.compile(rf"\n|[{OPEN}]*[{CJK}]{CITE}[{CLOSE}]*|(?:[^\s{CJK}_/]+[_/]?|[_/]){CITE}[{CLOSE}]*[ \t]*|\s+")
NUMERIC_RE = re.compile(r"^[-+]?[\d,.]+%?$")
CELL_PAD = 2.4  # mm of horizontal padding in a table cell


@dataclass(frozen=True)
class Run:
    text: str
    style: str = ""
    family: str = "sans"
    color: tuple[int, int, int] = INK
    link: str | None = None  # '#ref-N', a named destination set when the reference is written
    fill: tuple[int, int, int] | None = None


Segment = tuple[str, Run]


def render_pdf(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _Writer(report).write().output(str(path))
    return path


class _Doc(FPDF):
    title_text = ""
    _widths: dict[tuple[str, str, str], float]

    def width(self, text: str, family: str, style: str, size: float) -> float:
        """Text width in mm, from cached per-character widths (fpdf2 does not kern, so they add up)."""
        widths = self.__dict__.setdefault("_widths", {})
        total = 0.0
        for ch in text:
            key = (family, style, ch)
            if key not in widths:
                self.set_font(family, style, 10)
                widths[key] = self.get_string_width(ch) / 10
            total += widths[key]
        return total * size

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("sans", size=7)
        self.set_text_color(*MUTED)
        self.cell(0, 5, f"{self.title_text[:90]}  ·  {self.page_no()}/{{nb}}", align="C")


class _Writer:
    def __init__(self, report: Report) -> None:
        self.report, self.t = report, labels(report.language)
        self.pdf = _Doc(format="A4")
        self.pdf.title_text = report.title
        self.pdf.set_margins(18, 16, 18)
        self.pdf.set_auto_page_break(True, margin=18)
        _fonts(self.pdf)
        self.pdf.set_title(report.title)
        self.pdf.set_lang(report.language)
        self.pdf.set_creator("dossier")
        self.pdf.set_creation_date(_created(report.created_at))
        self.links = {r.number: f"#ref-{r.number}" for r in report.references}

    def write(self) -> FPDF:
        pdf, report = self.pdf, self.report
        pdf.add_page()
        self.text([Run(report.title, "B")], size=18, leading=1.3)
        self.text([Run(f"{self.t['question']}: ", "B"), Run(report.question)], size=10.5)
        meta = f"{self.t['generated']} {when(report.created_at)} · {report.engine} · run {report.run_id}"
        self.text([Run(meta, color=MUTED)], size=8)
        blocks = [section_blocks(s.markdown, set(self.links)) for s in report.sections]
        slots = place_charts([[(b.kind, b.cites) for b in bs] for bs in blocks], charts_for(report, png=True))
        for i, (section, bs) in enumerate(zip(report.sections, blocks)):
            self.heading(section.title)
            for j, block in enumerate(bs):
                self.block(block)
                for chart in slots.get((i, j), []):
                    self.chart(chart)
        self.references()
        self.method()
        return pdf

    # --- text ---

    def text(self, runs: list[Run], *, size: float = 10, indent: float = 0, leading: float = 1.45,
             after: float = 2.2, mark: str = "") -> None:
        """Runs laid out in lines at ``indent`` mm; ``mark`` (a bullet) hangs 5 mm to the left of the first."""
        pdf, h = self.pdf, size * leading * 0.3528  # pt to mm
        for k, line in enumerate(_lines(pdf, runs, pdf.epw - indent, size)):
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
        pdf.current_font_is_set_on_page = False  # fpdf2 2.8 can lose the font after a CJK fallback
        pdf.cell(pdf.get_string_width(text), h, text, fill=bool(run.fill), link=run.link or "")
        pdf.text_mode = TextMode.FILL

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
        else:
            inline = [tok for tok in block.tokens if tok.type == "inline"]
            size = 12 if block.kind == "heading" else 10
            for tok in inline:
                self.text(self.runs(tok), size=size)

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
        return runs + [Run("]", style)]

    def plain(self, text: str) -> str:
        return replace_marks(text, lambda ns: "[" + ", ".join(map(str, ns)) + "]", f" ⚠ {self.t['unverified']}")

    # --- tables, charts ---

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A grid with a bold header row (none when ``header`` is empty); numeric columns right-aligned."""
        cells = ([header] if header else []) + rows
        pdf, size = self.pdf, 8 if len(cells[0]) <= 6 else 7
        styles = ["B" if header and k == 0 else "" for k in range(len(cells))]
        widths = _column_widths(pdf, cells, styles, pdf.epw, size)
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
                    row.cell("\n".join(_wrap(pdf, cell, width - CELL_PAD, size, bold)))
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
        pdf, by_id = self.pdf, self.report.evidence_by_id()
        pdf.add_page()
        self.heading(self.t["references"])
        for ref in self.report.references:
            ev = by_id.get(ref.evidence_id)
            if pdf.y > pdf.page_break_trigger - 25:
                pdf.add_page()
            pdf.set_link(name=f"ref-{ref.number}", page=pdf.page_no(), y=pdf.y)
            self.text([Run(f"{ref.number}.  ", "B"), Run(ref.label, "B")], size=9.5, after=0.5)
            if ev:
                self.evidence(ev)

    def evidence(self, ev: Evidence) -> None:
        self.text([Run(source_line(ev, self.t), color=MUTED)], size=7.5, indent=6, after=1)
        if ev.kind != "sql":
            self.text([Run(_passage(ev.text), color=(54, 64, 76))], size=8.5, indent=6, after=4)
            return
        self.text([Run(ev.sql or "", family="mono", color=(54, 64, 76))], size=7.5, indent=6, leading=1.35, after=1.5)
        if ev.columns:
            self.table(list(ev.columns), [[cell_text(v) for v in row] for row in ev.rows])
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


# --- layout helpers ---

def _fonts(pdf: FPDF) -> None:
    import matplotlib  # its DejaVu fonts cover Latin, Greek, Cyrillic and symbols such as ⚠

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for style, name in {"": "", "B": "-Bold", "I": "-Oblique", "BI": "-BoldOblique"}.items():
        pdf.add_font("sans", style, str(ttf / f"DejaVuSans{name}.ttf"))
    pdf.add_font("mono", "", str(ttf / "DejaVuSansMono.ttf"))
    cjk = cjk_font()
    if cjk is not None:
        pdf.add_font("cjk", "", str(cjk))
        pdf.set_fallback_fonts(["cjk"], exact_match=False)


def _atoms(runs: list[Run]) -> Iterator[list[Segment]]:
    """Unbreakable pieces of text, each split into the runs (styles) it spans."""
    text = "".join(r.text for r in runs)
    owner = [r for r in runs for _ in r.text]
    for m in ATOM_RE.finditer(text):
        segments: list[list] = []
        for k in range(m.start(), m.end()):
            if segments and segments[-1][1] is owner[k]:
                segments[-1][0] += text[k]
            else:
                segments.append([text[k], owner[k]])
        yield [(s, r) for s, r in segments]


def _width(pdf: _Doc, segments: list[Segment], size: float, *, trim: bool = False) -> float:
    last = len(segments) - 1
    return sum(pdf.width(t.rstrip() if trim and k == last else t, r.family, r.style, size)
               for k, (t, r) in enumerate(segments))


def _lines(pdf: _Doc, runs: list[Run], width: float, size: float) -> list[list[Segment]]:
    lines: list[list[Segment]] = [[]]
    used = 0.0
    for atom in _atoms(runs):
        if atom[0][0] == "\n":
            lines.append([])
            used = 0.0
            continue
        if lines[-1] and used + _width(pdf, atom, size, trim=True) > width:
            lines.append([])
            used = 0.0
            atom = [(t.lstrip(), r) for t, r in atom if t.lstrip()] if atom[0][0].isspace() else atom
        for piece in _split(pdf, atom, width, size) if _width(pdf, atom, size, trim=True) > width else [atom]:
            if lines[-1] and piece is not atom:
                lines.append([])
                used = 0.0
            lines[-1] += piece
            used += _width(pdf, piece, size)
    return [_merge(line) for line in lines if line]


def _split(pdf: _Doc, atom: list[Segment], width: float, size: float) -> list[list[Segment]]:
    """An atom wider than the line, cut between characters."""
    pieces: list[list[Segment]] = [[]]
    for text, run in atom:
        for ch in text:
            if pieces[-1] and _width(pdf, pieces[-1] + [(ch, run)], size) > width:
                pieces.append([])
            pieces[-1].append((ch, run))
    return pieces


def _merge(line: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for text, run in line:
        out[-1:] = [(out[-1][0] + text, run)] if out and out[-1][1] is run else out[-1:] + [(text, run)]
    if out:
        out[-1] = (out[-1][0].rstrip(), out[-1][1])
    return [(t, r) for t, r in out if t]


def _wrap(pdf: _Doc, text: str, width: float, size: float, style: str = "") -> list[str]:
    return ["".join(t for t, _ in line) for line in _lines(pdf, [Run(text, style)], max(width, 4), size)] or [""]


def _column_widths(pdf: _Doc, rows: list[list[str]], styles: list[str], total: float, size: float) -> list[float]:
    """Natural widths when they fit; else shares of the page, none squeezed below its longest word."""
    def measure(text: str, style: str) -> float:
        return pdf.width(text, "sans", style, size) + CELL_PAD + 0.4

    natural = [max(measure(r[i], s) for r, s in zip(rows, styles)) for i in range(len(rows[0]))]
    if sum(natural) <= total - 0.01:
        return natural
    floor = [min(n, max([12.0] + [measure(w, s) for r, s in zip(rows, styles) for w in re.split(r"(?<=[ _/])", r[i])]))
             for i, n in enumerate(natural)]
    spare = max(total - sum(floor), 0.0)
    extra = [n - f for n, f in zip(natural, floor)]
    widths = [f + spare * e / (sum(extra) or 1) for f, e in zip(floor, extra)]
    return [w * min(1.0, (total - 0.01) / sum(widths)) for w in widths]  # fpdf2 refuses a hair over the page


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


def _created(created_at: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return dt.datetime.now(dt.timezone.utc)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
