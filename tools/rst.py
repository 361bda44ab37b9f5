"""reStructuredText to headings and text blocks, without docutils.

Sphinx documentation is full of roles and directives that plain docutils does not know
(``:class:``, ``.. versionadded::``, ``.. autoclass::``) and reports as errors; this reader knows
the common ones and treats any other by one rule, so bad or unusual markup never stops an ingest.
Underlined and overlined titles become headings, levels in order of first appearance (as RST
defines them). Roles, links, substitutions and emphasis are reduced to their text; directives keep
their content (a note's text, a figure's caption) and drop their markup; code (``::`` literal
blocks, ``code-block``, doctests) becomes a fenced block, kept apart from prose as in Markdown;
tables become ``| a | b |`` rows. Comments, link targets, ``include`` and ``raw`` are dropped:
nothing is read from outside the file.
"""

from __future__ import annotations

import csv
import re
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_MAX_DEPTH = 12  # directive bodies and block quotes nest; deeper input is read as plain paragraphs
_CODE = frozenset({"code", "code-block", "sourcecode", "doctest", "testcode", "testoutput", "testsetup",
                   "ipython", "jupyter-execute", "code-cell", "math", "productionlist", "parsed-literal", "prompt"})
_DROP = frozenset({"toctree", "raw", "include", "literalinclude", "image", "contents", "sectnum", "meta", "index",
                   "highlight", "default-role", "role", "tabularcolumns", "currentmodule", "module", "py:module",
                   "py:currentmodule", "autosummary", "title", "target-notes", "header", "footer", "testcleanup"})
_TITLED = frozenset({"admonition", "topic", "sidebar", "rubric", "centered", "tab", "tab-item", "dropdown", "card",
                     "glossary", "table", "csv-table", "list-table"})
_ADMONITIONS = frozenset({"note", "warning", "tip", "hint", "important", "caution", "danger", "attention", "error",
                          "seealso", "todo", "epigraph", "highlights", "pull-quote", "compound", "container", "only"})
_VERSIONED = {"versionadded": "New in version", "versionchanged": "Changed in version",
              "deprecated": "Deprecated since version", "versionremoved": "Removed in version"}
_SIGNATURES = frozenset({"function", "class", "method", "attribute", "data", "exception", "decorator", "describe",
                         "object", "option", "envvar", "property", "classmethod", "staticmethod", "type"})

_EXPLICIT_RE = re.compile(r"\.\.(?:\s|$)")
_DIRECTIVE_RE = re.compile(r"\.\.\s+([\w.+:-]+?)::(?:\s+(.*))?$")
_SUBST_DEF_RE = re.compile(r"\.\.\s+\|([^|]+)\|\s+([\w.+:-]+)::\s*(.*)$")
_FOOTNOTE_RE = re.compile(r"\.\.\s+\[([^\]]+)\]\s*(.*)$")
_OPTION_RE = re.compile(r":[\w-]+:(?:\s|$)")
_ITEM_RE = re.compile(r"(?:[-*+•‣⁃]|#\.|\(?(?:\d+|[A-Za-z]|[ivxlcdm]+)[.)])\s+|\|\s|:[^:`\s][^:`]*:(?:\s|$)")
_FIELD_RE = re.compile(r":([^:`\s][^:`]*):(\s|$)")
_SIMPLE_BORDER_RE = re.compile(r"=+(?: +=+)+\s*$")

