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

Readers never meet the writer's lock. DuckDB lets one process open a file read-write or many open
it read-only, never both; an ingest held the write lock for minutes, and every ``dossier sql``,
``dossier tables`` and report in another process failed with "Could not set lock". So the writer
works on a staging copy (``warehouse.duckdb.staging``) and ``close()`` publishes it with one atomic
``os.replace``: readers open the committed file read-only and see the last published state, and a
reader still holding the old file keeps reading it (the old inode lives until it is closed). One
writer at a time is the ingest lock's job (``tools.kb_lock``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tools.confined import open_confined
from tools.disk_space import DiskFull, is_disk_full
from tools.duckdb_core import DuckDBConfig, duckdb, one_row
from tools.kb_lock import held_elsewhere
from tools.models import TableInfo
from tools.sql_names import identifier, suffixed
from tools.sqlcheck import INTERNAL_PREFIX, is_reserved_table_name
from tools.table_limits import Deadline, TableImportError, TableLimits

# The import machinery (tools.table_staging, table_readers, table_stats) loads pyarrow, numpy and
# the full duckdb package: it is imported on the first import of a file, never for reading the
# catalog, which `dossier tables`, `dossier sql` and every report do first (issue 14: start-up).

__all__ = ["TABLE_SUFFIXES", "TableImportError", "Warehouse", "table_name"]

