"""Offline planning: question decomposition, schema linking and safe SQL, checked against a live DuckDB.

The catalog here has the demo warehouse's shape, so these tests plan with the demo's glossary (the
demo's own terms are data in dossier/demo/tables/glossary.yaml, not part of the built-in lexicon).
Planning on material unrelated to the demo, without any glossary, is in tests/test_glossary.py.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import pytest

from agents.offline.decompose import decompose, detect_entities, split_clauses
from agents.offline.schema_link import link_schema
from agents.offline.sql_build import build_sql
from agents.offline.text import (
    english_equivalents,
    extract_time_ranges,
    find_concepts,
    keywords,
    time_range,
    tokenize,
    use_glossary,
)
from dossier.demo import DEMO_DIR
from tools.glossary import parse_glossary
from tools.models import ColumnInfo, TableInfo
from tools.sqlguard import check_sql
from tools.text.language import question_language
from tools.text.numbers import find_numbers

APPROACHES = ["prompt_engineering", "rag", "fine_tuning", "pre_training"]
DEPARTMENTS = ["Legal", "Customer Support", "Finance", "Sales", "R&D"]

COMPARE_EN = "Should we choose RAG or fine-tuning for customer support, and what would each cost?"
COMPARE_ZH = "检索增强生成和微调的成本与团队规模有什么区别？"
TREND = "How did monthly RAG spend develop in H1 2026?"
TOP = "Which department has the largest total budget?"
DOCS_ONLY = "What are the privacy risks of LLMs?"
QUESTIONS = [
    COMPARE_EN, COMPARE_ZH, TREND, TOP, DOCS_ONLY,
    "Compare prompt engineering, RAG, fine-tuning and pre-training on cost, team size, duration and satisfaction",
    "What did we spend on RAG in 2026 and how many projects were completed?",
    "2026年上半年RAG的支出趋势如何，哪个部门花费最多？",
    "What were the costs in 2026 Q1 versus 2025 Q4?",
    "Which vendors were chosen and what do they cost per year?",
    "各部门的平均满意度是多少？",
    "Which project had the lowest actual cost since 2025?",
    "How many projects does each department run?",
    "RAG vs fine-tuning?",
    "Tell me about our LLM strategy",
    "rag'; DROP TABLE x; --",
]


DEMO_GLOSSARY = parse_glossary((DEMO_DIR / "tables" / "glossary.yaml").read_bytes(), name="glossary.yaml")


@pytest.fixture(autouse=True)
def demo_glossary():
    with use_glossary(DEMO_GLOSSARY):
        yield


def _col(name: str, type_: str, samples: list[str] = (), desc: str = "", distinct: int | None = None) -> ColumnInfo:
    return ColumnInfo(name=name, type=type_, samples=list(samples), description=desc, distinct_count=distinct)


def make_catalog(*, month_type: str = "DATE") -> list[TableInfo]:
    """The demo warehouse's shape; ``month_type="VARCHAR"`` mimics dates imported as text."""
    projects = [
        _col("project_id", "VARCHAR", ["NW-001", "NW-002"], "Unique project identifier.", 24),
        _col("project_name", "VARCHAR", ["Sales email drafting prompt library"], "Short name of the project.", 24),
        _col("department", "VARCHAR", DEPARTMENTS, "Owning department.", 3),
        _col("approach", "VARCHAR", APPROACHES, "LLM adoption approach used.", 4),
        _col("project_type", "VARCHAR", ["application", "capability"], "Application or capability building.", 2),
        _col("budget_cny", "BIGINT", ["30000"], "Approved budget in CNY.", 24),
        _col("actual_cost_cny", "BIGINT", ["27800"], "Actual incremental spend in CNY.", 3),
        _col("team_size", "INTEGER", ["1", "6"], "Number of people assigned to the project.", 3),
        _col("start_date", "DATE", ["2025-01-13"], "Start date.", 24),
        _col("end_date", "DATE", ["2025-02-28"], "Completion or cancellation date.", 3),
        _col("duration_months", "BIGINT", ["2", "6"], "Planned duration in months.", 3),
        _col("status", "VARCHAR", ["planned", "active", "completed", "cancelled"], "Project status.", 3),
        _col("satisfaction_score", "DOUBLE", ["4.1"], "Average business-owner satisfaction from 1 to 5.", 3),
    ]
    spend = [
        _col("month", month_type, ["2025-01-01", "2026-02-01"], "First day of the calendar month.", 18),
        _col("department", "VARCHAR", DEPARTMENTS, "Department whose budget carried the spend.", 3),
        _col("approach", "VARCHAR", APPROACHES, "Approach the spend belongs to.", 3),
        _col("spend_cny", "BIGINT", ["13900"], "Spend in CNY booked in that month.", 50),
    ]
    benchmarks = [
        _col("approach", "VARCHAR", APPROACHES, "LLM adoption approach.", 4),
        _col("min_cost_cny", "BIGINT", ["20000"], "Lower bound of the typical project cost in CNY.", 4),
        _col("max_cost_cny", "BIGINT", ["50000"], "Upper bound of the typical project cost in CNY.", 3),
        _col("min_team", "BIGINT", ["1"], "Smallest typical team size in people.", 4),
        _col("max_team", "BIGINT", ["2"], "Largest typical team size in people.", 3),
        _col("typical_months_min", "BIGINT", ["1"], "Shortest typical delivery time in months.", 4),
        _col("typical_months_max", "BIGINT", ["2"], "Longest typical delivery time in months.", 4),
        _col("knowledge_update", "VARCHAR", ["edit prompt", "any time", "retrain"], "How knowledge gets in.", 4),
        _col("compute_need", "VARCHAR", ["low", "medium", "heavy", "very heavy"], "Relative compute need.", 4),
    ]
    vendors = [
        _col("vendor", "VARCHAR", ["Milvus (self-hosted)", "O'Reilly AI", "Yunqi LLM API"], "Vendor or tool name.", 3),
        _col("category", "VARCHAR", ["vector_db", "llm_api", "gpu_cloud", "labelling"], "Category.", 3),
        _col("annual_cost_cny", "BIGINT", ["120000"], "Estimated annual cost in CNY.", 3),
        _col("score", "BIGINT", ["8"], "Overall evaluation score from 1 to 10.", 3),
        _col("chosen", "BOOLEAN", ["true", "false"], "True if selected.", 2),
        _col("notes", "VARCHAR", ["Open-source vector database on our Shanghai servers; dense retrieval side"],
             "One-line summary.", 3),
    ]
    table = lambda name, cols, rows, desc: TableInfo(  # noqa: E731
        name=name, source=f"tables/{name}.csv", source_hash=name, row_count=rows, columns=cols, description=desc)
    return [
        table("llm_projects", projects, 24, "Register of every LLM project with approach, budget, cost and team."),
        table("monthly_spend", spend, 60, "Monthly incremental LLM spend in CNY by department and approach."),
        table("approach_benchmarks", benchmarks, 4, "Planning benchmarks for the four LLM adoption approaches."),
        table("vendors", vendors, 3, "Vendors and tools evaluated for the RAG programme."),
    ]


