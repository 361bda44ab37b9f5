"""Turn md, rst, txt, html, pdf and docx files into plain text plus the blocks that chunking follows.

Every ``Block`` satisfies ``doc.text[block.start:block.end] == block.text``. Markdown and plain
text keep their (normalised) source as ``doc.text``; rst, html, pdf and docx text is rebuilt from
the extracted headings and blocks, joined by blank lines.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import docx
import pypdf
import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from docx.document import Document as DocxDocument
from docx.table import Table
from markdown_it import MarkdownIt

from tools.models import Block, ParsedDocument
from tools.rst import rst_items
from tools.text.encoding import decode_bytes, looks_binary, normalize_text
from tools.text.language import detect_language
from tools.zipguard import ZipBomb, check_inflation

DOC_SUFFIXES: frozenset[str] = frozenset(
    {".md", ".markdown", ".rst", ".rest", ".txt", ".text", ".html", ".htm", ".pdf", ".docx"}
)

# A .docx is a zip; these bound what python-docx would inflate into memory.
MAX_DOCX_UNZIPPED_BYTES = 200 * 2**20
MAX_DOCX_RATIO = 100
DOCX_RATIO_MIN_BYTES = 2**20  # small archives compress well without being dangerous

_TITLE_MAX_CHARS = 100
_MD_BLOCKS = frozenset(
    {"paragraph_open", "bullet_list_open", "ordered_list_open", "blockquote_open"}
    | {"fence", "code_block", "table_open", "html_block"}
)
_HTML_DROP = ["script", "style", "nav", "noscript", "template", "svg", "head"]
_HTML_BLOCKS = frozenset({"p", "li", "pre", "table", "blockquote", "dt", "dd", "figcaption", "address"})
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Layout elements: loose text inside one never runs on into the text after it.
_HTML_CONTAINERS = frozenset(
    {"html", "body", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "dl"}
)
_HTML_BREAKS = _HTML_BLOCKS | _HTML_HEADINGS | _HTML_CONTAINERS | {"br", "hr", "tr", "td", "th", "img"}
_DOCX_HEADING_RE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_BLANK_LINES_RE = re.compile(r"\n[ \t]*\n\s*")


class ParseError(Exception):
    """A file that cannot be turned into text; ``str(exc)`` is a one-line human reason."""


def parse_bytes(data: bytes, *, suffix: str, source: str, max_bytes: int) -> ParsedDocument:
    """Parse a document already in memory, so a caller can hash and parse from one read (ingestion reads
    it with tools.ingest.read_regular); ``source`` is its POSIX path relative to the ingest root."""
    _check_size(len(data), max_bytes)
    suffix = suffix.lower()
    if suffix not in DOC_SUFFIXES:
        raise ParseError(f"unsupported file type: {suffix or '(none)'}")
    if not data.strip():
        raise ParseError("empty file")
    stem = PurePosixPath(source).stem or source
    if suffix in {".pdf", ".docx"}:
        doc = (_parse_pdf if suffix == ".pdf" else _parse_docx)(data, source=source, stem=stem)
    else:
        if looks_binary(data):
            raise ParseError(f"binary content in a {suffix} file")
        text = normalize_text(decode_bytes(data))
        if not text.strip():
            raise ParseError("empty file")
        doc = _TEXT_PARSERS.get(suffix, _parse_plain)(text, source=source, stem=stem)
    if not doc.blocks:
        raise ParseError("no text content")
    return doc


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ParseError(f"file larger than {max_bytes / 2**20:g} MB limit")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())


def _paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the blank-line separated paragraphs of ``text``, trimmed of outer whitespace."""
    bounds = [0, *(x for sep in _BLANK_LINES_RE.finditer(text) for x in sep.span()), len(text)]
    for start, end in zip(bounds[::2], bounds[1::2], strict=True):
        start, end = _trimmed(text, start, end)
        if end > start:
            yield start, end


