"""Candidate SQL that answers the question asked, from schema links and the question's intent.

SQL is assembled only from catalog identifiers (double-quoted) and literals taken from catalog sample
values or from parsed dates (single-quoted, escaped); no question text is ever pasted into a statement.
Aliases are part of the contract with ``agents.offline.sql_answer``: ``overrun``/``overrun_pct``,
``share_pct``, ``first_period``/``last_period`` with ``<col>_first``/``<col>_last``/``<col>_change_pct``,
a period column named ``month``/``quarter``/``year``, ``n`` for counts, ``<fn>_<col>`` for aggregates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.offline.schema_link import (
    _STRONG,
    TOTAL_LABELS,
    QuestionTerms,
    TableLink,
    asked_place,
    is_date,
    is_id,
    is_list_column,
    is_numeric,
    is_text,
    link_schema,
    name_tokens,
    place_column,
    question_terms,
    relevant_links,
)
from agents.offline.sql_intent import ACTUAL_TOKENS, BUDGET_TOKENS, SUM_RE, Intent, intent
from agents.offline.sql_parts import _agg, _is_unique, _kind, _select, _TablePlan, _time_filter, ident, literal
from agents.offline.sql_periods import period_candidates
from agents.offline.sql_position import position_candidates
from agents.offline.sql_series import growth, series
from agents.offline.sql_versus import versus_candidates
from agents.offline.text import TimeRange, stem, time_range
from tools.models import ColumnInfo, TableInfo

_LABEL_WORDS = frozenset("name title label".split())


@dataclass
class SqlCandidate:
    sql: str
    rationale: str
    tables: list[str]

def _measures(table: TableInfo, link: TableLink) -> list[ColumnInfo]:
    """Numeric columns the question asks about, best linked first; a superlative's hint counts here."""
    cols = {c.name: c for c in table.columns}
    ranked = [(s, cols[n]) for n, s in link.columns
              if is_numeric(cols[n]) and not is_id(cols[n]) and not is_date(cols[n])]
    strong = [c for s, c in ranked if s >= _STRONG]
    return (strong or [c for s, c in ranked if s >= 0.5])[:6]


def _label(table: TableInfo, link: TableLink, exclude: set[str]) -> ColumnInfo | None:
    """The column that names a row: a *name*/*title* column, else a unique short text, else an id."""
    place = place_column(table)  # "Pos" '1' ranks a row; it does not name it
    texts = [c for c in table.columns if is_text(c) and c.name not in exclude and c is not place]
    short = [c for c in texts if all(len(s) <= 60 for s in c.samples)]
    scores = dict(link.columns)
    table_words = set(name_tokens(table.name))

    def rank(c: ColumnInfo) -> tuple[int, float, int]:
        tokens = set(name_tokens(c.name))
        kind = (0 if tokens & _LABEL_WORDS and not is_id(c) else 1 if tokens & table_words and not is_id(c)
                else 2 if _is_unique(c, table) and not is_id(c) else 3 if is_id(c) else 4)
        return kind, -scores.get(c.name, 0.0), table.columns.index(c)
    best = min(short, key=rank, default=None)
    return best if best is not None and rank(best)[0] < 4 else None