def make_db(*, month_type: str = "DATE") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("""CREATE TABLE llm_projects (project_id VARCHAR, project_name VARCHAR, department VARCHAR,
        approach VARCHAR, project_type VARCHAR, budget_cny BIGINT, actual_cost_cny BIGINT, team_size INTEGER,
        start_date DATE, end_date DATE, duration_months BIGINT, status VARCHAR, satisfaction_score DOUBLE)""")
    con.execute("""INSERT INTO llm_projects VALUES
        ('NW-001', 'Prompt library', 'Sales', 'prompt_engineering', 'application', 30000, 27800, 1,
         '2025-01-13', '2025-02-28', 2, 'completed', 4.1),
        ('NW-002', 'Support RAG', 'Customer Support', 'rag', 'application', 1200000, 1100000, 6,
         '2025-06-01', '2025-11-30', 6, 'completed', 4.4),
        ('NW-003', 'Contract tuning', 'Legal', 'fine_tuning', 'application', 4000000, NULL, 8,
         '2026-02-01', NULL, 9, 'active', NULL),
        ('NW-004', 'Support tuning', 'Customer Support', 'fine_tuning', 'application', 3000000, 900000, 7,
         '2026-03-01', '2026-05-01', 6, 'cancelled', NULL)""")
    con.execute(f"CREATE TABLE monthly_spend (month {month_type}, department VARCHAR, approach VARCHAR, "
                "spend_cny BIGINT)")
    con.execute("""INSERT INTO monthly_spend VALUES ('2025-12-01', 'Customer Support', 'rag', 90000),
        ('2026-01-01', 'Customer Support', 'rag', 150000), ('2026-02-01', 'Customer Support', 'rag', 160000),
        ('2026-02-01', 'Legal', 'fine_tuning', 400000), ('2026-03-01', 'R&D', 'rag', 120000),
        ('2026-08-01', 'Customer Support', 'rag', 170000)""")
    con.execute("""CREATE TABLE approach_benchmarks (approach VARCHAR, min_cost_cny BIGINT, max_cost_cny BIGINT,
        min_team BIGINT, max_team BIGINT, typical_months_min BIGINT, typical_months_max BIGINT,
        knowledge_update VARCHAR, compute_need VARCHAR)""")
    con.execute("""INSERT INTO approach_benchmarks VALUES
        ('prompt_engineering', 20000, 50000, 1, 2, 1, 2, 'edit prompt', 'low'),
        ('rag', 200000, 3000000, 5, 8, 3, 6, 'any time', 'medium'),
        ('fine_tuning', 5000000, 20000000, 5, 10, 6, 12, 'retrain', 'heavy'),
        ('pre_training', 20000000, NULL, 11, NULL, 12, 18, 'retrain from scratch', 'very heavy')""")
    con.execute("""CREATE TABLE vendors (vendor VARCHAR, category VARCHAR, annual_cost_cny BIGINT, score BIGINT,
        chosen BOOLEAN, notes VARCHAR)""")
    con.execute("""INSERT INTO vendors VALUES ('Milvus (self-hosted)', 'vector_db', 120000, 8, true, 'dense side'),
        ('O''Reilly AI', 'llm_api', 90000, 6, false, 'quoted'), ('Yunqi LLM API', 'llm_api', 240000, 8, true, 'api')""")
    return con


