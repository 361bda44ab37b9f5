"""Catalog statistics of one staged table: row count, per-column null and distinct counts, ranges
and the most frequent values.

Columns are described in groups of ``STATS_GROUP``: one statement asking for a distinct count of
every column at once held every column's hash table in memory together (a 10,000-column CSV went
past 6 GB). Groups keep each statement's state to a few dozen columns; the import connection's
``memory_limit`` and deadline bound the rest.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from tools.duckdb_core import one_row
from tools.models import ColumnInfo, TableInfo
from tools.table_limits import Deadline

# Columns whose min/max the catalog reports (numbers, dates, times, timestamps, intervals).
_RANGE_TYPE = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL.*|DATE|TIME.*|INTERVAL)$"
)
_EXACT_DISTINCT_ROWS = 1_000_000
_SAMPLES = 5
_SAMPLE_CHARS = 100
STATS_GROUP = 32


def table_info(
    con: duckdb.DuckDBPyConnection, table: str, base: TableInfo, meta: dict[str, Any], deadline: Deadline
) -> TableInfo:
    schema = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {quote(table)}").fetchall()]
    row_count = one_row(con.execute(f"SELECT count(*) FROM {quote(table)}"))[0]
    # Notes the import wrote (units, the header a column was named from: tools.table_tidy); a sidecar wins.
    comments = dict(con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = ? "
                                "AND comment IS NOT NULL", [table]).fetchall())
    # Exact distinct counts get expensive on big tables; the planner only needs the magnitude.
    counter = "count(DISTINCT {})" if row_count <= _EXACT_DISTINCT_ROWS else "approx_count_distinct({})"
    columns = []
    for start in range(0, len(schema), STATS_GROUP):
        deadline.check()
        group = schema[start : start + STATS_GROUP]
        exprs = [e for column, col_type in group for e in _column_exprs(quote(column), col_type, counter)]
        stats = one_row(con.execute(f"SELECT {', '.join(exprs)} FROM {quote(table)}"))
        pos = 0
        for column, col_type in group:
            ranged = bool(_RANGE_TYPE.match(col_type))
            width = 4 if ranged else 2
            non_null, distinct, *bounds = stats[pos : pos + width]
            pos += width
            columns.append(ColumnInfo(
                name=column, type=col_type,
                description=meta["columns"].get(column.lower(), "") or comments.get(column, ""),
                null_count=row_count - non_null, distinct_count=distinct,
                samples=_samples(con, table, column) if col_type == "VARCHAR" else [],
                min=bounds[0] if ranged else None, max=bounds[1] if ranged else None,
            ))
    return base.model_copy(update={"row_count": row_count, "columns": columns,
                                   "description": meta["description"]})


def _column_exprs(column: str, col_type: str, counter: str) -> list[str]:
    exprs = [f"count({column})", counter.format(column)]
    if _RANGE_TYPE.match(col_type):
        exprs += [f"min({column})::VARCHAR", f"max({column})::VARCHAR"]
    return exprs


def _samples(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    """The most frequent values first; ties broken by value so the catalog is deterministic."""
    quoted = quote(column)
    rows = con.execute(
        f"SELECT {quoted} FROM {quote(table)} WHERE {quoted} IS NOT NULL "
        f"GROUP BY {quoted} ORDER BY count(*) DESC, {quoted} LIMIT {_SAMPLES}"
    ).fetchall()
    return [value[:_SAMPLE_CHARS] for (value,) in rows]


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
