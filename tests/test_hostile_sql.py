"""Hostile SQL against the guard (issue "Reliability and security", item 3).

Hundreds of hand-written and generated attacks go through ``KnowledgeBase.sql`` and
``GuardedExecutor.execute`` on a warehouse with two tables. Each one must be refused, or run
within the limits (row cap; wall time at most the timeout plus ``SLACK_S``, the SQL worker's
memory under its cap, this process's memory unchanged), and none may change
the warehouse (catalog hash, object list, row counts and a checksum of every table's rows), create
a file, or read one: a secret file, a canary CSV/JSON, an attachable DuckDB file, an environment
variable and /etc/passwd each hold a marker that must never appear in a result or an error.
Positive controls prove the markers and the fingerprint would catch a leak or a change.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dossier.settings import Settings
from tools.embeddings import HashEmbedder
from tools.knowledge_base import KnowledgeBase
from tools.sqlguard import MAX_SQL_CHARS, GuardedExecutor, SqlFailed, SqlRefused, SqlTimeout, check_sql
from tools.warehouse import Warehouse

TIMEOUT_S = 1.0
SLACK_S = 1.5
ROW_LIMIT = 50
MEMORY_LIMIT = "256MB"
THREADS = 2
GENERATED = 170  # hypothesis examples
TOKEN = secrets.token_hex(6)
SECRET = f"dossier-secret-{TOKEN}"  # in secret.txt (and the other DuckDB file)
CANARY = f"CANARY-{TOKEN}"  # in canary.csv / canary.json
ENV_NAME, ENV_SECRET = "HOSTILE_ENV_SECRET", f"env-secret-{TOKEN}"  # no DOSSIER_ prefix: conftest clears those
PASSWD = "root:x:0:0"
SALES = "id,region,amount\n1,north,10\n2,north,20\n3,south,5\n4,east,7\n5,west,1\n"
CUSTOMERS = "id,name,region\n1,Ann,north\n2,Bo,south\n3,Cy,east\n"
TABLES = {"sales", "customers"}


# -- the arena ----------------------------------------------------------------------------------


@dataclass
class Arena:
    root: Path
    kb: KnowledgeBase
    guard: GuardedExecutor
    paths: dict[str, str]
    markers: list[str]


def plant(root: Path) -> dict[str, str]:
    """Files an attack would love to read, and where it would love to write."""
    (root / "secret.txt").write_text(f"{SECRET}\n")
    (root / "canary.csv").write_text(f"canary_col\n{CANARY}\n")
    (root / "canary.json").write_text(json.dumps([{"canary_col": CANARY}]))
    con = duckdb.connect(str(root / "other.duckdb"))
    con.execute("CREATE TABLE loot AS SELECT ? AS secret", [SECRET])
    con.close()
    out = root / "out"
    out.mkdir()
    return {"S": str(root / "secret.txt"), "C": str(root / "canary.csv"), "J": str(root / "canary.json"),
            "O": str(root / "other.duckdb"), "OUT": str(out), "ROOT": str(root), "ENV": ENV_NAME}


def kb_settings(kb_dir: Path) -> Settings:
    return Settings(kb_dir=kb_dir, embedder="hash", engine="offline", sql_timeout_s=TIMEOUT_S,
                    sql_row_limit=ROW_LIMIT, sql_memory_limit=MEMORY_LIMIT, sql_threads=THREADS)


@pytest.fixture(scope="module")
async def arena(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    paths = plant(root)
    tables = root / "tables"
    tables.mkdir()
    (tables / "sales.csv").write_text(SALES)
    (tables / "customers.csv").write_text(CUSTOMERS)
    kb = await KnowledgeBase.open(settings=kb_settings(root / "kb"), embedder=HashEmbedder())
    summary = await kb.ingest([tables])
    assert summary.tables_new == 2 and not summary.skipped
    guard = GuardedExecutor(kb.warehouse.path, allowed_tables=TABLES, row_limit=ROW_LIMIT, timeout_s=TIMEOUT_S,
                            memory_limit=MEMORY_LIMIT, threads=THREADS)
    markers = [SECRET, CANARY, ENV_SECRET] + ([PASSWD] if _readable("/etc/passwd", PASSWD) else [])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # relative paths ('canary.csv') would resolve to the planted files
        mp.setenv(ENV_NAME, ENV_SECRET)
        yield Arena(root, kb, guard, paths, markers)
        guard.close()
        await kb.close()
        kb.corpus.close()


def _readable(path: str, text: str) -> bool:
    try:
        return text in Path(path).read_text(errors="replace")
    except OSError:
        return False


def fingerprint(db: Path, root: Path) -> dict[str, Any]:
    """The warehouse's logical state and every file under ``root`` (no connection may be open)."""
    wh = Warehouse(db)
    try:
        catalog_hash = wh.catalog_hash()
    finally:
        wh.close()
    con = duckdb.connect(str(db), read_only=True)
    try:
        objects = con.execute(
            "SELECT 'table', schema_name, table_name FROM duckdb_tables() "
            "UNION ALL SELECT 'view', schema_name, view_name FROM duckdb_views() WHERE NOT internal "
            "UNION ALL SELECT 'sequence', schema_name, sequence_name FROM duckdb_sequences() "
            "UNION ALL SELECT 'index', schema_name, index_name FROM duckdb_indexes() "
            "UNION ALL SELECT 'macro', schema_name, function_name FROM duckdb_functions() WHERE NOT internal "
            "UNION ALL SELECT 'type', schema_name, type_name FROM duckdb_types() WHERE NOT internal "
            "UNION ALL SELECT 'schema', database_name, schema_name FROM duckdb_schemas() WHERE NOT internal "
            "ORDER BY ALL").fetchall()
        tables = {}
        for kind, schema, name in objects:
            if kind == "table":
                rows = con.execute(f'SELECT * FROM "{schema}"."{name}" ORDER BY ALL').fetchall()
                tables[f"{schema}.{name}"] = [len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()]
        databases = [r[0] for r in con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal "
                                               "ORDER BY 1").fetchall()]
    finally:
        con.close()
    return {"catalog_hash": catalog_hash, "objects": [list(o) for o in objects], "tables": tables,
            "databases": databases, "files": _files(root, db)}


