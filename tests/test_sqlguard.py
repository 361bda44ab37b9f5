"""Guarded SQL: what the check refuses, what runs, and the limits on what runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from tools import sql_worker
from tools.sqlguard import GuardedExecutor, SqlFailed, SqlRefused, SqlTimeout, check_sql
from tools.warehouse import Warehouse

SALES = """id,region,amount,price,day
1,north,10,1.25,2024-01-05
2,north,20,2.50,2024-01-20
3,south,5,0.75,2024-02-01
4,east,7,1.00,2024-02-15
5,south,3,4.00,2024-03-10
6,west,1,9.99,2023-12-31
"""
CUSTOMERS = """id,name,region
1,Ann,north
2,Bo,south
3,Cy,east
"""
TABLES = {"sales", "customers"}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kb")
    (folder / "sales.csv").write_text(SALES)
    (folder / "customers.csv").write_text(CUSTOMERS)
    wh = Warehouse(folder / "warehouse.duckdb")
    wh.import_file(folder / "sales.csv", source="sales.csv", source_hash="s1")
    wh.import_file(folder / "customers.csv", source="customers.csv", source_hash="c1")
    assert {t.name for t in wh.catalog()} == TABLES
    wh.close()
    return wh.path


@pytest.fixture(scope="module")
def guard(db):
    executor = GuardedExecutor(db, allowed_tables=TABLES, row_limit=50, timeout_s=1.0,
                               memory_limit="512MB", threads=2)
    yield executor
    executor.close()


REFUSED = [
    ("INSERT INTO sales VALUES (7, 'x', 1, 1, '2024-01-01')", "only SELECT/WITH queries are allowed; got INSERT"),
    ("UPDATE sales SET amount = 0", "got UPDATE"),
    ("DELETE FROM sales", "got DELETE"),
    ("CREATE TABLE x AS SELECT 1", "got CREATE"),
    ("CREATE VIEW v AS SELECT * FROM sales", "got CREATE"),
    ("CREATE MACRO m(x) AS x + 1", "got CREATE"),
    ("DROP TABLE sales", "got DROP"),
    ("ALTER TABLE sales ADD COLUMN z INT", "got ALTER"),
    ("COPY sales TO '/tmp/out.csv'", "got COPY"),
    ("COPY sales FROM '/etc/passwd'", "got COPY"),
    ("ATTACH '/tmp/other.duckdb' AS other", "got ATTACH"),
    ("DETACH other", "got DETACH"),
    ("INSTALL sqlite", "got INSTALL (LOAD statement)"),
    ("LOAD sqlite", "got LOAD"),
    ("PRAGMA table_info('sales')", "got PRAGMA"),
    ("SET memory_limit = '100GB'", "got SET"),
    ("RESET threads", "got RESET (SET statement)"),
    ("CALL pragma_version()", "got CALL"),
    ("EXPORT DATABASE '/tmp/dump'", "got EXPORT"),
    ("IMPORT DATABASE '/tmp/dump'", "got IMPORT"),
    ("CHECKPOINT", "got CHECKPOINT"),
    ("VACUUM", "got VACUUM"),
    ("BEGIN TRANSACTION", "got BEGIN"),
    ("USE memory", "got USE"),
    ("PREPARE p AS SELECT 1", "got PREPARE"),
    ("EXPLAIN SELECT * FROM sales", "got EXPLAIN"),
    ("MERGE INTO sales USING customers ON sales.id = customers.id WHEN MATCHED THEN DELETE", "got MERGE"),
    ("SELECT 1; DROP TABLE sales", "exactly one statement is allowed; got 2 (SELECT, DROP)"),
    ("SELECT 1 --\n; DROP TABLE sales", "exactly one statement is allowed; got 2"),
    ("SELECT 1 /* ; */; dRoP tAbLe sales", "got 2 (SELECT, DROP)"),
    ("dRoP tAbLe sales", "got DROP"),
    ("WITH d AS (DELETE FROM sales RETURNING *) SELECT * FROM d", "got DELETE inside the query"),
    ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv is not allowed"),
    ("SELECT * FROM read_parquet('x.parquet')", "table function read_parquet is not allowed"),
    ("SELECT * FROM read_json('x.json')", "table function read_json is not allowed"),
    ("SELECT * FROM read_text('/etc/passwd')", "table function read_text is not allowed"),
    ("SELECT * FROM glob('/*')", "table function glob is not allowed"),
    ("SELECT * FROM parquet_scan('x.parquet')", "table function parquet_scan is not allowed"),
    ("SELECT * FROM query('SELECT 1')", "table function query is not allowed"),
    ("SELECT (SELECT count(*) FROM read_blob('/etc/shadow'))", "table function read_blob is not allowed"),
    ("SELECT * FROM '/etc/passwd'", 'reading files is not allowed ("/etc/passwd" looks like a path)'),
    ('SELECT * FROM "data.csv"', "reading files is not allowed"),
    ("SELECT * FROM duckdb_settings()", "table function duckdb_settings is not allowed"),
    ("SELECT * FROM duckdb_tables", "system and internal tables are not allowed"),
    ("SELECT * FROM information_schema.tables", "system and internal tables are not allowed"),
    ("SELECT * FROM pg_catalog.pg_class", "system and internal tables are not allowed"),
    ("SELECT * FROM _dossier_catalog", 'system and internal tables are not allowed ("_dossier_catalog")'),
    ('SELECT * FROM "_DOSSIER_CATALOG"', "system and internal tables are not allowed"),
    ("WITH _dossier_catalog AS (SELECT 1) SELECT * FROM _dossier_catalog", "system and internal tables"),
    ("SELECT * FROM sqlite_master", "system and internal tables are not allowed"),
    ("SELECT * FROM nope", 'unknown table "nope"; known tables: customers, sales'),
    ("SELECT * FROM sales JOIN orders USING (id)", 'unknown table "orders"'),
    ("WITH x AS (SELECT * FROM x) SELECT * FROM x", 'unknown table "x"'),
    ("SELECT getenv('HOME')", "function getenv is not allowed"),
    ("SELECT current_setting('memory_limit')", "function current_setting is not allowed"),
    ("SELECT * FROM sales WHERE pg_sleep(100) IS NULL", "function pg_sleep is not allowed"),
    ("SELECT * FROM other.main.sales", 'schema-qualified name "other.main.sales" is not allowed'),
    ("SELECT * FROM other.sales", "schema-qualified name"),
    ("SHOW TABLES", "SHOW is not allowed"),
    ("PIVOT sales ON region USING sum(amount)", "PIVOT without an explicit IN list"),
    ("SELECT 1\x00", "NUL byte"),
    ("", "the query is empty"),
    ("SELEC 1", "could not be parsed"),
]

ALLOWED = [
    ("SELECT count(*) AS n, sum(amount) AS total FROM sales", [[6, 46]]),
    ("SELECT region, sum(amount) FROM sales GROUP BY region ORDER BY 2 DESC LIMIT 2",
     [["north", 30], ["south", 8]]),
    ("SELECT c.name, sum(s.amount) FROM sales s JOIN customers c USING (region) GROUP BY 1 ORDER BY 1",
     [["Ann", 30], ["Bo", 8], ["Cy", 7]]),
    ("WITH big AS (SELECT * FROM sales WHERE amount >= 7) SELECT count(*) FROM big", [[3]]),
    ("SELECT id, rank() OVER (ORDER BY amount DESC) FROM sales ORDER BY id LIMIT 3", [[1, 2], [2, 1], [3, 4]]),
    ("SELECT id FROM sales WHERE day BETWEEN DATE '2024-02-01' AND DATE '2024-02-29' ORDER BY id", [[3], [4]]),
    ("SELECT date_trunc('month', day)::DATE AS m, count(*) FROM sales WHERE day >= '2024-01-01' GROUP BY 1 ORDER BY 1",
     [["2024-01-01", 2], ["2024-02-01", 2], ["2024-03-01", 1]]),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r", [[15]]),
    ("SELECT region FROM sales UNION SELECT region FROM customers ORDER BY 1",
     [["east"], ["north"], ["south"], ["west"]]),
    ("SELECT name FROM customers WHERE region IN (SELECT region FROM sales WHERE amount > 8)", [["Ann"]]),
    ("FROM sales SELECT max(price)", [[9.99]]),
    ("SELECT * FROM (VALUES (1, 'a')) v(k, t)", [[1, "a"]]),
    ("SELECT sum(x) FROM range(4) t(x)", [[6]]),
    ("SELECT region FROM sales QUALIFY row_number() OVER (PARTITION BY region ORDER BY amount DESC) = 1 "
     "ORDER BY region", [["east"], ["north"], ["south"], ["west"]]),
    ("PIVOT (SELECT region, amount FROM sales) ON region IN ('north', 'south') USING sum(amount)", [[30, 8]]),
    ("select COUNT(*) from SALES", [[6]]),
    ("SELECT 1;", [[1]]),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED, ids=[f"refuse{i}" for i in range(len(REFUSED))])
def test_refused(sql, reason):
    with pytest.raises(SqlRefused) as caught:
        check_sql(sql, allowed_tables=TABLES)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("sql", "expected"), ALLOWED, ids=[f"allow{i}" for i in range(len(ALLOWED))])
def test_allowed_queries_run(guard, sql, expected):
    result = guard.execute(sql)
    assert result.sql == sql and not result.truncated and result.elapsed_ms >= 0
    if expected is not None:
        assert result.rows == expected
    assert result.row_count == len(result.rows)


def test_refused_and_allowed_tables_are_plentiful():
    assert len(REFUSED) >= 30 and len(ALLOWED) >= 10


def test_check_reports_tables_without_ctes():
    sql = "WITH s AS (SELECT * FROM Sales) SELECT * FROM s JOIN customers USING (id)"
    assert check_sql(sql, allowed_tables=TABLES) == ["customers", "sales"]
    assert check_sql("SELECT 1", allowed_tables=TABLES) == []


def test_row_cap_sets_truncated(db, guard):
    # Same DuckDB settings as ``guard``: one process may not open a file under two configurations.
    executor = GuardedExecutor(db, allowed_tables=TABLES, row_limit=4, timeout_s=5,
                               memory_limit=guard.memory_limit, threads=guard.threads)
    try:
        capped = executor.execute("SELECT id FROM sales ORDER BY id")
        assert (capped.rows, capped.row_count, capped.truncated) == ([[1], [2], [3], [4]], 4, True)
        exact = executor.execute("SELECT id FROM sales WHERE id <= 4")
        assert exact.row_count == 4 and not exact.truncated
        huge = executor.execute("SELECT x FROM range(1000000000000) t(x)")  # streams: only 5 rows are made
        assert huge.row_count == 4 and huge.truncated
        assert executor.execute("SELECT count(*) FROM sales").rows == [[6]]
    finally:
        executor.close()


@pytest.mark.parametrize("sql", [
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM range(100000) a, range(100000) b, sales WHERE a.range * b.range % 7 = sales.id",
    "SELECT a.range * b.range AS p FROM range(200000) a, range(200000) b ORDER BY p DESC",
])
def test_runaway_query_interrupted_and_connection_reusable(guard, sql):
    started = time.monotonic()
    with pytest.raises(SqlTimeout, match=r"query stopped: exceeded the 1 s time limit; add filters or aggregate"):
        guard.execute(sql)
    assert time.monotonic() - started < guard.timeout_s + 1.0
    assert guard.execute("SELECT count(*) FROM sales").rows == [[6]]


def test_failed_query_reports_duckdb_error(guard):
    with pytest.raises(SqlFailed, match='"amount_usd"'):
        guard.execute("SELECT amount_usd FROM sales")
    with pytest.raises(SqlFailed, match="Conversion"):
        guard.execute("SELECT CAST(region AS INTEGER) FROM sales")
    assert guard.execute("SELECT 2").rows == [[2]]


def test_rows_are_json_friendly(guard):
    result = guard.execute(
        "SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, 1.25::DECIMAL(10,2) AS dec, "
        "INTERVAL 2 DAY AS iv, [1, 2] AS l, {'k': DATE '2024-01-01'} AS s, 'x'::BLOB AS b, 'nan'::DOUBLE AS f")
    assert result.columns == ["d", "ts", "dec", "iv", "l", "s", "b", "f"]
    assert result.rows == [["2024-01-02", "2024-01-02T03:04:05", 1.25, "2 days, 0:00:00", [1, 2],
                            {"k": "2024-01-01"}, "78", "nan"]]
    assert result.model_dump_json()


def test_timestamptz_results_come_back_as_utc_text(guard):
    # duckdb converts TIMESTAMPTZ to Python through pytz; the executor turns them into text instead.
    result = guard.execute("SELECT TIMESTAMPTZ '2024-01-01 10:00:00+02' AS t, 1 AS t, "
                           "{'at': TIMESTAMPTZ '2024-01-01 00:00:00+00'} AS s; -- trailing ; comment")
    assert result.columns == ["t", "t", "s"]
    assert result.rows == [["2024-01-01 08:00:00+00", 1, "{'at': '2024-01-01 00:00:00+00'}"]]
    ordered = guard.execute("SELECT day::TIMESTAMPTZ AS ts FROM sales ORDER BY day DESC LIMIT 2;")
    assert ordered.rows == [["2024-03-10 00:00:00+00"], ["2024-02-15 00:00:00+00"]]


def test_connection_is_locked_down(db, guard):
    # Second line of defence: even SQL that slipped past the check is contained. The worker
    # process opens its connection with this very function.
    con = sql_worker.connect(str(db), memory_limit=guard.memory_limit, threads=guard.threads)
    try:
        for sql, error in [
            ("SET memory_limit = '64GB'", duckdb.InvalidInputException),
            ("SET lock_configuration = false", duckdb.InvalidInputException),
            ("SET enable_external_access = true", duckdb.InvalidInputException),
            ("SET TimeZone = 'America/New_York'", duckdb.InvalidInputException),
            ("SELECT * FROM read_text('/etc/hostname')", duckdb.PermissionException),
            ("CREATE TABLE t AS SELECT 1", duckdb.InvalidInputException),
            ("INSTALL sqlite", duckdb.Error),
        ]:
            with pytest.raises(error):
                con.execute(sql)
    finally:
        con.close()
    assert guard.execute("SELECT count(*) FROM customers").rows == [[3]]


def test_warehouse_unchanged_after_refusals(db, guard):
    def snapshot():
        guard.close()  # release the read-only handle so the warehouse can open the file
        wh = Warehouse(db)
        try:
            counts = {t.name: wh._connect().execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]
                      for t in wh.catalog()}
            return wh.catalog(), wh.catalog_hash(), counts
        finally:
            wh.close()

    before = snapshot()
    for sql, _ in REFUSED:
        with pytest.raises(SqlRefused):
            guard.execute(sql)
    assert snapshot() == before
    assert before[2] == {"customers": 3, "sales": 6}


def test_sequential_calls_from_worker_threads(guard):
    results: list[int] = []
    for n in range(3):
        worker = threading.Thread(target=lambda n=n: results.append(guard.execute(f"SELECT {n} + 1").rows[0][0]))
        worker.start()
        worker.join()
    assert results == [1, 2, 3]


def test_missing_warehouse_answers_from_empty_database(tmp_path):
    executor = GuardedExecutor(tmp_path / "none.duckdb", allowed_tables=set(), row_limit=5, timeout_s=2,
                               memory_limit="128MB", threads=1)
    try:
        assert executor.execute("SELECT 40 + 2").rows == [[42]]
        with pytest.raises(SqlRefused, match=r'unknown table "sales"; known tables: \(none\)'):
            executor.execute("SELECT * FROM sales")
    finally:
        executor.close()
    assert not (tmp_path / "none.duckdb").exists()
