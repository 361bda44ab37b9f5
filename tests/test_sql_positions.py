"""Questions a table answers by the order of its rows, by an empty cell, by a filtered count or by two
values side by side (agents/offline/sql_position.py, sql_versus.py, sql_build.py, sql_answer.py).

Tables are small made-up ones unrelated to the demo and to the benchmark sets.
"""

from __future__ import annotations

import pytest

from agents.offline.sql_answer import matched_nothing
from agents.offline.sql_intent import intent
from agents.offline.support import filtered_by_question
from tests.sql_support import first_answer, run, warehouse_of
from tools.text.sentences import split_sentences
from tools.warehouse import Warehouse

FINISH = """Pos,Rider,Team,Laps,Points
1,Ines Varga,Kestrel,24,25
2,Tomas Lind,Osprey,24,20
3,Pia Aalto,Kestrel,24,16
4,Ravi Menon,Heron,23,13
5,Olga Brandt,Osprey,22,11
6,Jon Ekberg,Heron,0,0
"""
KITS = """Years,Kit maker,Shirt sponsor
1979-1982,Umbro,Northline
1982-1985,Umbro,
1985-1988,Admiral,Grover Foods
"""
STORMS = """Ship,Lake,Year
Arden,Lake Superior,1901
Bellmore,Lake Michigan,1903
Corvine,Lake Superior,1905
Dunmore,Lake Michigan,1905
Elsby,Lake Superior,1911
Fairhold,Lake Ontario,1913
"""
ROUTES = """Rank,City,Passengers,Carriers
1,"Dallas, TX","700,000","Delta, Frontier, United"
2,"Boise, ID","520,000","Frontier, United"
3,"Tulsa, OK","410,000",Delta
4,"Omaha, NE","300,000","Delta, United"
"""
SEASONS = """Year,Starts,Laps
1931,3,142
1932,4,130
1933,2,175
Totals,9,447
"""
# Thousands grouped with a space, as many statistics offices write them.
POPULATION = """Period,Births per year,Deaths per year
1950-1955,"139 000","66 000"
1955-1960,"164 000","96 000"
1960-1965,"195 000","104 000"
1965-1970,"229 000","112 000"
"""


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):
    yield from warehouse_of(tmp_path_factory.mktemp("positions"), {
        "finish": FINISH, "kits": KITS, "storms": STORMS, "population": POPULATION, "routes": ROUTES,
        "seasons": SEASONS})


def _first_answer(w: Warehouse, question: str, table: str | None = None) -> tuple[str, str]:
    sql, _, text = first_answer(w, question, table)
    return sql, text


@pytest.mark.parametrize("question, expected", [
    ("Who came immediately after Tomas Lind?", "Pia Aalto"),
    ("Which rider finished right behind Pia Aalto?", "Ravi Menon"),
    ("Who came just before Ravi Menon?", "Pia Aalto"),
])
def test_the_row_next_to_a_named_one(wh: Warehouse, question: str, expected: str) -> None:
    sql, text = _first_answer(wh, question)
    assert "rowid" in sql
    assert expected in text and text.startswith("Listed right")


def test_the_last_and_first_rows_listed(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "What is the last ship listed in the table?")
    assert "ORDER BY rowid DESC LIMIT 1" in sql and "Fairhold" in text
    sql, text = _first_answer(wh, "Which ship is listed first?")
    assert "ORDER BY rowid ASC LIMIT 1" in sql and "Arden" in text


def test_a_value_named_to_be_left_out(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "Besides Ines Varga, which rider is in team Kestrel?")
    assert "\"Rider\" <> 'Ines Varga'" in sql
    assert "Pia Aalto" in text and "Ines Varga" not in text


def test_an_empty_cell_answers_a_no(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "Which years had no shirt sponsor?")
    assert "\"Shirt sponsor\" IS NULL" in sql
    assert text == "Without Shirt sponsor: Umbro, Years 1982-1985."


def test_a_filtered_count_says_what_it_counted(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "How many riders completed 24 laps?")
    assert text == "3 rows have Laps 24."
    sql, text = _first_answer(wh, "How many riders scored at least 16 points?")
    assert "ORDER BY" not in sql, "'at least' is a filter, not a ranking of the least"
    assert text == "3 rows have Points at least 16."


def test_at_least_is_not_a_ranking() -> None:
    assert intent("How many games did the team score at least 30 points?").direction is None
    assert intent("Which product sold the least?").direction == "ASC"
    assert "count" in intent("What was the number of times the team placed 5th?").ops


def test_how_many_more_one_value_than_another(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "How many more ships sank in Lake Superior than in Michigan?")
    assert "FILTER (WHERE \"Lake\" = 'Lake Michigan')" in sql
    assert text == "Lake Superior has 1 more than Lake Michigan (3 against 2)."


def test_space_grouped_thousands_are_numbers_and_the_first_match_is_listed(wh: Warehouse) -> None:
    info = next(t for t in wh.catalog() if t.name == "population")
    assert {c.name: c.type for c in info.columns}["Deaths per year"] in ("BIGINT", "DOUBLE")
    sql, text = _first_answer(wh, "What was the first period to have more than 100,000 deaths?")
    assert '"Deaths per year" > 100000' in sql
    assert "1960-1965" in text and "1965-1970" not in text


def test_a_count_of_nothing_is_recognised(wh: Warehouse) -> None:
    ev = run(wh, 'SELECT count(*) AS "n" FROM "finish" WHERE "Laps" = 99')
    assert matched_nothing(ev)
    assert not matched_nothing(run(wh, 'SELECT count(*) AS "n" FROM "finish" WHERE "Laps" = 24'))
    assert not matched_nothing(run(wh, 'SELECT count(*) AS "n" FROM "finish"'))


def test_dotted_initials_do_not_end_a_sentence() -> None:
    text = "Team A.J. Foyt Enterprises finished 14th [1]. The next team was Penske."
    assert split_sentences(text) == ["Team A.J. Foyt Enterprises finished 14th [1].", "The next team was Penske."]


def test_an_item_of_a_listing_cell_is_a_value_of_its_column(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "How many routes have Frontier as a carrier?")
    assert "list_contains" in sql
    assert text == "2 rows have Carriers Frontier."
    sql, text = _first_answer(wh, "How many routes have Delta as a carrier?")
    assert text == "3 rows have Carriers Delta."  # the whole cell 'Delta' and two listings


def test_a_table_result_picked_by_a_value_the_question_writes_is_about_it(wh: Warehouse) -> None:
    ev = run(wh, "SELECT count(*) AS \"n\" FROM \"kits\" WHERE \"Kit maker\" = 'Umbro'")
    assert filtered_by_question(ev, "How many seasons had Umbro as kit maker?")
    assert not filtered_by_question(ev, "How many seasons had Admiral as kit maker?")


def test_a_place_is_a_number_in_a_place_column_and_all_is_no_grouping(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "What is the number of 2nd place finishes across all teams?")
    assert '"Pos" = 2' in sql and "GROUP BY" not in sql
    assert text == "1 row has Pos 2."
    sql, text = _first_answer(wh, "Which rider finished third?")
    assert '"Pos" = 3' in sql and "Pia Aalto" in text


def test_two_years_side_by_side_even_when_a_totals_row_makes_them_text(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "Did he race more laps in 1931 or 1932?", "seasons")
    assert "\"Year\" IN ('1931', '1932')" in sql
    assert text == "1931 has the higher Laps, 142, against 1932 (130)."
    sql, text = _first_answer(wh, "How many laps did he race in 1933?", "seasons")
    assert text.startswith("Year 1933: ") and "175" in text
