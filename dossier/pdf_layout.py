"""Text layout for the PDF: styled runs broken into lines, measured with the embedded fonts.

fpdf2 wraps lines at spaces only, which leaves Chinese paragraphs ragged or overflowing. Here a
line may break after any CJK character (never before closing punctuation, and not between a
word and its citation), at spaces, or after ``_`` and ``/`` in long identifiers; an atom wider
than the line is cut between characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fpdf import FPDF

from dossier.fonts import cjk_font, dejavu_dir
from tools.text.language import CJK_PUNCTUATION, FULLWIDTH_FORMS, HAN_BMP, KANA

INK, MUTED = (29, 35, 43), (93, 104, 117)
# What the CJK font draws (radicals, punctuation and fullwidth forms too; no Hangul): not a language test.
CJK = f"\u2e80-\u2fff{CJK_PUNCTUATION}{KANA}{HAN_BMP}{FULLWIDTH_FORMS}"
OPEN, CLOSE = "（「『【《〈“‘(\\[", "，。、；：？！）」』】》〉”’,.;:?!)\\]%"
CITE = r"(?: ?\[\d+(?:, ?\d+)*\])?"
CJK_RUN_RE = re.compile(f"([{CJK}]+)")
ATOM_RE = re.compile(rf"\n|[{OPEN}]*[{CJK}]{CITE}[{CLOSE}]*|(?:[^\s{CJK}_/]+[_/]?|[_/]){CITE}[{CLOSE}]*[ \t]*|\s+")
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


class Doc(FPDF):
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


def load_fonts(pdf: FPDF) -> None:
    """DejaVu Sans (four styles) and Sans Mono; the CJK font as the fallback for every style."""
    ttf = dejavu_dir()  # DejaVu covers Latin, Greek, Cyrillic and symbols such as ⚠
    for style, name in {"": "", "B": "-Bold", "I": "-Oblique", "BI": "-BoldOblique"}.items():
        pdf.add_font("sans", style, str(ttf / f"DejaVuSans{name}.ttf"))
    pdf.add_font("mono", "", str(ttf / "DejaVuSansMono.ttf"))
    cjk = cjk_font()
    if cjk is not None:
        pdf.add_font("cjk", "", str(cjk))
        pdf.set_fallback_fonts(["cjk"], exact_match=False)


def _atoms(runs: list[Run]) -> Iterator[list[Segment]]:
    """Unbreakable pieces of text, each split into the runs (styles) it spans; a badge is one piece."""
    pending: list[Segment] = []
    for atom in _pieces(runs):
        if pending and atom[0][1].fill and atom[0][1] is pending[0][1] is pending[-1][1]:
            pending = [*pending[:-1], (pending[-1][0] + atom[0][0], atom[0][1]), *atom[1:]]
            continue
        if pending:
            yield pending
        pending = atom
    if pending:
        yield pending


def _pieces(runs: list[Run]) -> Iterator[list[Segment]]:
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


def _width(pdf: Doc, segments: list[Segment], size: float, *, trim: bool = False) -> float:
    last = len(segments) - 1
    return sum(pdf.width(t.rstrip() if trim and k == last else t, r.family, r.style, size)
               for k, (t, r) in enumerate(segments))


def lines(pdf: Doc, runs: list[Run], width: float, size: float) -> list[list[Segment]]:
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


def _split(pdf: Doc, atom: list[Segment], width: float, size: float) -> list[list[Segment]]:
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
        out[-1:] = [(out[-1][0] + text, run)] if out and out[-1][1] is run else [*out[-1:], (text, run)]
    if out:
        out[-1] = (out[-1][0].rstrip(), out[-1][1])
    return [(t, r) for t, r in out if t]


def wrap(pdf: Doc, text: str, width: float, size: float, style: str = "") -> list[str]:
    return ["".join(t for t, _ in line) for line in lines(pdf, [Run(text, style)], max(width, 4), size)] or [""]


def column_widths(pdf: Doc, rows: list[list[str]], styles: list[str], total: float, size: float) -> list[float]:
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