@pytest.fixture(scope="module")
def catalog() -> list[TableInfo]:
    return make_catalog()


@pytest.fixture(scope="module")
def db() -> duckdb.DuckDBPyConnection:
    return make_db()


def _all_sql(question: str, catalog: list[TableInfo]) -> list[str]:
    """Every candidate for the question and for each of its sub-questions."""
    texts = [question] + [s.question for s in decompose(question, catalog).sub_questions]
    return list(dict.fromkeys(c.sql for t in texts for c in build_sql(t, catalog)))


# ---- text utilities ----------------------------------------------------------------------------

def test_language_and_terms() -> None:
    assert question_language(COMPARE_ZH) == "zh" and question_language(COMPARE_EN) == "en"
    assert question_language("RAG和微调哪个便宜？") == "zh"
    assert tokenize("The projects' budgets are growing") == ["project", "budget", "grow"]
    assert {"检索", "微调", "成本"} <= set(tokenize(COMPARE_ZH))
    for spelling in ("fine-tuning", "Fine tuning", "finetuning", "fine_tuning", "微调"):
        assert [h.key for h in find_concepts(f"cost of {spelling}")] == ["cost", "fine_tuning"], spelling


def test_keywords_and_cross_language_equivalents() -> None:
    top = [k for k, _ in keywords(COMPARE_EN, limit=4)]
    assert top == ["rag", "fine-tuning", "customer support", "cost"]
    assert [k for k, _ in keywords(COMPARE_ZH, limit=4)] == ["检索增强生成", "微调", "成本", "团队规模"]
    assert english_equivalents(COMPARE_ZH) == "RAG retrieval-augmented generation fine-tuning cost team size"
    assert english_equivalents("各部门2025年的总支出是多少？") == "department spend 2025"


@pytest.mark.parametrize(("text", "start", "end"), [
    ("spend in H1 2026", date(2026, 1, 1), date(2026, 7, 1)),
    ("spend in 2026 Q1", date(2026, 1, 1), date(2026, 4, 1)),
    ("spend in Q3 2025", date(2025, 7, 1), date(2025, 10, 1)),
    ("since 2025", date(2025, 1, 1), None),
    ("before 2026", None, date(2026, 1, 1)),
    ("between 2024 and 2025", date(2024, 1, 1), date(2026, 1, 1)),
    ("in March 2026", date(2026, 3, 1), date(2026, 4, 1)),
    ("2026年上半年RAG的支出", date(2026, 1, 1), date(2026, 7, 1)),
    ("2026年第三季度", date(2026, 7, 1), date(2026, 10, 1)),
    ("2025年以来", date(2025, 1, 1), None),
    ("2026年的预算", date(2026, 1, 1), date(2027, 1, 1)),
])
def test_time_ranges(text: str, start: date | None, end: date | None) -> None:
    span = time_range(text)
    assert span is not None and (span.start, span.end) == (start, end)


