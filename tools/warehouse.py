"""The DuckDB warehouse: table files imported as tables, and the catalog that describes them.

Formats: csv/tsv/parquet/json/jsonl/ndjson through DuckDB's own readers; xlsx and sqlite through
``tools.table_readers`` (Arrow tables), since DuckDB cannot download its extensions here.

Table names (stable across re-imports of the same source):

* the file stem, lowercased; every character outside ``[a-z0-9_]`` becomes ``_``, runs of ``_``
  collapse and edge ``_`` are trimmed; an empty result becomes ``t``, a leading digit gets ``t_``,
  and a name a guarded query could never read (``duckdb_*``, ``pg_*``, ``sqlite_*``…) gets ``t_``;
* xlsx: ``<stem>`` when one sheet has data, else ``<stem>__<sheet>`` for each such sheet;
* sqlite: always ``<stem>__<table>`` for every table with rows (the table name carries meaning,
  and the stem keeps two databases with a ``users`` table apart);
* a SQL reserved word, or a name another source already holds, gets ``_2``, ``_3``… — a source
  never overwrites another source's table.

A table needs at least one column and one data row; a file that yields none is refused.

The catalog lives in ``_dossier_catalog`` in the same file, so it commits with the import.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tools.models import ColumnInfo, TableInfo
from tools.sqlcheck import INTERNAL_PREFIX, is_reserved_table_name
from tools.table_readers import (
    TableImportError, needs_transcoding, read_sidecar, read_sqlite, read_xlsx, sidecar_meta,
    transcode_to_utf8,
)

__all__ = ["TABLE_SUFFIXES", "TableImportError", "Warehouse", "table_name"]

TABLE_SUFFIXES: frozenset[str] = frozenset(
    {".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".xlsx", ".sqlite", ".sqlite3", ".db"}
)
CATALOG_TABLE = f"{INTERNAL_PREFIX}_catalog"
_STAGE_PREFIX = f"{INTERNAL_PREFIX}_stage_"
_CSV_SNIFFED = "read_csv(?, auto_detect = true{opts})"
# The sniffer guesses types from a sample; a late odd value needs a full-file pass instead.
_CSV_FULL = "read_csv(?, auto_detect = true, sample_size = -1{opts})"
_DUCKDB_READERS: dict[str, list[str]] = {
    ".csv": [_CSV_SNIFFED.format(opts=""), _CSV_FULL.format(opts="")],
    ".tsv": [_CSV_SNIFFED.format(opts=", delim = '\\t'"), _CSV_FULL.format(opts=", delim = '\\t'")],
    ".parquet": ["read_parquet(?)"],
    ".json": ["read_json_auto(?)"],
    ".jsonl": ["read_json_auto(?, format = 'newline_delimited')"],
    ".ndjson": ["read_json_auto(?, format = 'newline_delimited')"],
}
_ARROW_READERS = {".xlsx": read_xlsx, ".sqlite": read_sqlite, ".sqlite3": read_sqlite, ".db": read_sqlite}
# Columns whose min/max the catalog reports (numbers, dates, times, timestamps, intervals).
_RANGE_TYPE = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL.*|DATE|TIME.*|INTERVAL)$"
)
_EXACT_DISTINCT_ROWS = 1_000_000
_SAMPLES = 5
_SAMPLE_CHARS = 100


class Warehouse:
    """``kb/warehouse.duckdb``: imports under one read-write connection, opened lazily.

    Reads of the catalog are cached and served without a connection while the file is unchanged,
    because DuckDB refuses a second configuration on a file a guarded reader holds in this process.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._cache: list[TableInfo] | None = None
        self._cache_stamp: tuple[int, ...] | None = None

    def import_file(self, path: Path, *, source: str, source_hash: str) -> list[TableInfo]:
        """Import ``path`` as one or more tables, replacing whatever ``source`` held before."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise TableImportError(f"unsupported table format {suffix or '(no suffix)'}")
        if path.stat().st_size == 0:
            raise TableImportError("empty file")
        sidecar = read_sidecar(path)
        with self._lock:
            con = self._connect()
            stages: list[str] = []
            try:
                labels = self._stage(con, path, suffix, stages)
                staged = list(zip(stages, labels))
                infos = self._describe_stages(con, path, source, source_hash, staged, sidecar)
                self._swap(con, source, list(zip(stages, infos)))
            finally:
                for stage in stages:  # renamed on success; left behind only after a failure
                    con.execute(f"DROP TABLE IF EXISTS {_quote(stage)}")
                self._cache = None
        return infos

    def remove_source(self, source: str) -> list[str]:
        """Drop every table imported from ``source``; returns their names."""
        with self._lock:
            if self._con is None and not self.path.exists():
                return []  # nothing was ever imported: do not create the file just to find that out
            con = self._connect()
            names = self._source_tables(con, source)
            self._in_transaction(con, lambda: self._drop_source(con, source, names))
            self._cache = None
        return names

    def sources(self) -> dict[str, str]:
        return {t.source: t.source_hash for t in self.catalog()}

    def catalog(self) -> list[TableInfo]:
        with self._lock:
            return [t.model_copy(deep=True) for t in self._tables()]

    def describe(self, name: str) -> TableInfo:
        tables = self.catalog()
        for table in tables:
            if table.name == name.lower():
                return table
        listing = ", ".join(t.name for t in tables) or "(none imported yet)"
        raise KeyError(f'unknown table "{name}"; known tables: {listing}')

    def catalog_hash(self) -> str:
        """Short hash of every catalog entry (names, source versions, columns, notes): the KB version."""
        digest = hashlib.sha256()
        for table in sorted(self.catalog(), key=lambda t: t.name):
            digest.update(table.model_dump_json().encode())
        return digest.hexdigest()[:16]

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                # Stamp after close: closing checkpoints, which rewrites the file.
                self._cache_stamp = _stamp(self.path) if self._cache is not None else None

    # -- connection and catalog -------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
            con = duckdb.connect(str(self.path), config=config)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {CATALOG_TABLE} (name VARCHAR NOT NULL, "
                "source VARCHAR NOT NULL, source_hash VARCHAR NOT NULL, description VARCHAR, "
                "info VARCHAR NOT NULL)"
            )
            for name in _all_tables(con):  # stages left by a process that died mid-import
                if name.startswith(_STAGE_PREFIX):
                    con.execute(f"DROP TABLE {_quote(name)}")
            self._con = con
        return self._con

    def _tables(self) -> list[TableInfo]:
        if self._con is None:
            if not self.path.exists():
                return []
            if self._cache is not None and self._cache_stamp == _stamp(self.path):
                return self._cache
            rows = self._read_only_catalog()
            self._cache = [TableInfo.model_validate_json(info) for (info,) in rows]
            self._cache_stamp = _stamp(self.path)
            return self._cache
        rows = self._con.execute(f"SELECT info FROM {CATALOG_TABLE} ORDER BY name").fetchall()
        self._cache = [TableInfo.model_validate_json(info) for (info,) in rows]
        self._cache_stamp = None
        return self._cache

    def _read_only_catalog(self) -> list[tuple[str]]:
        """Catalog rows through a short-lived read-only connection: reading must not take the
        write lock, or two readers (two `dossier sql`, or a report and `dossier tables`) collide."""
        config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        con = duckdb.connect(str(self.path), read_only=True, config=config)
        try:
            exists = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
                [CATALOG_TABLE],
            ).fetchone()[0]
            return con.execute(f"SELECT info FROM {CATALOG_TABLE} ORDER BY name").fetchall() if exists else []
        finally:
            con.close()

    def _source_tables(self, con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
        rows = con.execute(f"SELECT name FROM {CATALOG_TABLE} WHERE source = ? ORDER BY name", [source])
        return [name for (name,) in rows.fetchall()]

    def _drop_source(self, con: duckdb.DuckDBPyConnection, source: str, names: list[str]) -> None:
        for name in names:
            con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
        con.execute(f"DELETE FROM {CATALOG_TABLE} WHERE source = ?", [source])

    def _swap(
        self, con: duckdb.DuckDBPyConnection, source: str, staged: list[tuple[str, TableInfo]]
    ) -> None:
        """Old tables out, new ones in, catalog rows rewritten: one transaction."""
        old = self._source_tables(con, source)

        def swap() -> None:
            self._drop_source(con, source, old)
            for stage, info in staged:
                con.execute(f"ALTER TABLE {_quote(stage)} RENAME TO {_quote(info.name)}")
                con.execute(
                    f"INSERT INTO {CATALOG_TABLE} VALUES (?, ?, ?, ?, ?)",
                    [info.name, info.source, info.source_hash, info.description, info.model_dump_json()],
                )

        self._in_transaction(con, swap)

    @staticmethod
    def _in_transaction(con: duckdb.DuckDBPyConnection, work) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            work()
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # -- reading files into stage tables ------------------------------------------------------

    def _stage(
        self, con: duckdb.DuckDBPyConnection, path: Path, suffix: str, stages: list[str]
    ) -> list[str | None]:
        """Load the file into fresh stage tables (appended to ``stages``); returns their labels."""
        if suffix in _ARROW_READERS:
            tables = {k: t for k, t in _ARROW_READERS[suffix](path).items() if t.num_rows and t.num_columns}
            if not tables:
                raise TableImportError("no sheet or table with data rows")
            for table in tables.values():
                _stage_arrow(con, _new_stage(stages), table)
            return list(tables)
        stage = _new_stage(stages)
        _stage_duckdb(con, stage, path, suffix)
        if con.execute(f"SELECT count(*) FROM {_quote(stage)}").fetchone()[0] == 0:
            raise TableImportError("no data rows")
        return [None]

    def _describe_stages(
        self, con: duckdb.DuckDBPyConnection, path: Path, source: str, source_hash: str,
        staged: list[tuple[str, str | None]], sidecar: dict[str, Any],
    ) -> list[TableInfo]:
        taken = (_all_tables(con) - set(self._source_tables(con, source))) | _reserved_words(con)
        names = _table_names(path, [label for _, label in staged], taken)
        infos = []
        for (stage, label), name in zip(staged, names):
            base = TableInfo(name=name, source=source, source_hash=source_hash, row_count=0, columns=[])
            infos.append(_table_info(con, stage, base, sidecar_meta(sidecar, label, name)))
        return infos


def _new_stage(stages: list[str]) -> str:
    stages.append(f"{_STAGE_PREFIX}{len(stages)}")
    return stages[-1]


def _stage_duckdb(con: duckdb.DuckDBPyConnection, stage: str, path: Path, suffix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dossier-") as tmp:
        if suffix in (".csv", ".tsv") and needs_transcoding(path):
            utf8 = Path(tmp) / f"utf8{suffix}"
            transcode_to_utf8(path, utf8)
            path = utf8
        first_error: duckdb.Error | None = None
        for reader in _DUCKDB_READERS[suffix]:
            try:
                sql = f"CREATE OR REPLACE TABLE {_quote(stage)} AS SELECT * FROM {reader}"
                con.execute(sql, [str(path)])
                return
            except duckdb.Error as exc:
                first_error = first_error or exc
        raise TableImportError(f"{suffix[1:]} file could not be read: {_one_line(first_error)}")


def _stage_arrow(con: duckdb.DuckDBPyConnection, stage: str, table: pa.Table) -> None:
    view = f"{stage}_arrow"
    con.register(view, table)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {_quote(stage)} AS SELECT * FROM {_quote(view)}")
    finally:
        con.unregister(view)


# -- names --------------------------------------------------------------------------------------


def table_name(text: str) -> str:
    """A safe, lowercase SQL identifier for a file stem, sheet or table name."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", text.lower())).strip("_")[:60] or "t"
    if name[0].isdigit() or is_reserved_table_name(name):
        name = f"t_{name}"
    return name