def _plan_table(table: TableInfo, link: TableLink, q: QuestionTerms, it: Intent, when: TimeRange | None) -> _TablePlan:
    cols = {c.name: c for c in table.columns}
    scores = dict(link.columns)
    by_col: dict[str, list[str]] = {}
    for name, value in link.values:
        by_col.setdefault(name, []).append(value)
    group = next((cols[n] for n, vs in by_col.items() if len(vs) > 1), None)
    if group is not None and SUM_RE.search(q.text):
        group = None  # "how many medals did Australia and Switzerland total?": one sum over the named rows
    whole = over_all(q.text)
    if group is None:  # a dimension named by its head noun: "which department", "per approach", "by licence"
        group = next((c for c in table.columns if is_text(c) and not is_id(c) and c.name not in by_col
                      and not _is_unique(c, table) and (name_tokens(c.name) or [""])[-1] not in whole
                      and (q.weights.get((name_tokens(c.name) or [""])[-1], 0) >= 0.8
                           or (name_tokens(c.name) or [""])[-1] in it.per)), None)
    where = [_value_filter(cols[n], vs, q.text) for n, vs in by_col.items()]
    dates = [c for c in table.columns if is_date(c)]
    date_col = next((c for c in dates if scores.get(c.name, 0) > 0), dates[0] if dates else None)
    notes = [f"{n} in {vs}" for n, vs in by_col.items()]
    where += _flag_filters(table, q)
    numeric = _numeric_filters(table, q.text)
    where += numeric
    notes += numeric
    if group is not None and any(w.lstrip("(").startswith(ident(group.name) + " ") for w in numeric):
        group = None  # "no shirt sponsor": the filtered column has one value left, nothing to group by
    year_filter = _year_filter(table, q.text) if not dates else None
    if year_filter:
        where.append(year_filter)
        notes.append(year_filter)
    if when and date_col:
        where += _time_filter(date_col, when)
        notes.append(f"{date_col.name} {when.label}")
    keyed = any(_is_unique(cols[n], table) for n in by_col)
    label = _label(table, link, {group.name} if group else set())
    return _TablePlan(table, link, _measures(table, link), group, label, where, date_col,
                      when if date_col else None, notes, keyed, q.text, _total_row_filters(table))


_EXCLUDE_RE = re.compile(r"\b(?:besides|other\s+than|apart\s+from|aside\s+from|except(?:\s+for)?|excluding|"
                         r"not\s+counting|but\s+not)\s+(?:the\s+)?$", re.I)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _excluded(value: str, text: str) -> bool:
    """"besides Angola Racing Team, what other team ...": the value is named to be left out."""
    q, v = f" {_words(text)} ", f" {_words(value)} "
    return v.strip() != "" and v in q and _EXCLUDE_RE.search(q[: q.index(v)] + " ") is not None


def _value_filter(col: ColumnInfo, values: list[str], text: str) -> str:
    column = col.name
    kept = [v for v in values if not _excluded(v, text)]
    if kept and is_list_column(col):  # the whole cell, or one item of a listing cell ("United, Continental")
        items = f"list_transform(string_split(CAST({ident(column)} AS VARCHAR), ','), lambda x: trim(x))"
        out = [f"({ident(column)} = {literal(v)} OR list_contains({items}, {literal(v)}))" for v in kept]
        out = [out[0]] if len(out) == 1 else ["(" + " OR ".join(out) + ")"]
    else:
        out = [f"{ident(column)} = {literal(kept[0])}" if len(kept) == 1 else
               f"{ident(column)} IN ({', '.join(literal(v) for v in kept)})"] if kept else []
    out += [f"{ident(column)} <> {literal(v)}" for v in values if v not in kept]
    return " AND ".join(out)


_OVER_ALL_RE = re.compile(r"\b(?:across|over|in|for|of|from)\s+all\s+(?:the\s+|their\s+|its\s+)?([a-z]+)", re.I)


def over_all(text: str) -> set[str]:
    """Nouns the question totals over ("across all events"): never a grouping, whatever else names them."""
    return {stem(m.group(1).lower()) for m in _OVER_ALL_RE.finditer(text)}


# "at least 30 points", "more than 2 goals", "completed 80 laps", "no laps led": a comparison on the column
# whose name follows the number
_COMPARE_RE = re.compile(r"\b(?:(at\s+least|no\s+less\s+than|more\s+than|over|greater\s+than|above|fewer\s+than|"
                         r"less\s+than|under|below|at\s+most|no\s+more\s+than|exactly)\s+)?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s+"
                         r"([a-z]+(?:\s+[a-z]+){0,2})|\b(no|zero|without(?:\s+any)?|(?:not|n't)\s+[a-z]+\s+any)\s+"
                         r"([a-z]+(?:\s+[a-z]+){0,2})", re.I)
_COMPARATORS = {"at least": ">=", "no less than": ">=", "more than": ">", "over": ">", "greater than": ">",
                "above": ">", "fewer than": "<", "less than": "<", "under": "<", "below": "<", "at most": "<=",
                "no more than": "<=", "exactly": "="}


