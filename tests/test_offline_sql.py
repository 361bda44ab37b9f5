"""SQL that answers the question, on schemas unrelated to the demo, run against a real warehouse.

Tables are imported through ``tools.warehouse`` (sidecar descriptions included), candidates come from
``build_sql`` and run on the warehouse's DuckDB; headlines are checked by the citation verifier.
"""

from __future__ import annotations

import datetime as dt

import pytest

from agents.offline.schema_link import link_schema
from agents.offline.sql_answer import fmt, headline
from agents.offline.sql_build import build_sql
from agents.offline.sql_intent import intent
from agents.verify import verify_sections
from tools.evidence import evidence_from_sql
from tools.models import SqlResult, TableInfo
from tools.vocabulary import Evidence, Section
from tools.warehouse import Warehouse

PROJECTS = """project,region,budget_eur,actual_eur,status
Harbour Bridge,North,1000000,1300000,completed
Ring Road,East,5000000,6000000,completed
City Library,West,800000,760000,completed
Rail Tunnel,East,2000000,2100000,completed
Riverside School,South,400000,440000,active
"""
PROJECTS_META = """description: Capital construction projects with approved budget and actual outturn.
columns:
  budget_eur: Approved budget in EUR.
  actual_eur: Actual cost at completion in EUR.
"""
PACKAGES = """name,version,license,size_kb,files
httpx,0.27.0,BSD-3-Clause,480,60
aiosqlite,0.20.0,MIT,60,12
numpy,2.0.1,BSD-3-Clause,38000,900
rich,13.7.1,MIT,1600,120
attrs,23.2.0,MIT,210,40
click,8.1.7,BSD-3-Clause,300,20
pydantic,2.8.2,MIT,1900,95
certifi,2024.7.4,MPL-2.0,290,8
"""
STOCKS_META = """description: Monthly closing prices of selected stocks and the S&P 500 index.
columns:
  MSFT: Microsoft closing price in USD.
  AAPL: Apple closing price in USD.
  ^GSPC: S&P 500 index level at close.
"""


def _months(first: int, last: int) -> list[dt.date]:
    return [dt.date(y, m, 1) for y in range(first, last + 1) for m in range(1, 13)]


def _copper_csv() -> str:
    rows = [f"{d.isoformat()},{6000 + 10 * i + (d.month % 3)}" for i, d in enumerate(_months(2008, 2023))]
    return "month,price_usd\n" + "\n".join(rows) + "\n"


def _stocks_csv() -> str:
    rows = [f"{d.isoformat()},{20 + i * 1.5:.2f},{30 + i:.2f},{1100 + i * 20:.2f}"
            for i, d in enumerate(_months(2008, 2023))]
    return "Date,MSFT,AAPL,^GSPC\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("sqldata")
    files = {"projects.csv": PROJECTS, "projects.meta.yaml": PROJECTS_META, "packages.csv": PACKAGES,
             "copper_prices.csv": _copper_csv(), "stocks.csv": _stocks_csv(), "stocks.meta.yaml": STOCKS_META}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    wh = Warehouse(folder / "kb" / "warehouse.duckdb")
    for name in files:
        if name.endswith(".csv"):
            wh.import_file(folder / name, source=name, source_hash=name)
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def catalog(warehouse: Warehouse) -> list[TableInfo]:
    return warehouse.catalog()


def run(warehouse: Warehouse, sql: str) -> Evidence:
    cur = warehouse._connect().execute(sql)
    columns = [d[0] for d in cur.description]
    rows = [[v.isoformat() if isinstance(v, dt.date) else v for v in row] for row in cur.fetchall()]
    tables = [t.name for t in warehouse.catalog() if f'"{t.name}"' in sql]
    return evidence_from_sql(SqlResult(sql=sql, columns=columns, rows=rows, row_count=len(rows), truncated=False,
                                       tables=tables, elapsed_ms=1.0))


def verified(sentence: str, ev: Evidence) -> bool:
    """The sentence, cited, passes the citation verifier's number check."""
    out = verify_sections([Section(id="s", title="t", markdown=f"{sentence} [ev:{ev.id}]")], {ev.id: ev})
    v = out.verification
    return v.markers_resolved == 1 and v.numeric_claims == v.numeric_claims_supported and not v.flagged_claims


