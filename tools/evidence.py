"""Evidence made from what the data access returns: a search hit's passage or a SQL result, each with a
stable short id (a content hash). The Evidence type itself is part of the research vocabulary
(tools/vocabulary.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tools.models import Hit, SqlResult
from tools.vocabulary import SQL_ROWS_SHOWN, Evidence

EVIDENCE_ID_LEN = 10


def _short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:EVIDENCE_ID_LEN]


def evidence_from_hit(hit: Hit) -> Evidence:
    c = hit.chunk
    return Evidence(
        id=_short_hash("passage", c.doc_id, str(c.char_start), c.content_hash),
        kind="passage", text=c.text, doc_id=c.doc_id, source=c.source, title=c.title,
        section=c.section or None, page=c.page, char_start=c.char_start, char_end=c.char_end,
        score=hit.score,
    )


def result_hash(result: SqlResult) -> str:
    payload = json.dumps([result.columns, result.rows], ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def evidence_from_sql(result: SqlResult) -> Evidence:
    rows = [list(r) for r in result.rows[:SQL_ROWS_SHOWN]]
    digest = result_hash(result)
    return Evidence(
        id=_short_hash("sql", " ".join(result.sql.split()), digest),
        kind="sql", text=render_rows(result.columns, rows, result.row_count, result.truncated),
        sql=result.sql, tables=list(result.tables), columns=list(result.columns), rows=rows,
        row_count=result.row_count, truncated=result.truncated, result_hash=digest,
    )


def render_rows(columns: list[str], rows: list[list[Any]], row_count: int, truncated: bool) -> str:
    """A compact pipe table; the text an agent reads and numeric claims are checked against."""
    lines = [" | ".join(columns)]
    lines += [" | ".join("" if v is None else _fmt(v) for v in row) for row in rows]
    shown = len(rows)
    if row_count > shown or truncated:
        lines.append(f"({shown} of {row_count}{'+' if truncated else ''} rows shown)")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else str(value)
    return str(value)