def _place_filters(table: TableInfo, text: str) -> list[str]:
    """"1st place", "finished third", "came in first" on a place column ("Placing" 1, "Pos" '1'): the place
    as the number the column holds (as text where a "Ret" among the places keeps the column text)."""
    place, col = asked_place(text), place_column(table)
    if place is None or col is None:
        return []
    return [f"{ident(col.name)} = {place if is_numeric(col) else literal(str(place))}"]


# "older than 20": the compared quantity is in the adjective, not after the number.
_COMPARATIVE_RE = re.compile(r"\b(older|younger|taller|shorter|heavier|lighter|longer)\s+than\s+(\d+(?:\.\d+)?)\b",
                             re.I)
_COMPARATIVES = {"older": ("age", ">"), "younger": ("age", "<"), "taller": ("height", ">"),
                 "shorter": ("height", "<"), "heavier": ("weight", ">"), "lighter": ("weight", "<"),
                 "longer": ("length", ">")}


def _comparative_filters(table: TableInfo, text: str) -> list[str]:
    """"older than 20" on a numeric Age column, "taller than 180" on Height: Age > 20."""
    out = []
    for m in _COMPARATIVE_RE.finditer(text):
        noun, op = _COMPARATIVES[m.group(1).lower()]
        col = next((c for c in table.columns if is_numeric(c) and not is_id(c) and noun in name_tokens(c.name)), None)
        if col is not None:
            out.append(f"{ident(col.name)} {op} {m.group(2)}")
    return out


def _numeric_filters(table: TableInfo, text: str) -> list[str]:
    """Comparisons the question writes on a numeric column named right after the number."""
    out = _place_filters(table, text) + _comparative_filters(table, text)
    for m in _COMPARE_RE.finditer(text):
        word, number, after = (m.group(1), m.group(2), m.group(3)) if m.group(2) else (None, "0", m.group(5))
        number = number.replace(",", "")  # "100,000 deaths"
        follow = [stem(w) for w in after.lower().split()]
        if _YEAR_RE.fullmatch(number) and not word:
            continue  # "2004 season" is a year, handled by _year_filter
        op = "=" if m.group(4) else _COMPARATORS.get(re.sub(r"\s+", " ", (word or "exactly").lower()), "=")
        for col in sorted(table.columns, key=lambda c: -len(name_tokens(c.name))):  # "laps led" before "laps"
            tokens = name_tokens(col.name)
            if m.group(4) and is_text(col) and tokens and follow[:len(tokens)] == tokens:  # "no shirt sponsor"
                out.append(f"({ident(col.name)} IS NULL OR trim(CAST({ident(col.name)} AS VARCHAR)) = '')")
                break
            if is_numeric(col) and not is_id(col) and tokens and follow[:len(tokens)] == tokens:
                out.append(f"{ident(col.name)} {op} {number}")
                break
        else:  # "more than 100,000 deaths" on "Deaths per year": the one numeric column that word heads
            heads = [c for c in table.columns if is_numeric(c) and not is_id(c) and follow
                     and (name_tokens(c.name) or [""])[0] == follow[0]]
            if len(heads) == 1 and not m.group(4):
                out.append(f"{ident(heads[0].name)} {op} {number}")
    return out


_YEAR_RE = re.compile(r"(?<![0-9])(1[89]\d\d|20\d\d)(?![0-9])")


_EITHER_YEAR_RE = re.compile(r"(?<![0-9])((?:1[89]|20)\d\d)\s*(?:,\s*|\s+or\s+|\s+vs\.?\s+|\s+versus\s+)"
                             r"(?:in\s+)?((?:1[89]|20)\d\d)(?![0-9])", re.I)