def best(question: str, catalog: list[TableInfo]) -> str:
    candidates = build_sql(question, catalog)
    assert candidates, question
    return candidates[0].sql


# ---- intent -----------------------------------------------------------------------------------

def test_intent_reading() -> None:
    it = intent("Which project overran its budget by the largest percentage, and why?")
    assert it.overrun and it.percent and it.direction == "DESC"
    assert intent("What is the most common licence?").mode
    assert intent("top 3 packages by size").k == 3
    assert intent("spend by quarter").grain == "quarter"
    assert intent("What share of the total does each region have?").share


# ---- rankings and derived measures -------------------------------------------------------------

def test_overrun_names_the_project_with_the_largest_percentage(warehouse: Warehouse,
                                                               catalog: list[TableInfo]) -> None:
    question = "Which project overran its budget by the largest percentage, and why?"
    sql = best(question, catalog)
    assert '"overrun_pct" DESC' in sql
    ev = run(warehouse, sql)
    assert ev.columns[0] == "project" and ev.rows[0][0] == "Harbour Bridge"  # Ring Road overran more in EUR
    text = headline(ev, question=question, language="en")
    assert text is not None and text.startswith("Harbour Bridge has the largest overrun")
    assert "1,300,000" in text and "1,000,000" in text and "+30%" in text
    assert verified(text, ev)
    zh = headline(ev, question=question, language="zh")
    assert zh is not None and zh.startswith("Harbour Bridge") and verified(zh, ev)


