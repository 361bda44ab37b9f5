"""Questions about where a row stands in its table as listed: "who came immediately after Sebastian Porto",
"what match comes after GL-B-5", "the next episode", "the last stadium listed", "the last 3 games".

A table keeps the order of its source file (DuckDB's ``rowid``, kept by import and by the staging copy),
and in the tables analysts keep that order means something: finishing order, chronology, a schedule.
These candidates read it only when the question asks for it by position; the row the question names
must be a value it writes (linked through the catalog or the value probe), never text pasted into SQL.

Aliases are part of the contract with ``agents.offline.sql_answer``: the listed position is selected as
``"listed"`` (1 = first row of the file), and the statement carries ``rowid`` in its ORDER BY or WHERE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.offline.schema_link import is_numeric
from agents.offline.sql_intent import SUM_RE, question_ops
from agents.offline.sql_parts import _TablePlan, ident, literal, without_value_filter
from tools.models import ColumnInfo

LISTED = '"listed"'
ROW_NUMBER = f"rowid + 1 AS {LISTED}"
MAX_SHOWN = 6  # columns of a positional row shown beside its position
_CLOSE = r"(?:(?:immediately|right|directly|just)\s+)?"
_AFTER = _CLOSE + r"(?:after|following|behind|below|succeed\w*|supercede\w*|supersede\w*)"
_BEFORE = _CLOSE + r"(?:before|preceding|prior\s+to|ahead\s+of|above|previous\s+to|precede\w*)"
_NEXT_RE = re.compile(r"\b(?:next|subsequent|following)\b(?!\s+(?:largest|biggest|highest|lowest|smallest|most|"
                      r"least|best|worst|year|month|week|day|season|quarter|time)\b)", re.I)
_PREVIOUS_RE = re.compile(r"\b(?:previous|preceding|prior)\b", re.I)
# "the last stadium listed", "listed last", "at the bottom of the chart", "the last 3 games"
_LAST_RE = re.compile(r"\b(?:last|bottom\s+of\s+the)\b(?!\s+(?:year|month|week|day|season|quarter|time)\b)"
                      r"(?:\s+(\d{1,2}))?", re.I)
_FIRST_RE = re.compile(r"\b(?:first|top\s+of\s+the)\b(?:\s+(\d{1,2}))?", re.I)
# "the first interval to have ...", "his first 1st place record": the first (last) of the rows the filters pick
_FIRST_TO_RE = re.compile(r"\bthe\s+(first|last)\s+(?:[a-z]+\s+){1,5}?(?:to|that|which|who|with|where)\b|"
                          r"\b(?:his|her|their|its)\s+(first|last)\b", re.I)
_LISTED_RE = re.compile(r"\blist(?:ed|ing)?\b|\b(?:chart|table|list|column)\b|\brow\b|\bentry\b|\bentries\b", re.I)


@dataclass(frozen=True)
class Position:
    kind: str  # "after", "before", "last", "first"
    column: str | None = None  # the column of the named row ("after" / "before")
    value: str | None = None
    count: int = 1  # rows asked ("the last 3 games")


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def asked_position(text: str, values: list[tuple[str, str]], filtered: bool = False) -> Position | None:
    """The position the question asks about, if it asks by position at all."""
    q = _norm(text)
    for column, value in values:
        v = _norm(value)
        if not v or f" {v} " not in f" {q} ":
            continue
        before_value = q[: f" {q} ".index(f" {v} ")]
        window = " ".join(before_value.split()[-5:])
        if re.search(_AFTER + r"(?:\s+\w+){0,2}$", window):
            return Position("after", column, value)
        if re.search(_BEFORE + r"(?:\s+\w+){0,2}$", window):
            return Position("before", column, value)
    named = [(c, v) for c, v in values if _norm(v) and f" {_norm(v)} " in f" {q} "]
    if named and _NEXT_RE.search(text):  # "X aired on January 19. What was the next episode?"
        return Position("after", *named[0])
    if named and _PREVIOUS_RE.search(text):
        return Position("before", *named[0])
    if named:  # a named row, asked about in place: no position
        return None
    m = _FIRST_TO_RE.search(text)
    if m and filtered:  # "the first interval to have more than 100,000 deaths": the first match listed
        return Position((m.group(1) or m.group(2)).lower())
    for kind, rx in (("last", _LAST_RE), ("first", _FIRST_RE)):
        m = rx.search(text)
        if m and _LISTED_RE.search(text):
            return Position(kind, count=int(m.group(1)) if m.group(1) else 1)
        if kind == "last" and m and m.group(1):  # "the last 3 games": a count of rows from the end
            return Position(kind, count=int(m.group(1)))
    return None


def _asked_columns(plan: _TablePlan) -> list[ColumnInfo]:
    """Columns the question names (linked), else the label; the position's own answer is among them."""
    cols = {c.name: c for c in plan.table.columns}
    named = [cols[n] for n, s in plan.link.columns if s >= 0.5 and n in cols]
    if plan.label is not None and plan.label not in named:
        named.append(plan.label)
    return named or plan.table.columns[:1]


def _shown(plan: _TablePlan, first: list[ColumnInfo]) -> list[str]:
    names = list(dict.fromkeys([c.name for c in first] + [c.name for c in plan.table.columns]))[:MAX_SHOWN]
    return [ident(c.name) for c in plan.table.columns if c.name in names]  # in the table's own order


def position_candidates(plan: _TablePlan, text: str) -> list[tuple[str, str]]:
    pos = asked_position(text, plan.link.values, filtered=bool(plan.where))
    if pos is None:
        return []
    table = ident(plan.table.name)
    if pos.kind in ("after", "before") and pos.column is not None and pos.value is not None:
        where = without_value_filter(plan, pos.column)
        anchor = f"(SELECT min(rowid) FROM {table} WHERE {ident(pos.column)} = {literal(pos.value)})"
        op, direction = (">", "ASC") if pos.kind == "after" else ("<", "DESC")
        cols = _shown(plan, [c for c in _asked_columns(plan) if c.name != pos.column])
        cond = " AND ".join([f"rowid {op} {anchor}", *where])
        sql = (f"SELECT {ROW_NUMBER}, {', '.join(cols)} FROM {table} WHERE {cond} "
               f"ORDER BY rowid {direction} LIMIT 1")
        return [(sql, f"the row listed {pos.kind} {pos.column} {pos.value}")]
    direction = "DESC" if pos.kind == "last" else "ASC"
    kept = f" WHERE {' AND '.join(plan.filters())}" if plan.filters() else ""
    measures = [c for c in plan.measures if is_numeric(c)]
    out = []
    if pos.count > 1 and measures and (SUM_RE.search(text) or question_ops(text) & {"total"}):
        m = ident(measures[0].name)
        inner = f"SELECT {m} FROM {table}{kept} ORDER BY rowid {direction} LIMIT {pos.count}"
        out.append((f"SELECT sum({m}) AS {ident('sum_' + measures[0].name)}, count(*) AS \"n\" FROM ({inner})",
                    f"total {measures[0].name} of the {pos.kind} {pos.count} rows listed"))
    cols = _shown(plan, _asked_columns(plan))
    out.append((f"SELECT {ROW_NUMBER}, {', '.join(cols)} FROM {table}{kept} ORDER BY rowid {direction} "
                f"LIMIT {pos.count}", f"the {pos.kind} {pos.count} rows as listed"))
    return out

