"""Table files DuckDB cannot read itself here, turned into Arrow tables; plus sidecar metadata.

DuckDB's excel and sqlite extensions cannot be downloaded offline, so workbooks are read with
openpyxl and SQLite files with Python's ``sqlite3``. Both hand back ``{label: pyarrow.Table}``
(label = sheet title or SQLite table name) for the warehouse to copy into DuckDB.
"""

from __future__ import annotations

import codecs
import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import yaml

SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml")
_BATCH = 10_000


class TableImportError(Exception):
    """A table file could not be imported; ``str(exc)`` is a one-line reason."""


def read_xlsx(path: Path) -> dict[str, pa.Table]:
    """Every sheet with at least one data row; the first non-empty row is the header."""
    import openpyxl  # heavy import, only needed for workbooks

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, XML errors… for damaged files
        raise TableImportError(f"not a readable xlsx workbook: {_one_line(exc)}") from exc
    try:
        sheets = {ws.title: _sheet_table(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    except Exception as exc:
        raise TableImportError(f"xlsx workbook could not be read: {_one_line(exc)}") from exc
    finally:
        book.close()  # read-only workbooks keep the file open until closed
    return {title: table for title, table in sheets.items() if table is not None}


def _sheet_table(rows: Iterable[tuple[Any, ...]]) -> pa.Table | None:
    non_empty = [row for row in rows if any(_present(v) for v in row)]
    if len(non_empty) < 2:
        return None
    width = max(len(row) for row in non_empty)
    padded = [tuple(row) + (None,) * (width - len(row)) for row in non_empty]
    header, body = padded[0], padded[1:]
    # Columns with neither a header nor a value are formatting leftovers, not data.
    keep = [i for i in range(width) if _present(header[i]) or any(_present(r[i]) for r in body)]
    names = unique_names([header[i] for i in keep])
    return arrow_table(names, [[r[i] for r in body] for i in keep])


def read_sqlite(path: Path) -> dict[str, pa.Table]:
    """Every ordinary table (not sqlite_* internals, virtual tables or their shadow tables)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise TableImportError(f"not a readable SQLite database: {_one_line(exc)}") from exc
    # Invalid UTF-8 in a TEXT cell should not sink the whole file.
    con.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        return {name: _sqlite_table(con, name) for name in _sqlite_tables(con)}
    except sqlite3.Error as exc:
        raise TableImportError(f"not a readable SQLite database: {_one_line(exc)}") from exc
    finally:
        con.close()


def _sqlite_tables(con: sqlite3.Connection) -> list[str]:
    rows = con.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def _sqlite_table(con: sqlite3.Connection, name: str) -> pa.Table:
    quoted = '"' + name.replace('"', '""') + '"'
    cursor = con.execute(f"SELECT * FROM {quoted}")
    names = unique_names([d[0] for d in cursor.description])
    columns: list[list[Any]] = [[] for _ in names]
    while batch := cursor.fetchmany(_BATCH):
        for row in batch:
            for column, value in zip(columns, row):
                column.append(value)
    return arrow_table(names, columns)


def arrow_table(names: list[str], columns: list[list[Any]]) -> pa.Table:
    return pa.table({name: column_array(values) for name, values in zip(names, columns)})


def column_array(values: list[Any]) -> pa.Array:
    """One Arrow type per column from Python cell values; mixed columns fall back to text."""
    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"datetime"} and all(v is None or v == _midnight(v) for v in values):
        return pa.array([None if v is None else v.date() for v in values], pa.date32())
    arrow_type = _ARROW_TYPES.get(frozenset(kinds))
    if arrow_type is not None:
        try:
            return pa.array(values, arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # e.g. an integer beyond int64: keep it exact as text
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


_ARROW_TYPES: dict[frozenset[str], pa.DataType] = {
    frozenset(): pa.string(),
    frozenset({"bool"}): pa.bool_(),
    frozenset({"int"}): pa.int64(),
    frozenset({"float"}): pa.float64(),
    frozenset({"int", "float"}): pa.float64(),
    frozenset({"datetime"}): pa.timestamp("us"),
    frozenset({"date"}): pa.date32(),
    frozenset({"time"}): pa.time64("us"),
    frozenset({"bytes"}): pa.binary(),
    frozenset({"text"}): pa.string(),
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, (float, Decimal)):
        return "float"
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    return "text" if isinstance(value, str) else "other"


def _midnight(value: dt.datetime) -> dt.datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _text(value: Any) -> str:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def unique_names(raw: list[Any]) -> list[str]:
    """Header cells as column names: blanks become columnN, repeats get _2, _3."""
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(raw, start=1):
        base = _text(cell).strip() if _present(cell) else f"column{index}"
        name, n = base, 1
        while name.lower() in seen:  # DuckDB column names are case-insensitive
            n += 1
            name = f"{base}_{n}"
        seen.add(name.lower())
        names.append(name)
    return names


def needs_transcoding(path: Path) -> bool:
    """True when a text file is not UTF-8 (DuckDB's CSV reader only decodes UTF-8 here)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return True
    return False


def transcode_to_utf8(path: Path, dest: Path) -> str:
    """Write a UTF-8 copy of a legacy-encoded text file (GBK, Latin-1, …); returns the encoding."""
    from charset_normalizer import from_path

    raw_head = path.open("rb").read(1 << 16)
    if b"\x00" in raw_head and not raw_head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TableImportError("binary data, not a text table")
    best = from_path(path).best()
    if best is None:
        raise TableImportError("not UTF-8 text and its encoding could not be detected")
    dest.write_text(str(best), encoding="utf-8")
    return best.encoding


def find_sidecar(path: Path) -> Path | None:
    """``sales.csv`` → ``sales.meta.yaml`` (or ``.meta.yml``) next to it, when present."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's mapping (``description``, ``columns``, optional ``tables``), or {} without one."""
    sidecar = find_sidecar(path)
    if sidecar is None:
        return {}
    try:
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TableImportError(f"sidecar {sidecar.name} is not valid YAML: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise TableImportError(f"sidecar {sidecar.name} must be a mapping with description/columns")
    return data


def sidecar_meta(sidecar: dict[str, Any], label: str | None, name: str) -> dict[str, Any]:
    """Description and column notes for one table: the sidecar's top level, overlaid with its
    ``tables`` entry for this sheet / SQLite table (by label or by final table name)."""
    tables = sidecar.get("tables") or {}
    specific = (tables.get(label) or tables.get(name) or {}) if isinstance(tables, dict) else {}
    if not isinstance(specific, dict):
        raise TableImportError(f"sidecar entry tables.{label or name} must be a mapping")
    columns = {**_notes(sidecar.get("columns")), **_notes(specific.get("columns"))}
    description = specific.get("description", sidecar.get("description", ""))
    return {"description": str(description or "").strip(), "columns": columns}


def _notes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TableImportError("sidecar 'columns' must map column names to descriptions")
    return {str(k).lower(): str(v or "").strip() for k, v in value.items()}  # columns match case-blind


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
