"""Tidy a freshly staged table the way an analyst would read it: header rows that continue the header,
and figures written as text ("$1,496.5", "(9,819)", "12%", "—") become numbers.

Spreadsheets exported from reports often carry a two- or three-row header: the file's header row holds
a caption over blank cells (``col_1,col_2,years_ended_september_30,col_4``), the next row the years
(``,2019,2018,2017``) and maybe a unit row (``,,(in millions),``). Such leading rows are folded into the
column names (a year names its column ``c_2019``; other words join the name) and units go to the
column's catalog description (a DuckDB column comment, read by ``tools.table_stats``). Then every text
column whose values are all figures (currency signs, thousands separators, parentheses for negatives,
percent signs, dashes for nothing) is converted to a number; a column of bare digit strings with a
leading zero (codes, ZIP codes) stays text.

Only a few leading rows are read in Python; the conversion is one DuckDB statement over the stage, under
the import's deadline and memory limit like every other statement.
"""

from __future__ import annotations

import re

import duckdb

from tools.sql_names import identifier, suffixed
from tools.table_stats import quote

MAX_HEADER_ROWS = 3
_GENERIC = re.compile(r"^(col(umn)?_?\d+|unnamed_?\d*|c\d+)$", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_UNIT = re.compile(r"[$€£¥%]|\b(?:in\s+)?(?:millions?|thousands?|billions?)\b|^[(]?\s*[’']?000s?\s*[)]?$", re.I)
SPACES = "\u00a0\u202f"  # no-break and narrow no-break spaces group thousands too ("139 000")
# A figure as reports write it ("1,234", "139 000"); RE2 syntax (DuckDB's regexp_full_match) and Python agree
# on this subset.
FIGURE = (r"\(?\s*[-−]?\s*(?:US\$|[$€£¥])?\s*\(?\s*[-−]?\s*"
          r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ " + SPACES + r"]\d{3})+|\d+)"
          r"(?:\.\d+)?\s*%?\s*\)?\s*%?|\.\d+\s*%?")
# No figure: dashes (with a currency or percent sign: "$—", "- - %"), n/a, nm; a section title ("Assets:").
NOTHING = r"[-—–−\s$€£¥%*]*|(?i:n/?a|nm)|.*:"
_FIGURE_RE = re.compile(FIGURE)


def tidy_stage(con: duckdb.DuckDBPyConnection, stage: str) -> None:
    """Fold header-continuation rows into the column names, then convert figure columns to numbers."""
    schema = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {quote(stage)}").fetchall()]
    names = [n for n, _ in schema]
    head = con.execute(f"SELECT * FROM {quote(stage)} ORDER BY rowid LIMIT {MAX_HEADER_ROWS + 1}").fetchall()
    header_rows = _header_rows(head, names)
    new_names, notes = (_names_from(names, head[:header_rows]) if header_rows else (names, {}))
    texts = [n for n, t in schema if t == "VARCHAR"]
    numeric = _figure_columns(con, stage, texts, header_rows)
    if not header_rows and not numeric:
        return
    exprs = []
    for old, new in zip(names, new_names):
        source = quote(old)
        if old in numeric:
            source = _to_number(quote(old), numeric[old])
            notes[new] = _join(notes.get(new, ""), "converted from text figures")
        exprs.append(f"{source} AS {quote(new)}")
    tidy = f"{stage}_tidy"
    con.execute(f"CREATE TABLE {quote(tidy)} AS SELECT {', '.join(exprs)} FROM {quote(stage)} "
                f"WHERE rowid >= {header_rows} ORDER BY rowid")
    con.execute(f"DROP TABLE {quote(stage)}")
    con.execute(f"ALTER TABLE {quote(tidy)} RENAME TO {quote(stage)}")
    for column, note in notes.items():
        if note:
            con.execute(f"COMMENT ON COLUMN {quote(stage)}.{quote(column)} IS '{note.replace(chr(39), chr(39) * 2)}'")


# ---- header continuation -------------------------------------------------------------------------

def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():  # a spreadsheet's 2024 arrives as 2024.0
        return str(int(value))
    return "" if value is None else str(value).strip()


def _year(cell: str) -> str | None:
    squeezed = re.sub(r"(?<=\d) (?=\d)", "", cell)  # "2 0 1 8"
    m = _YEAR.search(squeezed)
    return m.group(1) if m else None


def _is_figure(cell: str) -> bool:
    return bool(_FIGURE_RE.fullmatch(cell)) and _year(cell) != cell


def _header_like(row: tuple, names: list[str]) -> bool:
    """A row that continues the header: years, units or captions, no figures, no section labels."""
    cells = [_cell(v) for v in row]
    rest = [c for c in cells[1:] if c]
    if not rest or any(c.endswith(":") or _is_figure(c) for c in rest):
        return False
    # a bare year under a real column name may be data (a score of 2019): only blank header cells take it
    if any(_year(c) == c for c in rest) and not any(_GENERIC.match(names[i]) for i, c in enumerate(cells) if i and c):
        return False
    if cells[0]:  # "For the year ended December 31:", 2019, 2018: only a row of years is unambiguous
        return all(_year(c) for c in rest) and len(rest) == len(cells) - 1
    # a row of one caption under a non-generic header is more likely a section title than a header
    first = 1 + next(i for i, c in enumerate(cells[1:]) if c)  # rest is not empty: there is one
    return len(rest) > 1 or bool(_year(rest[0]) or _UNIT.search(rest[0])) or _GENERIC.match(names[first]) is not None