def test_numbers_years_quarters() -> None:
    assert [n.value for n in find_numbers("a 1.8M budget, 1,200 people, 50万, 12% in Q1")] == [1.8e6, 1200.0, 5e5, 12.0]
    quarters = extract_time_ranges("2026 Q1 vs Q3 2025 vs 2026年第二季度")
    assert [(r.kind, r.start) for r in quarters] == [("quarter", date(2026, 1, 1)), ("quarter", date(2025, 7, 1)),
                                                      ("quarter", date(2026, 4, 1))]
    assert [r.label for r in extract_time_ranges(TREND)] == ["in H1 2026"]
    assert extract_time_ranges("a budget of 2000 CNY for 2000 people") == []  # amounts, not years


# ---- schema linking ----------------------------------------------------------------------------

def test_link_schema_matches_values_loosely(catalog: list[TableInfo]) -> None:
    links = {link.table: link for link in link_schema("What does fine-tuning cost?", catalog)}
    assert ("approach", "fine_tuning") in links["approach_benchmarks"].values
    assert ("approach", "fine_tuning") in links["llm_projects"].values
    zh = {link.table: link for link in link_schema("检索增强生成的团队规模", catalog)}
    assert ("approach", "rag") in zh["llm_projects"].values
    assert dict(zh["llm_projects"].columns)["team_size"] > 0
    assert link_schema(DOCS_ONLY, catalog) == []  # "LLM" in a table name alone does not link


def test_top_k_sql(catalog: list[TableInfo], db: duckdb.DuckDBPyConnection) -> None:
    best = build_sql(TOP, catalog)[0]
    assert best.sql == ('SELECT "department", sum("budget_cny") AS "sum_budget_cny" FROM "llm_projects" '
                        'GROUP BY "department" ORDER BY "sum_budget_cny" DESC NULLS LAST LIMIT 5')
    assert db.execute(best.sql).fetchall()[0] == ("Customer Support", 4200000)


def test_time_series_sql_with_date_filter(catalog: list[TableInfo], db: duckdb.DuckDBPyConnection) -> None:
    best = build_sql(TREND, catalog)[0]
    assert best.tables == ["monthly_spend"]
    assert best.sql == ('SELECT "month", sum("spend_cny") AS "sum_spend_cny" FROM "monthly_spend" '
                        "WHERE \"approach\" = 'rag' AND \"month\" >= DATE '2026-01-01' "
                        "AND \"month\" < DATE '2026-07-01' "
                        'GROUP BY "month" ORDER BY "month" LIMIT 50')
    rows = db.execute(best.sql).fetchall()
    assert [(r[0].month, r[1]) for r in rows] == [(1, 150000), (2, 160000), (3, 120000)]


def test_text_dates_are_cast(db: duckdb.DuckDBPyConnection) -> None:
    catalog = make_catalog(month_type="VARCHAR")
    best = build_sql(TREND, catalog)[0]
    assert "TRY_CAST(\"month\" AS DATE) >= DATE '2026-01-01'" in best.sql
    assert "date_trunc('month', TRY_CAST(\"month\" AS DATE))" in best.sql
    con = make_db(month_type="VARCHAR")
    assert len(con.execute(best.sql).fetchall()) == 3


def test_comparison_sql_groups_by_the_compared_column(catalog: list[TableInfo]) -> None:
    sqls = [c.sql for c in build_sql(COMPARE_ZH, catalog)]
    assert any("\"approach\" IN ('rag', 'fine_tuning')" in s and 'GROUP BY "approach"' in s and "team_size" in s
               for s in sqls)
    bench = [s for s in sqls if 'FROM "approach_benchmarks"' in s]
    assert bench and "min_team" in bench[0] and "GROUP BY" not in bench[0]  # one row per approach already


