"""One answer-first sentence stating what a SQL result shows, from the evidence's sql, columns and rows.

The intent is read from the aliases ``agents.offline.sql_build`` emits (``overrun_pct``, ``share_pct``,
``*_change_pct``, a period column, ``n``) and from the ORDER BY clause. Every figure written is one of the
row values, formatted so that the citation verifier's number matcher accepts it (checked, not assumed).
"""

from __future__ import annotations

import re
from typing import Any

from agents.offline.sql_intent import intent
from tools.text.numbers import find_numbers, supported
from tools.vocabulary import Evidence

_PERIODS = ("year", "quarter", "month")
_UNITS = frozenset("cny usd eur gbp jpy rmb kb mb gb tb bytes km kg ms pct".split())
_AGG_WORDS = {"en": {"sum": "total", "avg": "average", "min": "minimum", "max": "maximum"},
              "zh": {"sum": "合计", "avg": "平均", "min": "最小", "max": "最大"}}
_GRAIN = {"en": {"year": "yearly", "quarter": "quarterly", "month": "monthly"},
          "zh": {"year": "按年", "quarter": "按季度", "month": "按月"}}
_ORDER_RE = re.compile(r'ORDER BY "((?:[^"]|"")+)" (DESC|ASC)')


def headline(ev: Evidence, *, question: str, language: str) -> str | None:
    """A plain sentence (no citation marker) answering with what the rows show; None when they say nothing."""
    if ev.kind != "sql" or not ev.rows or not ev.columns:
        return None
    zh = language == "zh"
    cols = list(ev.columns)
    for rule in (_listed, _versus, _years_compared, _period_change, _period_average, _which_period, _lookup,
                 _overrun, _growth, _share, _series, _count_per_group, _filtered_groups, _ranking, _single, _spread):
        text = rule(ev, cols, zh, question)
        if text:
            first = text.split(" ", 1)[0]
            common = first in _AGG_WORDS["en"].values()  # "average MSFT rose …" opens a sentence; "lancedb" stays
            return text[:1].upper() + text[1:] if common else text
    return None


def matched_nothing(ev: Evidence) -> bool:
    """A filtered aggregate whose count is 0: one row, an ``n`` of 0, every other cell empty."""
    if ev.kind != "sql" or len(ev.rows) != 1 or "n" not in ev.columns or " WHERE " not in (ev.sql or ""):
        return False
    row = dict(zip(ev.columns, ev.rows[0]))
    return row["n"] == 0 and all(v is None for k, v in row.items() if k != "n")


_CONDITION_RE = re.compile(r"""^\(?"((?:[^"]|"")+)" (=|<>|>=|<=|>|<|IS NULL) ?"""
                           r"""(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))?""")
_IN_RE = re.compile(r"""^"((?:[^"]|"")+)" IN \(((?:'(?:[^']|'')*'(?:, )?)+)\)$""")
_OP_WORDS = {"en": {"=": "", "<>": "other than ", ">=": "at least ", "<=": "at most ", ">": "over ", "<": "under "},
             "zh": {"=": "为", "<>": "不为", ">=": "至少为", "<=": "至多为", ">": "大于", "<": "小于"}}


def conditions(sql: str, zh: bool = False) -> list[str]:
    """The WHERE clause's simple conditions in words ("Laps 80", "Points at least 30", "without Sponsor");
    [] when any part of it is not one of those (then no sentence claims to restate it)."""
    m = re.search(r"\bWHERE (.+?)(?: GROUP BY | ORDER BY | LIMIT |\)?$)", sql)
    if m is None or "(SELECT" in m.group(1):
        return []
    out = []
    for part in re.split(r" AND (?=\(?\")", m.group(1)):
        if " IS DISTINCT FROM " in part:
            continue  # a Total row left out: not a condition the question set
        listed = _IN_RE.match(part)
        if listed is not None:  # "Nation" IN ('Australia (AUS)', 'Switzerland (SUI)')
            values = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", listed.group(2))]
            name = measure_name(listed.group(1).replace('""', '"'), zh)
            out.append(f"{name}为{'或'.join(values)}" if zh else f"{name} {' or '.join(values)}")
            continue
        c = _CONDITION_RE.match(part)
        if c is None:
            return []
        name, op = measure_name(c.group(1).replace('""', '"'), zh), c.group(2)
        value = c.group(3).replace("''", "'") if c.group(3) is not None else c.group(4)
        if op == "IS NULL" and " IS NULL OR trim(CAST(" not in part:
            return []  # only the "empty cell" test sql_build writes is restated
        if op == "IS NULL":
            out.append(f"{name}为空" if zh else f"no {name}")
        elif value is not None:
            out.append(f"{name}{_OP_WORDS['zh'][op]}{value}" if zh else f"{name} {_OP_WORDS['en'][op]}{value}")
        else:
            return []
    return out


