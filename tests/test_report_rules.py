"""Report rules of issue 11 on small fixtures unrelated to the demo: answer first, relevance, honest
abstention, clean prose, one fact once."""

from __future__ import annotations

import hashlib

from agents.dedupe import dedupe_sections
from agents.offline.item import item_parts
from agents.offline.prose import is_prose
from agents.offline.reflect import reflect
from agents.offline.relevance import anchors, distinguishing_anchors, make_query, relevance
from agents.offline.sql_answer import is_overview
from agents.offline.support import supported
from agents.offline.write import outline, write_section
from agents.verify import verify_sections
from tools.evidence import evidence_from_sql
from tools.models import SqlResult
from tools.vocabulary import Evidence, Finding, Plan, Section, SubQuestion


def passage(text: str, source: str, title: str | None = None, section: str | None = None) -> Evidence:
    digest = hashlib.sha256(f"{source}\x1f{text}".encode()).hexdigest()[:10]
    return Evidence(id=digest, kind="passage", text=text, source=source, doc_id=source, title=title or source,
                    section=section)


def sql(query: str, columns: list[str], rows: list[list], tables: list[str]) -> Evidence:
    return evidence_from_sql(SqlResult(sql=query, columns=columns, rows=rows, row_count=len(rows), truncated=False,
                                       tables=tables, elapsed_ms=1.0))


def report(question: str, sqs: list[SubQuestion], found: dict[str, list[Evidence]], language: str = "en"):
    plan = Plan(question=question, language=language, sub_questions=sqs)
    findings = [Finding(sub_question_id=q, round=1, evidence_ids=[e.id for e in evs]) for q, evs in found.items()]
    evidence = {e.id: e for evs in found.values() for e in evs}
    reflection = reflect(plan, findings, evidence, round=1)
    out = outline(question, plan, findings, evidence, language=language, reflection=reflection)
    sections = [write_section(s, question=question, plan=plan, evidence=evidence, language=language,
                              reflection=reflection).model_copy(update={"order": n})
                for n, s in enumerate(out.sections)]
    return reflection, sections, evidence


# --- python packages knowledge base ---------------------------------------------------------------

HTTPX = passage("httpx is a fully featured HTTP client for Python 3 that provides sync and async APIs. "
                "httpx supports HTTP/1.1 and HTTP/2 and is released under the BSD-3-Clause licence.",
                "docs/httpx.md", "httpx")
AIOSQLITE = passage("aiosqlite provides a friendly async interface to sqlite databases. "
                    "aiosqlite runs a single shared thread per connection and is released under the MIT licence.",
                    "docs/aiosqlite.md", "aiosqlite")
NOISE = passage("[![Build](https://ci.example/badge.svg)](https://ci.example)\n\n"
                ".. note:: The async client is thread safe when used from one loop.\n\n"
                ">>> import httpx\n\n"
                "httpx | 0.27.0 | BSD-3-Clause | 410 | Yes\n\n"
                "The httpx async client reuses connections from a pool, so async requests stay fast.",
                "docs/httpx_readme.rst", "httpx readme")
PACKAGES = sql('SELECT "name", "size_kb" FROM "packages" ORDER BY "size_kb" DESC LIMIT 3', ["name", "size_kb"],
               [["numpy", 38000], ["pandas", 29000], ["httpx", 410]], ["packages"])


def test_unanswerable_question_gets_a_short_report_saying_so() -> None:
    q = "What is the recommended PostgreSQL shared_buffers setting for a 64 GB server?"
    sq = SubQuestion(id="q1", question=q, needs="documents")
    reflection, sections, evidence = report(q, [sq], {"q1": [HTTPX, AIOSQLITE, PACKAGES]})
    assert reflection.covered == {"q1": False}
    assert [s.id for s in sections] == ["summary"]
    text = sections[0].markdown
    assert text.startswith("The knowledge base does not contain anything on PostgreSQL or shared_buffers")
    assert "httpx" in text  # the closest material it does hold
    v = verify_sections(sections, evidence).verification
    assert v.flagged_claims == [] and v.markers_total == 0


