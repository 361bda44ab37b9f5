"""Warehouse imports: every format, naming, sidecars, replacement, removal and refusals."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.sqlguard import GuardedExecutor
from tools.warehouse import CATALOG_TABLE, TABLE_SUFFIXES, TableImportError, Warehouse, table_name

SALES_CSV = """region,amount,price,day,note
north,10,1.5,2024-01-05,a
north,20,2.5,2024-01-06,
south,5,0.5,2024-02-01,b
north,,3.0,2024-03-10,c
south,7,1.0,2024-02-02,d
east,1,9.75,2023-12-31,e
west,3,4.0,2024-06-30,f
"""


@pytest.fixture
def wh(tmp_path: Path):
    warehouse = Warehouse(tmp_path / "kb" / "warehouse.duckdb")
    yield warehouse
    warehouse.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rows(wh: Warehouse, sql: str) -> list[tuple]:
    return wh._connect().execute(sql).fetchall()


def test_suffixes_cover_every_reader():
    assert TABLE_SUFFIXES == {".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".xlsx",
                              ".sqlite", ".sqlite3", ".db"}


def test_csv_catalog_counts_samples_and_ranges(wh, data):
    [info] = wh.import_file(write(data, "sales.csv", SALES_CSV), source="data/sales.csv", source_hash="h1")
    assert (info.name, info.source, info.source_hash, info.row_count) == ("sales", "data/sales.csv", "h1", 7)
    cols = {c.name: c for c in info.columns}
    assert [c.name for c in info.columns] == ["region", "amount", "price", "day", "note"]
    region = cols["region"]
    assert region.type == "VARCHAR" and region.samples == ["north", "south", "east", "west"]
    assert (region.distinct_count, region.null_count, region.min, region.max) == (4, 0, None, None)
    amount = cols["amount"]
    assert amount.type == "BIGINT" and amount.null_count == 1 and amount.distinct_count == 6
    assert (amount.min, amount.max, amount.samples) == ("1", "20", [])
    assert (cols["price"].type, cols["price"].min, cols["price"].max) == ("DOUBLE", "0.5", "9.75")
    assert (cols["day"].type, cols["day"].min, cols["day"].max) == ("DATE", "2023-12-31", "2024-06-30")
    assert cols["note"].null_count == 1 and cols["note"].samples == ["a", "b", "c", "d", "e"]
    assert rows(wh, "SELECT sum(amount) FROM sales") == [(46,)]


def test_samples_most_frequent_first_capped_at_five(wh, data):
    text = "k\n" + "\n".join(["z"] * 4 + ["y"] * 3 + ["a", "b", "c", "d", "e"]) + "\n"
    [info] = wh.import_file(write(data, "k.csv", text), source="k.csv", source_hash="h")
    assert info.columns[0].samples == ["z", "y", "a", "b", "c"]


def test_tsv(wh, data):
    [info] = wh.import_file(write(data, "t.tsv", "a\tb\n1\thello, world\n2\tx\n"), source="t.tsv", source_hash="h")
    assert info.name == "t" and [c.name for c in info.columns] == ["a", "b"]
    assert rows(wh, "SELECT b FROM t ORDER BY a") == [("hello, world",), ("x",)]


def test_parquet(wh, data):
    path = data / "metrics.parquet"
    pq.write_table(pa.table({"k": ["a", "b"], "v": [1.5, 2.5], "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]}), path)
    [info] = wh.import_file(path, source="metrics.parquet", source_hash="h")
    assert info.row_count == 2 and [c.type for c in info.columns] == ["VARCHAR", "DOUBLE", "DATE"]


def test_json_array_and_nested(wh, data):
    records = [{"id": 1, "tags": ["x"], "who": {"name": "ann"}}, {"id": 2, "tags": [], "who": {"name": "bo"}}]
    [info] = wh.import_file(write(data, "events.json", json.dumps(records)), source="events.json", source_hash="h")
    assert info.name == "events" and info.row_count == 2
    assert rows(wh, "SELECT who.name FROM events ORDER BY id") == [("ann",), ("bo",)]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(wh, data, suffix):
    path = write(data, f"log{suffix}", '{"level": "info", "n": 1}\n{"level": "warn", "n": 2}\n')
    [info] = wh.import_file(path, source=path.name, source_hash="h")
    assert info.row_count == 2 and rows(wh, "SELECT max(n) FROM log") == [(2,)]


def test_xlsx_single_sheet_named_after_file(wh, data):
    path = data / "Budget 2024.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Item", "Cost", "When", None, "Cost"])
    sheet.append(["rent", 1200, dt.datetime(2024, 1, 1), None, 1])
    sheet.append(["food", 310.5, dt.datetime(2024, 2, 1), None, 2])
    book.create_sheet("Empty")
    book.save(path)
    [info] = wh.import_file(path, source="Budget 2024.xlsx", source_hash="h")
    assert info.name == "budget_2024" and info.row_count == 2
    assert [(c.name, c.type) for c in info.columns] == [
        ("Item", "VARCHAR"), ("Cost", "DOUBLE"), ("When", "DATE"), ("Cost_2", "BIGINT")]
    assert rows(wh, 'SELECT sum("Cost") FROM budget_2024') == [(1510.5,)]


def test_xlsx_several_sheets_become_stem__sheet(wh, data):
    path = data / "report.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Q1 Sales"
    book.active.append(["region", "amount"])
    book.active.append(["north", 3])
    other = book.create_sheet("Costs")
    other.append(["k", "v"])
    other.append(["a", "text"])
    other.append(["b", 2])  # mixed column: falls back to text
    book.save(path)
    infos = wh.import_file(path, source="report.xlsx", source_hash="h")
    assert sorted(i.name for i in infos) == ["report__costs", "report__q1_sales"]
    costs = wh.describe("report__costs")
    assert [c.type for c in costs.columns] == ["VARCHAR", "VARCHAR"] and costs.row_count == 2


def make_sqlite(path: Path, *, extra: bool = False) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, joined TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?)", [(1, "Ann", "2024-01-01"), (2, "Bo", None)])
    con.execute('CREATE TABLE "Order Lines" (id INTEGER, customer_id INTEGER, total REAL, blob BLOB)')
    con.executemany('INSERT INTO "Order Lines" VALUES (?, ?, ?, ?)', [(1, 1, 9.5, b"\x00\x01"), (2, 2, 3.0, None)])
    con.execute("CREATE TABLE empty_one (x INTEGER)")
    if extra:
        con.execute("CREATE TABLE notes (t TEXT)")
        con.execute("INSERT INTO notes VALUES ('hi')")
    con.commit()
    con.close()
    return path


def test_sqlite_every_table_with_rows_as_stem__table(wh, data):
    path = make_sqlite(data / "shop.sqlite")
    infos = wh.import_file(path, source="shop.sqlite", source_hash="h")
    assert sorted(i.name for i in infos) == ["shop__customers", "shop__order_lines"]
    assert rows(wh, "SELECT sum(total) FROM shop__order_lines") == [(12.5,)]
    customers = wh.describe("shop__customers")
    columns = [(c.name, c.type) for c in customers.columns]
    assert columns == [("id", "BIGINT"), ("name", "VARCHAR"), ("joined", "VARCHAR")]
    assert customers.columns[2].null_count == 1


def test_sqlite_skips_views_virtual_and_shadow_tables(wh, data):
    path = data / "docs.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    con.execute("INSERT INTO notes VALUES (1, 'hello')")
    con.execute("CREATE VIEW v_notes AS SELECT * FROM notes")
    con.execute("CREATE VIRTUAL TABLE search USING fts5(body)")
    con.execute("INSERT INTO search VALUES ('hello world')")
    con.commit()
    con.close()
    assert [i.name for i in wh.import_file(path, source="docs.sqlite", source_hash="h")] == ["docs__notes"]


def test_sidecar_descriptions_applied(wh, data):
    path = write(data, "sales.csv", SALES_CSV)
    write(data, "sales.meta.yaml",
          "description: Monthly sales by region\ncolumns:\n  amount: Units sold\n  REGION: Sales region\n")
    [info] = wh.import_file(path, source="sales.csv", source_hash="h")
    assert info.description == "Monthly sales by region"
    cols = {c.name: c.description for c in info.columns}
    assert cols["amount"] == "Units sold" and cols["region"] == "Sales region" and cols["price"] == ""
    assert wh.describe("sales").description == "Monthly sales by region"


def test_sidecar_tables_entry_for_multi_table_files(wh, data):
    path = make_sqlite(data / "shop.db")
    write(data, "shop.meta.yml", "description: Shop database\ntables:\n  customers:\n    description: People\n"
                                 "    columns: {name: Full name}\n")
    wh.import_file(path, source="shop.db", source_hash="h")
    customers = wh.describe("shop__customers")
    assert customers.description == "People" and customers.columns[1].description == "Full name"
    assert wh.describe("shop__order_lines").description == "Shop database"


def test_invalid_sidecar_refused(wh, data):
    path = write(data, "sales.csv", SALES_CSV)
    write(data, "sales.meta.yaml", "description: [unclosed\n")
    with pytest.raises(TableImportError, match=r"sidecar sales.meta.yaml"):
        wh.import_file(path, source="sales.csv", source_hash="h")


@pytest.mark.parametrize(("raw", "expected"), [
    ("Sales 2024 (Final)", "sales_2024_final"),
    ("2024-report", "t_2024_report"),
    ("Ümlaut-Daten", "mlaut_daten"),
    ("销售数据", "t"),
    ("duckdb_settings", "t_duckdb_settings"),
    ("sqlite_master", "t_sqlite_master"),
    ("pg_class", "t_pg_class"),
    ("_dossier_catalog", "dossier_catalog"),
    ("a--b__c", "a_b_c"),
])
def test_table_name_sanitising(raw, expected):
    assert table_name(raw) == expected


def test_reserved_words_and_collisions_deduplicated(wh, data):
    [reserved] = wh.import_file(write(data, "select.csv", "a\n1\n"), source="select.csv", source_hash="h")
    assert reserved.name == "select_2"
    first = wh.import_file(write(data, "a/sales.csv", "a\n1\n"), source="a/sales.csv", source_hash="h")
    second = wh.import_file(write(data, "b/Sales.csv", "a\n2\n"), source="b/Sales.csv", source_hash="h")
    assert (first[0].name, second[0].name) == ("sales", "sales_2")
    # Re-importing the first source keeps its name and leaves the other source's table alone.
    again = wh.import_file(write(data, "a/sales.csv", "a\n3\n"), source="a/sales.csv", source_hash="h2")
    assert again[0].name == "sales"
    assert rows(wh, "SELECT a FROM sales") == [(3,)] and rows(wh, "SELECT a FROM sales_2") == [(2,)]


def test_reimport_of_changed_file_replaces_its_tables(wh, data):
    path = data / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "one"
    book.active.append(["x"])
    book.active.append([1])
    book.create_sheet("two").append(["y"])
    book["two"].append([2])
    book.save(path)
    assert len(wh.import_file(path, source="book.xlsx", source_hash="v1")) == 2
    book.remove(book["two"])
    book.save(path)
    [info] = wh.import_file(path, source="book.xlsx", source_hash="v2")
    assert info.name == "book" and [t.name for t in wh.catalog()] == ["book"]
    assert wh.sources() == {"book.xlsx": "v2"}
    tables = {r[0] for r in rows(wh, "SELECT table_name FROM duckdb_tables()")}
    assert tables == {"book", CATALOG_TABLE}


def test_remove_source(wh, data):
    wh.import_file(make_sqlite(data / "shop.sqlite"), source="shop.sqlite", source_hash="h")
    wh.import_file(write(data, "k.csv", "a\n1\n"), source="k.csv", source_hash="h")
    assert wh.remove_source("shop.sqlite") == ["shop__customers", "shop__order_lines"]
    assert wh.sources() == {"k.csv": "h"} and [t.name for t in wh.catalog()] == ["k"]
    assert wh.remove_source("missing.csv") == []


def corrupt_xlsx(folder: Path) -> Path:
    return write(folder, "bad.xlsx", "not a zip at all")


def corrupt_sqlite(folder: Path) -> Path:
    return write(folder, "bad.sqlite", "this is plain text, not a database page " * 50)


def empty_sheets_xlsx(folder: Path) -> Path:
    path = folder / "blank.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["only", "a", "header"])
    book.save(path)
    return path


def no_tables_sqlite(folder: Path) -> Path:
    con = sqlite3.connect(folder / "none.db")
    con.execute("CREATE TABLE t (x INTEGER)")  # no rows
    con.commit()
    con.close()
    return folder / "none.db"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda d: write(d, "e.csv", ""), "empty file"),
    (lambda d: write(d, "h.csv", "a,b\n"), "no data rows"),
    (lambda d: (d / "bin.csv").write_bytes(b"\x00\x01\x02\xff\xfe garbage") and d / "bin.csv", "binary"),
    (lambda d: write(d, "p.parquet", "PAR1 not really"), "parquet file could not be read"),
    (lambda d: write(d, "j.json", '{"a": 1,'), "json file could not be read"),
    (lambda d: write(d, "j.jsonl", '{"a": 1}\n{"a": '), "jsonl file could not be read"),
    (corrupt_xlsx, "not a readable xlsx workbook"),
    (empty_sheets_xlsx, "no sheet or table with data rows"),
    (corrupt_sqlite, "not a readable SQLite database"),
    (no_tables_sqlite, "no sheet or table with data rows"),
    (lambda d: write(d, "x.txt", "a\n1\n"), "unsupported table format .txt"),
])
def test_bad_files_refused_and_old_tables_kept(wh, data, make, reason):
    good = wh.import_file(write(data, "good.csv", "a\n1\n2\n"), source="src", source_hash="v1")
    before = (wh.catalog(), rows(wh, "SELECT count(*) FROM good"))
    with pytest.raises(TableImportError, match=reason) as caught:
        wh.import_file(make(data), source="src", source_hash="v2")
    assert "\n" not in str(caught.value)
    assert (wh.catalog(), rows(wh, "SELECT count(*) FROM good")) == before
    assert wh.sources() == {"src": "v1"} and good[0].name == "good"
    leftovers = rows(wh, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%stage%'")
    assert leftovers == []


def test_legacy_encodings_transcoded(wh, data):
    (data / "gbk.csv").write_bytes("名称,城市\n张三,北京\n李四,上海\n王五,广州\n".encode("gbk"))
    (data / "latin.csv").write_bytes("name,city\nJosé,Zürich\nRenée,Köln\n".encode("latin-1"))
    wh.import_file(data / "gbk.csv", source="gbk.csv", source_hash="h")
    wh.import_file(data / "latin.csv", source="latin.csv", source_hash="h")
    assert rows(wh, 'SELECT "城市" FROM gbk ORDER BY 1') == [("上海",), ("北京",), ("广州",)]
    assert rows(wh, "SELECT city FROM latin ORDER BY 1") == [("Köln",), ("Zürich",)]


def test_csv_type_change_after_sniffer_sample(wh, data):
    lines = ["id,v"] + [f"{i},{i}" for i in range(30_000)] + ["30000,abc"]
    [info] = wh.import_file(write(data, "late.csv", "\n".join(lines) + "\n"), source="late.csv", source_hash="h")
    assert info.row_count == 30_001 and info.columns[1].type == "VARCHAR"


def test_catalog_hash_and_describe(wh, data):
    empty_hash = wh.catalog_hash()
    wh.import_file(write(data, "k.csv", "a\n1\n"), source="k.csv", source_hash="h")
    first = wh.catalog_hash()
    assert first != empty_hash and len(first) == 16 and wh.catalog_hash() == first
    wh.import_file(write(data, "k.csv", "a\n1\n2\n"), source="k.csv", source_hash="h2")
    assert wh.catalog_hash() != first
    assert wh.describe("K").name == "k"
    with pytest.raises(KeyError, match='unknown table "nope"; known tables: k'):
        wh.describe("nope")


def test_catalog_lives_in_the_duckdb_file(wh, data):
    wh.import_file(write(data, "k.csv", "a\n1\n"), source="dir/k.csv", source_hash="h")
    wh.close()
    con = duckdb.connect(str(wh.path), read_only=True)
    try:
        [(name, source, digest, info)] = con.execute(
            f"SELECT name, source, source_hash, info FROM {CATALOG_TABLE}").fetchall()
    finally:
        con.close()
    assert (name, source, digest, json.loads(info)["row_count"]) == ("k", "dir/k.csv", "h", 1)
    assert Warehouse(wh.path).sources() == {"dir/k.csv": "h"}


def test_reads_without_a_file_create_nothing(tmp_path):
    wh = Warehouse(tmp_path / "kb" / "warehouse.duckdb")
    assert wh.catalog() == [] and wh.sources() == {} and not (tmp_path / "kb").exists()


def test_catalog_readable_while_guarded_reader_holds_the_file(wh, data):
    wh.import_file(write(data, "k.csv", "a\n1\n"), source="k.csv", source_hash="h")
    names = {t.name for t in wh.catalog()}
    wh.close()
    executor = GuardedExecutor(wh.path, allowed_tables=names, row_limit=10, timeout_s=5,
                               memory_limit="256MB", threads=1)
    try:
        assert executor.execute("SELECT a FROM k").rows == [[1]]
        assert [t.name for t in wh.catalog()] == ["k"] and wh.describe("k").row_count == 1
        assert wh.catalog_hash()
    finally:
        executor.close()
