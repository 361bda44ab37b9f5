"""Schema linking: which tables, columns and sample values a question talks about, and safe SQL from them.

SQL is assembled only from catalog identifiers (double-quoted) and literals taken from catalog sample
values or from parsed dates (single-quoted, escaped); no question text is ever pasted into a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from agents.offline.text import (LEXICON, TimeRange, concept_terms_en, find_concepts, squash, stem, time_range,
                                 tokenize, words)
from tools.models import ColumnInfo, TableInfo

NUMERIC_TYPES = frozenset("TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT FLOAT REAL "
                          "DOUBLE DECIMAL NUMERIC INT".split())
# How much a column-name token counts when a lexicon concept (not the word itself) points at it.
_KIND_WEIGHT = {"measure": 0.8, "dimension": 0.8, "entity": 0.8, "topic": 0.6, "aspect": 0.6, "op": 0.3}
_GLOSS_WEIGHT = 0.9  # the English gloss of a Chinese term: nearly the user's own word
_VALUE_SCORE = 2.0  # a sample value named in the question is the strongest link there is
_STRONG = 0.6  # a column linked at least this well (or by a value) makes its table count
# Category values that are also everyday words ("low cost" must not filter compute_need = 'low').
_STOP_VALUES = frozenset("low medium high none other yes no true false all any unknown n/a".split())


@dataclass
class TableLink:
    table: str
    score: float
    columns: list[tuple[str, float]] = field(default_factory=list)  # best first
    values: list[tuple[str, str]] = field(default_factory=list)  # (column, sample value) named in the text


@dataclass
class QuestionTerms:
    """A question reduced to what linking needs: weighted English-side terms, concepts, word sequence."""
    weights: dict[str, float]  # term -> how strongly the question asks for it (1.0: its own word)
    groups: list[dict[str, float]]  # one per concept or loose word: the terms that would cover it
    concepts: list[str]
    sequence: list[str]  # every word's term, stopwords kept, for matching multi-word values
    text: str


def question_terms(text: str) -> QuestionTerms:
    hits = find_concepts(text)
    groups: dict[str, dict[str, float]] = {}
    for hit in hits:
        group = groups.setdefault(hit.key, dict.fromkeys(concept_terms_en(hit.key), _KIND_WEIGHT[hit.kind]))
        group.update(dict.fromkeys(tokenize(hit.gloss), _GLOSS_WEIGHT))
        group.update(dict.fromkeys(tokenize(hit.surface), 1.0))
    loose = " ".join(s for s, _, pos in words(text) if not any(h.start <= pos < h.end for h in hits))
    for term in tokenize(loose):  # words outside any concept each count on their own
        groups.setdefault(term, {term: 1.0})
    weights: dict[str, float] = {}
    for group in groups.values():
        for term, w in group.items():
            weights[term] = max(weights.get(term, 0.0), w)
    seq = [term for _, term, _ in words(text)]
    return QuestionTerms(weights, list(groups.values()), list(dict.fromkeys(h.key for h in hits)), seq, text)


def name_tokens(name: str) -> list[str]:
    """Identifier words, stemmed: "actual_cost_cny" -> ["actual", "cost", "cny"]; camelCase is split too."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return list(dict.fromkeys(stem(w) for w in re.split(r"[^A-Za-z0-9]+", spaced) if w))


def is_numeric(col: ColumnInfo) -> bool:
    return col.type.upper().split("(")[0].strip() in NUMERIC_TYPES


def is_date(col: ColumnInfo) -> bool:
    kind = col.type.upper()
    if kind.startswith(("DATE", "TIMESTAMP")):
        return True
    tokens = col.name.lower().split("_")
    return not is_numeric(col) and (tokens[-1] in ("date", "month", "day") or tokens[0] == "date")


def is_text(col: ColumnInfo) -> bool:
    return col.type.upper().startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "ENUM")) and not is_date(col)


def is_id(col: ColumnInfo) -> bool:
    return name_tokens(col.name)[-1:] in (["id"], ["key"], ["code"]) or col.name.lower() == "id"