def test_terms_pooled_over_passages_do_not_cover_a_question() -> None:
    """'PostgreSQL' in one passage and 'shared_buffers' in another answer nothing."""
    a = passage("PostgreSQL is an open source relational database with a long history.", "docs/pg.md")
    b = passage("The shared_buffers knob of the cache sizes the memory the server uses.", "docs/cache.md")
    q = "What is the recommended PostgreSQL shared_buffers for a 64 GB server?"
    assert not supported(q, [a, b])
    assert not supported("What does PostgreSQL set shared_buffers to?", [a, b])
    c = passage("For a dedicated server, PostgreSQL recommends shared_buffers of 25% of memory.", "docs/pg_conf.md")
    assert supported(q, [a, b, c])
    sq = SubQuestion(id="q1", question=q, needs="documents")
    plan = Plan(question=q, sub_questions=[sq])
    found = [Finding(sub_question_id="q1", round=1, evidence_ids=[a.id, b.id])]
    assert reflect(plan, found, {a.id: a, b.id: b}, round=1).covered == {"q1": False}


def test_partly_answerable_question_abstains_in_that_section_only() -> None:
    q = "What licence does httpx use and what licence does Flask use?"
    sqs = [SubQuestion(id="q1", question="What licence does httpx use?", needs="documents"),
           SubQuestion(id="q2", question="What licence does Flask use?", needs="documents")]
    reflection, sections, _ = report(q, sqs, {"q1": [HTTPX], "q2": [HTTPX, AIOSQLITE]})
    assert reflection.covered == {"q1": True, "q2": False}
    s2 = next(s for s in sections if s.title.startswith("What licence does Flask"))
    assert s2.markdown.startswith("The knowledge base does not contain anything on Flask")
    assert "BSD-3-Clause" in sections[0].markdown  # the answer it does have leads the summary
    assert "does not contain anything on Flask" in sections[0].markdown


def test_chinese_abstention_wording() -> None:
    q = "PostgreSQL 的 shared_buffers 应该设多大？"
    sq = SubQuestion(id="q1", question=q, needs="documents")
    _, sections, _ = report(q, [sq], {"q1": [HTTPX]}, language="zh")
    assert [s.id for s in sections] == ["summary"]
    assert sections[0].markdown.startswith("知识库中没有关于PostgreSQL、shared_buffers的内容")


def test_markup_code_directives_and_flattened_rows_are_never_sentences() -> None:
    for line in ["[![Build](https://ci.example/badge.svg)](https://ci.example)", ".. note:: Deprecated since 2.0.",
                 ":param timeout: seconds to wait", ">>> client.get('https://example.org')", "import httpx",
                 "def fetch(url):", "<td>httpx</td><td>0.27</td>", "httpx | 0.27.0 | BSD-3-Clause | 410 | Yes",
                 "numpy 38,000 1.26 BSD Yes 2024", "client = httpx.Client(timeout=5.0)",
                 "Average download size from PyPI: 410 kB"]:
        assert not is_prose(line), line
    for line in ["httpx supports HTTP/1.1 and HTTP/2.", "Set shared_buffers to 25% of RAM on a dedicated server.",
                 "See [the guide](https://x.org/guide) for details on pooling.",
                 "微调的成本为500万至2000万元，需要5-10人。"]:
        assert is_prose(line), line
    q = "How does the httpx async client handle connections?"
    sq = SubQuestion(id="q1", question=q, needs="documents")
    _, sections, _ = report(q, [sq], {"q1": [NOISE]})
    body = sections[1].markdown
    assert "reuses connections from a pool" in body
    assert not any(bad in body for bad in ("![", ".. note", ">>>", "| 0.27.0", "import "))


def test_comparison_summary_answers_for_each_subject_first() -> None:
    q = "Compare httpx and aiosqlite: what does each provide?"
    sqs = [SubQuestion(id="q1", question="What does httpx provide?", needs="documents"),
           SubQuestion(id="q2", question="What does aiosqlite provide?", needs="documents")]
    _, sections, evidence = report(q, sqs, {"q1": [HTTPX, AIOSQLITE, NOISE], "q2": [AIOSQLITE, HTTPX]})
    first = sections[0].markdown.split("\n\n")[0]
    assert f"[ev:{HTTPX.id}]" in first and f"[ev:{AIOSQLITE.id}]" in first
    assert first.lower().index("httpx") < first.lower().index("aiosqlite")
    # each section stays with its subject: no aiosqlite sentence under httpx and the other way round
    s1, s2 = sections[1].markdown, sections[2].markdown
    assert "aiosqlite" not in s1 and "httpx" not in s2
    v = verify_sections(sections, evidence).verification
    assert v.uncited_sentences == 0 and v.flagged_claims == []


