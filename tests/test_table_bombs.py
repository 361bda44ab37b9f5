"""Table bombs (issue 12, items 4-8): every table import is bounded by rows, columns, cells, bytes
and time; a file past a bound is skipped with a one-line reason and the rest of the ingest goes on.

Each hostile file is built in tmp_path and is small on disk; limits are lowered where that keeps a
test fast, and every test asserts the skip reason instead of letting a bomb grow.
"""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

from tools.parsing import ParseError, parse_bytes
from tools.table_limits import TableImportError, TableLimits
from tools.warehouse import Warehouse


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def warehouse(tmp_path: Path, **limits) -> Warehouse:
    return Warehouse(tmp_path / "kb" / "warehouse.duckdb", TableLimits(**limits))


def refused(wh: Warehouse, path: Path) -> str:
    try:
        with pytest.raises(TableImportError) as caught:
            wh.import_file(path, source=path.name, source_hash="h")
        assert "\n" not in str(caught.value)
        assert wh.catalog() == []
        return str(caught.value)
    finally:
        wh.close()


# -- item 4: SQLite with a generated zeroblob column ------------------------------------------


def zeroblob_sqlite(path: Path, size: int = 900_000_000) -> Path:
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE parts (id INTEGER, blob BLOB GENERATED ALWAYS AS (zeroblob({size})) VIRTUAL)")
    con.executemany("INSERT INTO parts (id) VALUES (?)", [(i,) for i in range(20)])
    con.commit()
    con.close()
    return path


def test_sqlite_generated_zeroblob_is_refused_before_it_is_materialised(tmp_path, data) -> None:
    path = zeroblob_sqlite(data / "parts.sqlite")
    assert path.stat().st_size < 16_384
    reason = refused(warehouse(tmp_path), path)
    assert reason == "a value larger than 16 MB (max_table_value_mb)"


def test_sqlite_values_under_the_cap_but_over_the_byte_budget(tmp_path, data) -> None:
    path = zeroblob_sqlite(data / "parts.sqlite", size=1_000_000)  # 20 x 1 MB
    reason = refused(warehouse(tmp_path, max_bytes=4 * 2**20), path)
    assert reason == "data in table parts larger than 4 MB limit (max_table_mb)"


def test_sqlite_rows_over_the_limit(tmp_path, data) -> None:
    path = data / "ticks.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE ticks (n INTEGER)")
        con.execute("INSERT INTO ticks WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                    "WHERE n < 5000) SELECT n FROM r")
    con.close()
    assert refused(warehouse(tmp_path, max_rows=1000), path) == "table too long: more than 1,000 rows (max_table_rows)"


# -- item 5: a CSV with 10,000 columns and 3 rows ---------------------------------------------


def wide_csv(path: Path, columns: int) -> Path:
    header = ",".join(f"c{i}" for i in range(columns))
    body = "\n".join(",".join(str(i * r) for i in range(columns)) for r in range(1, 4))
    return write(path, header + "\n" + body + "\n")


def test_ten_thousand_columns_are_refused_quickly(tmp_path, data) -> None:
    reason = refused(warehouse(tmp_path), wide_csv(data / "wide.csv", 10_000))
    assert reason == "table too wide: 10,000 columns, limit 1,000 (max_table_columns)"


def test_wide_table_under_the_limit_imports_with_batched_statistics(tmp_path, data) -> None:
    wh = warehouse(tmp_path)
    try:
        [info] = wh.import_file(wide_csv(data / "wide.csv", 300), source="wide.csv", source_hash="h")
    finally:
        wh.close()
    assert info.row_count == 3 and len(info.columns) == 300
    assert all(c.distinct_count == 3 for c in info.columns[1:]) and info.columns[-1].max == "897"


def test_import_connection_has_a_memory_limit(tmp_path, data) -> None:
    wh = warehouse(tmp_path, memory_limit="300MB")
    try:
        wh.import_file(write(data / "k.csv", "a\n1\n"), source="k.csv", source_hash="h")
        (limit,) = wh._connect().execute("SELECT current_setting('memory_limit')").fetchone()
    finally:
        wh.close()
    assert limit.replace(" ", "").upper() in {"286.1MIB", "300.0MB", "300MB"}


def test_cells_limit_caps_a_parquet_that_claims_many_rows(tmp_path, data) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data / "runs.parquet"  # 200k equal values: a few KB on disk
    pq.write_table(pa.table({"a": pa.array([7] * 200_000), "b": pa.array([1] * 200_000)}), path)
    assert path.stat().st_size < 50_000
    reason = refused(warehouse(tmp_path, max_cells=100_000), path)
    assert reason == "table too large: more than 100,000 cells (rows x columns, max_table_cells)"


