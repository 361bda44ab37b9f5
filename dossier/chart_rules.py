"""When a chart answers the question, and which measures it may draw together.

A line chart answers a question about change over time; a bar chart compares one measure (or two
in one unit) across a handful of categories. Anything else reads better as the table it came from.
"""

from __future__ import annotations

import re
from typing import Any

CHANGE_RE = re.compile(
    r"(?i:\b(?:chang\w*|trend\w*|evolv\w*|evolution|over\s+time|over\s+the\s+(?:years?|months?|period)|grow\w*|"
    r"growth|rise|rose|risen|rising|fall|fell|fallen|falling|declin\w*|increas\w*|decreas\w*|develop\w*|history|"
    r"historical|since|monthly|yearly|annual(?:ly)?|quarterly|weekly|daily|per\s+(?:month|year|quarter|week|day)|"
    r"by\s+(?:month|year|quarter|week|day)|month\s+over\s+month|year\s+over\s+year|trajectory|move[ds]?|moving)\b"
    r"|\bfrom\s+(?:19|20)\d{2}\b.*\bto\s+(?:19|20)\d{2}\b|\bbetween\s+(?:19|20)\d{2}\s+and\s+(?:19|20)\d{2}\b)"
    r"|变化|趋势|走势|演变|增长|下降|上升|下跌|上涨|历年|逐月|逐年|按月|按年|每月|每年|季度|以来|发展|波动")
# Unit words a column name may carry; columns with the same unit share an axis.
UNITS = {
    "money:cny": "cny rmb yuan", "money:usd": "usd dollar dollars", "money:eur": "eur euro euros",
    "percent": "pct percent percentage share ratio rate", "bytes": "kb mb gb tb bytes byte kib mib gib",
    "count": "n count cnt num number qty quantity", "time": "days day hours hour months minutes seconds ms secs",
    "people": "people headcount staff persons fte",
}
_UNIT_OF = {word: unit for unit, words in UNITS.items() for word in words.split()}
TINY_MAX = 5  # integer values no larger than this are read at a glance: no chart
MAX_MEASURES = 2


def asks_change(question: str) -> bool:
    """Whether the question asks how something changed over time."""
    return bool(CHANGE_RE.search(question or ""))


def unit_of(column: str) -> str:
    """The unit a column's name states ('budget_cny' -> 'money:cny', 'size_kb' -> 'bytes'); '' if none."""
    words = [w for w in re.split(r"[_\W]+", column.lower()) if w]
    units = [_UNIT_OF[w] for w in words if w in _UNIT_OF]
    return units[-1] if units else ("money:usd" if "$" in column else "percent" if "%" in column else "")


def mentioned(column: str, question: str) -> bool:
    """Whether the question names the column: one of its words (4+ letters, or a ticker) opens a question word."""
    asked = re.findall(r"[\w^]+", question.lower())
    words = [w for w in re.split(r"[_\s]+", column.lower()) if w and (len(w) >= 4 or not w.isalpha() or w.isupper())]
    return any(q.startswith(w[:max(4, len(w) - 2)]) or w == q for w in words for q in asked if w not in _UNIT_OF)


def ordered_by(sql: str) -> list[str]:
    """Column names (or aliases) the query orders by: the measure it ranks on is the one asked about."""
    m = re.search(r"(?is)\border\s+by\s+(.+?)(?:\blimit\b|\boffset\b|$)", sql or "")
    if not m:
        return []
    return [re.sub(r'(?i)\s+(?:asc|desc)\b.*$|^"|"$', "", part.strip()).strip('"') for part in m.group(1).split(",")]


def pick_measures(numbers: list[str], values: dict[str, list[Any]], *, question: str | None, sql: str) -> list[str]:
    """One measure, or two in one unit. Mixed units keep the one the question names or the query
    ranks by; when none stands out, nothing is drawn."""
    if len(numbers) <= 1:
        return numbers
    units = {unit_of(n) for n in numbers}
    if len(numbers) <= MAX_MEASURES and len(units) == 1 and units != {"count"}:
        return numbers
    asked = [n for n in numbers if question and mentioned(n, question)]
    asked = asked or [n for n in ordered_by(sql) if n in numbers]
    if asked:
        unit = unit_of(asked[0])
        same = [n for n in asked if unit_of(n) == unit]
        return same[:MAX_MEASURES] if unit or len(same) == 1 else same[:1]
    return []


def tiny(series: dict[str, list[float | None]]) -> bool:
    """Small whole numbers (1 vs 2 projects) or one value repeated: a chart adds nothing."""
    present = [v for ys in series.values() for v in ys if v is not None]
    if not present or len(set(present)) == 1:
        return True
    return all(float(v).is_integer() for v in present) and max(abs(v) for v in present) <= TINY_MAX


def short_label(label: str, limit: int = 18) -> str:
    """A category name that fits under its bar."""
    return label if len(label) <= limit else label[:limit - 1].rstrip() + "…"