# --- construction projects: the overrun question ------------------------------------------------------

OVERRUN = sql('SELECT "project", "budget", "actual", round(100.0 * ("actual" - "budget") / "budget", 1) AS '
              '"overrun_pct" FROM "projects" ORDER BY "overrun_pct" DESC LIMIT 3',
              ["project", "budget", "actual", "overrun_pct"],
              [["Harbour Bridge", 1000000, 1300000, 30.0], ["Ring Road", 2000000, 2200000, 10.0],
               ["Town Hall", 500000, 480000, -4.0]], ["projects"])
RETRO = passage("The Harbour Bridge budget overrun was caused by an unplanned vendor change that delayed the steel "
                "deliveries by four months. The Ring Road stayed close to plan.", "docs/retro.md",
                "Project retrospective")
CANTEEN = passage("The canteen menu changes every Monday and vegetarian options are always available.",
                  "docs/canteen.md", "Canteen")


def test_overrun_question_is_answered_first_with_the_project_and_the_reason() -> None:
    q = "Which project overran its budget by the largest percentage, and why?"
    sqs = [SubQuestion(id="q1", question="Which project overran its budget by the largest percentage?",
                       needs="tables", tables=["projects"]),
           SubQuestion(id="q2", question="Why did the project overrun its budget?", needs="documents")]
    _, sections, evidence = report(q, sqs, {"q1": [OVERRUN], "q2": [RETRO, CANTEEN]})
    summary = sections[0].markdown
    answer = summary.split("\n\n")[0]
    assert answer.index("Harbour Bridge") < answer.index(f"[ev:{OVERRUN.id}]")
    assert "unplanned vendor" in answer
    assert "row" not in summary.lower() and "query" not in summary.lower()
    text = "\n".join(s.markdown for s in sections)
    assert "canteen" not in text.lower()  # off topic
    assert text.count("| Harbour Bridge |") == 1  # the table once, under its headline
    v = verify_sections(sections, evidence).verification
    assert v.flagged_claims == [] and v.markers_total == v.markers_resolved


# --- relevance ----------------------------------------------------------------------------------------

def test_relevance_and_anchors() -> None:
    assert anchors("How did Microsoft compare with ^GSPC over a 64 GB span?") == ["Microsoft", "^GSPC"]
    assert anchors("Which packages take the most disk space?") == []
    assert distinguishing_anchors("What does Django cost for Acme?", ["What does Django cost for Acme?",
                                                                       "What does Flask cost for Acme?"]) == ["Django"]
    query = make_query("What is the size of numpy?")
    assert relevance(query, "numpy weighs 38 MB on disk.", "numpy") > relevance(query, "The canteen is open.", "")
    assert relevance(query, "Its wheel is large.", "numpy size") > 0  # the heading carries the subject


def test_answerable_questions_with_gold_paragraphs_are_not_abstained() -> None:
    gold = [passage("Scott Derrickson is an American director, screenwriter and producer.", "w/Scott_Derrickson",
                    "Scott Derrickson"),
            passage("Edward Davis Wood Jr. was an American filmmaker, actor and writer.", "w/Ed_Wood", "Ed Wood")]
    assert supported("Were Scott Derrickson and Ed Wood of the same nationality?", gold)
    assert not supported("Were Scott Derrickson and Ed Wood of the same nationality?", [HTTPX, AIOSQLITE])


# --- one fact once -------------------------------------------------------------------------------------