def test_count_and_flag_filters(catalog: list[TableInfo], db: duckdb.DuckDBPyConnection) -> None:
    count = build_sql("How many projects does each department run?", catalog)[0]
    assert count.sql.startswith('SELECT "department", count(*) AS "n" FROM "llm_projects"')
    chosen = build_sql("Which vendors were chosen?", catalog)[0].sql
    assert '"chosen" = TRUE' in chosen and len(db.execute(chosen).fetchall()) == 2
    assert '"chosen" = FALSE' in build_sql("Which vendors were not chosen?", catalog)[0].sql


def test_no_link_no_sql(catalog: list[TableInfo]) -> None:
    assert build_sql(DOCS_ONLY, catalog) == []
    assert build_sql("What is the weather like?", catalog) == []


# ---- safety ------------------------------------------------------------------------------------

_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_IDENT = re.compile(r'"((?:[^"]|"")*)"')


def _allowed_identifiers(catalog: list[TableInfo]) -> set[str]:
    names = {t.name for t in catalog} | {"n", "month", "quarter", "year", "p", "first_period", "last_period",
                                         "overrun", "overrun_pct", "share_pct", "difference", "ratio"}
    for t in catalog:
        for c in t.columns:
            names |= {c.name} | {f"{fn}_{c.name}" for fn in ("avg", "sum", "min", "max")}
            names |= {f"{c.name}_{part}" for part in ("first", "last", "change_pct")}
    return names


def _assert_safe(sql: str, catalog: list[TableInfo]) -> None:
    samples = {s for t in catalog for c in t.columns for s in c.samples}
    assert sql.startswith("SELECT ") and re.search(r" LIMIT \d+$", sql) and ";" not in sql
    for lit in _LITERAL.findall(sql):
        value = lit.replace("''", "'")
        assert value in samples or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) or value == "month", (value, sql)
    for name in _IDENT.findall(_LITERAL.sub("''", sql)):
        assert name in _allowed_identifiers(catalog), (name, sql)


def test_injection_text_never_becomes_sql(catalog: list[TableInfo], db: duckdb.DuckDBPyConnection) -> None:
    for question in ("rag'; DROP TABLE x; --", "What did Robert'); DROP TABLE vendors;-- spend on RAG?"):
        candidates = build_sql(question, catalog)
        assert candidates, question
        for c in candidates:
            assert "DROP" not in c.sql and "Robert" not in c.sql
            _assert_safe(c.sql, catalog)
            db.execute(c.sql).fetchall()
    assert db.execute("SELECT count(*) FROM vendors").fetchone() == (3,)


def test_catalog_literals_are_escaped(catalog: list[TableInfo], db: duckdb.DuckDBPyConnection) -> None:
    sql = build_sql("What does O'Reilly AI cost per year?", catalog)[0].sql
    assert "\"vendor\" = 'O''Reilly AI'" in sql
    assert db.execute(sql).fetchall() == [("O'Reilly AI", 90000)]


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_generated_sql_is_safe_and_runs(question: str, catalog: list[TableInfo],
                                              db: duckdb.DuckDBPyConnection) -> None:
    for sql in _all_sql(question, catalog):
        _assert_safe(sql, catalog)
        check_sql(sql, allowed_tables={t.name for t in catalog})  # the executor's own guard accepts it
        db.execute(sql).fetchall()


# ---- decomposition -----------------------------------------------------------------------------

def test_english_comparison_plan(catalog: list[TableInfo]) -> None:
    plan = decompose(COMPARE_EN, catalog)
    assert plan.language == "en" and "Comparison of RAG vs fine-tuning on cost" in plan.rationale
    questions = [s.question for s in plan.sub_questions]
    assert questions == ["What is the cost of RAG for customer support?",
                         "What is the cost of fine-tuning for customer support?",
                         "Which is the better choice for customer support: RAG or fine-tuning?"]
    assert [s.id for s in plan.sub_questions] == ["q1", "q2", "q3"]
    for sub in plan.sub_questions:
        assert {"llm_projects", "approach_benchmarks"} <= set(sub.tables)
        assert sub.needs == "both" and sub.queries[0] == sub.question and len(sub.queries) == 2
    assert "llm_projects.actual_cost_cny" in plan.sub_questions[0].columns
    assert "approach_benchmarks.max_cost_cny" in plan.sub_questions[1].columns