TABLE_SUFFIXES: frozenset[str] = frozenset(
    {".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".xlsx", ".sqlite", ".sqlite3", ".db"}
)
CATALOG_TABLE = f"{INTERNAL_PREFIX}_catalog"
_STAGE_PREFIX = f"{INTERNAL_PREFIX}_stage_"
STAGING_SUFFIX = ".staging"  # the writer's copy of the warehouse until it is published


class Warehouse:
    """``kb/warehouse.duckdb``: imports under one read-write connection on a staging copy, opened
    lazily; ``close()`` publishes the copy when something changed. Until then this object's own
    catalog reads see its writes; every other reader sees the committed file.

    Reads of the catalog are cached and served without a connection while the file is unchanged,
    because DuckDB refuses a second configuration on a file a guarded reader holds in this process.
    """

    def __init__(self, path: Path, limits: TableLimits | None = None):
        self.path = Path(path)
        self.limits = limits or TableLimits()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._cache: list[TableInfo] | None = None
        self._cache_stamp: tuple[int, ...] | None = None
        self._changed = False  # the staging copy differs from the committed file

    @property
    def staging_path(self) -> Path:
        return self.path.with_name(self.path.name + STAGING_SUFFIX)

    def import_file(
        self, path: Path, *, source: str, source_hash: str, root: str | None = None
    ) -> list[TableInfo]:
        """Import ``path`` as one or more tables, replacing whatever ``source`` held before.
        ``root``: the real path of the ingested folder; the file and its sidecar must resolve
        inside it (tools.confined). Bounded by ``self.limits`` (rows, columns, cells, bytes, time)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise TableImportError(f"unsupported table format {suffix or '(no suffix)'}")
        deadline = Deadline(self.limits.timeout_s)
        with open_confined(path, root) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise TableImportError("empty file")
            self.limits.check_bytes(size, "table file")
            from tools.table_readers import read_sidecar

            sidecar = read_sidecar(path, root)
            with self._lock, self._disk_full_named():
                return self._import(handle, path, suffix, source, source_hash, sidecar, deadline)

    def _import(self, handle, path: Path, suffix: str, source: str, source_hash: str,
                sidecar: dict[str, Any], deadline: Deadline) -> list[TableInfo]:
        from tools.table_staging import one_line

        con = self._connect()
        stages: list[str] = []
        # DuckDB has no statement timeout: a timer interrupts whatever statement runs at the deadline.
        timer = threading.Timer(deadline.remaining(), con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            labels = stage_file(con, handle, suffix, stages, _STAGE_PREFIX, self.limits, deadline)
            staged = list(zip(stages, labels))
            infos = self._describe_stages(con, path, source, source_hash, staged, sidecar, deadline)
            deadline.check()
            self._swap(con, source, list(zip(stages, infos)))
            self._changed = True
        except duckdb.InterruptException as exc:
            raise deadline.error() from exc
        except duckdb.OutOfMemoryException as exc:
            raise TableImportError(
                f"import needs more memory than {self.limits.memory_limit} (table_memory_limit)") from exc
        except duckdb.Error as exc:  # one odd table must not end the whole ingest…
            if is_disk_full(exc):  # …but a full disk ends it: every later file would fail too
                raise DiskFull(self.path.parent) from exc
            raise TableImportError(f"table could not be imported: {one_line(exc)}") from exc
        finally:
            timer.cancel()
            for stage in stages:  # renamed on success; left behind only after a failure
                con.execute(f"DROP TABLE IF EXISTS {_quote(stage)}")
            self._cache = None
        return infos

    def remove_source(self, source: str) -> list[str]:
        """Drop every table imported from ``source``; returns their names."""
        with self._lock, self._disk_full_named():
            if self._con is None and not self.path.exists():
                return []  # nothing was ever imported: do not create the file just to find that out
            con = self._connect()
            names = self._source_tables(con, source)
            self._in_transaction(con, lambda: self._drop_source(con, source, names))
            self._changed = self._changed or bool(names)
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
        """End the write connection and publish what it committed (nothing changed: nothing is
        published). A copy that cannot be checkpointed, a full disk say, is dropped: the committed
        file stays as it was."""
        with self._lock, self._disk_full_named():
            if self._con is None:
                return
            con, self._con = self._con, None
            changed, self._changed = self._changed, False
            staging = self.staging_path
            try:
                con.close()  # checkpoints: the staging file alone holds everything, no WAL
                if changed:
                    _publish(staging, self.path)
            finally:
                _remove_database(staging)  # gone after a publish; dropped otherwise
            self._cache = None if changed else self._cache
            self._cache_stamp = _stamp(self.path) if self._cache is not None else None

    # -- connection and catalog -------------------------------------------------------------

    @contextmanager
    def _disk_full_named(self) -> Iterator[None]:
        """A full disk, whichever library noticed it, as one ``DiskFull`` naming the folder; never a
        plain OSError, which the ingest would take for one unreadable file and go on."""
        try:
            yield
        except DiskFull:
            raise
        except Exception as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path.parent) from exc
            raise

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staging = self.staging_path
            _remove_database(staging)  # left by a writer that died before publishing
            if self.path.exists():
                _copy_database(self.path, staging)
            config: DuckDBConfig = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
            con = duckdb.connect(str(staging), config=config)
            # Imports run under a memory cap too: DuckDB spills or fails cleanly instead of growing.
            con.execute(f"SET memory_limit = '{self.limits.memory_limit}'")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {CATALOG_TABLE} (name VARCHAR NOT NULL, "
                "source VARCHAR NOT NULL, source_hash VARCHAR NOT NULL, description VARCHAR, "
                "info VARCHAR NOT NULL)"
            )
            for name in _all_tables(con):  # stages left by a process that died mid-import
                if name.startswith(_STAGE_PREFIX):
                    con.execute(f"DROP TABLE {_quote(name)}")
            self._con = con
            self._changed = not self.path.exists()  # a first import publishes the new file
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
        config: DuckDBConfig = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        try:
            con = duckdb.connect(str(self.path), read_only=True, config=config)
        except duckdb.IOException as exc:
            if (held := held_elsewhere(self.path, exc)) is not None:
                raise held from None
            raise
        try:
            exists = one_row(con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
                [CATALOG_TABLE],
            ))[0]
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

    def _describe_stages(
        self, con: duckdb.DuckDBPyConnection, path: Path, source: str, source_hash: str,
        staged: list[tuple[str, str | None]], sidecar: dict[str, Any], deadline: Deadline,
    ) -> list[TableInfo]:
        from tools.table_readers import sidecar_meta
        from tools.table_stats import table_info

        taken = (_all_tables(con) - set(self._source_tables(con, source))) | _reserved_words(con)
        names = _table_names(path, [label for _, label in staged], taken)
        infos = []
        for (stage, label), name in zip(staged, names):
            base = TableInfo(name=name, source=source, source_hash=source_hash, row_count=0, columns=[])
            infos.append(table_info(con, stage, base, sidecar_meta(sidecar, label, name), deadline))
        return infos


def stage_file(con: duckdb.DuckDBPyConnection, handle: Any, suffix: str, stages: list[str], prefix: str,
               limits: TableLimits, deadline: Deadline) -> list[str | None]:
    """``tools.table_staging.stage_file``, loaded when the first file is imported (see the imports)."""
    from tools.table_staging import stage_file as stage

    return stage(con, handle, suffix, stages, prefix, limits, deadline)


# -- names --------------------------------------------------------------------------------------


def table_name(text: str) -> str:
    """A safe, lowercase SQL identifier for a file stem, sheet or table name."""
    name = identifier(text, "t")
    if name[0].isdigit() or is_reserved_table_name(name):
        name = f"t_{name}"
    return name


def _table_names(path: Path, labels: list[str | None], taken: set[str]) -> list[str]:
    from tools.table_staging import SQLITE_SUFFIXES

    stem = table_name(path.name[: -len(path.suffix)])
    per_part = path.suffix.lower() in SQLITE_SUFFIXES or len(labels) > 1
    names: list[str] = []
    for label in labels:
        base = f"{stem}__{table_name(label)}" if per_part and label is not None else stem
        names.append(suffixed(base, taken))
    return names


def _all_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    return {name.lower() for (name,) in rows}


def _reserved_words(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    return {word.lower() for (word,) in rows.fetchall()}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _stamp(path: Path) -> tuple[int, ...]:
    """Changes whenever DuckDB writes the database or its write-ahead log, or a new copy is published."""
    parts: list[int] = []
    for candidate in (path, _wal(path)):
        try:
            info = candidate.stat()
            parts += [info.st_ino, info.st_mtime_ns, info.st_size]
        except FileNotFoundError:
            parts += [0, 0, 0]
    return tuple(parts)


# -- the staging copy ---------------------------------------------------------------------------


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _copy_database(source: Path, target: Path) -> None:
    """The committed file (never written in place, so a plain copy is consistent), with the WAL an
    older version's crashed writer may have left beside it."""
    shutil.copyfile(source, target)
    if _wal(source).exists():
        shutil.copyfile(_wal(source), _wal(target))


def _publish(staging: Path, path: Path) -> None:
    """Make the checkpointed staging copy the committed file in one atomic rename, durably."""
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    _wal(path).unlink(missing_ok=True)  # an old WAL would be replayed onto the new file
    os.replace(staging, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_database(path: Path) -> None:
    path.unlink(missing_ok=True)
    _wal(path).unlink(missing_ok=True)