def _year_filter(table: TableInfo, text: str) -> str | None:
    """"in 2004" on a table with a numeric year column (no dates): that year's rows; "in 1926 or 1938":
    those two years' rows, to be compared."""
    either = _EITHER_YEAR_RE.search(text)
    years = sorted({int(y) for y in either.groups()}) if either else sorted({int(y) for y in _YEAR_RE.findall(text)})
    if not years or (len(years) > 1 and not either):
        return None
    for c in table.columns:
        if not set(name_tokens(c.name)) & {"year", "season"}:
            continue
        if is_numeric(c) and c.min is not None and c.max is not None:
            try:
                if all(float(c.min) <= y <= float(c.max) for y in years):
                    return (f"{ident(c.name)} = {years[0]}" if len(years) == 1 else
                            f"{ident(c.name)} IN ({', '.join(map(str, years))})")
            except ValueError:
                continue
        # years kept as text (a "Totals" row below them): compared as the text they are
        elif is_text(c) and c.samples and sum(bool(_YEAR_RE.fullmatch(str(v))) for v in c.samples) * 2 > len(c.samples):
            return (f"{ident(c.name)} = {literal(str(years[0]))}" if len(years) == 1 else
                    f"{ident(c.name)} IN ({', '.join(literal(str(y)) for y in years)})")
    return None


_LESS_RE = re.compile(r"\b(?:less|fewer|lower|smaller|least|fewest|lowest)\b", re.I)


def _which_year(plan: _TablePlan) -> tuple[str, str] | None:
    """"More laps in 1926 or 1938?": the years named, side by side, ordered by the asked measure."""
    m = next((re.match(r'^("(?:[^"]|"")+") IN \(', w) for w in plan.where
              if re.match(r"^\"(?:[^\"]|\"\")+\" IN \('?\d{4}", w)), None)
    if m is None or not plan.measures:
        return None
    measure = ident(plan.measures[0].name)
    direction = "ASC" if _LESS_RE.search(plan.text) else "DESC"
    return (_select(plan, [m.group(1), measure], order=f"{measure} {direction} NULLS LAST", limit=len(plan.where) + 9),
            f"the years named, by {plan.measures[0].name}")


def _total_row_filters(table: TableInfo) -> list[str]:
    """A "Total" row the value probe found (it sums the others): left out of every ranking, count and sum,
    or "who won the most gold medals" names Total and a sum counts everything twice."""
    out = []
    for c in table.columns:
        totals = [v for v in c.samples
                  if is_text(c) and re.sub(r"\(.*?\)|[^a-z ]", "", v.lower()).strip() in TOTAL_LABELS]
        out += [f"{ident(c.name)} IS DISTINCT FROM {literal(v)}" for v in totals]
    return out


def _flag_filters(table: TableInfo, q: QuestionTerms) -> list[str]:
    # "which vendors were chosen" -> "chosen" = TRUE; a negation in the question flips it.
    flip = re.search(r"\b(not|never)\b|n't|未|没有|不是", q.text) is not None
    return [f"{ident(c.name)} = {'FALSE' if flip else 'TRUE'}" for c in table.columns
            if c.type.upper().startswith("BOOL") and all(q.weights.get(t, 0) >= 1.0 for t in name_tokens(c.name))]

# ---- rankings, counts, derived measures ---------------------------------------------------------