def _files(root: Path, db: Path) -> dict[str, str]:
    """Every file's content hash, except the DuckDB file itself (opening it read-write to hash the
    catalog checkpoints it) and DuckDB's spill folder (scratch space it empties after a big sort)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(db.name) and ".duckdb.tmp" not in path.as_posix():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# -- judging one attack -------------------------------------------------------------------------


@dataclass
class Tally:
    tried: int = 0
    passed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    slowest: list[tuple[float, str]] = field(default_factory=list)


TALLY = Tally()


@dataclass
class Attempt:
    outcome: str  # ran | refused | timeout | failed | crashed
    text: str  # the result as JSON, or the error message
    elapsed: float
    rows: int = 0
    truncated: bool = False


def attempt(run: Callable[[str], Any], sql: str) -> Attempt:
    started = time.monotonic()
    try:
        return _ran(run(sql), started)
    except Exception as exc:
        return _raised(exc, started)


async def attempt_async(run: Callable[[str], Awaitable[Any]], sql: str) -> Attempt:
    started = time.monotonic()
    try:
        return _ran(await run(sql), started)
    except Exception as exc:
        return _raised(exc, started)


def _ran(result: Any, started: float) -> Attempt:
    return Attempt("ran", result.model_dump_json(), time.monotonic() - started, max(result.row_count, len(result.rows)),
                   result.truncated)


def _raised(exc: Exception, started: float) -> Attempt:
    kinds = {SqlRefused: "refused", SqlTimeout: "timeout", SqlFailed: "failed"}
    outcome = kinds.get(type(exc), "crashed")  # anything else escaped the guard
    text = str(exc) if outcome != "crashed" else f"{type(exc).__name__}: {exc}"
    return Attempt(outcome, text, time.monotonic() - started)


def assess(sql: str, got: Attempt, markers: list[str], *, expect: str, source: str) -> list[str]:
    """The attack's problems (none when it was refused or ran within the limits); tallied."""
    problems = []
    if got.outcome == "crashed":
        problems.append(f"unexpected exception {got.text[:200]}")
    if got.elapsed > TIMEOUT_S + SLACK_S:
        problems.append(f"took {got.elapsed:.2f} s (limit {TIMEOUT_S + SLACK_S:.1f} s)")
    if got.rows > ROW_LIMIT:
        problems.append(f"returned {got.rows} rows (cap {ROW_LIMIT})")
    problems += [f"leaked marker {m[:12]}…" for m in markers if m in got.text]
    if expect == "refuse" and got.outcome != "refused":
        problems.append(f"expected a refusal, got {got.outcome}: {got.text[:160]}")
    if expect == "limit" and not (got.outcome in ("refused", "timeout", "failed") or got.truncated):
        problems.append(f"expected a limit to stop it, got {got.outcome}: {got.text[:160]}")
    TALLY.tried += 1
    TALLY.passed += not problems
    TALLY.outcomes[f"{source}:{got.outcome}"] += 1
    TALLY.slowest = sorted([*TALLY.slowest, (round(got.elapsed, 3), sql[:80])], reverse=True)[:5]
    if problems:
        TALLY.failures.append({"sql": sql[:300], "outcome": got.outcome, "problems": problems})
    return problems


_PLACEHOLDER = re.compile(r"\{(S|C|J|O|OUT|ROOT|ENV)\}")


def fill(template: str, paths: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: paths[m[1]], template)


# -- the hand-written table ---------------------------------------------------------------------
# "refuse": the check must refuse it. "limit": refused, interrupted, stopped by DuckDB (out of
# memory, bad input) or truncated at the row cap. "any": whatever happens must stay in the limits.

