"""Time series candidates: one row per period over the asked range, and the change from first to last period.

A requested range is never cut by the row limit: the period grows from month to quarter to year until the
whole range fits in the rows the evidence keeps, and the candidate's rationale says so.
"""

from __future__ import annotations

from datetime import date

from agents.offline.sql_intent import Intent
from agents.offline.sql_parts import _agg, _date_expr, _period_fn, _select, _TablePlan, ident
from tools.vocabulary import SQL_ROWS_SHOWN

_GRAINS = ("month", "quarter", "year")
_GRAIN_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def _span_months(plan: _TablePlan) -> int | None:
    """Months the series covers: the asked range clipped to the column's catalog range."""
    col = plan.date_col
    lo, hi = _parse_day(col.min) if col else None, _parse_day(col.max) if col else None
    start = plan.when.start if plan.when and plan.when.start else lo
    end = plan.when.end if plan.when and plan.when.end else (date(hi.year + (hi.month // 12), hi.month % 12 + 1, 1)
                                                             if hi else None)
    if lo and start and start < lo:
        start = lo
    if hi and end and end > date(hi.year + 1, 1, 1):
        end = date(hi.year + (hi.month // 12), hi.month % 12 + 1, 1)
    if start is None or end is None:
        return None
    return max(1, (end.year - start.year) * 12 + end.month - start.month)


def _grain(plan: _TablePlan, it: Intent, cap: int) -> str:
    """The finest period (month, quarter, year) whose periods all fit in ``cap`` rows."""
    months = _span_months(plan)
    groups = _group_count(plan)
    asked = _GRAINS.index(it.grain) if it.grain in _GRAINS else 0
    for grain in _GRAINS[asked:]:
        if months is not None:
            if -(-months // _GRAIN_MONTHS[grain]) * groups <= cap:
                return grain
        elif plan.date_col is None or (plan.date_col.distinct_count or 0) * groups <= cap * _GRAIN_MONTHS[grain]:
            return grain
    return "year"


def _group_count(plan: _TablePlan) -> int:
    if plan.group is None:
        return 1
    named = [v for n, v in plan.link.values if n == plan.group.name]
    return len(named) or max(1, plan.group.distinct_count or 1)


def _period(plan: _TablePlan, grain: str) -> tuple[str, str]:
    """(expression, select item) for the period column."""
    col = plan.date_col
    assert col is not None
    if grain == "month" and col.name.lower() == "month" and col.type.upper().startswith("DATE"):
        return ident(col.name), ident(col.name)  # already one row per month
    expr = f"date_trunc('{grain}', {_date_expr(col)})"
    return expr, f'{expr} AS "{grain}"'


def series(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    if plan.date_col is None:
        return None
    cap = min(limit, SQL_ROWS_SHOWN)  # the evidence keeps this many rows: the last period must be among them
    grain = _grain(plan, it, cap)
    period, head = _period(plan, grain)
    measures = plan.measures[:3]
    aggs = [_agg(_period_fn(m, plan), m) for m in measures] or ['count(*) AS "n"']
    keys = [period] + ([ident(plan.group.name)] if plan.group else [])
    heads = [head, *keys[1:]]
    how = ", ".join(f"{_period_fn(m, plan)} of {m.name}" for m in measures) or "count"
    why = f"{'monthly' if grain == 'month' else grain + 'ly'} series by {plan.date_col.name} ({how})"
    if grain != "month" and it.grain != grain:
        why += f"; aggregated to {grain}s so the whole range fits in {cap} rows"
    return _select(plan, heads + aggs, group=keys, order=", ".join(keys), limit=limit), why


def growth(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    """First and last period of the range and the percentage change between them, per measure."""
    if plan.date_col is None or not plan.measures or plan.group is not None:
        return None
    grain = _grain(plan, it, min(limit, SQL_ROWS_SHOWN))
    period, _ = _period(plan, grain)
    measures = plan.measures[:3]
    inner = _select(plan, [f"{period} AS \"p\""] + [_agg(_period_fn(m, plan), m) for m in measures],
                    group=[period], limit=100000).rsplit(" LIMIT ", 1)[0]
    cols = ['min("p") AS "first_period"', 'max("p") AS "last_period"']
    for m in measures:
        a = ident(f"{_period_fn(m, plan)}_{m.name}")
        first = f'arg_min({a}, "p") FILTER (WHERE {a} IS NOT NULL)'
        last = f'arg_max({a}, "p") FILTER (WHERE {a} IS NOT NULL)'
        cols += [f"{first} AS {ident(m.name + '_first')}", f"{last} AS {ident(m.name + '_last')}",
                 f"round(100.0 * ({last} - {first}) / NULLIF({first}, 0), 1) AS {ident(m.name + '_change_pct')}"]
    sql = f"SELECT {', '.join(cols)} FROM ({inner}) AS s LIMIT 1"
    return sql, f"change from the first to the last {grain} ({', '.join(m.name for m in measures)})"
