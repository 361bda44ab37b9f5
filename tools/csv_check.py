"""Refuse a CSV whose rows do not split into one set of columns, naming the problem.

DuckDB's sniffer copes with a malformed file by guessing: a ragged file (rows with more or fewer
fields than the header) or an unbalanced quote became one column of raw lines, or the leading rows
were skipped silently. Here the whole file is read once more with Python's C csv parser in the
dialect DuckDB chose, and the first problem is reported with its line number:

* "ragged CSV: line 4 has 4 fields, line 1 has 3"
* "unbalanced quote: a quoted field opened before line 2 never closes"
* "malformed CSV at line 7: ..." (a stray character after a closing quote, …)

Leading rows DuckDB skips are allowed only when they hold no delimiter (a title line above the
table); skipped rows that hold data count like any other row.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from tools.table_limits import Deadline, TableImportError

_CANDIDATES = (",", ";", "\t", "|")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # one field may be large; bytes are capped elsewhere


def check_csv(
    path: str | Path, *, delimiter: str, quote: str, escape: str, skip_rows: int, columns: int,
    deadline: Deadline,
) -> None:
    """Raise ``TableImportError`` naming the first structural problem of the CSV at ``path``."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline()
        if columns == 1:
            # One column: either a real one-column file, or DuckDB gave up on a ragged one.
            delimiter = max(_CANDIDATES, key=first.count) if any(c in first for c in _CANDIDATES) else delimiter
        handle.seek(0)
        quote = quote or '"'
        escape_char = escape if escape and escape != quote else None  # DuckDB's "" is doubling, not escaping
        reader = csv.reader(handle, delimiter=delimiter, quotechar=quote, escapechar=escape_char, strict=True)
        _check_records(reader, delimiter=delimiter, skip_rows=skip_rows, deadline=deadline)


def _check_records(reader, *, delimiter: str, skip_rows: int, deadline: Deadline) -> None:
    expected: tuple[int, int] | None = None  # (fields, line)
    count, line = 0, 1
    try:
        for record in reader:
            count += 1
            if count % 10_000 == 0:
                deadline.check()
            if not record or record == [""]:
                line = reader.line_num + 1
                continue
            if count <= skip_rows and len(record) <= 1:  # a title line above the table
                line = reader.line_num + 1
                continue
            if expected is None:
                expected = (len(record), line)
            elif len(record) != expected[0]:
                raise TableImportError(
                    f"ragged CSV: line {line} has {len(record)} fields, line {expected[1]} has {expected[0]}")
            line = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) or "EOF" in str(exc):
            raise TableImportError(
                f"unbalanced quote: a quoted field opened on line {line} never closes") from exc
        raise TableImportError(f"malformed CSV: the row starting on line {line} breaks at line "
                               f"{reader.line_num} ({exc}); an unbalanced quote?") from exc


def header_fields(path: str | Path, max_chars: int = 4 * 2**20) -> int:
    """Fields in the first line under the likeliest delimiter: a cheap look before DuckDB's sniffer
    spends seconds and memory on a header of 10,000 columns."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline(max_chars)
    if not first.strip():
        return 0
    delimiter = max(_CANDIDATES, key=first.count)
    try:
        return len(next(csv.reader([first], delimiter=delimiter)))
    except (csv.Error, StopIteration):
        return first.count(delimiter) + 1