def mentioned_values(q: QuestionTerms, col: ColumnInfo) -> list[str]:
    """Sample values of a text column that the question names, directly or through a lexicon concept."""
    if not is_text(col):
        return []
    concept_forms = {squash(f) for key in q.concepts for f in (key, *LEXICON[key].en)}
    found = []
    for sample in col.samples:
        core = re.sub(r"\(.*?\)", " ", sample).strip()  # "Milvus (self-hosted)" is named as "Milvus"
        if not core or len(sample) > 40 or squash(core).isdigit() or core.lower() in _STOP_VALUES:
            continue  # long samples are prose (notes), not categories
        seq = [term for _, term, _ in words(core)]
        n = len(seq)
        said = any(q.sequence[i:i + n] == seq for i in range(len(q.sequence) - n + 1))
        if squash(core) in concept_forms or said or (not core.isascii() and len(core) >= 2 and core in q.text):
            found.append(sample)
    return found


def _desc_score(q: QuestionTerms, description: str, *, per_word: float, cap: float) -> float:
    # Only the question's own words count here: lexicon expansions match prose far too easily.
    desc_terms = {stem(w) for w in re.findall(r"[A-Za-z]+", description)}
    return min(cap, per_word * sum(1 for t, w in q.weights.items() if w >= 1.0 and t in desc_terms))


def _link_table(q: QuestionTerms, table: TableInfo) -> TableLink | None:
    columns: list[tuple[str, float]] = []
    values: list[tuple[str, str]] = []
    strong = False
    for col in table.columns:
        name = sum(q.weights.get(t, 0.0) for t in name_tokens(col.name))
        vals = mentioned_values(q, col)
        score = name + _desc_score(q, col.description, per_word=0.15, cap=0.45) + (_VALUE_SCORE if vals else 0.0)
        strong = strong or name >= _STRONG or bool(vals)
        values += [(col.name, v) for v in vals]
        if score > 0:
            columns.append((col.name, round(score, 3)))
    if not strong:  # a table name or description alone ("LLM") is too weak to justify a query
        return None
    columns.sort(key=lambda c: -c[1])
    # Coverage: each concept of the question counts once, by its best column or the table name, so a
    # table with five cost-like columns does not outrank one that covers more of what was asked.
    token_sets = [name_tokens(table.name)] + [name_tokens(c.name) for c in table.columns]
    coverage = sum(max((g.get(t, 0.0) for tokens in token_sets for t in tokens), default=0.0) for g in q.groups)
    named = {name for name, _ in values}
    desc = _desc_score(q, table.description, per_word=0.2, cap=0.6)
    score = coverage + _VALUE_SCORE * len(named) + desc
    return TableLink(table.name, round(score, 3), columns, values)


def link_schema(text: str, catalog: list[TableInfo]) -> list[TableLink]:
    """Tables the text is about, best first; a table needs a column or sample value linked to appear."""
    q = question_terms(text)
    links = [link for t in catalog if (link := _link_table(q, t)) is not None]
    return sorted(links, key=lambda link: (-link.score, link.table))


def relevant_links(links: list[TableLink], *, ratio: float = 0.5, limit: int = 3) -> list[TableLink]:
    """The links worth acting on: those within ``ratio`` of the best one."""
    if not links:
        return []
    return [link for link in links if link.score >= ratio * links[0].score][:limit]


@dataclass
class SqlCandidate:
    sql: str
    rationale: str
    tables: list[str]


@dataclass
class _TablePlan:
    """What one linked table contributes: measures to aggregate, a grouping column, filters."""
    table: TableInfo
    link: TableLink
    measures: list[ColumnInfo]
    group: ColumnInfo | None
    where: list[str]
    date_col: ColumnInfo | None
    notes: list[str]
    keyed: bool  # filtered on a column with one row per value: aggregating would hide nothing


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def question_ops(text: str) -> set[str]:
    """The computations the text asks for (top, count, trend, average, total, compare, choose...)."""
    hits = find_concepts(text)
    ops = {h.key for h in hits if h.kind == "op"}
    # "how many people/months" asks for a measure, not for a row count.
    if any(a.key == "count" and b.kind == "measure" and not text[a.end:b.start].strip()
           for a, b in zip(hits, hits[1:])):
        ops.discard("count")
    return ops


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