def _table_names(path: Path, labels: list[str | None], taken: set[str]) -> list[str]:
    stem = table_name(path.name[: -len(path.suffix)])
    per_part = path.suffix.lower() in (".sqlite", ".sqlite3", ".db") or len(labels) > 1
    names: list[str] = []
    for label in labels:
        base = f"{stem}__{table_name(label)}" if per_part and label is not None else stem
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append(name)
    return names


def _all_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    return {name.lower() for (name,) in rows}


def _reserved_words(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    return {word.lower() for (word,) in rows.fetchall()}


# -- catalog entries ----------------------------------------------------------------------------


def _table_info(
    con: duckdb.DuckDBPyConnection, table: str, base: TableInfo, meta: dict[str, Any]
) -> TableInfo:
    schema = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {_quote(table)}").fetchall()]
    row_count = con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0]
    # Exact distinct counts get expensive on big tables; the planner only needs the magnitude.
    counter = "count(DISTINCT {})" if row_count <= _EXACT_DISTINCT_ROWS else "approx_count_distinct({})"
    exprs = [e for column, col_type in schema for e in _column_exprs(_quote(column), col_type, counter)]
    stats = con.execute(f"SELECT {', '.join(exprs)} FROM {_quote(table)}").fetchone() if exprs else ()
    columns, pos = [], 0
    for column, col_type in schema:
        ranged = bool(_RANGE_TYPE.match(col_type))
        width = 4 if ranged else 2
        non_null, distinct, *bounds = stats[pos : pos + width]
        pos += width
        columns.append(ColumnInfo(
            name=column, type=col_type, description=meta["columns"].get(column.lower(), ""),
            null_count=row_count - non_null, distinct_count=distinct,
            samples=_samples(con, table, column) if col_type == "VARCHAR" else [],
            min=bounds[0] if ranged else None, max=bounds[1] if ranged else None,
        ))
    return base.model_copy(update={"row_count": row_count, "columns": columns,
                                   "description": meta["description"]})