def test_dedupe_removes_repeats_keeps_summary_and_shows_each_table_once() -> None:
    table = "| name | size_kb |\n| --- | --- |\n| numpy | 38000 |"
    fact = "numpy is the largest package at 38,000 kB on disk [ev:a]."
    sections = [
        Section(id="summary", title="Executive summary", markdown=f"- {fact}"),
        Section(id="s1", title="Sizes", markdown=f"{fact} pandas follows at 29,000 kB [ev:a].\n\n"
                                                  f"numpy tops the list at 38,000 kB [ev:a].\n\n{table}"),
        Section(id="s2", title="Largest", markdown=f"Numpy is the largest package at 38,000 kB on disk [ev:b].\n\n"
                                                    f"numpy tops the list at 38,000 kB [ev:a].\n\n{table}"),
        Section(id="s3", title="Other",
                markdown="The numpy package is the largest package at 39,000 kB on disk [ev:c]."),
    ]
    out = dedupe_sections(sections)
    assert [s.id for s in out] == ["summary", "s1", "s3"]  # s2 said nothing new
    assert out[0].markdown == sections[0].markdown  # the summary may restate
    assert out[1].markdown == sections[1].markdown  # the first telling stays whole, lead-in and table too
    assert "39,000" in out[2].markdown  # other figures: not a repeat


def test_dedupe_never_strips_the_lead_in_of_a_kept_table() -> None:
    lead = "numpy is the largest package at 38,000 kB on disk [ev:a]."
    sections = [Section(id="s1", title="A", markdown=lead),
                Section(id="s2", title="B", markdown=f"{lead}\n\n| name | size_kb |\n| --- | --- |\n| numpy | 38000 |")]
    assert dedupe_sections(sections)[1].markdown == sections[1].markdown


# --- names written as codes, rankings of days, versions (the lead's integration) --------------------------

def test_a_code_of_capitals_names_the_company() -> None:
    from agents.offline.text import abbreviates

    assert abbreviates("MSFT", "Microsoft") and abbreviates("AAPL", "Apple") and abbreviates("IBM", "International "
                                                                                          "Business Machines")
    assert not abbreviates("MSFT", "Apple") and not abbreviates("CNY", "China") and not abbreviates("Dell", "Dell")


def test_a_table_that_holds_the_name_as_a_code_is_not_denied() -> None:
    from agents.offline.support import holds_nothing, named_by

    prices = sql('SELECT "Date", "MSFT" FROM "stocks" ORDER BY "MSFT" DESC LIMIT 3', ["Date", "MSFT"],
                 [["2021-12-01", 334.8], ["2021-10-01", 330.1], ["2021-11-01", 329.2]], ["stocks"])
    assert named_by("Microsoft", prices) and not named_by("Oracle", prices)
    assert not holds_nothing("When did Microsoft's stock price peak?", [prices])
    assert holds_nothing("When did Oracle's stock price peak?", [prices])  # a name no evidence holds


def test_dated_rows_ranked_by_a_measure_read_as_a_ranking() -> None:
    from agents.offline.sql_answer import headline

    top = sql('SELECT "Date", "Close" FROM "msft" ORDER BY "Close" DESC NULLS LAST LIMIT 3', ["Date", "Close"],
              [["2003-09-19T00:00:00", 29.96], ["2003-09-18T00:00:00", 29.5], ["2003-09-16T00:00:00", 28.9]], ["msft"])
    line = headline(top, question="What was the highest closing price?", language="en")
    assert line == "2003-09-19 has the highest Close, 29.96, followed by 2003-09-18 (29.5) and 2003-09-16 (28.9)."
    [section] = verify_sections([Section(id="s1", title="t", markdown=f"{line[:-1]} [ev:{top.id}].")],
                                {top.id: top}).sections
    assert "⚠" not in section.markdown


def test_a_time_range_is_no_comparison_and_the_summary_states_the_latest_version() -> None:
    from agents.offline.summary import _COMPARE_RE

    assert not _COMPARE_RE.search("How did the price change between 1990 and 2022?")
    assert _COMPARE_RE.search("What is the difference between httpx and requests?")
    draft = passage("The depot renovation budget is 2.1M EUR.", "depot_budget_v0.3_draft.md", "Depot budget v0.3 draft")
    final = passage("The depot renovation budget is 1.8M EUR.", "depot_budget_v1.0_final.md", "Depot budget v1.0 final")
    q = "What is the depot renovation budget?"
    _, sections, _ = report(q, [SubQuestion(id="q1", question=q, needs="documents")], {"q1": [draft, final]})
    summary = sections[0].markdown
    assert "1.8M EUR" in summary and "2.1M" not in summary


# --- multi-hop: the answer sits one document away from the subject ---------------------------------

LIGHTHOUSE = passage("Karel Vondrák (born 1962) is a Czech engineer. His best-known design, the Skerry Point "
                     "light, was commissioned by the Northern Beacon Trust in 1994.", "docs/vondrak.md",
                     "Karel Vondrák")