WRITES = [
    "INSERT INTO sales VALUES (9, 'x', 1)",
    "INSERT INTO sales SELECT * FROM sales",
    "INSERT OR REPLACE INTO sales VALUES (1, 'x', 0)",
    "INSERT INTO sales VALUES (9, 'x', 1) RETURNING *",
    "UPDATE sales SET amount = 0",
    "UPDATE sales SET amount = c.id FROM customers c WHERE c.id = sales.id",
    "DELETE FROM sales",
    "DELETE FROM sales WHERE 1 = 1 RETURNING *",
    "TRUNCATE sales",
    "TRUNCATE TABLE customers",
    "MERGE INTO sales USING customers ON sales.id = customers.id WHEN MATCHED THEN DELETE",
    "INSERT INTO _dossier_catalog VALUES ('x', 'x', 'x', 'x', '{}')",
    "UPDATE _dossier_catalog SET description = 'pwned'",
    "WITH d AS (DELETE FROM sales RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE sales SET amount = 0 RETURNING *) SELECT count(*) FROM u",
    "SELECT * FROM (INSERT INTO sales VALUES (9, 'x', 1) RETURNING *)",
]
DDL = [
    "CREATE TABLE x AS SELECT 1",
    "CREATE OR REPLACE TABLE sales AS SELECT 1 AS id",
    "CREATE TEMP TABLE t (a INT)",
    "CREATE VIEW v AS SELECT * FROM sales",
    "CREATE OR REPLACE VIEW customers AS SELECT 1 AS id",
    "CREATE MACRO m(x) AS x + 1",
    "CREATE MACRO grab() AS TABLE SELECT * FROM read_text('{S}')",
    "CREATE SEQUENCE s",
    "CREATE SCHEMA evil",
    "CREATE INDEX i ON sales (id)",
    "CREATE TYPE mood AS ENUM ('a', 'b')",
    "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "CREATE PERSISTENT SECRET p (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "DROP TABLE sales",
    "DROP TABLE IF EXISTS customers CASCADE",
    "DROP VIEW IF EXISTS sales",
    "DROP SCHEMA main CASCADE",
    "ALTER TABLE sales RENAME TO sales_old",
    "ALTER TABLE sales ADD COLUMN z INT",
    "ALTER TABLE sales DROP COLUMN amount",
    "COMMENT ON TABLE sales IS 'pwned'",
]
ATTACH_COPY_EXT = [
    "ATTACH '{O}' AS other",
    "ATTACH '{O}' AS other (READ_ONLY)",
    "ATTACH ':memory:' AS scratch",
    "ATTACH 'sqlite:{O}' AS lite",
    "DETACH warehouse",
    "USE other",
    "SELECT * FROM other.main.loot",
    "SELECT * FROM other.loot",
    "COPY sales TO '{OUT}/sales.csv'",
    "COPY (SELECT * FROM sales) TO '{OUT}/sales.parquet' (FORMAT parquet)",
    "COPY sales FROM '{C}'",
    "COPY customers FROM '{S}' (DELIMITER '|')",
    "COPY FROM DATABASE warehouse TO other",
    "INSTALL httpfs",
    "INSTALL sqlite FROM 'http://127.0.0.1:9/repo'",
    "FORCE INSTALL json",
    "LOAD httpfs",
    "LOAD '{S}'",
    "UPDATE EXTENSIONS",
    "EXPORT DATABASE '{OUT}/dump'",
    "EXPORT DATABASE '{OUT}/dump2' (FORMAT parquet)",
    "IMPORT DATABASE '{OUT}'",
]
SESSION = [
    "PRAGMA table_info('sales')",
    "PRAGMA database_list",
    "PRAGMA enable_profiling",
    "PRAGMA memory_limit = '100GB'",
    "PRAGMA threads = 64",
    "PRAGMA show_tables",
    "PRAGMA version",
    "PRAGMA storage_info('sales')",
    "SET memory_limit = '100GB'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET GLOBAL threads = 64",
    "SET access_mode = 'read_write'",
    "SET temp_directory = '{OUT}'",
    "SET search_path = 'other'",
    "SET VARIABLE loot = (SELECT content FROM read_text('{S}'))",
    "RESET memory_limit",
    "RESET threads",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "CHECKPOINT warehouse",
    "VACUUM",
    "VACUUM ANALYZE sales",
    "ANALYZE",
    "CALL pragma_version()",
    "CALL pragma_table_info('sales')",
    "CALL dbgen(sf = 0.01)",
    "CALL duckdb_secrets()",
    "BEGIN TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "PREPARE p AS DELETE FROM sales",
    "EXECUTE p",
    "DEALLOCATE p",
    "EXPLAIN SELECT * FROM sales",
    "EXPLAIN ANALYZE DELETE FROM sales",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "SHOW DATABASES",
    "PIVOT sales ON region USING sum(amount)",
]
FILE_READS = [
    "SELECT * FROM read_csv('{C}')",
    "SELECT * FROM read_csv_auto('{C}')",
    "SELECT * FROM read_csv(['{C}', '{S}'])",
    "SELECT * FROM read_csv('{ROOT}/*.csv')",
    "SELECT * FROM read_json('{J}')",
    "SELECT * FROM read_json_auto('{J}')",
    "SELECT * FROM read_ndjson('{J}')",
    "SELECT * FROM read_parquet('{OUT}/x.parquet')",
    "SELECT * FROM parquet_scan('{OUT}/x.parquet')",
    "SELECT * FROM parquet_metadata('{OUT}/x.parquet')",
    "SELECT * FROM parquet_schema('{OUT}/x.parquet')",
    "SELECT * FROM read_text('{S}')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_text(['{S}', '/etc/passwd'])",
    "SELECT * FROM read_blob('{S}')",
    "SELECT content FROM read_blob('/etc/shadow')",
    "SELECT * FROM glob('{ROOT}/*')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM sniff_csv('{C}')",
    "SELECT * FROM query('SELECT * FROM read_text(''{S}'')')",
    "SELECT * FROM query_table('sales')",
    "SELECT * FROM query_table(['sales', 'customers'])",
    "SELECT * FROM sqlite_scan('{O}', 'loot')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM pragma_storage_info('sales')",
    "SELECT * FROM which_secret('s3://bucket/x', 's3')",
    "SELECT * FROM iceberg_scan('{OUT}')",
    "SELECT * FROM st_read('{S}')",
    "SELECT * FROM \"read_csv\"('{C}')",
    "SELECT * FROM main.read_csv('{C}')",
    "SELECT * FROM system.main.read_csv('{C}')",
    "SELECT * FROM sales WHERE region IN (SELECT column0 FROM read_csv('{C}', header = false))",
    "SELECT * FROM sales, LATERAL (SELECT * FROM read_text('{S}'))",
    "WITH s AS (SELECT * FROM read_text('{S}')) SELECT * FROM s",
    "SELECT (SELECT content FROM read_text('{S}')) AS c",
    "SELECT * FROM sales ORDER BY (SELECT length(content) FROM read_text('{S}'))",
    "SELECT * FROM unnest(glob('{ROOT}/*'))",
    "SELECT glob('{ROOT}/*')",
    "SELECT list_transform(glob('{ROOT}/*'), x -> x)",
    "SELECT list_transform(['{S}'], x -> read_text(x))",
    "SELECT len(read_text('{S}'))",
    "DESCRIBE SELECT * FROM read_csv('{C}')",
    "SUMMARIZE SELECT * FROM read_csv('{C}')",
    "SELECT * FROM (PIVOT (FROM read_csv('{C}')) ON canary_col IN ('x') USING count(*))",
    "SELECT * FROM '{C}'",
    "FROM '{S}'",
    "SELECT * FROM 'canary.csv'",
    "SELECT * FROM \"canary.csv\"",
    "SELECT * FROM canary.csv",
    "SELECT * FROM 'canary.json'",
    "SELECT * FROM '{ROOT}/*.csv'",
    "SELECT * FROM 'http://127.0.0.1:9/x.csv'",
    "SELECT * FROM 'https://example.com/data.parquet'",
    "SELECT * FROM 's3://bucket/key.parquet'",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM '~/.ssh/id_rsa'",
    "SELECT * FROM sales JOIN 'canary.csv' USING (id)",
    "SELECT * FROM other.duckdb",
]
SCALARS_AND_SYSTEM = [
    "SELECT getenv('{ENV}')",
    "SELECT GETENV('{ENV}')",
    "SELECT main.getenv('{ENV}')",
    "SELECT current_setting('memory_limit')",
    "SELECT getvariable('loot')",
    "SELECT current_query()",
    "SELECT nextval('s')",
    "SELECT setseed(0.5)",
    "SELECT sleep_ms(100000)",
    "SELECT * FROM sales WHERE pg_sleep(100) IS NULL",
    "SELECT json_execute_serialized_sql('x')",
    "SELECT * FROM duckdb_tables",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM _dossier_catalog",
    "SELECT * FROM \"_DOSSIER_CATALOG\"",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM system.main.duckdb_tables",
    "SELECT * FROM temp.main.t",
    "SELECT * FROM warehouse.main.sales",
    "WITH _dossier_catalog AS (SELECT 1) SELECT * FROM _dossier_catalog",
]
STACKED = [
    "SELECT 1; DROP TABLE sales",
    "SELECT 1;DROP TABLE sales;",
    "SELECT 1 --\n; DROP TABLE sales",
    "SELECT 1 /* ; */; DELETE FROM sales",
    "SELECT ';'; DROP TABLE sales",
    "SELECT $$;$$; DROP TABLE sales",
    "SELECT 1; SELECT 2",
    "; ; DROP TABLE sales",
    "SELECT 1\n;\nUPDATE sales SET amount = 0",
    "SELECT * FROM sales; ATTACH '{O}' AS other",
    "SELECT * FROM sales; COPY sales TO '{OUT}/x.csv'",
    "SELECT 1; SET enable_external_access = true; SELECT * FROM read_text('{S}')",
]
CASE_COMMENT_UNICODE = [
    "dRoP tAbLe SaLeS",
    "--\nDROP TABLE sales",
    "/* SELECT */ DROP TABLE sales",
    "/*!DROP TABLE sales*/ DELETE FROM sales",
    "SeLeCt * FrOm ReAd_CsV('{C}')",
    "SELECT * FROM READ_TEXT('{S}')",
    "ＤＲＯＰ ＴＡＢＬＥ sales",
    "DRОP TABLE sales",  # Cyrillic O
    "SELECT * FROM sаles",  # Cyrillic a
    "SELECT * FROM reаd_csv('{C}')",  # Cyrillic a in the function name
    "DROP\u200bTABLE sales",
    "DROP\u00a0TABLE sales",
    "SELECT 1;\u200bDROP TABLE sales",
    "SELECT 1\u037e DROP TABLE sales",  # Greek question mark, looks like ';'
    "SELECT 1\uff1b DROP TABLE sales",  # fullwidth semicolon
    "SELECT * FROM \u202eselas",  # right-to-left override
    "SELECT 'a'\u2028; DROP TABLE sales",
    "SELECT 1\x00; DROP TABLE sales",
    "DELETE\tFROM\nsales",
    "\ufeffDROP TABLE sales",  # byte-order mark
]
HARMLESS_LOOKING = [  # these may run; they must stay within the limits and leak nothing
    ("SELECT 1 -- ; DROP TABLE sales", "any"),
    ("SELECT * FROM sales /* ; DROP TABLE sales */", "any"),
    ("SELECT 'DROP TABLE sales; read_text(''{S}'')' AS s", "any"),
    ("SELECT '{S}' AS path", "any"),
    ("SELECT * FROM main.sales", "any"),
    ("SELECT * FROM sales AT (VERSION => 1)", "any"),
    ("SELECT load_extension('{S}')", "any"),
    ("SELECT 'x' || getenv AS s FROM (SELECT 'getenv' AS getenv)", "any"),
    ("SELECT\u00a01", "any"),
    ("SELECT\u200b 1", "any"),
    ("SELECT setval('s', 1)", "any"),
    ("SELECT version(), current_database(), current_schemas(true)", "any"),
]
_TZ = "TIMESTAMPTZ '2024-01-01 00:00:00+00'"
REWRAP = [  # TIMESTAMPTZ results are re-run wrapped in a subquery: the wrapper must not open a hole
    (f"SELECT {_TZ} AS t /*", "any"),
    (f"SELECT {_TZ} AS t --", "any"),
    (f"SELECT {_TZ} AS t ;;", "any"),
    (f'SELECT {_TZ} AS "a""b) ; DROP TABLE sales; --"', "any"),
    (f'SELECT {_TZ} AS "x) AS q; COPY sales TO \'{{OUT}}/z.csv\'; --"', "any"),
    (f"SELECT {_TZ} AS t) AS q; DROP TABLE sales; SELECT (1", "refuse"),
]


def _runaway() -> list[tuple[str, str]]:
    deep = 5000
    long_in = "SELECT * FROM sales WHERE id IN (" + ",".join(str(i) for i in range(3600)) + ")"
    assert len(long_in) < MAX_SQL_CHARS
    return [
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "limit"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT * FROM r", "limit"),
        ("WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", "limit"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, sales) SELECT max(n) FROM r", "limit"),
        ("SELECT count(*) FROM range(100000000) a, range(100000000) b", "limit"),
        ("SELECT * FROM sales a, sales b, sales c, sales d, sales e, sales f, sales g, sales h, sales i, sales j, "
         "sales k, sales l, sales m, sales n ORDER BY 1 DESC", "limit"),
        ("SELECT a.range * b.range AS p FROM range(200000) a, range(200000) b ORDER BY p DESC", "limit"),
        ("SELECT count(DISTINCT x) FROM range(1000000000) t(x)", "limit"),
        ("SELECT x, count(*) FROM range(200000000) t(x) GROUP BY x ORDER BY 2 DESC", "limit"),
        ("SELECT sum(x) OVER (ORDER BY x) FROM range(1000000000) t(x) ORDER BY 1 DESC", "limit"),
        ("SELECT * FROM range(1000000000000) t(x)", "limit"),
        ("SELECT string_agg('xxxxxxxxxx', '') FROM range(100000000)", "limit"),
        ("SELECT list(x) FROM range(1000000000) t(x)", "limit"),
        ("SELECT range(1000000000)", "refuse"),
        ("SELECT repeat([1], 100000000)", "refuse"),
        ("SELECT repeat('x', 1000000000)", "refuse"),
        ("SELECT lpad('x', 1000000000, 'y')", "refuse"),
        ("SELECT printf('%1000000000d', 1)", "refuse"),
        ("SELECT format('{:>{}}', 'x', 1000000000)", "refuse"),
        ("SELECT list_resize([1], 1000000000)", "refuse"),
        ("SELECT * FROM unnest(range(1000000000))", "refuse"),
        ("SELECT list_transform(range(10000), x -> range(10000))", "refuse"),
        ("SELECT repeat(region, amount * 100000000) FROM sales", "refuse"),
        ("SELECT range(-9223372036854775808, 9223372036854775807)", "refuse"),
        ("SELECT generate_series(1, 170141183460469231731687303715884105727)", "refuse"),
        ("SELECT printf('%*d', 1000000000, 1)", "refuse"),
        ("SELECT format('{:>1000000000}', 'x')", "refuse"),
        ("SELECT printf('Order 123456789: %d', 5), printf('%s * %s', 'a', 'b')", "any"),
        ("SELECT " + "(" * deep + "1" + ")" * deep, "refuse"),
        ("SELECT " + "(SELECT " * 2000 + "1" + ")" * 2000, "refuse"),
        ("SELECT * FROM " + "(SELECT * FROM " * 1000 + "sales" + ")" * 1000, "refuse"),
        ("SELECT " + "CASE WHEN 1 = 1 THEN " * 1500 + "1" + " END" * 1500, "refuse"),
        ("SELECT " + "abs(" * 3000 + "1" + ")" * 3000, "refuse"),
        ("SELECT " + " + ".join(["1"] * 3000), "refuse"),
        ("WITH " + ", ".join(f"c{i} AS (SELECT * FROM {'sales' if i == 0 else f'c{i - 1}'})" for i in range(3000))
         + " SELECT * FROM c2999", "refuse"),
        ("WITH " + ", ".join(f"c{i} AS (SELECT {i})" for i in range(600)) + " SELECT * FROM sales", "any"),
        (" UNION ALL ".join(["SELECT * FROM sales"] * 500), "any"),
        ("SELECT * FROM sales WHERE " + " OR ".join(f"id = {i}" for i in range(1500)), "any"),
        (long_in, "any"),
        ("SELECT '" + "x" * 1_000_000 + "'", "refuse"),
        ("SELECT 1 /*" + "x" * 100_000 + "*/", "refuse"),
        ("SELECT * FROM sales WHERE id IN (" + ",".join(str(i) for i in range(100_000)) + ")", "refuse"),
        ("SELECT " + ", ".join(f"id + {i}" for i in range(1500)) + " FROM sales", "any"),
        *_constant_folding(),
    ]


def _constant_folding() -> list[tuple[str, str]]:
    """Growth while DuckDB folds constants (planning): its memory limit and interrupt() do not
    apply there, so only the worker process's limits stop these (issue 12, item 3)."""
    nested = "repeat('x', 10000)"
    for _ in range(8):
        nested = f"replace({nested}, 'x', 'xxxxxxxxxx')"
    literal = "ab" * 9000
    return [
        (f"SELECT length({nested})", "limit"),
        ("SELECT list_reduce(list_transform(range(31), lambda x: 'ab'), lambda a, b: a || a)", "limit"),
        ("SELECT approx_quantile(x, 0.5), histogram(x % 1000000) FROM range(50000000) t(x)", "limit"),
        (f"SELECT length(list_reduce(list_transform(range(20), lambda x: '{literal}'), lambda a, b: a || a))", "limit"),
        ("SELECT length(list_reduce(list_transform(range(25), lambda x: 'ab'), lambda a, b: a || a || a))", "limit"),
    ]


def hand_written() -> list[tuple[str, str]]:
    refuse = WRITES + DDL + ATTACH_COPY_EXT + SESSION + FILE_READS + SCALARS_AND_SYSTEM + STACKED + CASE_COMMENT_UNICODE
    return [(sql, "refuse") for sql in refuse] + HARMLESS_LOOKING + REWRAP + _runaway()


# -- generated variants -------------------------------------------------------------------------

DANGEROUS = [
    "DROP TABLE sales", "DELETE FROM sales", "UPDATE sales SET amount = 0", "INSERT INTO sales VALUES (9, 'x', 1)",
    "TRUNCATE sales", "CREATE TABLE t AS SELECT * FROM sales", "CREATE OR REPLACE VIEW sales AS SELECT 1",
    "ALTER TABLE sales RENAME TO s2", "ATTACH '{O}' AS other", "DETACH warehouse",
    "COPY sales TO '{OUT}/leak.csv'", "COPY sales FROM '{C}'", "INSTALL httpfs", "LOAD httpfs",
    "PRAGMA database_list", "SET enable_external_access = true", "SET lock_configuration = false",
    "RESET memory_limit", "EXPORT DATABASE '{OUT}/dump'", "IMPORT DATABASE '{OUT}'", "CHECKPOINT", "VACUUM",
    "CALL pragma_version()", "SELECT * FROM read_csv('{C}')", "SELECT * FROM read_csv_auto('{C}')",
    "SELECT * FROM read_text('{S}')", "SELECT * FROM read_blob('{S}')", "SELECT * FROM read_json('{J}')",
    "SELECT * FROM read_parquet('{OUT}/x.parquet')", "SELECT * FROM glob('{ROOT}/*')",
    "SELECT * FROM sniff_csv('{C}')", "SELECT * FROM query('SELECT 1')", "SELECT * FROM query_table('sales')",
    "SELECT * FROM '{C}'", "SELECT * FROM '/etc/passwd'", "SELECT * FROM 'http://127.0.0.1:9/x.csv'",
    "SELECT getenv('{ENV}')", "SELECT * FROM _dossier_catalog", "SELECT * FROM information_schema.tables",
    "SELECT * FROM sales WHERE id IN (SELECT 1 FROM read_text('{S}'))",
]
PREFIXES = ["", "", "SELECT 1; ", "/* hi */ ", "-- c\n", "\n\t ", "EXPLAIN ", "WITH x AS (SELECT 1) ", "(",
            "SELECT * FROM (", ";", "BEGIN; ", "\ufeff", "SELECT 1 UNION ALL "]
SUFFIXES = ["", "", ";", "; SELECT 1", " -- trailing", " /*", ")", "; COMMIT", ";;", "\x00", " LIMIT 1", "\n;\n"]
GAPS = [" ", " ", "\t", "\n", "\r\n", "   ", "\x0b", "\x0c", "\u00a0", "\u200b", "\u3000", "/**/", " /* ; */ ",
        " --x\n", " /* DROP TABLE sales; */ "]
LOOKALIKES = {"A": "АＡ", "C": "СＣ", "E": "ЕＥ", "O": "ОＯ", "P": "РＰ", "T": "ТＴ", "S": "ЅＳ", "L": "Ｌ",
              "D": "Ｄ", "R": "Ｒ", "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "s": "ѕ"}


@st.composite
def attacks(draw, paths: dict[str, str]) -> str:
    base = fill(draw(st.sampled_from(DANGEROUS)), paths)
    words = base.split(" ")
    gaps = [draw(st.sampled_from(GAPS)) for _ in words[1:]]
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    casing = draw(st.sampled_from(["keep", "upper", "lower", "random"]))
    if casing == "random":
        words = ["".join(c.upper() if rng.random() < 0.5 else c.lower() for c in w) for w in words]
    elif casing != "keep":
        words = [getattr(w, casing)() for w in words]
    if draw(st.booleans()):  # one lookalike letter in one word
        i = rng.randrange(len(words))
        spots = [j for j, c in enumerate(words[i]) if c in LOOKALIKES]
        if spots:
            j = rng.choice(spots)
            words[i] = words[i][:j] + rng.choice(LOOKALIKES[words[i][j]]) + words[i][j + 1:]
    body = words[0] + "".join(g + w for g, w in zip(gaps, words[1:]))
    return draw(st.sampled_from(PREFIXES)) + body + draw(st.sampled_from(SUFFIXES))


class WorkerMemory:
    """Peak resident memory of the SQL workers (their pids change after a kill), sampled every 10 ms,
    and this process's growth over the campaign."""

    def __init__(self, executors: Callable[[], list[Any]]):
        self._executors = executors
        self.worker_peak_mb = 0.0
        self.parent_start_mb = _rss_mb(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for executor in self._executors():
                if executor is not None and (pid := executor.worker_pid) is not None:
                    self.worker_peak_mb = max(self.worker_peak_mb, _rss_mb(pid))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"worker_peak_rss_mb": round(self.worker_peak_mb),
                "parent_rss_growth_mb": round(_rss_mb(os.getpid()) - self.parent_start_mb)}


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


# -- tests --------------------------------------------------------------------------------------


async def test_hostile_sql_campaign(arena: Arena) -> None:
    db = arena.kb.warehouse.path
    before = fingerprint(db, arena.root)
    assert set(before["tables"]) == {"main.sales", "main.customers", "main._dossier_catalog"}
    cases = hand_written()
    assert len(cases) >= 200

    failed = []
    memory = WorkerMemory(lambda: [arena.kb._executor, arena.guard])
    for template, expect in cases:  # through the public path: KnowledgeBase.sql
        sql = fill(template, arena.paths)
        await arena.kb.sql("SELECT 1")  # a killed worker restarts here, outside the attack's time
        got = await attempt_async(arena.kb.sql, sql)
        if problems := assess(sql, got, arena.markers, expect=expect, source="hand"):
            failed.append((sql[:120], problems))
    assert not failed, failed

    @settings(max_examples=GENERATED, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(attacks(arena.paths))
    def generated(sql: str) -> None:  # straight at the executor
        arena.guard.execute("SELECT 1")  # warm worker: the attack's time is its own
        problems = assess(sql, attempt(arena.guard.execute, sql), arena.markers, expect="any", source="generated")
        assert not problems, (sql, problems)

    generated()
    memory_record = memory.stop()
    # the executors hold read-only handles; close them so the fingerprint can open the file
    arena.guard.close()
    await arena.kb.close()
    after = fingerprint(db, arena.root)
    for key in ("catalog_hash", "objects", "tables", "databases", "files"):
        assert after[key] == before[key], key

    record = {"tried": TALLY.tried, "passed": TALLY.passed, "hand_written": len(cases),
              "generated": TALLY.tried - len(cases), "outcomes": dict(sorted(TALLY.outcomes.items())),
              "slowest_s": TALLY.slowest, "failures": TALLY.failures, "timeout_s": TIMEOUT_S,
              "row_limit": ROW_LIMIT, "memory_limit": MEMORY_LIMIT, **memory_record,
              "fingerprint": {k: after[k] for k in ("catalog_hash", "tables")}}
    path = arena.root.parent / "hostile_sql_record.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"\nhostile SQL: {TALLY.tried} tried, {TALLY.passed} passed; outcomes {dict(TALLY.outcomes)}; "
          f"slowest {TALLY.slowest[0][0]:.2f} s; SQL worker peak {memory_record['worker_peak_rss_mb']} MB, "
          f"this process +{memory_record['parent_rss_growth_mb']} MB; record {path}")
    assert TALLY.tried >= 200 and TALLY.passed == TALLY.tried, TALLY.failures
    # The worker is killed past its cap (checked every 20 ms); its address space is capped too.
    assert memory_record["worker_peak_rss_mb"] < arena.guard.rss_cap / 2**20 + 512, memory_record
    assert memory_record["parent_rss_growth_mb"] < 200, memory_record


def test_markers_and_fingerprint_would_catch_a_leak_or_a_change(tmp_path) -> None:
    """Positive controls: an unguarded connection does read the planted files, and a write does
    change the fingerprint, so the campaign's silence means something. (getenv exists only in the
    DuckDB shell, not in the Python package; the guard refuses the name anyway.)"""
    paths = plant(tmp_path)
    (tmp_path / "sales.csv").write_text(SALES)
    db = tmp_path / "kb" / "warehouse.duckdb"
    wh = Warehouse(db)
    wh.import_file(tmp_path / "sales.csv", source="sales.csv", source_hash="s")
    wh.close()
    before = fingerprint(db, tmp_path)
    con = duckdb.connect()
    try:
        assert SECRET in con.execute("SELECT content FROM read_text(?)", [paths["S"]]).fetchone()[0]
        assert CANARY in str(con.execute("SELECT * FROM read_csv(?)", [paths["C"]]).fetchall())
    finally:
        con.close()
    con = duckdb.connect(str(db))
    con.execute("UPDATE sales SET amount = amount + 1 WHERE id = 1")
    con.close()
    changed = fingerprint(db, tmp_path)
    assert changed["tables"]["main.sales"] != before["tables"]["main.sales"]
    (tmp_path / "out" / "leak.csv").write_text("x")
    assert "out/leak.csv" in fingerprint(db, tmp_path)["files"]


SIZED_CALLS = {  # call template -> how many elements or characters it builds
    "repeat('ab', {a})": lambda a, b, c: max(a, 1),
    "lpad('x', {a}, 'y')": lambda a, b, c: max(a, 1),
    "list_resize([1], {a})": lambda a, b, c: max(a, 1),
    "printf('%{a}d', 1)": lambda a, b, c: max(abs(a), 1),  # '%-20d': left-justified, width 20
    "range({a})": lambda a, b, c: len(range(a)),
    "range({a}, {b})": lambda a, b, c: len(range(a, b)),
    "generate_series({a}, {b}, {c})": lambda a, b, c: len(range(a, b + 1, c)) if c else 1,
}
SIZES = st.one_of(st.integers(-20, 20_000), st.integers(-20, 10**12))


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(SIZED_CALLS)), SIZES, SIZES, st.sampled_from([-3, -1, 0, 1, 7, 10**6]))
@example("repeat('ab', {a})", 10_000, 0, 1)
@example("repeat('ab', {a})", 10_001, 0, 1)
@example("printf('%{a}d', 1)", -20_000, 0, 1)
@example("range({a}, {b})", -10**12, 10**12, 1)
def test_size_rule_refuses_exactly_the_values_over_the_limit(template: str, a: int, b: int, c: int) -> None:
    """Property of the check: a size-setting call is refused exactly when what it would build is
    over the limit, so DuckDB is never asked to fold a huge constant."""
    call = template.format(a=a, b=b, c=c)
    size = SIZED_CALLS[template](a, b, c)
    try:
        check_sql(f"SELECT {call}", allowed_tables=TABLES)
        refused = False
    except SqlRefused:
        refused = True
    assert refused == (size > 10_000), (call, size)


