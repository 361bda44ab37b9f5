"""Evidence: a document passage or a SQL result, equally citable, with a stable short id.

Ids are content hashes, so the same passage or the same query with the same result always gets the
same id — across branches, rounds, resumed runs and engines.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.models import Hit, SqlResult

EVIDENCE_ID_LEN = 10
# rows kept in SQL evidence (a 5-year monthly or 60-year yearly series); the rest are summarised by row_count
SQL_ROWS_SHOWN = 60


class Evidence(BaseModel):
    id: str
    kind: Literal["passage", "sql"]
    text: str  # the passage, or a compact rendering of the result rows
    # passage provenance
    doc_id: str | None = None
    source: str | None = None
    title: str | None = None
    section: str | None = None
    page: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    score: float | None = None
    # sql provenance
    sql: str | None = None
    tables: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)  # the rows shown (at most SQL_ROWS_SHOWN)
    row_count: int | None = None
    truncated: bool = False
    result_hash: str | None = None

    def label(self) -> str:
        """A short human label for references: 'docs/a.md § Costs, p.3' or 'SQL on llm_projects'."""
        if self.kind == "sql":
            return "SQL on " + (", ".join(self.tables) or "the warehouse")
        parts = [self.title or self.source or "document"]
        if self.section:
            parts.append(f"§ {self.section}")
        if self.page:
            parts.append(f"p.{self.page}")
        return ", ".join(parts)


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