def test_largest_overrun_in_money_ranks_by_amount(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    ev = run(warehouse, best("Which project had the largest cost overrun?", catalog))
    assert ev.rows[0][0] == "Ring Road"


def test_disk_space_ranks_by_size_and_shows_it(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    question = "Which packages take the most disk space?"
    sql = best(question, catalog)
    assert 'ORDER BY "size_kb" DESC' in sql and "files" not in sql
    ev = run(warehouse, sql)
    assert ev.columns == ["name", "size_kb"] and ev.rows[0] == ["numpy", 38000]
    text = headline(ev, question=question, language="en")
    assert text == "numpy has the highest size, 38,000 kb, followed by pydantic (1,900 kb) and rich (1,600 kb)."
    assert verified(text, ev)
    assert verified(headline(ev, question=question, language="zh") or "", ev)


def test_largest_packages_without_a_measure_word(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    sql = best("Which are the 3 largest packages?", catalog)
    assert 'ORDER BY "size_kb" DESC' in sql and sql.endswith("LIMIT 3")


def test_most_common_licence_counts_per_licence(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    question = "What is the most common licence among the packages?"
    sql = best(question, catalog)
    assert sql.startswith('SELECT "license", count(*) AS "n"') and "sum(" not in sql
    ev = run(warehouse, sql)
    assert ev.rows[0] == ["MIT", 4]
    text = headline(ev, question=question, language="en")
    assert text is not None and text.startswith("The most common license is MIT, with 4 packages")
    assert verified(text, ev)


def test_share_of_total(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    sql = best("What share of the total budget does each region have?", catalog)
    assert '"share_pct"' in sql and 'GROUP BY "region"' in sql
    ev = run(warehouse, sql)
    assert ev.rows[0][0] == "East"
    text = headline(ev, question="", language="en")
    assert text is not None and text.startswith("East has the largest share") and verified(text, ev)


# ---- time series ------------------------------------------------------------------------------

def test_long_price_series_is_averaged_and_covers_the_range(warehouse: Warehouse,
                                                            catalog: list[TableInfo]) -> None:
    question = "How did the copper price develop from 2010 to 2022?"
    candidates = build_sql(question, catalog)
    series = candidates[0]
    assert "avg(\"price_usd\")" in series.sql and "sum(" not in series.sql
    assert "date_trunc('year'" in series.sql and "aggregated to years" in series.rationale
    ev = run(warehouse, series.sql)
    years = [row[0][:4] for row in ev.rows]
    assert years == [str(y) for y in range(2010, 2023)]  # the whole range, not cut by the limit
    text = headline(ev, question=question, language="en")
    assert text is not None and "in 2010" in text and "in 2022" in text and "yearly" in text
    assert verified(text, ev)
    growth = next(c for c in candidates if "change_pct" in c.sql)
    gev = run(warehouse, growth.sql)
    text = headline(gev, question=question, language="en")
    assert text is not None and text.startswith("price rose from") and verified(text, gev)


def test_short_range_stays_monthly(catalog: list[TableInfo]) -> None:
    sql = best("How did the copper price develop in H1 2015?", catalog)
    assert "date_trunc('month'" in sql or 'GROUP BY "month"' in sql


def test_microsoft_against_the_sp500_selects_both_columns(warehouse: Warehouse, catalog: list[TableInfo]) -> None:
    question = "How did Microsoft do against the S&P 500 from 2010 to 2022?"
    links = link_schema(question, catalog)
    assert links[0].table == "stocks"
    linked = dict(links[0].columns)
    assert linked["MSFT"] >= 1.0 and linked["^GSPC"] >= 1.0 and "AAPL" not in linked
    candidates = build_sql(question, catalog)
    sql = candidates[0].sql
    assert '"MSFT"' in sql and '"^GSPC"' in sql and '"AAPL"' not in sql and "avg(" in sql
    ev = run(warehouse, sql)
    assert ev.rows[0][0][:4] == "2010" and ev.rows[-1][0][:4] == "2022"
    growth = next(c for c in candidates if "change_pct" in c.sql)
    gev = run(warehouse, growth.sql)
    text = headline(gev, question=question, language="en")
    assert text is not None and "MSFT rose from" in text and "^GSPC rose from" in text and verified(text, gev)
    zh = headline(gev, question=question, language="zh")
    assert zh is not None and verified(zh, gev)


def test_ticker_written_in_the_question_links(catalog: list[TableInfo]) -> None:
    sql = best("How did MSFT and AAPL change since 2015?", catalog)
    assert '"MSFT"' in sql and '"AAPL"' in sql and '"^GSPC"' not in sql


# ---- formatting -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1300000, 30.0, 29.996, 23.41234, 250.1, 0.012345, 969.34, 1234.5678, -12.345])
def test_figures_are_formatted_so_they_verify(value: float) -> None:
    ev = evidence_from_sql(SqlResult(sql="SELECT 1", columns=["x"], rows=[[value]], row_count=1, truncated=False,
                                     tables=[], elapsed_ms=1.0))
    assert verified(f"The value is {fmt(value)}.", ev)


def test_no_headline_for_empty_rows() -> None:
    ev = Evidence(id="e2", kind="sql", text="", sql="SELECT 1", columns=["x"], rows=[])
    assert headline(ev, question="", language="en") is None


def test_deterministic(catalog: list[TableInfo]) -> None:
    for q in ("Which packages take the most disk space?",
              "How did Microsoft do against the S&P 500 from 2010 to 2022?"):
        assert build_sql(q, catalog) == build_sql(q, list(catalog))


def test_punctuation_column_names_and_values_do_not_break_linking() -> None:
    """Real CSVs have columns named '#' and cells like '?' or '-': they link to no question word."""
    from agents.offline.sql_build import build_sql as build
    from tools.models import ColumnInfo, TableInfo

    table = TableInfo(name="results", source="results.csv", source_hash="x", row_count=3, columns=[
        ColumnInfo(name="#", type="BIGINT", distinct_count=3),
        ColumnInfo(name="--", type="VARCHAR", distinct_count=2, samples=["a", "b"]),
        ColumnInfo(name="Competition", type="VARCHAR", distinct_count=3, samples=["Cup", "League", "?"]),
        ColumnInfo(name="Position", type="VARCHAR", distinct_count=2, samples=["1st", "-"]),
        ColumnInfo(name="Points", type="BIGINT", distinct_count=3)])
    for question in ["In which competition did she finish 1st?", "Which competition has the most points?",
                     "How many results are there per competition?"]:
        for candidate in build(question, [table]):
            assert "'?'" not in candidate.sql and "'-'" not in candidate.sql