TRUST = passage("The Northern Beacon Trust is a charitable harbour authority founded in 1911. "
                "The trust is headquartered in Lerwick, Shetland, and maintains forty lights.",
                "docs/trust.md", "Northern Beacon Trust")
UNRELATED = passage("Lerwick hosts the Up Helly Aa fire festival every January.", "docs/festival.md", "Up Helly Aa")


def test_a_multi_hop_question_is_answered_by_the_bridge_and_the_sentence_it_leads_to() -> None:
    question = ("Karel Vondrák's best-known design was commissioned by a harbour authority founded in 1911, "
                "headquartered where?")
    sqs = [SubQuestion(id="q1", question=question)]
    _, sections, _ = report(question, sqs, {"q1": [LIGHTHOUSE, TRUST, UNRELATED]})
    summary = sections[0].markdown
    lead = summary.split("\n\n")[0]
    assert lead.startswith("His best-known design, the Skerry Point light, was commissioned by the Northern Beacon "
                           "Trust in 1994")  # the bridge: names the subject's design and the trust
    assert "The trust is headquartered in Lerwick, Shetland" in lead  # the answer, from the trust's page
    assert "Up Helly Aa" not in summary


def test_without_the_second_document_the_bridge_alone_is_no_answer() -> None:
    question = ("Karel Vondrák's best-known design was commissioned by a harbour authority founded in 1911, "
                "headquartered where?")
    sqs = [SubQuestion(id="q1", question=question)]
    _, sections, _ = report(question, sqs, {"q1": [LIGHTHOUSE, UNRELATED]})
    assert "Lerwick" not in sections[0].markdown.split("\n\n")[0].replace("Lerwick hosts", "")


def test_a_summary_is_never_empty_and_says_when_no_sentence_states_the_answer() -> None:
    question = "Which ship did Karel Vondrák captain after the 2003 storm?"
    sqs = [SubQuestion(id="q1", question=question)]
    _, sections, _ = report(question, sqs, {"q1": [LIGHTHOUSE, TRUST]})
    summary = sections[0].markdown.strip()
    assert summary
    assert summary.startswith(("No passage gathered states the answer directly", "The knowledge base does not contain"))


def test_a_sentence_cut_inside_parentheses_is_not_quoted() -> None:
    from agents.offline.candidates import usable

    assert not usable("2 May 1936) is an English pop singer who sold many records worldwide.")
    assert usable("Arnold Dorsey (born 2 May 1936) is an English pop singer who sold many records.")


# --- yes/no questions about two subjects ------------------------------------------------------------

ALDER = passage("Alder Works is a Dutch shipyard founded in 1921.", "docs/alder.md", "Alder Works")
BIRCH = passage("Birch Marine is a Dutch shipyard in Rotterdam.", "docs/birch.md", "Birch Marine")
CEDAR = passage("Cedar Yards is a Belgian shipyard near Antwerp.", "docs/cedar.md", "Cedar Yards")


def yes_no_summary(question: str, evs: list[Evidence]) -> str:
    _, sections, _ = report(question, [SubQuestion(id="q1", question=question)], {"q1": evs})
    return sections[0].markdown


def test_both_question_is_answered_yes_when_each_subject_holds_the_predicate() -> None:
    summary = yes_no_summary("Are Alder Works and Birch Marine both Dutch shipyards?", [ALDER, BIRCH])
    assert summary.startswith("Yes. Alder Works is a Dutch shipyard") and "Birch Marine is a Dutch shipyard" in summary


def test_both_question_is_answered_no_when_one_subject_is_described_otherwise() -> None:
    summary = yes_no_summary("Are Alder Works and Cedar Yards both Dutch shipyards?", [ALDER, CEDAR])
    assert summary.startswith("No. Alder Works is a Dutch shipyard") and "Cedar Yards is a Belgian shipyard" in summary


def test_no_verdict_is_guessed_without_a_description_of_each_subject() -> None:
    summary = yes_no_summary("Are Alder Works and Cedar Yards both Dutch shipyards?", [ALDER])
    assert not summary.startswith(("Yes", "No."))