_LITERAL_RE = re.compile(r"``(\S(?:.*?\S)?)``")
_ROLE_RE = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]*)`|`([^`]*)`:[\w.+-]+(?::[\w.+-]+)*:")
_TARGET_RE = re.compile(r"_`([^`]+)`")
_LINK_RE = re.compile(r"`([^`<]*?)\s*<([^`>]*)>`_{0,2}")
_NAMED_REF_RE = re.compile(r"`([^`]+)`__?")
_FOOTNOTE_REF_RE = re.compile(r"\s?\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w.-]*)\]_")
_SUBST_RE = re.compile(r"(?<![\w|])\|(\S(?:[^|]*?\S)?)\|(?:__?)?")
_WORD_REF_RE = re.compile(r"\b([A-Za-z0-9][\w.-]*?)__?(?=[\s.,;:!?)\]'\"]|$)")
_STRONG_RE = re.compile(r"\*\*(\S(?:[^*]*?\S)?)\*\*")
_EMPHASIS_RE = re.compile(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_INTERPRETED_RE = re.compile(r"`([^`]+)`")
_TITLED_TARGET_RE = re.compile(r"^(.*?)\s*<([^<>]*)>$")
_ESCAPE_RE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class RstItem:
    """A heading (``level`` >= 1) or a block of text (``level`` 0), in document order."""

    text: str
    level: int = 0


def rst_items(text: str) -> list[RstItem]:
    """The headings and text blocks of an RST document; never raises on bad markup."""
    lines = text.expandtabs(8).split("\n")
    reader = _Reader(_substitutions(lines))
    reader.read(lines, depth=0)
    return reader.items


class _Reader:
    def __init__(self, substitutions: dict[str, str]) -> None:
        self.subs = substitutions
        self.styles: list[tuple[str, bool]] = []  # (adornment char, overlined), in order of appearance
        self.items: list[RstItem] = []

    def read(self, lines: list[str], *, depth: int) -> None:
        i, literal_next = 0, False
        while i < len(lines):
            if not lines[i].strip():
                i += 1
            elif _indent(lines[i]) > 0:
                end = _indented_end(lines, i)
                self._indented(lines[i:end], depth=depth, literal=literal_next)
                i, literal_next = end, False
            else:
                i, literal_next = self._element(lines, i, depth=depth)

    def _element(self, lines: list[str], i: int, *, depth: int) -> tuple[int, bool]:
        """Read the unindented element at line ``i``; returns the next line and whether an
        indented literal block follows."""
        line = lines[i]
        heading = _heading_at(lines, i) if depth == 0 else None
        if heading is not None:
            title, style, end = heading
            self._heading(title, style)
            return end, False
        if _EXPLICIT_RE.match(line):
            end = _indented_end(lines, i + 1)
            self._explicit(line, _dedent(lines[i + 1 : end]), depth=depth)
            return end, False
        if _adornment(line) and len(line.strip()) >= 4 and (i + 1 >= len(lines) or not lines[i + 1].strip()):
            return i + 1, False  # a transition (horizontal rule)
        end = _paragraph_end(lines, i, headings=depth == 0)
        return end, self._paragraph(lines[i:end])

    def _heading(self, title: str, style: tuple[str, bool]) -> None:
        if style not in self.styles:
            self.styles.append(style)
        text = self.inline(title)
        if text:
            self.items.append(RstItem(text, self.styles.index(style) + 1))

    def _indented(self, lines: list[str], *, depth: int, literal: bool) -> None:
        body = _dedent(lines)
        if literal:
            self.code(body, "")
        elif depth >= _MAX_DEPTH:
            self.block(self.inline(" ".join(" ".join(body).split())))
        else:  # a block quote, a list item's continuation or a definition: its text, read as RST
            self.read(body, depth=depth + 1)

    def _paragraph(self, lines: list[str]) -> bool:
        """Emit a paragraph, table or doctest; True when it announces a literal block ('::')."""
        first = lines[0].lstrip()
        if first.startswith(">>>"):
            self.code(_dedent(lines), "pycon")
            return False
        if first.startswith(("+-", "+=")) or _SIMPLE_BORDER_RE.match(first):
            self.block(_grid_table(lines, self.inline) if first.startswith("+") else _simple_table(lines, self.inline))
            return False
        text = "\n".join(self._logical_lines(lines))
        literal = text.endswith("::")
        if literal:
            text = text[:-2].rstrip() if text[:-2].endswith((" ", "\n")) or text == "::" else text[:-1]
        self.block(text)
        return literal

    def _logical_lines(self, lines: list[str]) -> list[str]:
        """Wrapped lines joined; a list item, a field or a definition starts a new line."""
        out: list[str] = []
        base_indent, item = 0, False
        for line in lines:
            stripped = line.strip()
            starts_item = bool(_ITEM_RE.match(stripped))
            if not out or starts_item or (_indent(line) > base_indent and not item):
                out.append(stripped)
                base_indent, item = _indent(line), starts_item
            else:
                out[-1] = _join(out[-1], stripped)
        return [self.inline(_unmarked(line)) for line in out]

    def _explicit(self, line: str, body: list[str], *, depth: int) -> None:
        """A directive, footnote, substitution definition, link target or comment."""
        if _SUBST_DEF_RE.match(line):
            return
        footnote = _FOOTNOTE_RE.match(line)
        if footnote:
            self._content([footnote.group(2), *body], depth=depth)
            return
        directive = _DIRECTIVE_RE.match(line)
        if directive:
            self._directive(directive.group(1).lower(), (directive.group(2) or "").strip(), body, depth=depth)
        # anything else ('.. _label:', '.. comment') is not content

    def _directive(self, name: str, args: str, body: list[str], *, depth: int) -> None:
        base = name.rsplit(":", 1)[-1]
        if name in _DROP or base in _DROP or name.startswith("auto"):
            return
        content = _without_options(body)
        if base in _CODE:
            self.code(content, "" if base == "math" else args.split(" ")[0])
        elif base == "csv-table":
            self.block(self.inline(args))
            self.block(_csv_table(body, self.inline))
        elif base in _VERSIONED:  # 'New in version 2.0: the bar option.', as Sphinx shows it
            version, _, rest = args.partition(" ")
            lines = [line for line in [rest, *content] if line.strip() or line is not rest]
            lead = f"{_VERSIONED[base]} {version}"
            self._content([f"{lead}: {lines[0]}", *lines[1:]] if lines else [f"{lead}."], depth=depth)
        elif base in _ADMONITIONS:
            self._content([args, *content], depth=depth)
        else:
            if base in _TITLED:
                self.block(self.inline(args))
            elif ":" in name or base in _SIGNATURES:  # an API description: its signature is code
                self.code([args], "")
            self._content(content, depth=depth)

    def _content(self, lines: list[str], *, depth: int) -> None:
        if any(line.strip() for line in lines):
            self._indented(lines, depth=depth, literal=False)

    def inline(self, text: str) -> str:
        parts = _LITERAL_RE.split(text)
        out = [f"`{p}`" if i % 2 else _inline_prose(p, self.subs) for i, p in enumerate(parts)]
        return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()

    def block(self, text: str) -> None:
        if text.strip():
            self.items.append(RstItem(text.strip()))

    def code(self, lines: list[str], language: str) -> None:
        code = "\n".join(lines).strip("\n")
        if code.strip():
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", code)), default=0))
            self.items.append(RstItem(f"{fence}{language}\n{code}\n{fence}"))


def _inline_prose(text: str, subs: dict[str, str]) -> str:
    text = _ROLE_RE.sub(lambda m: _role_text(m.group(1) if m.group(1) is not None else m.group(2)), text)
    text = _TARGET_RE.sub(r"\1", text)
    text = _LINK_RE.sub(lambda m: m.group(1) or m.group(2), text)
    text = _NAMED_REF_RE.sub(r"\1", text)
    text = _FOOTNOTE_REF_RE.sub("", text)
    text = _SUBST_RE.sub(lambda m: subs.get(m.group(1), m.group(1)), text)
    text = _WORD_REF_RE.sub(r"\1", text)
    text = _STRONG_RE.sub(r"\1", text)
    text = _EMPHASIS_RE.sub(r"\1", text)
    text = _INTERPRETED_RE.sub(r"\1", text)
    return _ESCAPE_RE.sub(r"\1", text.replace("\\ ", ""))


def _role_text(inner: str) -> str:
    """':class:`~pkg.Foo`' shows 'Foo'; ':ref:`the guide <guide>`' shows 'the guide'."""
    titled = _TITLED_TARGET_RE.match(inner)
    text = titled.group(1) if titled and titled.group(1) else inner
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return text.lstrip("!")


def _substitutions(lines: list[str]) -> dict[str, str]:
    """'.. |name| replace:: text' definitions, which may come after their uses."""
    subs: dict[str, str] = {}
    for line in lines:
        match = _SUBST_DEF_RE.match(line)
        if match:
            name, kind, value = match.groups()
            subs[name] = value.strip() if kind == "replace" else "" if kind == "image" else name
    return subs


def _adornment(line: str) -> str | None:
    text = line.rstrip()
    if len(text) >= 2 and text[0] in _PUNCT and text == text[0] * len(text):
        return text[0]
    return None


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _underlines(title: str, line: str) -> bool:
    """Docutils' rule: an adornment shorter than its title still counts from 4 characters on."""
    mark = line.rstrip()
    return bool(title.strip()) and (len(mark) >= 4 or len(mark) >= _width(title.strip()))


def _heading_at(lines: list[str], i: int) -> tuple[str, tuple[str, bool], int] | None:
    """(title, style, next line) when an overlined or underlined title starts at line ``i``."""
    over = _adornment(lines[i])
    if (over and i + 2 < len(lines) and lines[i + 1].strip() and _adornment(lines[i + 2]) == over
            and not _adornment(lines[i + 1])):
        return lines[i + 1].strip(), (over, True), i + 3
    if over or i + 1 >= len(lines) or _indent(lines[i]) > 0:
        return None
    under = _adornment(lines[i + 1])
    if under and _underlines(lines[i], lines[i + 1]):
        return lines[i].strip(), (under, False), i + 2
    return None


def _paragraph_end(lines: list[str], i: int, *, headings: bool) -> int:
    """A paragraph runs to a blank line, an explicit markup line, or the line before a title."""
    end = i + 1
    while end < len(lines) and lines[end].strip() and not _EXPLICIT_RE.match(lines[end]):
        if headings and end + 1 < len(lines) and _heading_at(lines, end) is not None:
            break
        end += 1
    return end


def _indented_end(lines: list[str], i: int) -> int:
    """End of the block of indented or blank lines from ``i``, trailing blanks left out."""
    end = last = i
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > 0):
        end += 1
        if lines[end - 1].strip():
            last = end
    return last


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(lines: list[str]) -> list[str]:
    return textwrap.dedent("\n".join(lines)).split("\n") if lines else []


def _without_options(body: list[str]) -> list[str]:
    """A directive's body without its leading ':option: value' lines."""
    i = 0
    while i < len(body) and _OPTION_RE.match(body[i].strip()) and body[i].strip():
        i += 1
    return body[i:]


def _unmarked(line: str) -> str:
    """':param x: the thing' reads 'param x: the thing'; a line block's '| ' goes."""
    if line.startswith("| "):
        return line[2:]
    return _FIELD_RE.sub(lambda m: f"{m.group(1)}:{m.group(2)}", line, count=1) if line.startswith(":") else line


def _join(left: str, right: str) -> str:
    wide = left and right and _width(left[-1]) == 2 and _width(right[0]) == 2
    return f"{left}{right}" if wide else f"{left} {right}"


def _grid_table(lines: list[str], inline: Callable[[str], str]) -> str:
    rows: list[list[str]] = []
    cells: list[str] | None = None
    for line in (x.strip() for x in lines):
        if line.startswith("+"):
            if cells is not None:
                rows.append(cells)
            cells = None
        elif line.startswith("|"):
            parts = [p.strip() for p in line.strip("|").split("|")]
            cells = parts if cells is None else [_join(a, b).strip() for a, b in zip(cells, parts)]
    if cells is not None:
        rows.append(cells)
    return "\n".join("| " + " | ".join(inline(c) for c in row) + " |" for row in rows if any(row))


def _csv_table(body: list[str], inline: Callable[[str], str]) -> str:
    header = [line.strip()[len(":header:"):] for line in body if line.strip().startswith(":header:")]
    rows = [line for line in header[:1] + _without_options(body) if line.strip()]
    cells = csv.reader(rows, skipinitialspace=True)
    return "\n".join("| " + " | ".join(inline(c.strip()) for c in row) + " |" for row in cells if row)


def _simple_table(lines: list[str], inline: Callable[[str], str]) -> str:
    starts = [m.start() for m in re.finditer(r"=+", lines[0].strip())]
    rows = []
    for line in (x.strip() for x in lines):
        if _SIMPLE_BORDER_RE.match(line) or re.fullmatch(r"[-= ]+", line):
            continue
        bounds = [*starts[1:], len(line)]
        cells = [line[a:b].strip() for a, b in zip(starts, bounds)]
        rows.append("| " + " | ".join(inline(c) for c in cells) + " |")
    return "\n".join(rows)