def _column_exprs(column: str, col_type: str, counter: str) -> list[str]:
    exprs = [f"count({column})", counter.format(column)]
    if _RANGE_TYPE.match(col_type):
        exprs += [f"min({column})::VARCHAR", f"max({column})::VARCHAR"]
    return exprs


def _samples(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    """The most frequent values first; ties broken by value so the catalog is deterministic."""
    quoted = _quote(column)
    rows = con.execute(
        f"SELECT {quoted} FROM {_quote(table)} WHERE {quoted} IS NOT NULL "
        f"GROUP BY {quoted} ORDER BY count(*) DESC, {quoted} LIMIT {_SAMPLES}"
    ).fetchall()
    return [value[:_SAMPLE_CHARS] for (value,) in rows]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _stamp(path: Path) -> tuple[int, ...]:
    """Changes whenever DuckDB writes the database or its write-ahead log."""
    parts: list[int] = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            info = candidate.stat()
            parts += [info.st_mtime_ns, info.st_size]
        except FileNotFoundError:
            parts += [0, 0]
    return tuple(parts)


def _one_line(exc: BaseException | None) -> str:
    lines = str(exc).strip().splitlines() if exc is not None else []
    # "Invalid Input Error: File … too small" → "File … too small": the kind adds nothing here.
    return re.sub(r"^[A-Za-z ]+ Error: ", "", lines[0]).strip() if lines else "unknown error"