def _top(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    direction, k = it.direction or "DESC", min(it.k, limit)
    if plan.group:
        fn = "avg" if "average" in it.ops or (plan.measures and _kind(plan.measures[0], plan.table) == "level") \
            else "sum"
        metric = _agg(fn, plan.measures[0]) if plan.measures else 'count(*) AS "n"'
        alias = metric.rsplit(" AS ", 1)[1]
        g = ident(plan.group.name)
        return (_select(plan, [g, metric], group=[g], order=f"{alias} {direction} NULLS LAST", limit=k),
                f"top {k} {plan.group.name} by {alias}")
    if not plan.measures:
        return None
    m = plan.measures[0]
    # A row of a time-indexed table is named by its date ("the highest close was 29.96 on 2003-09-03").
    labels = [plan.label] if plan.label else [plan.date_col] if plan.date_col else []
    exprs = [ident(c.name) for c in labels] + [ident(c.name) for c in plan.measures[:3]]
    why = f"top {k} rows by {m.name}" if direction == "DESC" else f"bottom {k} rows by {m.name}"
    return _select(plan, exprs, order=f"{ident(m.name)} {direction} NULLS LAST", limit=k), why


def _count_group(plan: _TablePlan, it: Intent) -> ColumnInfo | None:
    """The column to count per: the grouping column, else the best-linked category column."""
    if plan.group is not None:
        return plan.group
    scores = dict(plan.link.columns)
    whole = over_all(plan.text)
    cats = [c for c in plan.table.columns if is_text(c) and not is_id(c) and not _is_unique(c, plan.table)
            and scores.get(c.name, 0.0) >= _STRONG and (name_tokens(c.name) or [""])[-1] not in whole]
    return max(cats, key=lambda c: (scores[c.name], -plan.table.columns.index(c)), default=None)


def _count(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    group = _count_group(plan, it) if it.mode or "count" in it.ops else plan.group
    one_value = any(w.lstrip("(").startswith(ident(group.name) + " = ") for w in plan.where) if group else False
    if group is not None and not it.mode and one_value:
        group = None  # "how many times did they place 5th": one value of the column is asked, counted once
    if group is None:
        if it.mode:  # "most common X" with no X column here: a row count answers nothing
            return None
        return _select(plan, ['count(*) AS "n"'], limit=1), "row count"
    g = ident(group.name)
    k = min(it.k, limit) if it.mode else limit
    return _select(plan, [g, 'count(*) AS "n"'], group=[g], order=f'"n" DESC, {g}', limit=k), f"count per {group.name}"


def _pair(plan: _TablePlan) -> tuple[ColumnInfo, ColumnInfo] | None:
    """A budget-like and an actual-like numeric column of the same table (planned vs actual, ...)."""
    nums = [c for c in plan.table.columns if is_numeric(c) and not is_id(c)]
    budgets = [c for c in nums if set(name_tokens(c.name)) & BUDGET_TOKENS]
    actuals = [c for c in nums if set(name_tokens(c.name)) & ACTUAL_TOKENS and c not in budgets]
    if not budgets or not actuals:
        return None

    def shared(b: ColumnInfo, a: ColumnInfo) -> int:  # same unit / same noun: budget_eur with actual_eur
        return len(set(name_tokens(b.name)) & set(name_tokens(a.name)))
    return max(((b, a) for b in budgets for a in actuals),
               key=lambda p: (shared(*p), -nums.index(p[0]), -nums.index(p[1])))


def _overrun(plan: _TablePlan, it: Intent, limit: int) -> list[tuple[str, str]]:
    pair = _pair(plan)
    if pair is None:
        return []
    b, a = ident(pair[0].name), ident(pair[1].name)
    if plan.group:  # "which department overran most": totals per group
        g = ident(plan.group.name)
        sb, sa = f"sum({b})", f"sum({a})"
        head = [g, f"{sb} AS {ident('sum_' + pair[0].name)}", f"{sa} AS {ident('sum_' + pair[1].name)}"]
        keys, bexpr, aexpr = [g], sb, sa
    else:
        head = ([ident(plan.label.name)] if plan.label else []) + [b, a]
        keys, bexpr, aexpr = [], b, a
    derived = [f"{aexpr} - {bexpr} AS \"overrun\"",
               f"round(100.0 * ({aexpr} - {bexpr}) / NULLIF({bexpr}, 0), 1) AS \"overrun_pct\""]
    direction = "ASC" if it.under or (it.direction == "ASC") else "DESC"
    ranked = it.direction is not None or it.under
    extra = [f"{a} IS NOT NULL", f"{b} > 0"] + ([] if ranked else [f"{a} > {b}"])
    k = min(it.k, limit) if ranked else limit
    first, second = ("overrun_pct", "overrun") if it.percent or not ranked else ("overrun", "overrun_pct")
    out = []
    for key in (first, second):
        sql = _select(plan, head + derived, group=keys, order=f'"{key}" {direction} NULLS LAST', limit=k,
                      extra_where=extra if not keys else [f"{a} IS NOT NULL"])
        out.append((sql, f"overrun of {pair[1].name} against {pair[0].name}, ranked by {key}"))
    return out


def _share(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    group = plan.group or _count_group(plan, it)
    if group is None:
        return None
    g = ident(group.name)
    if plan.measures:
        m = plan.measures[0]
        total, alias = f"sum({ident(m.name)})", ident(f"sum_{m.name}")
    else:
        total, alias = "count(*)", '"n"'
    share = f"round(100.0 * {total} / sum({total}) OVER (), 1) AS \"share_pct\""
    sql = _select(plan, [g, f"{total} AS {alias}", share], group=[g], order='"share_pct" DESC', limit=limit)
    return sql, f"share of total {alias.strip(chr(34))} per {group.name}"


def _two_columns(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    """Difference or ratio of the two measures the question names, per row."""
    named = [c for c in plan.measures if dict(plan.link.columns).get(c.name, 0.0) >= _STRONG][:2]
    if len(named) < 2:
        return None
    x, y = named
    a, b = ident(x.name), ident(y.name)
    expr, alias = ((f"round({a} / NULLIF({b}, 0), 3)", "ratio") if it.ratio and not it.difference
                   else (f"{a} - {b}", "difference"))
    head = ([ident(plan.label.name)] if plan.label else []) + [a, b, f"{expr} AS \"{alias}\""]
    sql = _select(plan, head, order=f'"{alias}" DESC NULLS LAST', limit=limit)
    return sql, f"{alias} of {x.name} and {y.name}"


def _summary(plan: _TablePlan, it: Intent, limit: int) -> tuple[str, str] | None:
    g = [ident(plan.group.name)] if plan.group else []
    if plan.group and plan.measures and _is_unique(plan.group, plan.table):  # one row per category already
        exprs = g + [ident(m.name) for m in plan.measures]
        return _select(plan, exprs, order=g[0], limit=limit), f"rows per {plan.group.name}"
    fns = ["avg"] if "average" in it.ops else ["sum"] if "total" in it.ops or SUM_RE.search(plan.text) \
        else ["avg", "min", "max"]
    measures = plan.measures[:3]  # three measures x three aggregates is as wide as a cited table should be
    aggs = [_agg(fn, m) for m in measures for fn in fns]
    if not aggs and not g:
        return None
    what = "/".join(fns) + " of " + ", ".join(m.name for m in measures) if aggs else "row count"
    sql = _select(plan, [*g, 'count(*) AS "n"', *aggs], group=g, order=", ".join(g), limit=limit)
    return sql, what + (f" per {plan.group.name}" if plan.group else "")


def _rows(plan: _TablePlan, limit: int) -> tuple[str, str]:
    names = [n for n, _ in plan.link.columns[:6]]
    if plan.link.values and not plan.measures:  # rows named, nothing asked of them ("httpx and aiosqlite"): whole
        names = [c.name for c in plan.table.columns[:8]]
    if plan.label and plan.label.name not in names:
        names.insert(0, plan.label.name)
    exprs = [ident(c.name) for c in plan.table.columns if c.name in names]
    return _select(plan, exprs or ["*"], limit=limit), "matching rows"


def _wants_series(plan: _TablePlan, it: Intent) -> bool:
    if plan.date_col is None:
        return False
    ranged = plan.when is not None and plan.when.start is not None and plan.when.end is not None \
        and (plan.when.end - plan.when.start).days > 62
    return ("trend" in it.ops or it.grain is not None
            or ((ranged or plan.when is None) and it.growth and bool(plan.measures)))


def _table_candidates(plan: _TablePlan, it: Intent, limit: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str] | None] = []
    if it.overrun:
        out += _overrun(plan, it, limit)
    if it.share:
        out.append(_share(plan, it, limit))
    if (it.difference or it.ratio) and not plan.date_col:
        out.append(_two_columns(plan, it, limit))
    if _wants_series(plan, it):
        out.append(series(plan, it, limit))
        if it.growth or plan.when is not None:
            out.append(growth(plan, it, limit))
    out.append(_which_year(plan))
    if it.mode:
        out.append(_count(plan, it, limit))
    elif it.direction and not it.overrun:
        out.append(_top(plan, it, limit))
    if "count" in it.ops and not it.mode and not _counts_a_column(plan):
        out.append(_count(plan, it, limit))
    rows_first = bool(plan.where) and _asks_for_text(plan)
    if rows_first:  # "what other team is listed 23rd": the answer is a cell of the picked rows
        out.append(_rows(plan, limit))
    # rows picked by their keys are shown as they are, unless the question asks for their sum
    summary = None if plan.keyed and not plan.group and not SUM_RE.search(plan.text) else _summary(plan, it, limit)
    out.append(summary)
    if (plan.where or not any(out)) and not rows_first and not (summary and summary[1].startswith("rows per")):
        out.append(_rows(plan, limit))
    return [c for c in out if c]


_HOW_MANY_RE = re.compile(r"\bhow\s+many\s+([a-z]+)", re.I)


def _counts_a_column(plan: _TablePlan) -> bool:
    """"How many laps did he race in 1933": the number asked is a numeric column's value, not a row count."""
    m = _HOW_MANY_RE.search(plan.text)
    if m is None:
        return False
    noun = stem(m.group(1).lower())
    return any(is_numeric(c) and not is_id(c) and (name_tokens(c.name) or [""])[0] == noun for c in plan.table.columns)


_WH_NOUN_RE = re.compile(r"\b(?:what|which)\s+(?:other\s+|of\s+the\s+)?([a-z]+)|\b(who|whom|where)\b", re.I)


def _asks_for_text(plan: _TablePlan) -> bool:
    """The question asks for a text cell: "which team", "what city", "who", "where" with no measure asked."""
    asked = {m.name for m in plan.measures}
    measure_asked = any(s >= _STRONG for n, s in plan.link.columns if n in asked)
    for m in _WH_NOUN_RE.finditer(plan.text):
        if m.group(2) and not measure_asked:
            return True
        noun = stem((m.group(1) or "").lower())
        if noun and any(is_text(c) and (name_tokens(c.name) or [""])[-1] == noun for c in plan.table.columns):
            return True
    return False


MAX_TIED_TABLES = 4  # tables whose links tie with the best are all tried; otherwise the best two


_Planned = tuple[_TablePlan, tuple[str, str]]  # a candidate (sql, why) with the plan it reads


def _interleave_tied(per_plan: list[list[_Planned]]) -> list[_Planned]:
    """Candidates plan by plan, except that three or more plans tied with the best take turns: when the
    question cannot tell several alike tables apart (results tables without titles), each table's best
    reading runs before any table's second one. Two tied tables keep their order (the first one's
    readings first), as two linked tables are usually two views of one subject."""
    scores = [p[0][0].link.score for p in per_plan if p]
    if not scores:
        return []
    tied = [p for p in per_plan if p and p[0][0].link.score >= max(scores)]
    rest = [p for p in per_plan if p and p[0][0].link.score < max(scores)]
    if len(tied) < 3:
        return [c for p in per_plan for c in p]
    turns = [p[i] for i in range(max(map(len, tied))) for p in tied if i < len(p)]
    return turns + [c for p in rest for c in p]


def build_sql(text: str, catalog: list[TableInfo], *, limit: int = 50) -> list[SqlCandidate]:
    """Candidate SELECTs for the text, best first; [] when no table links to it."""
    q, it, when = question_terms(text), intent(text), time_range(text)
    tables = {t.name: t for t in catalog}
    out: dict[str, SqlCandidate] = {}
    links = relevant_links(link_schema(text, catalog), limit=MAX_TIED_TABLES)
    tied = [link for link in links if link.score >= links[0].score] if links else []
    links = tied if len(tied) > 2 else links[:2]
    plans = [_plan_table(tables[link.table], link, q, it, when) for link in links]
    # A named item across year columns is the most specific reading there is: those candidates first.
    pairs = [(plan, c) for plan in plans for c in period_candidates(plan, it, text, max(1, limit))]
    pairs += [(plan, c) for plan in plans for c in position_candidates(plan, text)]  # asked by position
    pairs += [(plan, c) for plan in plans for c in versus_candidates(plan, text)]  # "how many more A than B"
    pairs += _interleave_tied([[(plan, c) for c in _table_candidates(plan, it, max(1, limit))] for plan in plans])
    for plan, (sql, why) in pairs:
        detail = f"; filters: {', '.join(plan.notes)}" if plan.notes else ""
        out.setdefault(sql, SqlCandidate(sql, f"{plan.table.name}: {why}{detail}", [plan.table.name]))
    return list(out.values())
