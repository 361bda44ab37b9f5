"""SQL over "period columns" tables: one row per item, one numeric column per year (``c_2019``,
``c_2018``, ``domestic_2019`` ...), as financial statements are laid out.

A question names the row (a linked label value: "Appliances") and the years: the change between two
years, its percentage, the average over the years named (or all of them), or the year in which the item
was largest or smallest. Aliases (contract with ``agents.offline.sql_answer``): ``change`` and
``change_pct`` (later year minus earlier, over the earlier), ``average``, and ``year``/``value`` for
"which year".
"""

from __future__ import annotations

import re

from agents.offline.schema_link import is_numeric
from agents.offline.sql_intent import Intent
from agents.offline.sql_parts import _TablePlan, ident, literal
from tools.models import ColumnInfo

_YEAR_RE = re.compile(r"(?<![0-9])((?:19|20)\d\d)(?![0-9])")
_WHICH_YEAR_RE = re.compile(r"\b(?:which|what)\s+(?:year|fy|fiscal\s+year|period)s?\b|\bwhich\s+fys?\b", re.I)
_LARGEST_RE = re.compile(r"\b(?:largest|highest|most|greatest|biggest|higher|larger|greater|more|max\w*)\b", re.I)
_SMALLEST_RE = re.compile(r"\b(?:smallest|lowest|least|fewest|lower|smaller|less|min\w*)\b", re.I)
_AVERAGE_RE = re.compile(r"\baverage\b|\bmean\b|平均", re.I)
_CHANGE_RE = re.compile(r"\bchange|\bincrease|\bdecrease|\bdifference|\bgrowth|\bgr[eo]w|\bdeclin|\bvariance", re.I)


def period_columns(plan: _TablePlan) -> dict[str, ColumnInfo]:
    """Year -> the numeric column for it; where several share a year, the one the question links best."""
    scores = dict(plan.link.columns)
    out: dict[str, ColumnInfo] = {}
    for col in plan.table.columns:
        years = _YEAR_RE.findall(col.name)
        if len(years) != 1 or not is_numeric(col):
            continue
        held = out.get(years[0])
        if held is None or scores.get(col.name, 0.0) > scores.get(held.name, 0.0):
            out[years[0]] = col
    return out


def period_candidates(plan: _TablePlan, it: Intent, text: str, limit: int) -> list[tuple[str, str]]:
    """Candidates for a question about one item across year columns; [] when the table is not laid out so."""
    by_year = period_columns(plan)
    if len(by_year) < 2 or not plan.where or plan.group is not None:
        return []
    named = [y for y in dict.fromkeys(_YEAR_RE.findall(text)) if y in by_year]
    # the row is named by a value of its label column: that column labels the result
    named_by = next((c for c, _ in plan.link.values), None)
    label = [ident(named_by)] if named_by else [ident(plan.label.name)] if plan.label else []
    where = " AND ".join(plan.filters())
    table = ident(plan.table.name)
    out: list[tuple[str, str]] = []
    if _WHICH_YEAR_RE.search(text):
        years = sorted(named if len(named) >= 2 else by_year, reverse=True)
        direction = "ASC" if _SMALLEST_RE.search(text) and not _LARGEST_RE.search(text) else "DESC"
        parts = [f"SELECT {literal(y)} AS \"year\", {ident(by_year[y].name)} AS \"value\" FROM {table} WHERE {where}"
                 for y in years]
        sql = " UNION ALL ".join(parts) + f' ORDER BY "value" {direction} NULLS LAST LIMIT 1'
        out.append((sql, f"year with the {'largest' if direction == 'DESC' else 'smallest'} value"))
    if _AVERAGE_RE.search(text):
        years = _span(named, by_year) or sorted(by_year)
        if len(named) == 1 and str(int(named[0]) - 1) in by_year:  # "the 2019 average": that year and the one before
            years = [named[0], str(int(named[0]) - 1)]
        cols = [ident(by_year[y].name) for y in sorted(years, reverse=True)]
        avg = f"round(({' + '.join(cols)}) / {len(cols)}.0, 2) AS \"average\""
        out.append((f"SELECT {', '.join(label + cols + [avg])} FROM {table} WHERE {where} LIMIT {limit}",
                    f"average over {', '.join(sorted(years))}"))
    if ((_CHANGE_RE.search(text) or it.growth or it.difference) and len(named) >= 2) or \
            (it.percent and len(named) >= 2):
        early, late = ident(by_year[min(named)].name), ident(by_year[max(named)].name)
        change = f"{late} - {early} AS \"change\""
        pct = f"round(100.0 * ({late} - {early}) / NULLIF({early}, 0), 2) AS \"change_pct\""
        out.append((f"SELECT {', '.join([*label, late, early, change, pct])} FROM {table} WHERE {where} LIMIT {limit}",
                    f"change from {min(named)} to {max(named)}"))
    if named and not out:  # "X in 2019 and 2018": the item's figures for the years named
        cols = [ident(by_year[y].name) for y in named]
        out.append((f"SELECT {', '.join(label + cols)} FROM {table} WHERE {where} LIMIT {limit}",
                    f"values in {', '.join(named)}"))
    return out


def _span(named: list[str], by_year: dict[str, ColumnInfo]) -> list[str]:
    """The years a question names; "from 2015 to 2019" takes every year column between them."""
    if len(named) < 2:
        return named
    lo, hi = min(named), max(named)
    return [y for y in by_year if lo <= y <= hi]
