"""Helpers for the offline SQL tests: a warehouse of small CSV tables, the value probe over it, a query
run as evidence, and the first candidate's headline checked by the citation verifier like any claim."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from agents.offline.sql_answer import headline
from agents.offline.sql_build import build_sql
from agents.offline.sql_probe import probed_catalog
from agents.verify import verify_sections
from tools.evidence import evidence_from_sql
from tools.models import SqlResult, TableInfo
from tools.vocabulary import Evidence, Section
from tools.warehouse import Warehouse


def warehouse_of(folder: Path, tables: dict[str, str]) -> Iterator[Warehouse]:
    """A warehouse holding ``tables`` (name -> CSV text), for a fixture to yield; closed afterwards."""
    wh = Warehouse(folder / "kb" / "warehouse.duckdb")
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
        wh.import_file(folder / f"{name}.csv", source=f"{name}.csv", source_hash=name)
    yield wh
    wh.close()


class _KB:
    """The one knowledge-base method the probe uses, over the test warehouse."""

    def __init__(self, wh: Warehouse):
        self.wh = wh

    async def sql(self, sql: str) -> SqlResult:
        cur = self.wh._connect().execute(sql)
        rows = [list(r) for r in cur.fetchall()]
        return SqlResult(sql=sql, columns=[d[0] for d in cur.description], rows=rows, row_count=len(rows),
                         truncated=False, tables=[], elapsed_ms=1.0)


def probed(wh: Warehouse, question: str, table: str | None = None) -> list[TableInfo]:
    """The catalog with the question's phrases found as cells (``table``: that table only)."""
    return [t for t in asyncio.run(probed_catalog(_KB(wh), question, wh.catalog())) if table in (None, t.name)]


def run(wh: Warehouse, sql: str, tables: list[str] | None = None) -> Evidence:
    cur = wh._connect().execute(sql)
    rows = [[v.isoformat() if isinstance(v, dt.date) else v for v in row] for row in cur.fetchall()]
    return evidence_from_sql(SqlResult(sql=sql, columns=[d[0] for d in cur.description], rows=rows,
                                       row_count=len(rows), truncated=False, tables=tables or ["t"], elapsed_ms=1.0))


def first_answer(wh: Warehouse, question: str, table: str | None = None) -> tuple[str, Evidence, str]:
    """The first candidate's SQL, its result and its headline, which the verifier must accept."""
    candidates = build_sql(question, probed(wh, question, table))
    assert candidates, question
    ev = run(wh, candidates[0].sql)
    text = headline(ev, question=question, language="en")
    assert text is not None, candidates[0].sql
    out = verify_sections([Section(id="s", title="t", markdown=f"{text} [ev:{ev.id}]")], {ev.id: ev})
    assert not out.verification.flagged_claims, text
    return candidates[0].sql, ev, text
