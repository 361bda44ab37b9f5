"""Table import reads report-style spreadsheets: header rows that continue the header (years, units)
become column names and notes, figures written as text ("$1,496.5", "(9,819)", "12%", "—") become numbers,
codes with leading zeros stay text. Fixtures are small invented tables, unrelated to any benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.warehouse import Warehouse

OPEX = """col_1,col_2,fiscal_year_ended_june_30,col_4
,2023,2022,2021
,,(in thousands),
Operating expenses:,,,
Salaries,"$ 12,400.5","$ 11,020.0","$ 9,870.25"
Rent,(1500),"1,450",—
Travel growth,12%,(3.5%),-
"""
TWO_REGIONS = """line,north,col_3,south,col_5
,2023,2022,2023,2022
Orders,120,100,80,95
Returns,6,5,4,-
"""
STORES = """store,zip,revenue
Alpha,02134,"$1,200"
Beta,10001,$950
Gamma,94105,"$2,000"
"""
PLAIN = """name,score,grade
ann,12,A
bob,15,B
"""


@pytest.fixture
def wh(tmp_path: Path):
    warehouse = Warehouse(tmp_path / "kb" / "warehouse.duckdb")
    yield warehouse
    warehouse.close()


def _import(wh: Warehouse, folder: Path, name: str, text: str):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    (info,) = wh.import_file(path, source=name, source_hash=name)
    return info


def _rows(wh: Warehouse, sql: str) -> list[tuple]:
    return wh._connect().execute(sql).fetchall()


def test_year_header_row_names_columns_and_figures_become_numbers(wh: Warehouse, tmp_path: Path) -> None:
    info = _import(wh, tmp_path, "opex.csv", OPEX)
    cols = {c.name: c for c in info.columns}
    assert list(cols) == ["item", "c_2023", "c_2022", "c_2021"]
    assert all(cols[c].type == "DOUBLE" for c in ("c_2023", "c_2022", "c_2021"))
    assert "in thousands" in cols["c_2022"].description and "in thousands" in cols["c_2023"].description
    rows = {r[0]: r[1:] for r in _rows(wh, 'SELECT * FROM "opex"')}
    assert rows["Salaries"] == (12400.5, 11020.0, 9870.25)
    assert rows["Rent"] == (-1500.0, 1450.0, None)  # parentheses are negative, a dash is nothing
    assert rows["Travel growth"] == (12.0, -3.5, None)
    assert rows["Operating expenses:"] == (None, None, None)  # a section title stays a (blank) row
    assert info.row_count == 4  # the two header rows are gone


def test_repeated_years_under_group_headers_get_distinct_names(wh: Warehouse, tmp_path: Path) -> None:
    info = _import(wh, tmp_path, "regions.csv", TWO_REGIONS)
    assert [c.name for c in info.columns] == ["line", "north_2023", "north_2022", "south_2023", "south_2022"]
    assert _rows(wh, 'SELECT south_2022 FROM "regions" WHERE line = \'Returns\'') == [(None,)]


def test_codes_with_leading_zeros_stay_text_and_money_converts(wh: Warehouse, tmp_path: Path) -> None:
    info = _import(wh, tmp_path, "stores.csv", STORES)
    types = {c.name: c.type for c in info.columns}
    assert types["zip"] == "VARCHAR" and types["revenue"] == "BIGINT"
    assert _rows(wh, 'SELECT zip, revenue FROM "stores" ORDER BY revenue DESC')[0] == ("94105", 2000)


def test_an_ordinary_table_is_left_as_it_was(wh: Warehouse, tmp_path: Path) -> None:
    info = _import(wh, tmp_path, "plain.csv", PLAIN)
    assert [(c.name, c.type, c.description) for c in info.columns] == [
        ("name", "VARCHAR", ""), ("score", "BIGINT", ""), ("grade", "VARCHAR", "")]


def test_a_spreadsheet_with_a_year_row_under_its_header(wh: Warehouse, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["Segment", None, "Fiscal"], [None, 2024, 2023], ["Retail", 410.5, 380.0], ["Online", 120.0, 95.5]):
        sheet.append(row)
    book.save(tmp_path / "segments.xlsx")
    (info,) = wh.import_file(tmp_path / "segments.xlsx", source="segments.xlsx", source_hash="x")
    assert [c.name for c in info.columns] == ["Segment", "c_2024", "c_2023"]
    rows = _rows(wh, 'SELECT * FROM "segments" ORDER BY "Segment"')
    assert rows == [("Online", 120.0, 95.5), ("Retail", 410.5, 380.0)]


def test_a_first_row_with_a_year_like_value_under_a_real_name_stays_data(wh: Warehouse, tmp_path: Path) -> None:
    info = _import(wh, tmp_path, "scores.csv", "name,score\n,2019\nann,12\n")
    assert [c.name for c in info.columns] == ["name", "score"] and info.row_count == 2
