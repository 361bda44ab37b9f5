"""Building blocks of candidate SQL: the per-table plan, quoting, filters, SELECT assembly, aggregates.

Identifiers are double-quoted catalog names; literals are catalog sample values or parsed dates, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.offline.schema_link import TableLink, name_tokens
from agents.offline.sql_intent import measure_kind
from agents.offline.text import TimeRange
from tools.models import ColumnInfo, TableInfo


@dataclass
class _TablePlan:
    """What one linked table contributes: measures (the asked one first), label, grouping, filters."""
    table: TableInfo
    link: TableLink
    measures: list[ColumnInfo]
    group: ColumnInfo | None
    label: ColumnInfo | None
    where: list[str]
    date_col: ColumnInfo | None
    when: TimeRange | None
    notes: list[str]
    keyed: bool  # filtered on a column with one row per value: aggregating would hide nothing
    text: str = ""  # the question, for wording the plan's parts do not carry ("altogether")
    exclude: list[str] = field(default_factory=list)  # rows never counted (a "Total" row): not asked-for filters

    def filters(self) -> list[str]:
        """Every condition of the WHERE clause: the question's filters, then the rows always left out."""
        return self.where + self.exclude

def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _date_expr(col: ColumnInfo) -> str:
    # Dates kept as text (CSV imports) are compared as dates, never as strings.
    typed = col.type.upper().startswith(("DATE", "TIMESTAMP"))
    return ident(col.name) if typed else f"TRY_CAST({ident(col.name)} AS DATE)"


def _time_filter(col: ColumnInfo, when: TimeRange) -> list[str]:
    expr = _date_expr(col)
    out = [f"{expr} >= DATE '{when.start.isoformat()}'"] if when.start else []
    return out + ([f"{expr} < DATE '{when.end.isoformat()}'"] if when.end else [])


def _is_unique(col: ColumnInfo, table: TableInfo) -> bool:
    return col.distinct_count is not None and table.row_count > 0 and col.distinct_count >= table.row_count

def without_value_filter(plan: _TablePlan, column: str) -> list[str]:
    """The plan's filters less the one on ``column``'s named value ("Rider" = 'Sebastian Porto'): a query
    about that row's neighbour, or about it beside another value, must not be restricted to it."""
    own = re.compile(rf"^\(?{re.escape(ident(column))} (?:=|IN\b)")
    return [w for w in plan.filters() if not own.match(w)]


def _select(plan: _TablePlan, exprs: list[str], *, group: Sequence[str] = (), order: str = "", limit: int,
            extra_where: Sequence[str] = ()) -> str:
    where = plan.filters() + list(extra_where)
    sql = f"SELECT {', '.join(exprs)} FROM {ident(plan.table.name)}"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    sql += f" GROUP BY {', '.join(group)}" if group else ""
    return sql + (f" ORDER BY {order}" if order else "") + f" LIMIT {int(limit)}"


def _agg(fn: str, col: ColumnInfo) -> str:
    return f"{fn}({ident(col.name)}) AS {ident(f'{fn}_{col.name}')}"


def _kind(col: ColumnInfo, table: TableInfo) -> str | None:
    desc = re.findall(r"[A-Za-z]+", f"{col.description} {table.description}")
    return measure_kind(name_tokens(col.name), desc)


def _period_fn(col: ColumnInfo, plan: _TablePlan) -> str:
    """avg for levels (prices, rates, scores), sum for flows (spend, sales, counts)."""
    kind = _kind(col, plan.table)
    if kind is None:  # unknown: one row per date is a series of observations; many rows per date are events
        date_col = plan.date_col
        kind = "level" if date_col is not None and _is_unique(date_col, plan.table) else "flow"
    return "avg" if kind == "level" else "sum"
