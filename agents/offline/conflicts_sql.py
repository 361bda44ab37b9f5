"""A document's figure against a warehouse cell: a conflict only when the match is unambiguous."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from tools.text.numbers import Number, find_numbers, supported
from tools.text.terms import terms
from tools.vocabulary import Evidence

_UNIT_TERMS = {"cny", "rmb", "usd", "eur", "yuan", "amount", "value", "num", "number", "total"}  # name no measure
_SQL_LITERAL_RE = re.compile(r"'((?:[^']|'')*)'")


class Claim(Protocol):
    numbers: tuple[Number, ...]
    context: frozenset[str]
    years: frozenset[str]
    sentence_terms: frozenset[str]


@dataclass(frozen=True)
class _SqlRow:
    ev: Evidence
    labels: tuple[frozenset[str], ...]  # short text cells and the query's literals: the entity
    years: frozenset[str]
    measures: tuple[tuple[str, float, frozenset[str]], ...]  # column, value, the column's terms


def sql_conflicts(claims: list[Any], evs: list[Evidence]) -> list[tuple[Any, tuple, Evidence, str, float]]:
    """(claim, row key, SQL evidence, column, value) for each document figure a row contradicts."""
    out = []
    for rows in (_sql_rows(e) for e in evs if e.kind == "sql" and e.rows):
        for claim in claims:
            hit = _sql_conflict(claim, rows)
            if hit:
                out.append((claim, *hit))
    return out


def _sql_rows(ev: Evidence) -> list[_SqlRow]:
    literals = [m.group(1) for m in _SQL_LITERAL_RE.finditer(ev.sql or "")]
    sql_years = {str(int(n.value)) for n in find_numbers(ev.sql or "") if n.kind in ("year", "date")}
    out = []
    for row in ev.rows:
        labels = [frozenset(terms(v, numbers=False)) for v in [*row, *literals] if isinstance(v, str)]
        years = sql_years | {str(v) for v in row if isinstance(v, int) and 1900 <= v <= 2100}
        measures = [(c, float(v), frozenset(terms(c, numbers=False)) - _UNIT_TERMS)
                    for c, v in zip(ev.columns, row) if _is_measure(c, v)]
        out.append(_SqlRow(ev, tuple(ls for ls in labels if 0 < len(ls) <= 3), frozenset(years),
                           tuple(m for m in measures if m[2])))
    return out


def _sql_conflict(claim: Claim, rows: list[_SqlRow]) -> tuple[tuple, Evidence, str, float] | None:
    """Exactly one row fits (its label or the query's filter names the entity, years agree), the
    column names the measure, and the figures differ."""
    if len(claim.numbers) != 1 or claim.numbers[0].percent:
        return None
    fits = [r for r in rows if claim.years <= r.years
            and (any(ls <= claim.sentence_terms for ls in r.labels) or (len(rows) == 1 and not r.labels))]
    if len(fits) != 1:
        return None
    for column, value, needed in fits[0].measures:
        if needed <= claim.context and not supported(claim.numbers[0], [value]):
            return (fits[0].ev.id, rows.index(fits[0]), column), fits[0].ev, column, value
    return None


def _is_measure(column: str, value: Any) -> bool:
    name = column.lower()
    keys = name == "id" or name.endswith("_id") or any(w in name for w in ("year", "date", "month"))
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not keys
