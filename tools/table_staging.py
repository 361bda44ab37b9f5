"""Load one opened table file into fresh DuckDB stage tables, under the import's limits.

Every reader gets the file it was handed, literally: the caller opened and checked it
(tools.confined), and DuckDB, sqlite3 and openpyxl read ``/proc/self/fd/N`` or the open handle
itself, never the file's name, which DuckDB would expand as a glob (``[p]rivate_x.csv`` read
``private_x.csv``; ``private_*.csv`` merged its neighbours). Off Linux the opened file is copied to
a temporary name without glob characters instead.

Bounds: columns are counted (DuckDB's DESCRIBE, the SQLite schema, the sheet's rows) before rows
are loaded; rows are loaded with ``LIMIT cap + 1`` so a tiny file that claims billions of rows
(parquet run-lengths) stops at the cap; CSV structure is checked (tools.csv_check); time is the
caller's deadline (DuckDB is interrupted by a timer, Python readers check it as they go).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from tools.confined import literal_path
from tools.csv_check import check_csv, header_fields
from tools.duckdb_core import one_row
from tools.table_limits import Deadline, TableImportError, TableLimits
from tools.table_readers import needs_transcoding, read_sqlite, read_xlsx, transcode_to_utf8
from tools.table_stats import quote
from tools.table_tidy import tidy_stage

_CSV_SNIFFED = "read_csv(?, auto_detect = true{opts})"
# The sniffer guesses types from a sample; a late odd value needs a full-file pass instead.
_CSV_FULL = "read_csv(?, auto_detect = true, sample_size = -1{opts})"
_TSV = ", delim = '\\t'"
DUCKDB_READERS: dict[str, list[str]] = {
    ".csv": [_CSV_SNIFFED.format(opts=""), _CSV_FULL.format(opts="")],
    ".tsv": [_CSV_SNIFFED.format(opts=_TSV), _CSV_FULL.format(opts=_TSV)],
    ".parquet": ["read_parquet(?)"],
    ".json": ["read_json_auto(?)"],
    ".jsonl": ["read_json_auto(?, format = 'newline_delimited')"],
    ".ndjson": ["read_json_auto(?, format = 'newline_delimited')"],
}
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
ARROW_SUFFIXES = (".xlsx", *SQLITE_SUFFIXES)


def stage_file(
    con: duckdb.DuckDBPyConnection, handle: BinaryIO, suffix: str, stages: list[str], stage_prefix: str,
    limits: TableLimits, deadline: Deadline,
) -> list[str | None]:
    """Load the opened file into fresh stage tables (appended to ``stages``); returns their labels."""
    with tempfile.TemporaryDirectory(prefix="dossier-") as tmp:
        if suffix in ARROW_SUFFIXES:
            if suffix == ".xlsx":
                tables = read_xlsx(handle, limits, deadline)
            else:
                tables = read_sqlite(_literal(handle, Path(tmp), suffix, limits), limits, deadline)
            tables = {k: t for k, t in tables.items() if t.num_rows and t.num_columns}
            if not tables:
                raise TableImportError("no sheet or table with data rows")
            for table in tables.values():
                stage = _new_stage(stages, stage_prefix)
                _stage_arrow(con, stage, table)
                tidy_stage(con, stage)
            return list(tables)
        stage = _new_stage(stages, stage_prefix)
        _stage_duckdb(con, stage, _literal(handle, Path(tmp), suffix, limits), Path(tmp), suffix, limits, deadline)
    if one_row(con.execute(f"SELECT count(*) FROM {quote(stage)}"))[0] == 0:
        raise TableImportError("no data rows")
    tidy_stage(con, stage)
    return [None]


def _new_stage(stages: list[str], prefix: str) -> str:
    stages.append(f"{prefix}{len(stages)}")
    return stages[-1]


def _literal(handle: BinaryIO, tmp: Path, suffix: str, limits: TableLimits) -> str:
    """A path naming exactly the opened file: /proc/self/fd/N, or a bounded copy elsewhere."""
    path = literal_path(handle)
    if path is not None:
        return path
    copy = tmp / f"table{suffix}"
    handle.seek(0)
    with copy.open("wb") as out:
        shutil.copyfileobj(handle, out)
    limits.check_bytes(copy.stat().st_size, "table file")
    return str(copy)


def _stage_duckdb(
    con: duckdb.DuckDBPyConnection, stage: str, path: str, tmp: Path, suffix: str,
    limits: TableLimits, deadline: Deadline,
) -> None:
    if suffix in (".csv", ".tsv") and needs_transcoding(Path(path)):
        utf8 = tmp / f"utf8{suffix}"
        transcode_to_utf8(Path(path), utf8)
        path = str(utf8)
    if suffix in (".csv", ".tsv"):
        limits.check_columns(header_fields(path))
    first_error: duckdb.Error | None = None
    for reader in DUCKDB_READERS[suffix]:
        try:
            columns = len(con.execute(f"DESCRIBE SELECT * FROM {reader}", [path]).fetchall())
            limits.check_columns(columns)
            if suffix in (".csv", ".tsv") and first_error is None:
                _check_structure(con, path, suffix, columns, deadline)
            cap = limits.row_cap(columns)
            con.execute(f"CREATE OR REPLACE TABLE {quote(stage)} AS SELECT * FROM {reader} LIMIT {cap + 1}", [path])
            rows = one_row(con.execute(f"SELECT count(*) FROM {quote(stage)}"))[0]
            limits.check_rows(rows, columns)
            return
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            first_error = first_error or exc
    raise TableImportError(f"{suffix[1:]} file could not be read: {one_line(first_error)}")


def _check_structure(con: duckdb.DuckDBPyConnection, path: str, suffix: str, columns: int, deadline: Deadline) -> None:
    opts = _TSV if suffix == ".tsv" else ""
    delimiter, quote_char, escape, skip = one_row(con.execute(
        f"SELECT Delimiter, Quote, Escape, SkipRows FROM sniff_csv(?{opts})", [path]))
    check_csv(path, delimiter=_char(delimiter) or ",", quote=_char(quote_char), escape=_char(escape),
              skip_rows=int(skip or 0), columns=columns, deadline=deadline)


def _char(value: str | None) -> str:
    return "" if not value or value == "(empty)" else value


def _stage_arrow(con: duckdb.DuckDBPyConnection, stage: str, table: pa.Table) -> None:
    view = f"{stage}_arrow"
    con.register(view, table)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(stage)} AS SELECT * FROM {quote(view)}")
    finally:
        con.unregister(view)


def one_line(exc: BaseException | None) -> str:
    lines = str(exc).strip().splitlines() if exc is not None else []
    # "Invalid Input Error: File … too small" → "File … too small": the kind adds nothing here.
    return re.sub(r"^[A-Za-z ]+ Error: ", "", lines[0]).strip() if lines else "unknown error"
