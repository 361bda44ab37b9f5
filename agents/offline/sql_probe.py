"""Which phrases of a question are values of a table's text columns, asked of the tables themselves.

The catalog holds only a column's most frequent values; a question naming a row label ("Appliances",
"Sebastian Porto") that is not among them would link to nothing. Before SQL is built, the question's
phrases (word n-grams) are looked up in every text column with a few UNION ALL statements; the values
found join that column's samples in a copy of the catalog, so linking treats them like any sample.
Phrases are bound as escaped literals and compared to a normalised cell (lowercase, punctuation as
spaces); the statements are read-only SELECTs under the same guard as every other query. Tables over
``MAX_TABLE_ROWS`` rows are not scanned (a question must not cost a full scan of a large table).
"""

from __future__ import annotations

import re
from typing import Any

from agents.offline.schema_link import ORDINALS, TOTAL_LABELS, is_list_column, is_place, is_text
from agents.offline.sql_parts import ident, literal
from tools.models import TableInfo
from tools.sqlcheck import SqlFailed, SqlRefused, SqlTimeout

MAX_WORDS = 8  # the longest phrase looked up
MAX_STATEMENT = 15_000  # characters per statement, under the guard's limit
MAX_FOUND = 40
MAX_TABLE_ROWS = 200_000  # bigger tables are not scanned per question; their samples still link
ORDINAL_FORMS = frozenset(ORDINALS.values())
_STOP = frozenset("a an the of in on at to for from by and or is are was were be been what which who whom whose when "
                  "where why how many much did does do has have had this that these those with as it its than then "
                  "there their more most less least between".split())


def phrases(text: str) -> list[str]:
    """Word n-grams to look up. A single word only when written as a name (capitalised after the first
    word, or with a digit: "Appliances", "1st"): an everyday word alone matches cells of many tables.
    A question written all in lower case shows no names, so there every word of four letters or more is
    looked up ("berlin"); a cell must equal it whole to count."""
    tokens = re.findall(r"[A-Za-z0-9]+", text)
    lowered = not any(w[:1].isupper() for w in tokens[1:])  # "which competition was held in berlin": no capitals
    named = {w.lower() for i, w in enumerate(tokens)
             if (i and w[:1].isupper()) or (re.search(r"\d", w) and not w.isdigit())
             or (lowered and i and len(w) >= 4 and w.isalpha())}
    words = re.findall(r"[a-z0-9]+", text.lower())
    words += ["|"] + [ORDINALS[w] for i, w in enumerate(words) if is_place(words, i)]  # "finished first": a cell '1st'
    out = []
    for n in range(1, MAX_WORDS + 1):
        for i in range(len(words) - n + 1):
            gram = words[i:i + n]
            if "|" in gram or gram[0] in _STOP or gram[-1] in _STOP or (n == 1 and (
                    len(gram[0]) < 3 or gram[0].isdigit() or (gram[0] not in named and gram[0] not in ORDINAL_FORMS))):
                continue
            out.append(" ".join(gram))
    return list(dict.fromkeys(out))


def _norm(column: str) -> str:
    return _norm_expr(ident(column))


def _norm_expr(expr: str) -> str:
    # "(Note 2)", "(1)": footnote marks are not part of the name a question writes
    bare = f"regexp_replace(lower(CAST({expr} AS VARCHAR)), '[(][^)]*[)]', ' ', 'g')"
    return f"trim(regexp_replace({bare}, '[^a-z0-9]+', ' ', 'g'))"


def probe_statements(text: str, catalog: list[TableInfo], *, grams: list[str] | None = None,
                     lists: bool = True) -> list[str]:
    """Statements looking the question's phrases (or ``grams``) up as whole cells, and, with ``lists``,
    as items of listing cells ("United" in "United, Continental")."""
    grams = phrases(text) if grams is None else grams
    if not grams:
        return []
    head = "WITH q(p) AS (VALUES " + ", ".join(f"({literal(g)})" for g in grams) + ") "
    parts = [f"SELECT DISTINCT {literal(t.name)} AS t, {literal(c.name)} AS c, {ident(c.name)} AS v "
             f"FROM {ident(t.name)} WHERE {_norm(c.name)} IN (SELECT p FROM q)"
             for t in catalog if t.row_count <= MAX_TABLE_ROWS for c in t.columns if is_text(c)]
    if lists:  # "United" in a cell "United, Continental", "5th" in "5th, Western": an item of a listing cell
        parts += [f"SELECT DISTINCT {literal(t.name)} AS t, {literal(c.name)} AS c, trim(e) AS v FROM (SELECT "
                  f"unnest(string_split(CAST({ident(c.name)} AS VARCHAR), ',')) AS e FROM {ident(t.name)} WHERE "
                  f"CAST({ident(c.name)} AS VARCHAR) LIKE '%,%') WHERE {_norm_expr('e')} IN (SELECT p FROM q)"
                  for t in catalog if t.row_count <= MAX_TABLE_ROWS for c in t.columns if is_list_column(c)]
    out: list[str] = []
    batch: list[str] = []
    for part in parts:
        if batch and len(head) + sum(len(p) + 11 for p in batch) + len(part) > MAX_STATEMENT:
            out.append(_statement(head, batch))
            batch = []
        batch.append(part)
    if batch and len(head) + len(batch[0]) < MAX_STATEMENT:
        out.append(_statement(head, batch))
    return out


def _statement(head: str, parts: list[str]) -> str:
    # ordered before the limit: the same question and tables find the same values (reports are deterministic)
    return f"{head}SELECT t, c, v FROM ({' UNION ALL '.join(parts)}) ORDER BY t, c, v LIMIT {MAX_FOUND}"


def with_values(catalog: list[TableInfo], found: list[tuple[str, str, Any]]) -> list[TableInfo]:
    """A copy of the catalog whose columns also list the values found."""
    extra: dict[tuple[str, str], list[str]] = {}
    for table, column, value in found:
        if isinstance(value, str) and value.strip():
            extra.setdefault((table, column), []).append(value)
    for key, values in extra.items():  # "Total liabilities" found: "Liabilities" is part of it, not a second row
        extra[key] = [v for v in values if not any(_words(v) != _words(w) and _words(v) in _words(w) for w in values)]
    if not extra:
        return catalog
    out = []
    for t in catalog:
        cols = [c.model_copy(update={"samples": list(dict.fromkeys(c.samples + extra[(t.name, c.name)]))})
                if (t.name, c.name) in extra else c for c in t.columns]
        out.append(t.model_copy(update={"columns": cols}) if cols != t.columns else t)
    return out


def _words(value: str) -> str:
    """' free cash flow ' for "Free cash flow (pre-spectrum)": words without footnotes, padded for containment."""
    return f" {' '.join(re.findall('[a-z0-9]+', re.sub(r'[(].*?[)]', ' ', value.lower())))} "


async def probed_catalog(kb: Any, text: str, catalog: list[TableInfo]) -> list[TableInfo]:
    """The catalog with the question's phrases that are cell values added to their columns' samples."""
    found: list[tuple[str, str, Any]] = []
    # A "Total" row is looked for whatever the question (it must not lead a ranking or be counted twice),
    # in statements of its own so its finds never crowd the question's out of a statement's LIMIT.
    totals = probe_statements(text, catalog, grams=list(TOTAL_LABELS), lists=False)
    for sql in [*probe_statements(text, catalog), *totals]:
        try:
            result = await kb.sql(sql)
        except (SqlFailed, SqlRefused, SqlTimeout):  # a probe that fails only loses its hints
            continue
        found += [tuple(r) for r in result.rows]
    return with_values(catalog, found)