def test_slow_import_stops_at_the_timeout(tmp_path, data) -> None:
    path = data / "series.csv"
    path.write_text("year,value\n" + "".join(f"{2010 + i % 13},{i}\n" for i in range(200_000)))
    reason = refused(warehouse(tmp_path, timeout_s=0.01), path)
    assert reason == "import took longer than 0.01 s (table_import_timeout_s)"


def test_file_over_the_size_limit(tmp_path, data) -> None:
    path = write(data / "big.csv", "a\n" + "1\n" * 600_000)
    assert refused(warehouse(tmp_path, max_bytes=2**20), path) == "table file larger than 1 MB limit (max_table_mb)"


# -- item 6: xlsx zip bomb ---------------------------------------------------------------------


def xlsx_bytes(rows: int, *, dimension: str = "A1:B1") -> bytes:
    """A minimal valid workbook whose one sheet holds ``rows`` rows, written straight into the zip
    (openpyxl would take minutes to write what a hostile file holds in 2 MB)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"))
        z.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/>'
            "</Relationships>"))
        z.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        z.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/>'
            "</Relationships>"))
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                         f'<dimension ref="{dimension}"/><sheetData>'
                         '<row r="1"><c r="A1" t="inlineStr"><is><t>month</t></is></c>'
                         '<c r="B1" t="inlineStr"><is><t>value</t></is></c></row>').encode())
            row = '<row><c t="n"><v>{}</v></c><c t="n"><v>7</v></c></row>'
            block = "".join(row.format(i % 12 + 1) for i in range(1000)).encode()
            for _ in range(rows // 1000):
                sheet.write(block)
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def test_xlsx_reads_a_handwritten_workbook(tmp_path, data) -> None:
    path = data / "monthly.xlsx"
    path.write_bytes(xlsx_bytes(2000))
    wh = warehouse(tmp_path)
    try:
        [info] = wh.import_file(path, source="monthly.xlsx", source_hash="h")
    finally:
        wh.close()
    assert info.row_count == 2000 and [c.name for c in info.columns] == ["month", "value"]


def test_xlsx_rows_stream_under_a_cap(tmp_path, data) -> None:
    path = data / "rows.xlsx"
    path.write_bytes(xlsx_bytes(3_000_000))  # 3M rows in about 2 MB
    assert path.stat().st_size < 4 * 2**20
    reason = refused(warehouse(tmp_path, max_rows=10_000), path)
    assert reason == "table too long: more than 10,000 rows (max_table_rows)"


def test_xlsx_inflation_is_counted_while_inflating(tmp_path, data) -> None:
    path = data / "rows.xlsx"
    path.write_bytes(xlsx_bytes(3_000_000))
    reason = refused(warehouse(tmp_path, max_unpacked_bytes=32 * 2**20), path)
    assert reason == "zip bomb guard: .xlsx would unpack to more than 32 MB (max_table_unpacked_mb)"


def test_xlsx_lying_dimension_does_not_widen_rows(tmp_path, data) -> None:
    path = data / "wide_claim.xlsx"
    path.write_bytes(xlsx_bytes(1000, dimension="A1:XFD1048576"))
    wh = warehouse(tmp_path)
    try:
        [info] = wh.import_file(path, source=path.name, source_hash="h")
    finally:
        wh.close()
    assert len(info.columns) == 2 and info.row_count == 1000


# -- item 7: docx zip bomb whose header lies -------------------------------------------------


def lying_docx(real_mb: int, declared: int = 10_240) -> bytes:
    """document.xml inflates to ``real_mb`` MB but its headers declare ``declared`` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(real_mb):
                member.write(b"\0" * 2**20)
    raw = bytearray(out.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("word/document.xml")
    # Rewrite the declared size in the central directory entry (the one zipfile trusts).
    pos = raw.rfind(b"word/document.xml") - 46  # the central entry comes after the local one
    assert raw[pos : pos + 4] == b"PK\x01\x02"
    extra_len = int.from_bytes(raw[pos + 30 : pos + 32], "little")
    name_len = int.from_bytes(raw[pos + 28 : pos + 30], "little")
    extra = pos + 46 + name_len
    if int.from_bytes(raw[pos + 24 : pos + 28], "little") == 0xFFFFFFFF and extra_len:  # zip64: size lives in extra
        raw[extra + 4 : extra + 12] = declared.to_bytes(8, "little")
    else:
        raw[pos + 24 : pos + 28] = declared.to_bytes(4, "little")
    assert zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("word/document.xml").file_size == declared
    assert info.file_size == real_mb * 2**20
    return bytes(raw)


def test_docx_bomb_with_a_lying_header_is_caught_while_inflating() -> None:
    data = lying_docx(210)
    assert len(data) < 1_000_000
    with pytest.raises(ParseError) as caught:
        parse_bytes(data, suffix=".docx", source="memo.docx", max_bytes=64 * 2**20)
    assert str(caught.value) == "zip bomb guard: .docx would unpack to more than 200 MB"


# -- item 8: ragged CSV and unbalanced quotes -------------------------------------------------


@pytest.mark.parametrize(("text", "reason"), [
    ("a,b,c\n1,2,3\n4,5\n6,7,8,9\n", "ragged CSV: line 3 has 2 fields, line 1 has 3"),
    ("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", "ragged CSV: line 4 has 4 fields, line 1 has 3"),  # DuckDB kept line 4 only
    ("a;b;c\n1;2;3\n4;5\n6;7;8\n", "ragged CSV: line 3 has 2 fields, line 1 has 3"),
    ('name,city\n"Ann,Paris\nBo,Rome\nCy,Oslo\n', "unbalanced quote: a quoted field opened on line 2 never closes"),
    ('id,note\n1,"hello, world"\n2,"unterminated\n3,fine\n4,"ok"\n',
     "malformed CSV: the row starting on line 3 breaks at line 5"),
])
def test_malformed_csv_is_refused_with_the_problem_named(tmp_path, data, text, reason) -> None:
    got = refused(warehouse(tmp_path), write(data / "bad.csv", text))
    assert got.startswith(reason), got


@pytest.mark.parametrize("text", [
    'name,height\nAnn,5\'11"\nBo,6\'0"\n',  # a quote inside an unquoted field is just a character
    'id,note\n1,"hello, world"\n2,"line one\nline two"\n',  # quoted delimiter and newline
    "Quarterly report\n\nyear,value\n2010,1\n2011,2\n",  # a title line above the table
])
def test_odd_but_valid_csv_still_imports(tmp_path, data, text) -> None:
    wh = warehouse(tmp_path)
    try:
        [info] = wh.import_file(write(data / "ok.csv", text), source="ok.csv", source_hash="h")
    finally:
        wh.close()
    assert len(info.columns) == 2 and info.row_count == 2


# -- the whole folder: bombs skipped, the rest searchable ------------------------------------


async def test_folder_of_bombs_skips_each_and_keeps_the_rest(make_kb, tmp_path) -> None:
    root = tmp_path / "bombs"
    zeroblob_sqlite(root.mkdir() or root / "parts.sqlite")
    wide_csv(root / "wide.csv", 10_000)
    (root / "rows.xlsx").write_bytes(xlsx_bytes(3_000_000))
    (root / "memo.docx").write_bytes(lying_docx(210))
    write(root / "ragged.csv", "a,b,c\n1,2,3\n4,5\n")
    write(root / "packages.csv", "name,version,license,size_kb\nnumpy,2.1,BSD,9000\nrequests,2.32,Apache,120\n")
    write(root / "notes.md", "# Notes\n\nThe tapir survey is fine.\n")
    kb = await make_kb(max_table_rows=10_000)
    summary = await kb.ingest([root])
    reasons = {s.path.removeprefix("bombs/"): s.reason for s in summary.skipped}
    assert reasons == {
        "parts.sqlite": "a value larger than 16 MB (max_table_value_mb)",
        "wide.csv": "table too wide: 10,000 columns, limit 1,000 (max_table_columns)",
        "rows.xlsx": "table too long: more than 10,000 rows (max_table_rows)",
        "memo.docx": "zip bomb guard: .docx would unpack to more than 200 MB",
        "ragged.csv": "ragged CSV: line 3 has 2 fields, line 1 has 3",
    }
    assert [t.name for t in await kb.tables()] == ["packages"]
    assert (await kb.sql("SELECT sum(size_kb) FROM packages")).rows == [[9120]]
    assert {h.chunk.source for h in await kb.search("tapir", k=5, mode="text")} == {"bombs/notes.md"}


def test_sidecar_alias_bomb_is_refused_not_expanded(tmp_path, data) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    write(data / "costs.meta.yaml", "\n".join(lines) + "\ndescription: *a8\n")
    reason = refused(warehouse(tmp_path), write(data / "costs.csv", "project,budget\npier,5\n"))
    assert reason == "sidecar description must be text, not a list or mapping"
