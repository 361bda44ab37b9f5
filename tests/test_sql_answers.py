"""SQL that answers questions about one item across year columns (a report-style table), and value
probing for row labels the catalog's samples do not hold. Small invented fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.offline.sql_answer import headline
from agents.offline.sql_build import build_sql
from agents.offline.sql_probe import phrases, probe_statements, with_values
from tests.sql_support import first_answer, probed, run, warehouse_of
from tools.vocabulary import Evidence
from tools.warehouse import Warehouse

SEGMENTS = """col_1,col_2,fiscal,col_4
,2021,2020,2019
,,(in millions),
Home Appliances,680,774,676
Garden Tools,"$1,200","$1,000","$1,100"
Spare Parts,90,80,(10)
Industrial Pumps,300,310,290
Medical Devices,50,40,45
Consumer Audio,20,25,30
Office Chairs,15,12,11
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    yield from warehouse_of(tmp_path_factory.mktemp("periods"), {"segments": SEGMENTS})


def _answer_of(wh: Warehouse, question: str) -> tuple[Evidence, str]:
    _, ev, text = first_answer(wh, question)
    return ev, text


def test_probe_finds_a_row_label_beyond_the_samples(warehouse: Warehouse) -> None:
    question = "What was the change in Spare Parts in 2021 from 2020?"
    assert "spare parts" in phrases(question)
    (table,) = warehouse.catalog()
    assert "Spare Parts" not in table.columns[0].samples  # five samples, alphabetical ties: not this one
    assert probe_statements(question, [table]) and all(len(s) < 20_000 for s in probe_statements(question, [table]))
    (found,) = probed(warehouse, question)
    assert "Spare Parts" in found.columns[0].samples
    assert with_values([table], []) == [table]


def test_change_between_two_years(warehouse: Warehouse) -> None:
    ev, text = _answer_of(warehouse, "What was the change in Home Appliances in 2021 from 2020?")
    assert ev.rows[0][ev.columns.index("change")] == -94
    assert text.startswith("Home Appliances changed by -94")


def test_percentage_change_states_the_percentage_first(warehouse: Warehouse) -> None:
    ev, text = _answer_of(warehouse, "What is the percentage change in Garden Tools from 2020 to 2021?")
    assert ev.rows[0][ev.columns.index("change_pct")] == 20.0
    assert "changed by 20%" in text


def test_average_over_the_years_named_or_all(warehouse: Warehouse) -> None:
    _, text = _answer_of(warehouse, "What was the average Spare Parts for 2020 and 2021?")
    assert text.endswith("is 85.")
    _, text = _answer_of(warehouse, "What is the average Industrial Pumps?")
    assert "is 300" in text  # (300 + 310 + 290) / 3


def test_which_year_was_largest(warehouse: Warehouse) -> None:
    _, text = _answer_of(warehouse, "In which year was the amount for Home Appliances the largest?")
    assert text == "The largest value is in 2020: 774."
    _, text = _answer_of(warehouse, "In which year was Spare Parts the lowest?")
    assert "2019" in text


RESULTS = """Year,Competition,Venue,Position
2001,Coastal Cup,"Lisbon, Portugal",3rd
2002,Harbour Games,"Oslo, Norway",1st
2003,Coastal Cup,"Porto, Portugal",2nd
2004,Northern Open,"Bergen, Norway",1st
2005,Harbour Games,"Riga, Latvia",5th
2006,Northern Open,"Tromso, Norway",4th
2007,Summit Trophy,"Turin, Italy",6th
"""


@pytest.fixture(scope="module")
def results_wh(tmp_path_factory: pytest.TempPathFactory):
    yield from warehouse_of(tmp_path_factory.mktemp("results"), {"results": RESULTS})


def test_an_ordinal_word_filters_on_the_value_tables_write(results_wh: Warehouse) -> None:
    question = "In which competition did she finish first?"
    sql = build_sql(question, probed(results_wh, question))[0].sql
    assert "\"Position\" = '1st'" in sql
    ev = run(results_wh, sql)
    text = headline(ev, question=question, language="en")
    # "which competition": the picked rows, named by their competition
    assert text == ("Rows with Position 1st: Harbour Games (Year 2002, Venue Oslo, Norway) / "
                    "Northern Open (Year 2004, Venue Bergen, Norway).")


def test_a_year_in_the_question_filters_a_numeric_year_column(results_wh: Warehouse) -> None:
    question = "Which venue did she compete at in 2005?"
    sql = build_sql(question, probed(results_wh, question))[0].sql
    assert '"Year" = 2005' in sql
    rows = run(results_wh, sql).rows
    assert [r for r in rows if "Riga, Latvia" in r]


def test_a_named_row_is_stated_with_its_cells(results_wh: Warehouse) -> None:
    question = "Where was the Summit Trophy held?"
    _ev, text = _answer_of(results_wh, question)
    assert text.startswith("Summit Trophy:") and "Turin, Italy" in text
    assert "Year 2007" in text  # a year is not written as 2,007


LAPS = """Driver,Team,Laps,Laps Led,Points
Ada Moss,Falcon,80,12,30
Ben Cole,Falcon,80,0,25
Cy Dunn,Orbit,79,0,20
Di Fox,Orbit,60,3,18
Ed Hale,Nova,80,0,15
"""


@pytest.fixture(scope="module")
def laps_wh(tmp_path_factory: pytest.TempPathFactory):
    yield from warehouse_of(tmp_path_factory.mktemp("laps"), {"race": LAPS})


@pytest.mark.parametrize("question, condition, count", [
    ("How many drivers completed 80 laps?", '"Laps" = 80', 3),
    ("How many drivers have no laps led?", '"Laps Led" = 0', 3),
    ("How many drivers scored at least 20 points?", '"Points" >= 20', 3),
    ("How many drivers scored more than 20 points?", '"Points" > 20', 2),
])
def test_a_number_before_a_column_name_filters_on_it(laps_wh: Warehouse, question: str, condition: str,
                                                     count: int) -> None:
    candidates = build_sql(question, probed(laps_wh, question))
    sql = next(c.sql for c in candidates if 'count(*) AS "n"' in c.sql and "GROUP BY" not in c.sql)
    assert condition in sql
    assert run(laps_wh, sql).rows[0][0] == count


def test_altogether_sums(laps_wh: Warehouse) -> None:
    question = "How many points did Falcon score altogether?"
    sqls = [c.sql for c in build_sql(question, probed(laps_wh, question))]
    assert any('sum("Points")' in s for s in sqls)


def test_probe_statements_pass_the_sql_guard_and_ignore_footnote_marks(tmp_path: Path) -> None:
    from tools.sqlguard import GuardedExecutor

    (tmp_path / "parts.csv").write_text("item,units\nSpare Parts (Note 3),1\nHome,2\n", encoding="utf-8")
    wh = Warehouse(tmp_path / "kb" / "warehouse.duckdb")
    wh.import_file(tmp_path / "parts.csv", source="parts.csv", source_hash="x")
    catalog = wh.catalog()
    wh.close()
    executor = GuardedExecutor(wh.path, allowed_tables={t.name for t in catalog}, row_limit=50, timeout_s=5,
                               memory_limit="256MB", threads=1)
    try:
        rows = [r for sql in probe_statements("What was the change in spare parts in 2019?", catalog)
                for r in executor.execute(sql).rows]
    finally:
        executor.close()
    assert rows == [["parts", "item", "Spare Parts (Note 3)"]]
