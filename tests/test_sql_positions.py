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
# A closing row that sums the others, as medal tables and financial statements have.
MEDALS = """Rank,Nation,Gold,Silver,Bronze
1,Norland,5,2,1
2,Estmark,3,4,2
3,Valdoria,1,1,4
,Total (3 nations),9,7,7
"""
# Places as text: a retirement ("Ret") among them keeps the column text.
RACE = """Pos,Rider,Make,Points
1,Anke Holm,Vireo,25
2,Bram Osei,Talon,20
3,Cato Reyes,Vireo,16
Ret,Dana Kiel,Talon,0
"""
CAST = """Contestant,Age,Home town
Ella Moss,19,Linwood
Fern Ray,23,Oakridge
Gia Lund,21,Linwood
Hana Vos,20,Oakridge
"""
MEETS = """Year,Competition,Venue,Position
2009,Coast Games,"Porto, Portugal",3rd
2010,Inland Cup,"Lyon, France",5th
2011,Coast Games,"Kobe, Japan",2nd
2012,Open Trials,"Porto, Portugal",1st
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
        "seasons": SEASONS, "medals": MEDALS})


@pytest.fixture(scope="module")
def wh2(tmp_path_factory: pytest.TempPathFactory):
    yield from warehouse_of(tmp_path_factory.mktemp("places"), {"race": RACE, "contestants": CAST, "meets": MEETS})


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


def test_a_total_row_is_never_ranked_counted_or_summed(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "Which nation won the most gold medals?", "medals")
    assert "IS DISTINCT FROM 'Total (3 nations)'" in sql
    assert text.startswith("Norland") and "Total" not in text
    _, ev, text = first_answer(wh, "How many gold medals were won altogether?", "medals")
    assert text == "Total Gold 9.", (ev.sql, text)  # 18 with the Total row counted again
    _, ev, text = first_answer(wh, "How many nations won at least 3 gold medals?", "medals")
    assert text == "2 rows have Gold at least 3."


def test_came_in_first_is_place_one_of_a_text_place_column(wh2: Warehouse) -> None:
    sql, text = _first_answer(wh2, "who came in first?", "race")
    assert "\"Pos\" = '1'" in sql
    assert text == "Pos 1: Rider Anke Holm."


def test_older_than_compares_the_age_column(wh2: Warehouse) -> None:
    sql, text = _first_answer(wh2, "how many contestants were older than 20?", "contestants")
    assert "\"Age\" > 20" in sql and text == "2 rows have Age over 20."


def test_a_lower_case_question_finds_its_names_and_says_every_value_it_kept(wh2: Warehouse) -> None:
    sql, text = _first_answer(wh2, "which competition was held in kobe and lyon?", "meets")
    assert "'Kobe'" in sql and "'Lyon'" in sql
    assert text.startswith("Rows with Venue Kobe or Lyon: ") and "Coast Games" in text and "Inland Cup" in text


async def test_a_knowledge_base_of_tables_only_is_asked_even_for_a_question_planned_for_documents(
        make_kb, tmp_path) -> None:
    """ "who came in first?" names no column and no value: the planner sends it to the documents, and with
    no document in the knowledge base the engine asks the tables instead of giving up."""
    from dossier.research import Researcher

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "race.csv").write_text(RACE, encoding="utf-8")
    kb = await make_kb()
    await kb.ingest([tmp_path / "data"])
    report = await Researcher(kb).run("who came in first?")
    summary = report.sections[0].markdown
    assert "Anke Holm" in summary.split("\n")[0] and "does not contain" not in summary


def test_two_named_rows_totalled_are_one_sum_that_names_them(wh: Warehouse) -> None:
    sql, text = _first_answer(wh, "how many gold medals did norland and valdoria total?", "medals")
    assert "GROUP BY" not in sql and "sum(\"Gold\")" in sql
    assert text.startswith("Nation Norland or Valdoria: total Gold 6")
