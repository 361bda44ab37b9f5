"""The glossary as data, and planning on material unrelated to the demo (no demo vocabulary anywhere).

Fixtures: Python packages, stock prices, construction projects, a city council budget.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from agents.offline.decompose import decompose, detect_entities
from agents.offline.operands import coordinated_operands
from agents.offline.plan_words import PHRASES
from agents.offline.schema_link import link_schema
from agents.offline.sql_build import build_sql
from agents.offline.text import (
    LEXICON,
    english_equivalents,
    find_concepts,
    use_glossary,
)
from tools.discover import classify
from tools.glossary import (
    GlossaryEntry,
    GlossaryFileError,
    load_glossary,
    parse_glossary,
    sync_glossaries,
)
from tools.models import ColumnInfo, TableInfo

GLOSSARY_YAML = """
terms:
  - term: Microsoft
    synonyms: [微软]
    kind: entity
    table: stocks
    column: MSFT
  - term: S&P 500
    synonyms: [S&P, 标普500]
    kind: entity
    table: stocks
    column: ^GSPC
  - term: parks
    synonyms: [green spaces, 公园]
    column: department
    value: Parks
  - term: overrun
    synonyms: [cost overrun, 超支]
    kind: measure
    column: actual
"""


def _col(name: str, type_: str, samples: list[str] = (), desc: str = "", distinct: int | None = None) -> ColumnInfo:
    return ColumnInfo(name=name, type=type_, samples=list(samples), description=desc, distinct_count=distinct)


def _table(name: str, cols: list[ColumnInfo], rows: int, desc: str = "") -> TableInfo:
    return TableInfo(name=name, source=f"data/{name}.csv", source_hash=name, row_count=rows, columns=cols,
                     description=desc)


CATALOG = [
    _table("packages", [_col("name", "VARCHAR", ["numpy", "requests", "rich"], "Package name.", 200),
                        _col("version", "VARCHAR", ["2.1.0"]), _col("license", "VARCHAR", ["MIT", "BSD-3-Clause"]),
                        _col("size_kb", "BIGINT", ["120"], "Installed size in kilobytes.", 200)], 200),
    _table("stocks", [_col("Date", "DATE", ["2010-01-04"]), _col("MSFT", "DOUBLE", ["23.4"]),
                      _col("AAPL", "DOUBLE", ["7.6"]), _col("^GSPC", "DOUBLE", ["1132.9"])], 3000,
           "Monthly closing prices."),
    _table("projects", [_col("project", "VARCHAR", ["Harbour Bridge", "Ring Road"], "Construction project.", 3),
                        _col("budget", "BIGINT", ["1000000"]), _col("actual", "BIGINT", ["1300000"])], 3),
    _table("council_budget", [_col("year", "BIGINT", ["2021", "2022"]),
                              _col("department", "VARCHAR", ["Parks", "Libraries", "Roads"], "Council department.", 3),
                              _col("amount_eur", "BIGINT", ["500000"], "Budget in EUR.")], 30),
]
TERMS = parse_glossary(GLOSSARY_YAML.encode(), name="glossary.yaml", source="data/glossary.yaml")


def _subs(question: str) -> list[str]:
    return [s.question for s in decompose(question, CATALOG).sub_questions]


# ---- the file format --------------------------------------------------------------------------------

def test_yaml_and_csv_glossaries_parse_to_typed_entries() -> None:
    assert [t.term for t in TERMS] == ["Microsoft", "S&P 500", "parks", "overrun"]
    assert TERMS[0].stands_for == "stocks.MSFT" and TERMS[2].stands_for == "department = 'Parks'"
    assert TERMS[2].resolved_kind == "entity" and TERMS[3].resolved_kind == "measure"
    csv_text = "term,synonyms,kind,column,value\nhttpx,HTTPX | 异步HTTP客户端,entity,name,httpx\n"
    [entry] = parse_glossary(csv_text.encode(), name="glossary.csv")
    assert entry.synonyms == ("HTTPX", "异步HTTP客户端") and entry.value == "httpx"


@pytest.mark.parametrize(("text", "problem"), [
    ("terms: 3", "expected a list"), ("terms:\n  - synonyms: [a]\n", "term"),
    ("terms:\n  - term: x\n    colour: red\n", "colour"), ("terms: [", "invalid YAML"), ("terms: []", "no entries"),
])
def test_bad_glossary_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(GlossaryFileError, match=problem):
        parse_glossary(text.encode(), name="glossary.yaml")


def test_glossary_files_are_recognised_by_name() -> None:
    for name in ("glossary.yaml", "Glossary.yml", "glossary.csv", "finance.glossary.yaml", "hr.glossary.csv"):
        assert classify(Path(name)) == "glossary", name
    for name in ("glossary.md", "sales.csv", "my_glossary.yaml", "glossary.meta.yaml"):
        assert classify(Path(name)) != "glossary", name


def test_sync_replaces_prunes_and_skips_bad_files(tmp_path: Path) -> None:
    data, kb = tmp_path / "data", tmp_path / "kb"
    data.mkdir(), kb.mkdir()
    (data / "glossary.yaml").write_text(GLOSSARY_YAML, encoding="utf-8")
    (data / "bad.glossary.yaml").write_text("terms: [", encoding="utf-8")
    found = [(data / "glossary.yaml", "data/glossary.yaml"), (data / "bad.glossary.yaml", "data/bad.glossary.yaml")]
    first = sync_glossaries(kb, found, prune_prefixes=None)
    assert first.new == 1 and [s for s, _ in first.skipped] == ["data/bad.glossary.yaml"]
    assert len(load_glossary(kb)) == 4
    assert sync_glossaries(kb, found[:1], prune_prefixes=None).unchanged == 1
    (data / "glossary.yaml").write_text("terms:\n  - term: httpx\n", encoding="utf-8")
    assert sync_glossaries(kb, found[:1], prune_prefixes=None).changed == 1
    assert [t.term for t in load_glossary(kb)] == ["httpx"]
    assert sync_glossaries(kb, [], prune_prefixes=None).removed == 0  # kept without --prune
    assert sync_glossaries(kb, [], prune_prefixes=["data"]).removed == 1 and load_glossary(kb) == []


def test_knowledge_base_ingests_and_serves_the_glossary(tmp_path: Path) -> None:
    from tools.config import KBSettings
    from tools.knowledge_base import KnowledgeBase

    data = tmp_path / "data"
    data.mkdir()
    (data / "glossary.yaml").write_text(GLOSSARY_YAML, encoding="utf-8")
    (data / "broken.glossary.csv").write_text("name,value\nx,y\n", encoding="utf-8")
    (data / "prices.csv").write_text("Date,MSFT\n2010-01-04,23.4\n", encoding="utf-8")

    async def run() -> tuple[list[GlossaryEntry], list[str], str, str]:
        kb = await KnowledgeBase.open(tmp_path / "kb", settings=KBSettings(embedder="hash"))
        summary = await kb.ingest([data])
        terms = await kb.glossary()
        with_terms = (await kb.version()).catalog_hash
        (data / "glossary.yaml").unlink()
        await kb.ingest([data], prune=True)
        without = (await kb.version()).catalog_hash
        await kb.close()
        return terms, [s.path for s in summary.skipped], with_terms, without

    terms, skipped, with_terms, without = asyncio.run(run())
    assert [t.term for t in terms] == ["Microsoft", "S&P 500", "parks", "overrun"]
    assert skipped == ["data/broken.glossary.csv"]
    assert with_terms != without  # a glossary change is a new knowledge-base state


# ---- the lexicon is general language; the glossary adds an organisation's terms ---------------------

def test_builtin_lexicon_is_general_language() -> None:
    assert not [c.key for c in LEXICON.values() if c.kind == "entity"]  # names are an organisation's data
    assert {"cost", "team", "duration", "risk", "trend", "top", "compare"} <= set(LEXICON)
    assert find_concepts("the cost of 微软") == find_concepts("the cost of 微软")  # stable
    assert [h.key for h in find_concepts("微软的成本")] == ["cost"]


def test_use_glossary_is_scoped_and_feeds_concepts_and_translation() -> None:
    with use_glossary(TERMS):
        assert [h.key for h in find_concepts("微软和标普500的走势")] == ["microsoft", "s&p_500", "trend"]
        assert english_equivalents("微软的股价") == "Microsoft"
        assert LEXICON["microsoft"].columns == ("MSFT",)
    assert "microsoft" not in LEXICON and [h.key for h in find_concepts("微软的股价")] == []


def test_glossary_links_names_to_columns_and_values() -> None:
    question = "How did Microsoft compare with the S&P 500 between 2010 and 2022?"
    # No glossary: "MSFT" is Microsoft's code (its letters in order), but nothing says ^GSPC is the S&P 500.
    [bare] = link_schema(question, CATALOG)
    assert [c for c, _ in bare.columns] == ["MSFT"]
    with use_glossary(TERMS):
        [link] = link_schema(question, CATALOG)
        assert link.table == "stocks" and {"MSFT", "^GSPC"} <= {c for c, _ in link.columns}
        sql = build_sql(question, CATALOG)[0].sql
        assert '"MSFT"' in sql and '"^GSPC"' in sql and "DATE '2010-01-01'" in sql
        parks = build_sql("What did the council spend on green spaces in 2022?", CATALOG)
        assert parks and "\"department\" = 'Parks'" in parks[0].sql


# ---- planning on real questions ----------------------------------------------------------------------

@pytest.mark.parametrize(("question", "names"), [
    ("Compare httpx and aiosqlite", ["httpx", "aiosqlite"]),
    ("httpx vs requests: which should we use for async code?", ["httpx", "requests"]),
    ("Which is cheaper, Postgres or MySQL?", ["Postgres", "MySQL"]),
    ("How did Microsoft compare with the S&P 500 in 2020?", ["Microsoft", "S&P 500"]),
    ("Compare the budgets of the Harbour Bridge and the City Library", ["Harbour Bridge", "City Library"]),
    ("比较httpx和aiosqlite的许可证", ["httpx", "aiosqlite"]),
    ("市议会的公园和图书馆预算相比如何？", ["公园", "图书馆"]),
    ("What are the advantages and risks of the new bridge?", []),
    ("Were more than 5 or 6 contractors involved?", []),
])
def test_coordinated_names_are_found_without_capitals_or_lexicon(question: str, names: list[str]) -> None:
    assert [o.label for o in coordinated_operands(question)] == names


def test_comparison_of_lowercase_package_names_keeps_both() -> None:
    subs = _subs("Compare httpx and aiosqlite")
    assert subs == ["What are the key characteristics of httpx?", "What are the key characteristics of aiosqlite?",
                    "How do httpx and aiosqlite compare?"]
    zh = _subs("比较httpx和aiosqlite的团队规模")
    assert any("httpx" in s for s in zh) and any("aiosqlite" in s for s in zh) and "python" not in " ".join(zh).lower()


def test_glossary_entities_make_a_comparison_of_like_things() -> None:
    with use_glossary(TERMS):
        plan = decompose("Microsoft vs the S&P 500: how did they develop since 2015?", CATALOG)
    subs = [s.question for s in plan.sub_questions]
    assert "Microsoft" in subs[0] and "S&P 500" in subs[1] and subs[-1].startswith("How do Microsoft and S&P 500")
    assert all(s.tables == ["stocks"] for s in plan.sub_questions[:2])


def test_advice_is_not_a_comparison_and_units_are_not_names() -> None:
    subs = _subs("What is the recommended PostgreSQL shared_buffers for a 64 GB server?")
    assert subs[0] == "What is the recommended PostgreSQL shared_buffers for a 64 GB server?"
    assert not any("GB" in s for s in subs[1:]) and not any("better choice" in s for s in subs)
    assert [e.label for e in detect_entities("Is 10 MW enough for Toad Hall?", [])] == ["Toad Hall"]


def test_unknown_words_get_the_literal_question_first() -> None:
    subs = _subs("What is the zorblax coefficient of the quux reactor?")
    assert subs[0] == "What is the zorblax coefficient of the quux reactor?" and len(subs) == 2
    assert re.fullmatch(r"What else do the documents say about \w+\?", subs[1])


def test_why_stays_with_its_clause() -> None:
    assert _subs("Which project overran its budget by the largest percentage, and why?")[0] == (
        "Which project overran its budget by the largest percentage, and why?")
    assert _subs("哪个项目超支最多？为什么？")[0] == "哪个项目超支最多，为什么？"


def test_no_repeated_subject_in_follow_ups() -> None:
    subs = _subs("How did the parks budget change from 2021 to 2022?")
    assert not any(s.count("parks") > 1 for s in subs)


@pytest.mark.parametrize("x", ["Harbour Bridge", "the vendors", "httpx", "cancelled projects"])
def test_every_template_reads_for_any_subject(x: str) -> None:
    """No verb agrees with {x} and no noun presumes what {x} is ("How many cases of {x}")."""
    for q_en, q_zh, _, _, f_en, f_zh in PHRASES.values():
        for template in (q_en, f_en):
            assert not re.search(r"\b(does|do|has|have|is|are|was|were|takes?) \{x\}", template), template
            assert not re.search(r"\b(a|an|cases of) \{x\}|\{x\} (takes|needs|has|is)\b", template), template
            assert template.format(x=x, a="cost").count(x) == 1
        assert x in q_zh.format(x=x) and x in f_zh.format(x=x, a="成本")


def test_planning_is_deterministic_with_a_glossary() -> None:
    questions = ["Microsoft vs the S&P 500 since 2015", "公园和图书馆的预算对比", "Compare httpx and aiosqlite"]
    with use_glossary(TERMS):
        first = [decompose(q, CATALOG).model_dump() for q in questions]
    with use_glossary(list(TERMS)):
        assert [decompose(q, CATALOG).model_dump() for q in questions] == first