def test_chinese_comparison_plan(catalog: list[TableInfo]) -> None:
    plan = decompose(COMPARE_ZH, catalog)
    assert plan.language == "zh"
    assert [s.question for s in plan.sub_questions] == [
        "检索增强生成的成本是多少？", "微调的成本是多少？", "检索增强生成需要多大的团队？", "微调需要多大的团队？",
        "检索增强生成与微调在成本、团队规模上的主要区别是什么？"]
    for sub in plan.sub_questions:
        assert {"llm_projects", "approach_benchmarks"} <= set(sub.tables)
        assert len(sub.queries) == 3 and sub.queries[2].isascii()  # the English lexicon query
    assert plan.sub_questions[0].queries[2] == "RAG retrieval-augmented generation cost"
    assert plan.sub_questions[3].queries[2] == "fine-tuning team"


def test_time_range_is_kept_in_sub_questions(catalog: list[TableInfo]) -> None:
    plan = decompose(TREND, catalog)
    assert all("H1 2026" in s.question for s in plan.sub_questions)
    assert plan.sub_questions[0].needs == "tables" and plan.sub_questions[0].tables[0] == "monthly_spend"
    zh = decompose("2026年上半年RAG的支出趋势如何，哪个部门花费最多？", catalog)
    assert [s.question for s in zh.sub_questions] == ["2026年上半年RAG的支出趋势如何？",
                                                      "2026年上半年，哪个部门花费最多？"]


def test_documents_only_question(catalog: list[TableInfo]) -> None:
    plan = decompose(DOCS_ONLY, catalog)
    assert [s.question for s in plan.sub_questions] == [
        "What are the privacy risks of LLMs?", "How can the privacy risks of LLMs be mitigated?"]
    for sub in plan.sub_questions:
        assert sub.needs == "documents" and sub.tables == [] and sub.columns == []
        assert build_sql(sub.question, catalog) == []


def test_clauses_entities_and_pronouns(catalog: list[TableInfo]) -> None:
    assert split_clauses("What did we spend on RAG in 2026 and how many projects were completed?", "en") == [
        "What did we spend on RAG in 2026", "how many projects were completed"]
    assert split_clauses("What is the cost and team size of RAG?", "en") == ["What is the cost and team size of RAG"]
    assert [e.label for e in detect_entities(COMPARE_EN, catalog)] == ["RAG", "fine-tuning", "customer support"]
    assert [e.label for e in detect_entities("Costs in Q1 2026 for Milvus", catalog)] == ["Milvus"]
    plan = decompose("Which vendors were chosen and what do they cost per year?", catalog)
    assert plan.sub_questions[1].question == "What do the vendors cost per year?"
    assert plan.sub_questions[1].tables[0] == "vendors"


def test_period_comparison(catalog: list[TableInfo]) -> None:
    plan = decompose("What were the costs in 2026 Q1 versus 2025 Q4?", catalog)
    assert [s.question for s in plan.sub_questions] == [
        "What were the costs in 2026 Q1?", "What were the costs in 2025 Q4?",
        "How do 2026 Q1 and 2025 Q4 compare on cost?"]


@pytest.mark.parametrize("limit", [2, 3, 8])
@pytest.mark.parametrize("question", QUESTIONS)
def test_sub_question_bounds_and_ids(question: str, limit: int, catalog: list[TableInfo]) -> None:
    subs = decompose(question, catalog, max_sub_questions=limit).sub_questions
    assert 2 <= len(subs) <= limit
    assert [s.id for s in subs] == [f"q{i}" for i in range(1, len(subs) + 1)]
    assert len({s.question for s in subs}) == len(subs)
    assert all(1 <= len(s.queries) <= 3 for s in subs)


def test_many_entities_and_aspects_are_capped(catalog: list[TableInfo]) -> None:
    plan = decompose(QUESTIONS[5], catalog)
    assert len(plan.sub_questions) == 8
    assert plan.sub_questions[-1].question.startswith("How do prompt engineering, RAG, fine-tuning and pre-training")


def test_deterministic(catalog: list[TableInfo]) -> None:
    for question in QUESTIONS:
        assert decompose(question, catalog).model_dump() == decompose(question, make_catalog()).model_dump()
        assert build_sql(question, catalog) == build_sql(question, make_catalog())
