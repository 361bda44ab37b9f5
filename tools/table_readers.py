"""Table files DuckDB cannot read itself here, turned into Arrow tables; plus sidecar metadata.

DuckDB's excel and sqlite extensions cannot be downloaded offline, so workbooks are read with
openpyxl and SQLite files with Python's ``sqlite3``. Both hand back ``{label: pyarrow.Table}``
(label = sheet title or SQLite table name) for the warehouse to copy into DuckDB.
"""

from __future__ import annotations

import codecs
import datetime
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import yaml

from tools.confined import ConfinedReadError, open_confined
from tools.sql_names import suffixed
from tools.table_columns import RowColumns, as_text, present
from tools.table_limits import MB, Deadline, TableImportError, TableLimits
from tools.zipguard import ZipBomb, check_inflation

__all__ = ["TableImportError", "read_sidecar", "read_sqlite", "read_xlsx", "sidecar_meta", "unique_names"]

SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml")
MAX_SIDECAR_BYTES = 1 * MB  # a description file, never data: bigger is refused, not parsed
_BATCH = 1_000  # SQLite rows fetched per step
XLSX_MAX_ROWS = 1_048_576  # the format's own limit: a sheet with more is hand-made, not from Excel


def read_xlsx(handle: BinaryIO, limits: TableLimits, deadline: Deadline) -> dict[str, pa.Table]:
    """Every sheet with at least one data row; the first non-empty row is the header. The workbook's
    parts are inflated once under ``max_table_unpacked_mb`` first (a zip bomb stops there), then
    rows stream in under the row, column, cell, byte and time limits."""
    import openpyxl  # heavy import, only needed for workbooks

    try:
        check_inflation(handle, max_bytes=limits.max_unpacked_bytes, what=".xlsx", deadline=deadline.end)
        handle.seek(0)
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except ZipBomb as exc:
        raise TableImportError(f"{exc} (max_table_unpacked_mb)") from exc
    except Exception as exc:  # openpyxl raises zipfile, KeyError, XML errors… for damaged files
        raise TableImportError(f"not a readable xlsx workbook: {_one_line(exc)}") from exc
    try:
        sheets = {ws.title: _sheet_table(ws, limits, deadline) for ws in book.worksheets}
    except TableImportError:
        raise
    except Exception as exc:
        raise TableImportError(f"xlsx workbook could not be read: {_one_line(exc)}") from exc
    finally:
        book.close()  # read-only workbooks keep the file open until closed
    return {title: table for title, table in sheets.items() if table is not None}


def _sheet_table(ws: Any, limits: TableLimits, deadline: Deadline) -> pa.Table | None:
    # The <dimension> tag is a claim (a bomb says A1:XFD1048576): rows come as written instead.
    ws.reset_dimensions()
    header: tuple[Any, ...] | None = None
    body = RowColumns(limits, deadline)
    for scanned, row in enumerate(ws.iter_rows(values_only=True)):
        if scanned % 1000 == 0:
            deadline.check()
        row = _trim(row)  # trailing empty (formatted-only) cells are not columns
        if not row:
            continue
        if header is None:
            limits.check_columns(len(row))
            header = row
        else:
            body.add(row)
            if body.rows >= XLSX_MAX_ROWS:  # header + this many is past what the format can hold
                raise TableImportError(f"sheet {ws.title!r} has more rows than an xlsx sheet can hold (1,048,576)")
    if header is None or body.rows == 0:
        return None
    width = max(len(header), body.width)
    header = header + (None,) * (width - len(header))
    columns = body.columns(width)
    # Columns with neither a header nor a value are formatting leftovers, not data.
    keep = [i for i in range(width) if present(header[i]) or columns[i].null_count < len(columns[i])]
    names = unique_names([header[i] for i in keep])
    return pa.table({name: columns[i] for name, i in zip(names, keep)})


def _trim(row: Iterable[Any]) -> tuple[Any, ...]:
    values = tuple(row)
    end = len(values)
    while end and not present(values[end - 1]):
        end -= 1
    return values[:end] if any(present(v) for v in values[:end]) else ()