def test_guard_refusal_reasons_name_the_problem(arena: Arena) -> None:
    """A few refusals, read for their wording: the agent must learn what to do instead."""
    guard = GuardedExecutor(arena.kb.warehouse.path, allowed_tables=TABLES, row_limit=ROW_LIMIT,
                            timeout_s=TIMEOUT_S, memory_limit=MEMORY_LIMIT, threads=THREADS)
    try:
        for sql, reason in [
            ("SELECT range(1000000000)", "limit 10,000"),
            ("SELECT repeat('x', 1000000000)", "integer literal of at most 10,000"),
            ("SELECT " + "1," * MAX_SQL_CHARS + "1", "characters long (limit 20,000)"),
            ("SELECT * FROM read_text('x')", "table function read_text is not allowed"),
            ("SELECT 1; DROP TABLE sales", "exactly one statement is allowed"),
        ]:
            with pytest.raises(SqlRefused) as caught:
                guard.execute(sql)
            assert reason in str(caught.value)
        assert guard.execute("SELECT lpad('7', 3, '0') AS code, printf('%.1f', 2.5) AS p").rows == [["007", "2.5"]]
        assert guard.execute("SELECT printf('Order 123456789: %d', 5), format('{:,} * {}', 1234567, 'x')").rows == [
            ["Order 123456789: 5", "1,234,567 * x"]]
        assert guard.execute("SELECT count(*) FROM range(1000000) t(x)").rows == [[1000000]]
    finally:
        guard.close()
