"""Markdown pieces of an offline report: citations, joined sentences, SQL results under a headline.

A SQL result is shown as a table under one sentence that says what it shows (the SQL helper's
``headline``), never how many rows it has; the sentence cites the result, so the verifier checks
both the sentence's figures and the table's cells against it.
"""

from __future__ import annotations

import re
from typing import Any

from agents.offline.sql_answer import headline as sql_headline
from tools.text.language import HAN_RE
from tools.vocabulary import Evidence

MAX_TABLE_ROWS = 12
MAX_HEADLINE_CELLS = 4
_END_RE = re.compile(r"[.!?。！？；;]+[”’」』）)\"']*$")
_WIDE_RE = re.compile("[\u3000-\u303f\uff00-\uffef]")  # full-width punctuation takes no space


def cite(sentence: str, ids: list[str]) -> str:
    """Put the markers before the sentence's final punctuation (or at its end)."""
    markers = "".join(f"[ev:{i}]" for i in ids)
    if not markers:
        return sentence
    m = _END_RE.search(sentence)
    head, tail = (sentence[:m.start()], m.group()) if m else (sentence, "")
    space = "" if head and (HAN_RE.match(head[-1]) or _WIDE_RE.match(head[-1])) else " "
    return f"{head.rstrip()}{space}{markers}{tail}"


def join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        glue = "" if not out or _WIDE_RE.match(out[-1]) or (HAN_RE.match(s[:1]) and HAN_RE.match(out[-1])) else " "
        out += glue + s
    return out


def has_rows(ev: Evidence) -> bool:
    """A SQL result that says something: not empty, and not one row of empty aggregates (count 0)."""
    return ev.kind == "sql" and bool(ev.rows) and any(v not in (None, 0, "") for row in ev.rows for v in row)


def headline(ev: Evidence, question: str, language: str) -> str:
    """What the result shows, answer first (the SQL helper's sentence), else a plain statement of
    its first row; cited. Never a row count."""
    text = (sql_headline(ev, question=question, language=language) or _first_row(ev, language)).strip()
    if not _END_RE.search(text):
        text += "。" if language == "zh" else "."
    return cite(text, [ev.id])


def _first_row(ev: Evidence, language: str) -> str:
    """'In llm_projects, the first row has approach rag, budget_cny 800000 and team_size 6.' Cells
    as the table shows them, so the verifier's matcher finds each figure in the result."""
    pairs = [(c, cell(v)) for c, v in zip(ev.columns, ev.rows[0]) if cell(v)][:MAX_HEADLINE_CELLS]
    where = ", ".join(ev.tables) or ("数据仓库" if language == "zh" else "the warehouse")
    if language == "zh":
        return f"{where} 的结果中，第一行为" + "，".join(f"{c} {v}" for c, v in pairs) + "。"
    items = [f"{c} {v}" for c, v in pairs]
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"In {where}, the first row has {listed}."


def sql_block(ev: Evidence, question: str, language: str) -> str:
    rows = ev.rows[:MAX_TABLE_ROWS]
    lines = ["| " + " | ".join(cell(c) for c in ev.columns) + " |", "|" + " --- |" * len(ev.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return headline(ev, question, language) + "\n\n" + "\n".join(lines)


def cell(value: Any) -> str:
    """Floats without exponents ('3210000', not '3.21e+06'); the verifier matches cells by value."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif isinstance(value, float):
        text = f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    else:
        text = str(value)
    return " ".join(text.replace("|", "\\|").split())