def read_sqlite(path: str, limits: TableLimits, deadline: Deadline) -> dict[str, pa.Table]:
    """Every ordinary table (not sqlite_* internals, virtual tables or their shadow tables).
    ``path`` names the already opened, checked file (tools.confined.literal_path). Each value is
    capped by SQLite itself (SQLITE_LIMIT_LENGTH), so a generated ``zeroblob(900000000)`` fails
    at once; sizes are summed with length() before any row is materialised."""
    uri = Path(path).as_uri() + "?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise TableImportError(f"not a readable SQLite database: {_one_line(exc)}") from exc
    con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    con.set_progress_handler(lambda: 1 if deadline.expired() else 0, 10_000)
    # Invalid UTF-8 in a TEXT cell should not sink the whole file.
    con.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        return {name: _sqlite_table(con, name, limits, deadline) for name in _sqlite_tables(con)}
    except sqlite3.DataError as exc:  # "string or blob too big"
        raise TableImportError(
            f"a value larger than {limits.max_value_bytes / MB:g} MB (max_table_value_mb)") from exc
    except sqlite3.OperationalError as exc:
        if deadline.expired():
            raise deadline.error() from exc
        raise TableImportError(f"not a readable SQLite database: {_one_line(exc)}") from exc
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


def _sqlite_table(con: sqlite3.Connection, name: str, limits: TableLimits, deadline: Deadline) -> pa.Table:
    table = _sql_quote(name)
    raw_names = [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
    limits.check_columns(len(raw_names))
    (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    limits.check_rows(rows, len(raw_names))
    if rows:
        # Generated columns count too: length() of each value, one at a time, before reading rows.
        sizes = " + ".join(f"total(length({_sql_quote(c)}))" for c in raw_names)
        (size,) = con.execute(f"SELECT {sizes} FROM {table}").fetchone()
        limits.check_bytes(int(size or 0), f"data in table {name}")
    body = RowColumns(limits, deadline)
    cursor = con.execute(f"SELECT * FROM {table}")
    while batch := cursor.fetchmany(_BATCH):
        for row in batch:
            body.add(row)
    names = unique_names(raw_names)
    return pa.table(dict(zip(names, body.columns(len(names)))))


def _sql_quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def unique_names(raw: list[Any]) -> list[str]:
    """Header cells as column names: blanks become columnN, repeats get _2, _3."""
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(raw, start=1):
        base = as_text(cell).strip() if present(cell) else f"column{index}"
        names.append(suffixed(base, seen, str.lower))  # DuckDB column names are case-insensitive
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


def read_sidecar(path: Path, root: str | None = None) -> dict[str, Any]:
    """The sidecar's mapping (``description``, ``columns``, optional ``tables``), or {} without one.
    Read under the same link policy as the table (tools.confined): one leaving ``root`` is refused."""
    sidecar = find_sidecar(path)
    if sidecar is None:
        return {}
    try:
        with open_confined(sidecar, root) as handle:
            raw = handle.read(MAX_SIDECAR_BYTES + 1)
    except ConfinedReadError as exc:
        raise TableImportError(f"sidecar {sidecar.name}: {exc}") from exc
    except OSError as exc:
        raise TableImportError(f"sidecar {sidecar.name} could not be read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_SIDECAR_BYTES:
        raise TableImportError(f"sidecar {sidecar.name} is larger than {MAX_SIDECAR_BYTES // MB} MB")
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
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
    return {"description": _scalar(description, "description"), "columns": columns}


def _notes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TableImportError("sidecar 'columns' must map column names to descriptions")
    return {_scalar(k, "column name").lower(): _scalar(v, f"columns.{k}") for k, v in value.items()}  # case-blind


def _scalar(value: Any, where: str) -> str:
    """Text only: str() of a YAML alias bomb (lists nested through anchors) would never end."""
    if value is None:
        return ""
    if not isinstance(value, (str, int, float, bool, datetime.date)):
        raise TableImportError(f"sidecar {where} must be text, not a list or mapping")
    return str(value).strip()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