def _header_rows(head: list[tuple], names: list[str]) -> int:
    if len(names) < 2 or len(head) < 2:
        return 0
    n = 0
    while n < min(MAX_HEADER_ROWS, len(head) - 1) and _header_like(head[n], names):
        n += 1
    return n


def column_name(text: str) -> str:
    """A safe lowercase identifier (tools.sql_names, as tables are named): a leading digit gets ``c_``."""
    name = identifier(text, "col")
    return f"c_{name}" if name[0].isdigit() else name


def _names_from(names: list[str], rows: list[tuple]) -> tuple[list[str], dict[str, str]]:
    """Column names from the header and its continuation rows; units become notes on the column."""
    out, units, years = [], [], []
    for i, name in enumerate(names):
        cells = [_cell(r[i]) for r in rows if i < len(r)]
        year = next((y for c in cells if (y := _year(c))), None)
        unit = [_YEAR.sub("", c).strip() for c in cells if c and _UNIT.search(c)]
        words = [c for c in cells if c and not _UNIT.search(c) and not _year(c)]
        if i == 0 and _GENERIC.match(name):
            base = "item"  # the row labels
            unit = [c for c in cells if c and _UNIT.search(c)]
        elif year:
            base = f"c_{year}"
        elif _GENERIC.match(name) and words:
            base = column_name(" ".join(words))
        else:
            base = name
        out.append(base)
        years.append(year)
        units.append("; ".join(dict.fromkeys(unit)))
    out = _disambiguate(out, names, years)
    notes = {}
    for i, (new, unit_note) in enumerate(zip(out, units)):
        parts = [f"header: {' / '.join(c for c in [names[i]] + [_cell(r[i]) for r in rows] if c)}"]
        if unit_note:
            parts.append(f"unit: {unit_note}")
        notes[new] = "; ".join(parts)
    # a unit row written once over the figure columns ("(in millions)") holds for every figure column
    shared = [u for u in units if u and not _UNIT.fullmatch(u)]
    if len(set(shared)) == 1:
        for i, new in enumerate(out):
            if i and not units[i]:
                notes[new] = _join(notes[new], f"unit: {shared[0]}")
    return out, notes


def _disambiguate(out: list[str], names: list[str], years: list[str | None]) -> list[str]:
    """Two "2019" columns under "domestic" and "international" become domestic_2019, international_2019."""
    result: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(out):
        if out.count(name) > 1 and years[i]:
            group = next((names[j] for j in range(i, -1, -1) if not _GENERIC.match(names[j])), None)
            if group and not _YEAR.fullmatch(group):
                name = column_name(f"{group}_{years[i]}")
        result.append(suffixed(name, seen))
    return result


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


# ---- figures as text -----------------------------------------------------------------------------

def _figure_columns(con: duckdb.DuckDBPyConnection, stage: str, texts: list[str], skip: int) -> dict[str, str]:
    """Text columns whose every value (after ``skip`` header rows) is a figure or a dash: name -> type."""
    if not texts:
        return {}
    exprs = []
    for name in texts:
        v = f"trim({quote(name)})"
        real = f"NOT regexp_full_match({v}, '{NOTHING}')"
        exprs += [f"count(*) FILTER (WHERE {real} AND NOT regexp_full_match({v}, '{FIGURE}'))",
                  f"count(*) FILTER (WHERE {real})",
                  f"count(*) FILTER (WHERE {real} AND regexp_matches({v}, '[$€£¥,%() {SPACES}]'))",
                  f"count(*) FILTER (WHERE {real} AND regexp_full_match({v}, '0\\d+'))",
                  f"count(*) FILTER (WHERE {real} AND regexp_matches({v}, '[.%]'))"]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {quote(stage)} WHERE rowid >= {skip}").fetchall()[0]
    out = {}
    for i, name in enumerate(texts):
        bad, real, marked, zero_led, decimal = row[5 * i: 5 * i + 5]
        # bare digits stay text unless header rows made the column text (codes keep their zeros)
        if bad == 0 and real > 0 and zero_led == 0 and (marked or skip):
            out[name] = "DOUBLE" if decimal else "BIGINT"
    return out


def _to_number(column: str, kind: str) -> str:
    v = f"trim({column})"
    digits = f"regexp_replace({v}, '[^0-9.]', '', 'g')"
    negative = f"(regexp_matches({v}, '^[^0-9]*[(]') OR regexp_matches({v}, '^[^0-9]*[-−]'))"
    number = f"TRY_CAST({digits} AS DOUBLE)"
    value = f"CASE WHEN {negative} THEN -{number} ELSE {number} END"
    if kind == "BIGINT":
        value = f"CAST({value} AS BIGINT)"
    return f"CASE WHEN {column} IS NULL OR regexp_full_match({v}, '{NOTHING}') THEN NULL ELSE {value} END"