def _plan_table(table: TableInfo, link: TableLink, q: QuestionTerms, when: TimeRange | None) -> _TablePlan:
    cols = {c.name: c for c in table.columns}
    scores = dict(link.columns)
    by_col: dict[str, list[str]] = {}
    for name, value in link.values:
        by_col.setdefault(name, []).append(value)
    measures = [cols[n] for n, s in link.columns if s >= _STRONG and is_numeric(cols[n]) and not is_id(cols[n])][:6]
    group = next((cols[n] for n, vs in by_col.items() if len(vs) > 1), None)
    if group is None:  # a dimension named by its head noun: "which department", "per approach"
        group = next((c for c in table.columns if is_text(c) and not is_id(c) and c.name not in by_col
                      and not _is_unique(c, table) and q.weights.get(name_tokens(c.name)[-1], 0) >= 0.8), None)
    where = [f"{ident(n)} = {literal(vs[0])}" if len(vs) == 1 else
             f"{ident(n)} IN ({', '.join(literal(v) for v in vs)})" for n, vs in by_col.items()]
    dates = [c for c in table.columns if is_date(c)]
    date_col = next((c for c in dates if scores.get(c.name, 0) > 0), dates[0] if dates else None)
    notes = [f"{n} in {vs}" for n, vs in by_col.items()]
    where += _flag_filters(table, q)
    if when and date_col:
        where += _time_filter(date_col, when)
        notes.append(f"{date_col.name} {when.label}")
    keyed = any(_is_unique(cols[n], table) for n in by_col)
    return _TablePlan(table, link, measures, group, where, date_col, notes, keyed)


def _flag_filters(table: TableInfo, q: QuestionTerms) -> list[str]:
    # "which vendors were chosen" -> "chosen" = TRUE; a negation in the question flips it.
    flip = re.search(r"\b(not|never)\b|n't|未|没有|不是", q.text) is not None
    return [f"{ident(c.name)} = {'FALSE' if flip else 'TRUE'}" for c in table.columns
            if c.type.upper().startswith("BOOL") and all(q.weights.get(t, 0) >= 1.0 for t in name_tokens(c.name))]


def _select(plan: _TablePlan, exprs: list[str], *, group: Sequence[str] = (), order: str = "", limit: int) -> str:
    sql = f"SELECT {', '.join(exprs)} FROM {ident(plan.table.name)}"
    sql += f" WHERE {' AND '.join(plan.where)}" if plan.where else ""
    sql += f" GROUP BY {', '.join(group)}" if group else ""
    return sql + (f" ORDER BY {order}" if order else "") + f" LIMIT {int(limit)}"


def _agg(fn: str, col: ColumnInfo) -> str:
    return f"{fn}({ident(col.name)}) AS {ident(f'{fn}_{col.name}')}"


def _trend(plan: _TablePlan, limit: int) -> tuple[str, str] | None:
    col = plan.date_col
    if col is None:
        return None
    month_col = "month" in col.name.lower() and col.type.upper().startswith("DATE")
    period = ident(col.name) if month_col else f"date_trunc('month', {_date_expr(col)})"
    aggs = [_agg("sum", m) for m in plan.measures[:3]] or ['count(*) AS "n"']
    keys = [period] + ([ident(plan.group.name)] if plan.group else [])
    head = [period if month_col else f'{period} AS "month"'] + keys[1:]
    return _select(plan, head + aggs, group=keys, order=", ".join(keys), limit=limit), f"monthly series by {col.name}"