def test_names_in_a_question_full_of_capitals_stay_names() -> None:
    names = anchors("Are King Vidor and Géza von Cziffra both American directors?")
    assert names[:2] == ["King Vidor", "Géza von Cziffra"]
    assert anchors("What Is The Cost Of RAG For Support?") == ["RAG"]  # a headline: its capitals name nothing


# --- figure questions about an item the knowledge base does not name ------------------------------

INCOME = sql('SELECT "item", "c_2019", "c_2018" FROM "income" WHERE "item" = \'Operating income\' LIMIT 50',
             ["item", "c_2019", "c_2018"], [["Operating income", 410.0, 388.0]], ["income"])
INCOME_OVERVIEW = sql('SELECT count(*) AS "n", avg("c_2019") AS "avg_c_2019", min("c_2019") AS "min_c_2019", '
                      'max("c_2019") AS "max_c_2019" FROM "income" LIMIT 50',
                      ["n", "avg_c_2019", "min_c_2019", "max_c_2019"], [[6, 210.5, 12.0, 980.0]], ["income"])
TAX_NOTE = passage("Income taxes rose in 2019 because of the new plant; see note 7 for the reconciliation.",
                   "docs/notes.md", "Notes")


def test_a_figure_of_an_item_nothing_names_is_not_answered_from_other_figures() -> None:
    q = "What was the effective tax rate in 2019?"
    sq = SubQuestion(id="q1", question=q, needs="both")
    _reflection, sections, _ = report(q, [sq], {"q1": [INCOME, INCOME_OVERVIEW, TAX_NOTE]})
    assert [s.id for s in sections] == ["summary"]
    assert sections[0].markdown.startswith("The knowledge base does not contain anything on effective tax rate")


def test_a_figure_of_an_item_a_row_names_is_answered() -> None:
    q = "What was the operating income in 2019?"
    sq = SubQuestion(id="q1", question=q, needs="both")
    _, sections, _ = report(q, [sq], {"q1": [INCOME, INCOME_OVERVIEW, TAX_NOTE]})
    summary = next(s for s in sections if s.id == "summary").markdown
    assert "does not contain" not in summary and "410" in summary


def test_a_whole_table_average_never_leads_an_answer() -> None:
    assert is_overview(INCOME_OVERVIEW, "What was the operating income in 2019?")
    assert not is_overview(INCOME_OVERVIEW, "What is the average 2019 figure across the income statement?")
    assert not is_overview(INCOME, "What was the operating income in 2019?")


def test_item_words_of_figure_questions_only() -> None:
    assert item_parts("What was the effective tax rate in 2019?") == [["effective", "tax", "rate"]]
    assert item_parts("What is the difference between Deferred Revenue and Other liabilities in 2019?") == [
        ["deferred", "revenue"], ["liability"]]  # "other" is a stopword
    assert item_parts("Who directed the film that won the award in 2019?") == []  # not a figure question
    assert item_parts("What is the total disk size of all installed packages?") == [
        ["disk", "size", "installed", "package"]]


def test_a_row_looked_up_by_name_answers_only_what_its_columns_hold() -> None:
    from agents.offline.support import filtered_by_question

    row = sql("SELECT \"name\", \"version\", \"license\" FROM \"packages\" WHERE \"name\" = 'jieba' LIMIT 50",
              ["name", "version", "license"], [["jieba", "0.42.1", "MIT"]], ["packages"])
    assert filtered_by_question(row, "Which version of jieba is installed?")
    assert filtered_by_question(row, "Under which license is jieba released?")
    assert not filtered_by_question(row, "Who is the chief executive of the company that maintains jieba?")
    count = sql("SELECT count(*) AS \"n\" FROM \"packages\" WHERE \"license\" = 'MIT' LIMIT 1", ["n"], [[48]],
                ["packages"])
    assert filtered_by_question(count, "How many packages ship under MIT?")


def test_a_year_column_is_never_read_as_a_measure_of_the_rows() -> None:
    from agents.offline.sql_answer import headline

    rows = sql("SELECT \"Award\", \"Year\" FROM \"awards\" WHERE \"Result\" = 'Won' LIMIT 50", ["Award", "Year"],
               [["Harbour Prize", 2007], ["Lantern Medal", 2009], ["Quill Award", 2008]], ["awards"])
    text = headline(rows, question="which awards were won?", language="en") or ""
    assert "Year is highest" not in text and "lowest" not in text