class _Builder:
    """Joins headings and blocks into one text with blank lines, recording each block's offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.path: tuple[str, ...] = ()
        self.length = 0

    def _append(self, text: str) -> int:
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if text:
            self._append(text)
            self.path = (*self.path[: level - 1], text)

    def block(self, text: str, *, page: int | None = None) -> None:
        text = normalize_text(text).strip()
        if text:
            start = self._append(text)
            self.blocks.append(Block(text, start, start + len(text), self.path, page))

    def document(self, *, source: str, title: str, metadata: dict[str, str] | None = None) -> ParsedDocument:
        text = "".join(self.parts)
        return ParsedDocument(source, title, text, self.blocks, detect_language(text), metadata or {})


def _parse_plain(text: str, *, source: str, stem: str) -> ParsedDocument:
    blocks = [Block(text[s:e], s, e) for s, e in _paragraph_spans(text)]
    first_line = text.strip().split("\n", 1)[0].strip()
    title = first_line if len(first_line) <= _TITLE_MAX_CHARS else stem
    return ParsedDocument(source, title or stem, text, blocks, detect_language(text))


def _parse_markdown(text: str, *, source: str, stem: str) -> ParsedDocument:
    metadata, text = _front_matter(text)
    blocks, first_h1 = _markdown_blocks(text)
    title = metadata.get("title") or first_h1 or stem
    return ParsedDocument(source, title, text, blocks, detect_language(text), metadata)


def _parse_rst(text: str, *, source: str, stem: str) -> ParsedDocument:
    builder = _Builder()
    title: str | None = None
    for item in rst_items(text):
        if item.level:
            title = title or (item.text if item.level == 1 else None)
            builder.heading(item.level, item.text)
        else:
            builder.block(item.text)
    return builder.document(source=source, title=title or stem)


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        return {}, text  # not front matter after all; keep the text as written
    if not isinstance(data, dict):
        return {}, text
    return {str(k): _as_str(v) for k, v in data.items() if v is not None}, text[match.end() :]


def _as_str(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple, set)) else str(value)


def _markdown_blocks(text: str) -> tuple[list[Block], str | None]:
    """Top-level markdown blocks with their heading paths; markdown-it caps nesting depth itself."""
    line_starts = [0, *(m.end() for m in re.finditer("\n", text)), len(text)]
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    path: tuple[str, ...] = ()
    first_h1: str | None = None
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None:
            continue
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            heading = _inline_text(tokens[i + 1].children or [])
            path = (*path[: level - 1], heading) if heading else path
            first_h1 = first_h1 or (heading if level == 1 else None)
        elif tok.type in _MD_BLOCKS:
            last = min(tok.map[1], len(line_starts) - 1)
            start, end = _trimmed(text, line_starts[tok.map[0]], line_starts[last])
            if end > start and (tok.type != "html_block" or _html_has_text(text[start:end])):
                blocks.append(Block(text[start:end], start, end, path))
    return blocks, first_h1


def _inline_text(children: list) -> str:
    return " ".join("".join(c.content for c in children if c.type in {"text", "code_inline"}).split())


def _html_has_text(fragment: str) -> bool:
    return bool(re.sub(r"<!--.*?-->|<[^>]*>", "", fragment, flags=re.DOTALL).strip())


def _parse_html(text: str, *, source: str, stem: str) -> ParsedDocument:
    soup = BeautifulSoup(text, "html.parser")
    title = _tag_text(soup.find("title")) or _tag_text(soup.find("h1")) or stem
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    builder = _Builder()
    try:
        _walk_html(soup, builder)
    except RecursionError:  # the walk itself is iterative, but bs4 internals may still recurse
        builder = _Builder()
        builder.block(soup.get_text("\n"))
    return builder.document(source=source, title=title)


def _tag_text(tag: Tag | NavigableString | None) -> str:
    """Visible text with whitespace collapsed; a space only where layout separates words."""
    if not isinstance(tag, Tag):
        return " ".join(str(tag or "").split())
    parts: list[str] = []
    for node in tag.descendants:
        if isinstance(node, Tag):
            parts.append(" " if node.name in _HTML_BREAKS else "")
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            parts.append(node)  # text; a PreformattedString is a comment, doctype or CDATA
    return " ".join("".join(parts).split())


def _walk_html(root: BeautifulSoup, builder: _Builder) -> None:
    """Depth-first walk with an explicit stack, so deeply nested pages cannot exhaust recursion."""
    flush_marker = object()
    inline: list[str] = []

    def flush() -> None:
        builder.block(" ".join("".join(inline).split()))
        inline.clear()

    stack: list[object] = list(reversed(root.contents))
    while stack:
        node = stack.pop()
        if node is flush_marker:
            flush()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctypes, CDATA
                inline.append(str(node))
        elif isinstance(node, Tag):
            if node.name in _HTML_BLOCKS or node.name in _HTML_HEADINGS:
                flush()
                _emit_html_tag(node, builder)
                continue
            if node.name in _HTML_CONTAINERS:
                flush()
                stack.append(flush_marker)
            elif node.name == "br":
                inline.append(" ")
            stack.extend(reversed(node.contents))
    flush()


def _emit_html_tag(tag: Tag, builder: _Builder) -> None:
    if tag.name in _HTML_HEADINGS:
        builder.heading(int(tag.name[1]), _tag_text(tag))
    elif tag.name == "pre":
        builder.block(tag.get_text())
    elif tag.name == "table":
        rows = (" | ".join(_tag_text(c) for c in tr.find_all(["td", "th"])) for tr in tag.find_all("tr"))
        builder.block("\n".join(r for r in rows if r.strip(" |")))
    else:
        builder.block(_tag_text(tag))


def _parse_pdf(data: bytes, *, source: str, stem: str) -> ParsedDocument:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        _unlock(reader)
        pages = list(reader.pages)
        info: Mapping[str, Any] = reader.metadata or {}
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise ParseError(f"corrupt PDF: {_short(exc)}") from exc
    builder = _Builder()
    failures = 0
    for number, page in enumerate(pages, start=1):
        try:
            page_text = normalize_text(page.extract_text() or "")
        except Exception:  # one damaged page should not cost the rest of the document
            failures += 1
            continue
        for start, end in _paragraph_spans(page_text):
            builder.block(page_text[start:end], page=number)
    if pages and failures == len(pages):
        raise ParseError("corrupt PDF: no page could be read")
    if not builder.blocks:
        raise ParseError("no extractable text (scanned PDF?)")
    title = " ".join(str(info.get("/Title") or "").split()) or stem
    metadata = {k[1:].lower(): str(info[k]) for k in ("/Author", "/Subject", "/Keywords") if info.get(k)}
    return builder.document(source=source, title=title, metadata=metadata)


def _unlock(reader: pypdf.PdfReader) -> None:
    """Open PDFs protected only by an owner password (empty user password); refuse the rest."""
    if not reader.is_encrypted:
        return
    try:
        ok = reader.decrypt("")
    except Exception as exc:  # a missing AES backend reads as locked, not corrupt
        raise ParseError("encrypted PDF") from exc
    if not ok:
        raise ParseError("encrypted PDF")


def _short(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:120]


def _parse_docx(data: bytes, *, source: str, stem: str) -> ParsedDocument:
    _check_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
        builder = _Builder()
        body_title = _walk_docx(document, builder)
        title = (document.core_properties.title or "").strip() or body_title or stem
    except Exception as exc:  # python-docx, lxml and zipfile errors on a damaged package
        raise ParseError(f"not a valid .docx: {_short(exc)}") from exc
    return builder.document(source=source, title=title)


def _check_zip(data: bytes) -> None:
    """Sizes are counted while inflating (tools.zipguard), never taken from the zip's headers,
    which a bomb can make lie: a member declared as 10 KB may inflate to gigabytes."""
    try:
        check_inflation(
            io.BytesIO(data), max_bytes=MAX_DOCX_UNZIPPED_BYTES, what=".docx",
            max_ratio=MAX_DOCX_RATIO, ratio_min_bytes=DOCX_RATIO_MIN_BYTES,
        )
    except ZipBomb as exc:
        raise ParseError(str(exc)) from exc
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
        raise ParseError("not a valid .docx (zip) file") from exc


def _walk_docx(document: DocxDocument, builder: _Builder) -> str | None:
    """Feed paragraphs and tables in body order; returns the Title-style or first H1 text."""
    title: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            builder.block(_docx_table(item))
            continue
        style = (item.style.name if item.style is not None else "") or ""
        heading = _DOCX_HEADING_RE.match(style)
        if style == "Title":
            title = title or item.text.strip() or None  # kept as the title, not as a block
        elif heading:
            level = int(heading.group(1))
            title = title or (item.text.strip() if level == 1 else None) or None
            builder.heading(level, item.text)
        else:
            builder.block(item.text)
    return title


def _docx_table(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        # A merged cell repeats its text in every grid column it spans.
        cells = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


_TEXT_PARSERS = {".md": _parse_markdown, ".markdown": _parse_markdown, ".rst": _parse_rst, ".rest": _parse_rst,
                 ".html": _parse_html, ".htm": _parse_html}