def _top(plan: _TablePlan, ops: set[str], limit: int) -> tuple[str, str] | None:
    direction = "DESC" if "top" in ops else "ASC"
    k = min(5, limit)
    if plan.group:
        fn = "avg" if "average" in ops else "sum"
        metric = _agg(fn, plan.measures[0]) if plan.measures else 'count(*) AS "n"'
        alias = metric.rsplit(" AS ", 1)[1]
        g = ident(plan.group.name)
        return (_select(plan, [g, metric], group=[g], order=f"{alias} {direction} NULLS LAST", limit=k),
                f"top {k} {plan.group.name} by {alias}")
    if not plan.measures:
        return None
    labels = [c for c in plan.table.columns if is_text(c) and ("name" in c.name.lower() or is_id(c))][:2]
    m = ident(plan.measures[0].name)
    exprs = [ident(c.name) for c in labels] + [ident(c.name) for c in plan.measures]
    why = f"top {k} rows by {plan.measures[0].name}"
    return _select(plan, exprs, order=f"{m} {direction} NULLS LAST", limit=k), why


def _count(plan: _TablePlan, limit: int) -> tuple[str, str]:
    if not plan.group:
        return _select(plan, ['count(*) AS "n"'], limit=1), "row count"
    g = ident(plan.group.name)
    return _select(plan, [g, 'count(*) AS "n"'], group=[g], order='"n" DESC', limit=limit), f"count per {g}"


def _summary(plan: _TablePlan, ops: set[str], limit: int) -> tuple[str, str] | None:
    g = [ident(plan.group.name)] if plan.group else []
    if plan.group and plan.measures and _is_unique(plan.group, plan.table):  # one row per category already
        exprs = g + [ident(m.name) for m in plan.measures]
        return _select(plan, exprs, order=g[0], limit=limit), f"rows per {plan.group.name}"
    fns = ["avg"] if "average" in ops else ["sum"] if "total" in ops else ["avg", "min", "max"]
    measures = plan.measures[:3]  # three measures x three aggregates is as wide as a cited table should be
    aggs = [_agg(fn, m) for m in measures for fn in fns]
    if not aggs and not g:
        return None
    what = "/".join(fns) + " of " + ", ".join(m.name for m in measures) if aggs else "row count"
    sql = _select(plan, g + ['count(*) AS "n"'] + aggs, group=g, order=", ".join(g), limit=limit)
    return sql, what + (f" per {plan.group.name}" if plan.group else "")


def _rows(plan: _TablePlan, limit: int) -> tuple[str, str]:
    names = [n for n, _ in plan.link.columns[:6]]
    exprs = [ident(c.name) for c in plan.table.columns if c.name in names]
    return _select(plan, exprs or ["*"], limit=limit), "matching rows"


def _table_candidates(plan: _TablePlan, ops: set[str], limit: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str] | None] = []
    if "trend" in ops:
        out.append(_trend(plan, limit))
    if ops & {"top", "bottom"}:
        out.append(_top(plan, ops, limit))
    if "count" in ops:
        out.append(_count(plan, limit))
    summary = None if plan.keyed and not plan.group else _summary(plan, ops, limit)
    out.append(summary)
    if (plan.where or not any(out)) and not (summary and summary[1].startswith("rows per")):
        out.append(_rows(plan, limit))
    return [c for c in out if c]


def build_sql(text: str, catalog: list[TableInfo], *, limit: int = 50) -> list[SqlCandidate]:
    """Candidate SELECTs for the text, best first; [] when no table links to it."""
    q, ops, when = question_terms(text), question_ops(text), time_range(text)
    tables = {t.name: t for t in catalog}
    out: dict[str, SqlCandidate] = {}
    for link in relevant_links(link_schema(text, catalog), limit=2):
        plan = _plan_table(tables[link.table], link, q, when)
        for sql, why in _table_candidates(plan, ops, max(1, limit)):
            detail = f"; filters: {', '.join(plan.notes)}" if plan.notes else ""
            out.setdefault(sql, SqlCandidate(sql, f"{link.table}: {why}{detail}", [link.table]))
    return list(out.values())
