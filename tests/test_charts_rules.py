"""Charts only when they answer: a series for a question about change, a few categories of one
measure (or two in one unit) for bars; no chart of tiny counts, crowds of categories or mixed units."""

from __future__ import annotations

import datetime as dt
import re

from dossier.chart_rules import asks_change, pick_measures, unit_of
from dossier.charts import MAX_TICKS, chart_data, charts_for, time_ticks
from tests.test_render_html import handmade_report
from tools.vocabulary import Evidence

MONTHS = [dt.date(y, m, 1) for y in range(2010, 2023) for m in range(1, 13)]


def sql(columns: list[str], rows: list[list], query: str = "SELECT * FROM t") -> Evidence:
    return Evidence(id="e" + str(abs(hash((tuple(columns), len(rows)))) % 10**8), kind="sql", text="rows",
                    sql=query, tables=["t"], columns=columns, rows=rows, row_count=len(rows))


def monthly_prices() -> Evidence:
    rows = [[d, round(20 + i * 1.5 + (i % 7), 2)] for i, d in enumerate(MONTHS)]
    return sql(["Date", "MSFT"], rows, "SELECT Date, MSFT FROM stocks ORDER BY Date")


def test_monthly_series_is_drawn_for_a_change_question() -> None:
    ev = monthly_prices()
    data = chart_data(ev, question="How did the MSFT share price change from 2010 to 2022?")
    assert data is not None and data.kind == "line"
    assert len(data.x) == len(MONTHS) == 156 and data.x[0] == "2010-01" and data.x[-1] == "2022-12"  # full series
    ticks, labels = time_ticks(data.x)
    assert len(ticks) <= MAX_TICKS and labels[0] == "2010" and all(re.fullmatch(r"20\d\d", x) for x in labels)


def test_series_is_not_drawn_when_the_question_is_not_about_change() -> None:
    ev = monthly_prices()
    assert chart_data(ev, question="What was the highest MSFT price?") is None
    assert chart_data(ev, question="MSFT 股价在2010年到2022年间如何变化？") is not None
    assert asks_change("What was the monthly trend of sales?") and not asks_change("Which licence is most common?")


def test_bar_for_one_measure_over_a_few_categories() -> None:
    rows = [["Harbour Bridge", 1300000, 1000000], ["Depot", 800000, 900000], ["Tower", 2100000, 2000000],
            ["Tunnel", 500000, 450000]]
    ev = sql(["project", "actual_cny", "budget_cny"], rows)
    data = chart_data(ev, question="Which project overran its budget the most?")
    assert data is not None and data.kind == "bar" and list(data.series) == ["actual_cny", "budget_cny"]  # one unit


def test_no_chart_of_tiny_counts() -> None:
    ev = sql(["status", "n_projects"], [["open", 1], ["closed", 2], ["late", 1]])
    assert chart_data(ev, question="How much did the projects cost?") is None
    assert chart_data(sql(["status", "n"], [["open", 1], ["closed", 2]])) is None


def test_no_chart_of_many_categories_or_series() -> None:
    rows = [[chr(65 + i) * 3, 10.0 + i, 20.0 + i, 15.0 + i] for i in range(26)]
    assert chart_data(sql(["letter", "a", "b", "c"], rows), question="Compare a, b and c by letter") is None
    assert chart_data(sql(["name", "size_kb"], [[f"pkg{i}", 100 + i * 37] for i in range(13)])) is None


def test_mixed_units_draw_only_the_asked_measure_or_nothing() -> None:
    rows = [["httpx", 850, 120000], ["aiosqlite", 95, 30000], ["pydantic", 4100, 900000], ["rich", 1200, 400000]]
    plain = sql(["name", "size_kb", "downloads"], rows)
    assert chart_data(plain, question="Tell me about these packages") is None
    ranked = sql(["name", "size_kb", "downloads"], rows, "SELECT name, size_kb, downloads FROM p ORDER BY size_kb DESC")
    data = chart_data(ranked, question="Which packages take the most disk space?")
    assert data is not None and list(data.series) == ["size_kb"]
    data = chart_data(plain, question="Which packages have the most downloads?")
    assert data is not None and list(data.series) == ["downloads"]
    assert unit_of("size_kb") == "bytes" and unit_of("budget_cny") == unit_of("actual_cny") == "money:cny"
    assert pick_measures(["a_usd", "b_pct"], {}, question=None, sql="") == []


def test_single_row_gets_no_chart() -> None:
    assert chart_data(sql(["project", "budget"], [["Depot", 900000]]), question="What is the depot budget?") is None


def test_long_category_labels_are_shortened_in_the_drawing() -> None:
    report = handmade_report()
    long = "Customer Support and Operations Excellence"
    report.evidence[1].rows[1][0] = long
    bar = next(c for c in charts_for(report) if c.kind == "bar")
    labels = re.findall(r"<text\b[^>]*>([^<]*)</text>", bar.svg)
    assert long not in bar.svg and "Customer Support…" in labels


def test_report_question_decides_the_line_chart() -> None:
    report = handmade_report()
    assert [c.kind for c in charts_for(report)] == ["line", "bar"]  # "How did spend change?"
    report.question = "Which department has the largest budget?"
    assert [c.kind for c in charts_for(report)] == ["bar"]