# ---- one item across year columns (agents.offline.sql_periods) ----------------------------------

_YEAR_IN_NAME = re.compile(r"(?<![0-9])((?:19|20)\d\d)(?![0-9])")


def _item(ev: Evidence, cols: list[str]) -> str:
    label = _label_col(ev, cols)
    return _label(ev.rows[0], label) if label is not None else ""


def _period_change(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if "change" not in cols or "change_pct" not in cols or len(ev.rows) != 1:
        return None
    ci = cols.index("change")
    row, late, early = ev.rows[0], cols[ci - 2], cols[ci - 1]  # emitted as label, later, earlier, change, pct
    later, earlier = _YEAR_IN_NAME.search(late), _YEAR_IN_NAME.search(early)
    if row[ci] is None or later is None or earlier is None:
        return None
    y1, y0 = later.group(1), earlier.group(1)
    pct = f" ({fmt(row[ci + 1])}%)" if row[ci + 1] is not None else ""
    item = _item(ev, cols)
    if zh:
        return f"{item}从{y0}年的{fmt(row[ci - 1])}变为{y1}年的{fmt(row[ci - 2])}，变化{fmt(row[ci])}{pct}。"
    first = "percentage change" in question.lower() or "percent" in question.lower()
    change = f"{fmt(row[ci + 1])}%" if first and row[ci + 1] is not None else fmt(row[ci])
    rest = f" ({fmt(row[ci])})" if first else pct
    return (f"{item} changed by {change}{rest} from {y0} to {y1}: {fmt(row[ci - 1])} in {y0}, "
            f"{fmt(row[ci - 2])} in {y1}.")


def _period_average(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if "average" not in cols or len(ev.rows) != 1 or ev.rows[0][cols.index("average")] is None:
        return None
    ai = cols.index("average")
    years = [m.group(1) for c in cols[:ai] if (m := _YEAR_IN_NAME.search(c))]
    item = _item(ev, cols)
    if zh:
        return f"{item}在{'、'.join(years)}年的平均值为{fmt(ev.rows[0][ai])}。"
    return f"The average of {item} over {', '.join(years)} is {fmt(ev.rows[0][ai])}."


def _which_period(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if cols != ["year", "value"] or not ev.rows or ev.rows[0][1] is None:
        return None
    order = _order(ev)
    most = order is None or order[1] == "DESC"
    year, value = ev.rows[0]
    if zh:
        return f"{year}年的数值{'最高' if most else '最低'}，为{fmt(value)}。"
    return f"The {'largest' if most else 'smallest'} value is in {year}: {fmt(value)}."


def _versus(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """"Lake Huron has 7 more than Lake Erie (15 against 8)" (agents.offline.sql_versus)."""
    if (len(cols) != 3 or len(ev.rows) != 1 or not cols[2].startswith("difference")
            or " FILTER (WHERE " not in (ev.sql or "")):
        return None
    a, b, diff = ev.rows[0]
    if a is None or b is None or diff is None:
        return None
    what = f" {measure_name(cols[2][len('difference_'):], zh)}" if cols[2].startswith("difference_") else ""
    if zh:
        return f"{cols[0]}比{cols[1]}{'多' if diff >= 0 else '少'}{fmt(abs(diff))}{what}（{fmt(a)}对{fmt(b)}）。"
    more = "more" if diff >= 0 else "fewer"
    return f"{cols[0]} has {fmt(abs(diff))} {more}{what} than {cols[1]} ({fmt(a)} against {fmt(b)})."


def _years_compared(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """"1926 has the more Laps, 142, against 1938 (130)" for the years a question names side by side."""
    order = _order(ev)
    if (len(cols) != 2 or len(ev.rows) != 2 or order is None or order[0] != cols[1]
            or not re.search(r"year|season|年", cols[0], re.I) or " IN (" not in (ev.sql or "")):
        return None
    (y1, v1), (y2, v2) = ev.rows
    if v1 is None or v2 is None:
        return None
    name = measure_name(cols[1], zh)
    more = order[1] == "DESC"
    if zh:
        return f"{y1}年的{name}{'更高' if more else '更低'}，为{_figure(v1, cols[1])}，{y2}年为{_figure(v2, cols[1])}。"
    return (f"{y1} has the {'higher' if more else 'lower'} {name}, {_figure(v1, cols[1])}, "
            f"against {y2} ({_figure(v2, cols[1])}).")


# ---- rows by their place in the table (agents.offline.sql_position) ----------------------------

_ANCHOR_RE = re.compile(r"""rowid ([<>]) \(SELECT min\(rowid\) FROM "(?:[^"]|"")+" """
                        r"""WHERE "((?:[^"]|"")+)" = '((?:[^']|'')*)'\)""")
_ROW_ORDER_RE = re.compile(r"ORDER BY rowid (ASC|DESC) LIMIT (\d+)\)?$")


def _listed(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """A row named by its neighbour or by its place ("listed after GL-B-5: GL-B-6, Date ...")."""
    sql = ev.sql or ""
    order = _ROW_ORDER_RE.search(sql)
    if order is None:
        return None
    if cols and cols[0].startswith("sum_") and "n" in cols:  # "the last 3 games combined"
        n, total = ev.rows[0][cols.index("n")], ev.rows[0][0]
        where = "最后" if order.group(1) == "DESC" else "最前"
        if total is None:
            return None
        if zh:
            return f"{where}{fmt(n)}行的{measure_name(cols[0][4:], True)}合计{_figure(total, cols[0][4:])}。"
        return (f"The {'last' if order.group(1) == 'DESC' else 'first'} {fmt(n)} rows listed total "
                f"{_figure(total, cols[0][4:])} {measure_name(cols[0][4:])}.")
    if not cols or cols[0] != "listed":
        return None
    rows = [_row_cells(r, cols) for r in ev.rows]
    anchor = _ANCHOR_RE.search(sql)
    if anchor is not None:
        after, value = anchor.group(1) == ">", anchor.group(3).replace("''", "'")
        if zh:
            where = "之后" if after else "之前"
            return f"紧{'接' if after else '排'}在{value}{where}的是第{ev.rows[0][0]}行：{rows[0]}。"
        return f"Listed {'right after' if after else 'right before'} {value} (row {ev.rows[0][0]}): {rows[0]}."
    last = order.group(1) == "DESC"
    if zh:
        return f"{'最后' if last else '最前'}列出的行：" + "／".join(rows) + "。"
    which = "last" if last else "first"
    if len(rows) == 1:
        return f"The {which} row listed (row {ev.rows[0][0]}): {rows[0]}."
    return f"The {which} {len(rows)} rows listed: " + " / ".join(rows) + "."


def _row_cells(row: list[Any], cols: list[str]) -> str:
    cells = [(c, v) for c, v in zip(cols[1:], row[1:]) if v not in (None, "") and len(str(v)) <= _LOOKUP_CELL_CHARS]
    return ", ".join(f"{measure_name(c)} {_cell_text(c, v)}" for c, v in cells[:MAX_LOOKUP_CELLS])


# ---- rows a filter picked ---------------------------------------------------------------------

# the first equality filter of the WHERE clause ("Team" <> 'X' AND "Position" = '23rd': Position)
_FILTER_RE = re.compile(r"""\bWHERE\b(?:(?!\bGROUP BY\b|\bORDER BY\b).)*?"((?:[^"]|"")+)" = """
                        r"""(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))""")
_EMPTY_RE = re.compile(r"""\bWHERE \("((?:[^"]|"")+)" IS NULL OR """)
_COMPUTED_RE = re.compile(r"\b(?:GROUP BY|count|sum|avg|min|max|round)\s*\(|\bGROUP BY\b|\bUNION\b|\bORDER BY\b", re.I)
MAX_LOOKUP_ROWS = 3
MAX_LOOKUP_CELLS = 6
_LOOKUP_CELL_CHARS = 60


def _lookup(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """Rows picked by a value the question names, nothing computed: the rows' cells as they stand
    ("Sebastian Porto: Pos 12, Manufacturer Yamaha, Points 4.")."""
    m = _FILTER_RE.search(ev.sql or "")
    empty = _EMPTY_RE.search(ev.sql or "") if m is None else None
    picked = m or empty
    if picked is None or _COMPUTED_RE.search(ev.sql or "") or not 0 < len(ev.rows) <= MAX_LOOKUP_ROWS:
        return None
    measures = [i for i in _numeric_cols(ev, cols) if not re.search(r"year|season|年", cols[i], re.I)]
    if len(ev.rows) > 1 and measures:  # several rows with figures: the spread/ranking rules say more
        return None
    key = picked.group(1).replace('""', '"')
    ki = cols.index(key) if key in cols else None
    # the row's subject: its name (a text label that is not a number), else the value it was picked by
    li = _label_col(ev, cols)
    if li is None or re.fullmatch(r"[\d\s.,+-]*", str(ev.rows[0][li] or "")):
        li = ki
    parts = []
    for row in ev.rows:
        cells = [(c, v) for i, (c, v) in enumerate(zip(cols, row)) if i not in (ki, li) and v not in (None, "")
                 and len(str(v)) <= _LOOKUP_CELL_CHARS][:MAX_LOOKUP_CELLS]
        if not cells and li is not None and li != ki and row[li] not in (None, ""):
            parts.append(_label(row, li))  # the row's name is all it holds besides the filter
            continue
        if not cells:
            continue
        body = ("，" if zh else ", ").join(f"{measure_name(c, zh)} {_cell_text(c, v)}" for c, v in cells)
        name = _label(row, li) if li is not None else ""
        if li is not None and li == ki and re.fullmatch(r"[\d\s.,+-]*", name):  # "Pos 1", not a bare "1"
            name = f"{measure_name(cols[li], zh)} {name}"
        if li is None:
            parts.append(body)
        else:  # "Sebastian Porto: Pos 12, ..." alone; "Harbour Games (Year 2002, ...)" in a list
            parts.append(f"{name}: {body}" if len(ev.rows) == 1 else f"{name} ({body})")
    if not parts:
        return None
    key = measure_name(key, zh)
    if len(parts) == 1 and m is not None:
        return parts[0] + ("。" if zh else ".")
    if len(parts) == 1:
        return (f"{key}为空：" if zh else f"Without {key}: ") + parts[0].replace(": ", ", ", 1) + ("。" if zh else ".")
    if m is None:  # "no shirt sponsor": the rows where the column is empty
        head = f"{key}为空的行：" if zh else f"Rows without {key}: "
    else:
        value = _filter_values(ev.sql or "", m, zh)
        head = f"{key}为{value}的行：" if zh else f"Rows with {key} {value}: "
    return head + ("／" if zh else " / ").join(parts) + ("。" if zh else ".")


def _filter_value(m: re.Match[str]) -> str:
    return m.group(3) if m.group(2) is None else m.group(2).replace("''", "'")


def _filter_values(sql: str, m: re.Match[str], zh: bool) -> str:
    """Every value the WHERE clause allows in the first filtered column ("Berlin or Daegu"), not just the first."""
    quoted = re.escape(f'"{m.group(1)}"')
    found = re.findall(rf"{quoted} = (?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))", sql.split(" WHERE ", 1)[-1])
    values = list(dict.fromkeys(text.replace("''", "'") if text or not number else number for text, number in found))
    return ("或" if zh else " or ").join(values) if len(values) > 1 else _filter_value(m)


def _filtered_groups(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """Counts per category among rows a filter picked ("which competition did she finish first"):
    the categories are the answer, listed."""
    m = _FILTER_RE.search(ev.sql or "")
    if m is None or "n" not in cols or len(cols) != 2 or not 0 < len(ev.rows) <= 8:
        return None
    ni, gi = cols.index("n"), 1 - cols.index("n")
    if gi in _numeric_cols(ev, cols):  # a total beside the count, not categories
        return None
    quoted = '"' + cols[gi].replace('"', '""') + '"'
    if re.search(re.escape(quoted) + r" (?:=|IN\b)", (ev.sql or "").split(" GROUP BY ")[0]):
        return None  # the categories were named in the question: counting them answers nothing asked
    key, value = measure_name(m.group(1).replace('""', '"'), zh), _filter_value(m)
    listed = [f"{_label(r, gi)} ({fmt(r[ni])})" for r in ev.rows]
    if zh:
        return f"{key}为{value}的{cols[gi]}：{'、'.join(listed)}。"
    return f"{measure_name(cols[gi])} with {key} {value}: {', '.join(listed)}."


def _cell_text(column: str, value: Any) -> str:
    """A year stays a year ("Year 1997", not "1,997"); other figures as ``fmt`` writes them."""
    if isinstance(value, int) and 1000 <= value <= 2100 and re.search(r"year|season|年", column, re.I):
        return str(value)
    return _figure(value, column) if _is_num(value) else fmt(value)


# ---- formatting -------------------------------------------------------------------------------

def fmt(value: Any) -> str:
    """A row value as a figure the verifier will match: thousands separators, rounding it tolerates."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if round(value, 2) == value:  # a figure as recorded (a price of 29.96): written as recorded, not rounded
        return f"{value:,.2f}".rstrip("0").rstrip(".") if round(value, 1) == value else f"{value:,.2f}"
    for digits in (0, 1, 2, 3, 4, 6) if abs(value) >= 100 else (1, 2, 3, 4, 6) if abs(value) >= 1 else (3, 4, 6, 8):
        text = f"{value:,.{digits}f}"
        numbers = find_numbers(text.lstrip("-"))
        if numbers and supported(numbers[0], [abs(float(value))]):
            return text
    return repr(value)


def _pct(value: Any) -> str:
    text = fmt(value)
    return ("+" + text if isinstance(value, (int, float)) and value > 0 else text) + "%"


def _period(value: Any, grain: str, zh: bool) -> str:
    """'2010', 'Q1 2010', 'January 2010' (or 2010年, 2010年Q1, 2010年1月): dates, never checked as claims."""
    m = re.match(r"(\d{4})-(\d{2})", str(value))
    if not m:
        return str(value)
    year, month = int(m.group(1)), int(m.group(2))
    if grain == "year":
        return f"{year}年" if zh else str(year)
    if grain == "quarter":
        return f"{year}年Q{(month - 1) // 3 + 1}" if zh else f"Q{(month - 1) // 3 + 1} {year}"
    if grain == "month" or re.fullmatch(r"\d{4}-\d{2}-01", str(value)):
        names = "January February March April May June July August September October November December".split()
        return f"{year}年{month}月" if zh else f"{names[month - 1]} {year}"
    return str(value)[:10]


def measure_name(alias: str, zh: bool = False) -> str:
    """'avg_size_kb' -> 'average size'; units are dropped here and written after the figure."""
    parts = alias.split("_")
    # c_2019 (avg_c_2019): a name that began with a digit, prefixed on import
    parts = [p for i, p in enumerate(parts) if not (p == "c" and i + 1 < len(parts) and parts[i + 1][:1].isdigit())]
    agg = _AGG_WORDS["zh" if zh else "en"].get(parts[0]) if len(parts) > 1 else None
    words = [p for p in (parts[1:] if agg else parts) if p.lower() not in _UNITS] or parts
    name = re.sub(r"\.(?=\s|$)", "", " ".join(words))  # "Reg. Season": a full stop would end the sentence there
    return f"{agg}{name}" if agg and zh else f"{agg} {name}" if agg else name


def _unit(alias: str) -> str:
    units = [p for p in alias.split("_") if p.lower() in _UNITS and p.lower() != "pct"]
    return " " + units[-1].upper() if units and units[-1].lower() not in ("kb", "mb", "gb", "tb") else \
        (" " + units[-1] if units else "")


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _figure(value: Any, alias: str) -> str:
    return fmt(value) + _unit(alias)


# ---- column roles -----------------------------------------------------------------------------

def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric_cols(ev: Evidence, cols: list[str]) -> list[int]:
    return [i for i in range(len(cols)) if any(_is_num(r[i]) for r in ev.rows)
            and all(r[i] is None or _is_num(r[i]) for r in ev.rows)]


def _label_col(ev: Evidence, cols: list[str]) -> int | None:
    nums = set(_numeric_cols(ev, cols))
    return next((i for i in range(len(cols)) if i not in nums and cols[i] not in _PERIODS
                 and any(isinstance(r[i], str) for r in ev.rows) and not _looks_date(ev.rows[0][i])), None)


def _looks_date(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"\d{4}-\d{2}(-\d{2})?", value) is not None


def _order(ev: Evidence) -> tuple[str, str] | None:
    found = list(_ORDER_RE.finditer(ev.sql or ""))
    m = found[-1] if found else None  # the outermost (last) ORDER BY decides
    return (m.group(1).replace('""', '"'), m.group(2)) if m else None


def _label(row: list[Any], i: int | None) -> str:
    if i is None or row[i] is None:
        return "—"
    value = str(row[i])
    return value[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]00:00:00", value) else value  # a day, not midnight


# ---- rules ------------------------------------------------------------------------------------

def _overrun(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if "overrun_pct" not in cols or "overrun" not in cols:
        return None
    pi, oi = cols.index("overrun_pct"), cols.index("overrun")
    label = _label_col(ev, cols)
    row = next((r for r in ev.rows if r[pi] is not None), None)
    if row is None or oi < 2:
        return None
    budget, actual = cols[oi - 2], cols[oi - 1]  # emitted as label, budget, actual, overrun, overrun_pct
    order = _order(ev)
    most = order is None or order[1] == "DESC"
    name = _label(row, label)
    if most and row[pi] <= 0:  # nobody overran: say so, then the closest one
        if zh:
            return (f"没有项目超出预算；最接近的是{name}：{measure_name(actual, True)} {_figure(row[oi - 1], actual)}，"
                    f"{measure_name(budget, True)} {_figure(row[oi - 2], budget)}（{_pct(row[pi])}）。")
        return (f"None overran: the closest is {name}, {measure_name(actual)} of {_figure(row[oi - 1], actual)} "
                f"against {measure_name(budget)} of {_figure(row[oi - 2], budget)} ({_pct(row[pi])}).")
    if zh:
        kind = "超支比例最高" if most else "超支比例最低"
        return (f"{name}{kind}：{measure_name(actual, True)} {_figure(row[oi - 1], actual)}，"
                f"{measure_name(budget, True)} {_figure(row[oi - 2], budget)}（{_pct(row[pi])}）。")
    kind = "the largest overrun" if most else "the smallest overrun"
    return (f"{name} has {kind}: {measure_name(actual)} of {_figure(row[oi - 1], actual)} against "
            f"{_article(measure_name(budget))} of {_figure(row[oi - 2], budget)} ({_pct(row[pi])}).")


def _growth(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    changes = [c for c in cols if c.endswith("_change_pct")]
    if not changes or "first_period" not in cols or "last_period" not in cols:
        return None
    row = ev.rows[0]
    grain = next((g for g in _PERIODS if f"({g})" in (ev.sql or "") or f"'{g}'" in (ev.sql or "")), "")
    p0 = _period(row[cols.index("first_period")], grain, zh)
    p1 = _period(row[cols.index("last_period")], grain, zh)
    parts = []
    for change in changes[:3]:
        base = change[: -len("_change_pct")]
        first, last = row[cols.index(base + "_first")], row[cols.index(base + "_last")]
        pct = row[cols.index(change)]
        if first is None or last is None or pct is None:
            continue
        name = measure_name(base, zh)
        if zh:
            verb = "上升" if pct > 0 else "下降" if pct < 0 else "持平"
            parts.append(f"{name}从{p0}的{fmt(first)}{verb}至{p1}的{fmt(last)}（{_pct(pct)}）")
        else:
            verb = "rose" if pct > 0 else "fell" if pct < 0 else "was flat"
            parts.append(f"{name} {verb} from {fmt(first)} in {p0} to {fmt(last)} in {p1} ({_pct(pct)})")
    if not parts:
        return None
    avg = "avg(" in (ev.sql or "")
    note = ("（按年平均）" if grain == "year" else "（按期平均）") if zh and avg else \
        f" ({_GRAIN['en'].get(grain, 'period')} averages)" if avg else ""
    return _join(parts, zh) + note + ("。" if zh else ".")


def _share(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if "share_pct" not in cols:
        return None
    si, label = cols.index("share_pct"), _label_col(ev, cols)
    top = ev.rows[0]
    rest = [f"{_label(r, label)} ({_pct(r[si]).lstrip('+')})" for r in ev.rows[1:3] if r[si] is not None]
    if zh:
        return f"{_label(top, label)}占比最大，为{_pct(top[si]).lstrip('+')}{_runners_up(rest, True)}。"
    return f"{_label(top, label)} has the largest share, {_pct(top[si]).lstrip('+')}{_runners_up(rest, False)}."


def _series(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if not ev.rows or not (cols[0] in _PERIODS or _looks_date(ev.rows[0][0])) or len(ev.rows) < 2:
        return None
    order = _order(ev)
    if order is not None and order[0] != cols[0]:
        return None  # dated rows ordered by a measure: a ranking of days, not a series
    grain = cols[0] if cols[0] in _PERIODS else "month" if "month" in cols[0].lower() else ""
    nums = [i for i in _numeric_cols(ev, cols) if i > 0]
    if not nums or _label_col(ev, cols) is not None:
        return None  # a series per category: the table says it better than one sentence
    parts = []
    for i in nums[:2]:
        pts = [(r[0], r[i]) for r in ev.rows if r[i] is not None]
        if len(pts) < 2:
            continue
        (p0, v0), (p1, v1) = pts[0], pts[-1]
        peak = max(pts, key=lambda p: p[1])
        name = measure_name(cols[i], zh)
        if zh:
            inside = peak not in (pts[0], pts[-1])
            peak_txt = f"，峰值为{_period(peak[0], grain, True)}的{fmt(peak[1])}" if inside else ""
            start, end = _period(p0, grain, True), _period(p1, grain, True)
            parts.append(f"{name}从{start}的{fmt(v0)}变为{end}的{fmt(v1)}{peak_txt}")
        else:
            verb = "rose" if v1 > v0 else "fell" if v1 < v0 else "stayed"
            peak_txt = f", peaking at {fmt(peak[1])} in {_period(peak[0], grain, False)}" \
                if peak not in (pts[0], pts[-1]) else ""
            parts.append(f"{name} {verb} from {fmt(v0)} in {_period(p0, grain, False)} to {fmt(v1)} in "
                         f"{_period(p1, grain, False)}{peak_txt}")
    if not parts:
        return None
    grain_word = _GRAIN["zh" if zh else "en"].get(grain)
    if zh:
        return _join(parts, True) + (f"（{grain_word}）" if grain_word and grain != "month" else "") + "。"
    note = f" ({grain_word} figures)" if grain_word and grain != "month" else ""
    return _join(parts, False) + note + "."


def _runners_up(rest: list[str], zh: bool) -> str:
    """', followed by B (7) and C (5)' after the leader; '' when it leads alone."""
    if not rest:
        return ""
    return "，其次是" + "、".join(rest) if zh else ", followed by " + " and ".join(rest)


def _join(parts: list[str], zh: bool) -> str:
    # One sentence, so that the one citation the caller appends covers every figure (";" would split it).
    return "，".join(parts) if zh else ", while ".join(parts)


def _count_per_group(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if "n" not in cols or len(cols) != 2 or (_order(ev) or ("", ""))[0] != "n":
        return None
    ni, gi = cols.index("n"), 1 - cols.index("n")
    top = ev.rows[0]
    unit = _unit_noun(ev)
    rest = [f"{_label(r, gi)} ({fmt(r[ni])})" for r in ev.rows[1:3]]
    common = intent(question).mode
    if zh:
        lead = f"最常见的{cols[gi]}是{_label(top, gi)}" if common else f"{_label(top, gi)}的数量最多"
        return f"{lead}（{fmt(top[ni])}）{_runners_up(rest, True)}。"
    tail = ", ahead of " + " and ".join(rest) if rest else ""
    if common:
        return f"The most common {cols[gi].replace('_', ' ')} is {_label(top, gi)}, with {fmt(top[ni])}{unit}{tail}."
    return f"{_label(top, gi)} has the most{unit or ' entries'}, {fmt(top[ni])}{tail}."


def _unit_noun(ev: Evidence) -> str:
    name = (ev.tables or [""])[0]
    return f" {name}" if re.fullmatch(r"[a-z]+s", name) else ""


def _is_series(ev: Evidence, cols: list[str]) -> bool:
    return cols[0] in _PERIODS or _looks_date(ev.rows[0][0])


def _ranking(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    order = _order(ev)
    if order is None or order[0] not in cols or order[0] == cols[0]:
        return None
    mi, label = cols.index(order[0]), _label_col(ev, cols)
    if label is None and _is_series(ev, cols):
        label = 0  # rows named by their date: "2003-09-03 has the highest Close"
    if label is None or not _numeric_cols(ev, cols):
        return None
    rows = [r for r in ev.rows if r[mi] is not None]
    if not rows:
        return None
    top, alias = rows[0], order[0]
    most = order[1] == "DESC"
    rest = [f"{_label(r, label)} ({_figure(r[mi], alias)})" for r in rows[1:3]]
    name = measure_name(alias, zh)
    if zh:
        return (f"{_label(top, label)}的{name}{'最高' if most else '最低'}，为{_figure(top[mi], alias)}"
                f"{_runners_up(rest, True)}。")
    return (f"{_label(top, label)} has the {'highest' if most else 'lowest'} {name}, {_figure(top[mi], alias)}"
            f"{_runners_up(rest, False)}.")


_ASKS_FIGURE_OPS = frozenset({"average", "total", "count", "top", "bottom", "compare", "trend"})


def is_overview(ev: Evidence, question: str) -> bool:
    """A whole table's avg/min/max with no filter, grouping or order, for a question that asks for no
    aggregate: a description of the table, not an answer ("Average Year 2,000 (from 1,997 to 2,004)")."""
    sql = ev.sql or ""
    if ev.kind != "sql" or re.search(r"\b(?:WHERE|GROUP BY|ORDER BY)\b", sql) or not re.search(r"\bavg\(", sql):
        return False
    return not intent(question).ops & _ASKS_FIGURE_OPS


def _single(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    if len(ev.rows) != 1:
        return None
    nums = _numeric_cols(ev, cols)
    label = _label_col(ev, cols)
    pairs = [(cols[i], ev.rows[0][i]) for i in nums if ev.rows[0][i] is not None]
    if len(pairs) > 1 or (pairs and pairs[0][1] == 0):  # a count beside the measures (or of nothing) says little
        pairs = [p for p in pairs if p[0] != "n"]
    if not pairs:
        return None
    if [c for c, _ in pairs] == ["n"] and label is None:
        conds = conditions(ev.sql or "", zh)
        if conds and zh:
            return f"{'且'.join(conds)}的行共有{fmt(pairs[0][1])}行。"
        if conds:
            rows = "row has" if pairs[0][1] == 1 else "rows have"
            return f"{fmt(pairs[0][1])} {rows} {' and '.join(conds)}."
        return f"数量为{fmt(pairs[0][1])}。" if zh else f"The count is {fmt(pairs[0][1])}."
    subject = f"{_label(ev.rows[0], label)}: " if label is not None else ""
    conds = conditions(ev.sql or "", zh) if label is None else []
    if conds:  # "Year 1926: Laps 142": the figures of the rows the question picked, named by how
        subject = ("，".join(conds) if zh else " and ".join(conds)) + ("：" if zh else ": ")
    body = _stats(dict(pairs), zh)
    if zh:
        return subject + "，".join(body) + "。"
    text = subject + ", ".join(body)
    return text[0].upper() + text[1:] + "."


def _stats(values: dict[str, Any], zh: bool) -> list[str]:
    """avg/min/max of one column as one phrase: 'average cost 740,000 CNY (from 500,000 to 1,000,000 CNY)'."""
    out, done = [], set()
    for alias in values:
        fn, _, base = alias.partition("_")
        trio = {f: values.get(f"{f}_{base}") for f in ("avg", "min", "max")} if fn in ("avg", "min", "max") else {}
        if trio.get("avg") is not None and trio.get("min") is not None and trio.get("max") is not None:
            if base in done:
                continue
            done.add(base)
            name, lo, hi = measure_name(base, zh), trio["min"], trio["max"]
            if lo == hi:
                out.append(f"{name}为{_figure(lo, base)}" if zh else f"{name} {_figure(lo, base)}")
            elif zh:
                out.append(f"{name}平均{_figure(trio['avg'], base)}（{_figure(lo, base)}至{_figure(hi, base)}）")
            else:
                out.append(f"average {name} {_figure(trio['avg'], base)} (from {_figure(lo, base)} to "
                           f"{_figure(hi, base)})")
        else:
            out.append(f"{measure_name(alias, zh)}为{_figure(values[alias], alias)}" if zh
                       else f"{measure_name(alias)} {_figure(values[alias], alias)}")
    return out[:3]


def _spread(ev: Evidence, cols: list[str], zh: bool, question: str) -> str | None:
    """Several labelled rows in no asked order: where the first measure is highest and lowest."""
    # a year column dates the rows; "Year is highest for Swiss Music Awards (2009)" answers nothing
    label = _label_col(ev, cols)
    nums = [i for i in _numeric_cols(ev, cols) if cols[i] != "n" and not re.search(r"year|season|年", cols[i], re.I)]
    if label is None or not nums or len(ev.rows) < 2 or _is_series(ev, cols):
        return None
    mi = nums[0]
    rows = [r for r in ev.rows if r[mi] is not None]
    if len(rows) < 2:
        return None
    hi, lo = max(rows, key=lambda r: r[mi]), min(rows, key=lambda r: r[mi])
    name, alias = measure_name(cols[mi], zh), cols[mi]
    if zh:
        return (f"{name}最高的是{_label(hi, label)}（{_figure(hi[mi], alias)}），"
                f"最低的是{_label(lo, label)}（{_figure(lo[mi], alias)}）。")
    return (f"{name[0].upper() + name[1:]} is highest for {_label(hi, label)} ({_figure(hi[mi], alias)}) and lowest "
            f"for {_label(lo, label)} ({_figure(lo[mi], alias)}).")
