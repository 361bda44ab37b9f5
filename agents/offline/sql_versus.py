""""How many more ships were wrecked in Lake Huron than in Lake Erie?": two values of one column, counted
(or a measure summed) side by side, and the difference.

The first value is one the question links (catalog sample or probed cell); the second is the cell of the
same column that the words after "than" name ("Erie" names 'Lake Erie'), so both literals come from the
table, never from the question text. Aliases are the contract with ``agents.offline.sql_answer``: the two
values as column names, then ``difference`` (counts) or ``difference_<measure>`` (sums).
"""

from __future__ import annotations

import re

from agents.offline.schema_link import _STRONG
from agents.offline.sql_parts import _TablePlan, ident, literal, without_value_filter

_MORE_RE = re.compile(r"\bhow\s+many\s+(?:more|fewer|less)\b(?P<what>.*?)\bthan\s+"
                      r"(?:in\s+|at\s+|for\s+|on\s+|by\s+|the\s+)*(?P<other>[^?.,;]+)", re.I)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _other_value(plan: _TablePlan, column: str, first: str, named: list[str]) -> str | None:
    """The column's one other value whose words include every word the question names after "than"."""
    col = next((c for c in plan.table.columns if c.name == column), None)
    if col is None or not named:
        return None
    pool = dict.fromkeys([*col.samples, *(v for c, v in plan.link.values if c == column)])
    hits = [v for v in pool if isinstance(v, str) and v != first and set(named) <= set(_words(v))]
    return hits[0] if len(hits) == 1 else None


def versus_candidates(plan: _TablePlan, text: str) -> list[tuple[str, str]]:
    m = _MORE_RE.search(text)
    if m is None or not plan.link.values:
        return []
    other_words = [w for w in _words(m.group("other")) if w not in ("the", "in", "at", "of")][:4]
    for column, first in plan.link.values:
        if set(_words(first)) & set(other_words) == set(other_words):
            continue  # the value named after "than" is this one; the first must come before it
        second = _other_value(plan, column, first, other_words)
        if second is None:
            continue
        c = ident(column)
        where = without_value_filter(plan, column)
        measure = next((x for x in plan.measures if dict(plan.link.columns).get(x.name, 0.0) >= _STRONG
                        and set(_words(x.name)) & set(_words(m.group("what")))), None)
        agg, alias = ((f"sum({ident(measure.name)})", f"difference_{measure.name}") if measure
                      else ("count(*)", "difference"))
        a, b = (f"{agg} FILTER (WHERE {c} = {literal(v)})" for v in (first, second))
        sql = (f"SELECT {a} AS {ident(first)}, {b} AS {ident(second)}, {a} - {b} AS {ident(alias)} "
               f"FROM {ident(plan.table.name)}" + (f" WHERE {' AND '.join(where)}" if where else "") + " LIMIT 1")
        return [(sql, f"{alias} between {first} and {second}")]
    return []
