"""Text from documents, table cells, file names and questions, made safe to show.

A report quotes its sources. A quote that holds markup (`<script>`, `<img onerror=…>`, a
`[Click here](javascript:…)` link) must show as text in report.md, as it does in the HTML report,
and never look like something Dossier vetted. Control characters (BEL, a right-to-left override)
reach no title or terminal line.
"""

from __future__ import annotations

import re

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINK_RE = re.compile(r"\]\(")  # '[text](url)' and '![alt](src)': the link part shows as text


def plain(text: str) -> str:
    """One line of text without control or direction-override characters."""
    return _CONTROL_RE.sub("", text)


def markdown_text(text: str) -> str:
    """Prose or a table from evidence, for a Markdown file: raw HTML and link syntax inert, the
    report's own citations ('[3]') and tables untouched."""
    text = plain(text.replace("\r", ""))
    # '<' alone makes a tag or an autolink: escaping it is enough, and '>' (a breadcrumb's 'A > B') stays.
    return _LINK_RE.sub(r"]\\(", text.replace("<", "&lt;"))


def table_cell(value: object) -> str:
    """A result cell inside a Markdown table row: one line, '|' escaped, markup inert."""
    text = "" if value is None else " ".join(str(value).split())
    return markdown_text(text).replace("|", "\\|")


def link_text(text: str) -> str:
    """A file name as the text of a link the report builds: markup inert, and no bracket that could
    end the link text early or start another."""
    text = plain(" ".join(text.split()))
    return re.sub(r"([\\\[\]])", r"\\\1", text).replace("<", "&lt;")
