"""The HTML report: self-contained, citations linked with their evidence on hover, hostile text
escaped, charts drawn from SQL rows only; the Jupyter display hooks; ``report -o out.html``."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dossier.charts import chart_data, charts_for, human
from dossier.cli import main
from dossier.cli_report import output_format
from dossier.render_html import render_html
from dossier.research import Researcher
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import _RENDERERS, Evidence, Plan, Reference, Report, Section, SubQuestion, Verification

ZH_QUESTION = "检索增强生成和微调的成本有什么区别？"
HOSTILE = 'Costs rose <script>alert(1)</script> and <img src=x onerror="alert(2)"> twice.'
TIME_ROWS = [[dt.date(2025, 1, 1), 1200], [dt.date(2025, 2, 1), 1500.5], [dt.date(2025, 3, 1), 900],
             [dt.date(2025, 5, 1), 2000]]
CATEGORY_ROWS = [["Legal", 800000], ["Customer Support", 1200000], ["R&D <lab>", 500000]]


def sql_evidence(eid: str, columns: list[str], rows: list[list], sql: str) -> Evidence:
    text = "\n".join(" | ".join(map(str, r)) for r in [columns, *rows])
    return Evidence(id=eid, kind="sql", text=text, sql=sql, tables=["spend"], columns=columns, rows=rows,
                    row_count=len(rows), result_hash="h" + eid)


def handmade_report(language: str = "en") -> Report:
    """Two chartable SQL results (a time series, a category breakdown), one that is not, a hostile
    passage and an unverified claim."""
    evidence = [
        sql_evidence("ts00000001", ["month", "spend_cny"], TIME_ROWS,
                     "SELECT month, sum(spend_cny) AS spend_cny FROM spend GROUP BY month ORDER BY month"),
        sql_evidence("cat0000002", ["department", "budget_cny"], CATEGORY_ROWS,
                     "SELECT department, budget_cny FROM budgets WHERE department <> 'x'"),
        sql_evidence("one0000003", ["n", "avg_cost"], [[3, 1.5]], "SELECT count(*) AS n, avg(cost) FROM t"),
        Evidence(id="evil000004", kind="passage", text=HOSTILE, doc_id="d1", source="docs/evil<b>.md",
                 title="<b>Evil</b> memo", section="S&P <x>", page=3, char_start=0, char_end=len(HOSTILE)),
        Evidence(id="good000005", kind="passage", text="The RAG programme is budgeted at 1.8M CNY.",
                 doc_id="d2", source="docs/budget.md", title="Budget", char_start=10, char_end=52),
    ]
    refs = [Reference(number=i, evidence_id=e.id, label=e.label()) for i, e in enumerate(evidence, 1)]
    summary = "- Spend peaked at 2000 CNY in May [1].\n- Customer Support has the largest budget [2].\n"
    body = ("Monthly spend rose, then fell [1].\n\n| month | spend_cny |\n| --- | --- |\n| 2025-01 | 1200 |\n\n"
            "Budgets differ by department [2]. One summary row [3].\n\n"
            "The memo says <script>alert(1)</script> loudly [4]. The programme costs 9.9M CNY ⚠unverified [5].\n\n"
            "Both sources agree [4, 5].\n\n```text\nraw block 42 <b>\n```")
    sections = [Section(id="s0", title="Executive summary", markdown=summary, order=0),
                Section(id="s1", title="Spend & budgets", markdown=body, order=1)]
    plan = Plan(question="How did spend change?", language=language,
                sub_questions=[SubQuestion(id="q1", question="How did spend change?", needs="tables")])
    verification = Verification(markers_total=7, markers_resolved=7, numeric_claims=3, numeric_claims_supported=2,
                                flagged_claims=["The programme costs 9.9M CNY."], sentences=6, uncited_sentences=0)
    return Report(run_id="r-test", question="How did spend change?", language=language, title="Spend <review>",
                  plan=plan, sections=sections, references=refs, evidence=evidence, stop_reason="covered", rounds=1,
                  engine="offline", settings_hash="abc123", kb_version={"corpus_version": 2, "catalog_hash": "ff"},
                  verification=verification, timings={"plan": 0.1, "write": 0.2}, failures=["engine fell back"],
                  created_at="2026-01-02T03:04:05+00:00")


@pytest.fixture(scope="module")
async def graph_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """Real reports from the offline research graph on the tiny test corpus, English and Chinese."""
    root = tmp_path_factory.mktemp("graph")
    paths = write_corpus(root / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(root / "kb"))
    await kb.ingest(paths)
    researcher = Researcher(kb)
    reports = {"en": await researcher.run(QUESTION), "zh": await researcher.run(ZH_QUESTION)}
    await kb.close()
    return reports


class Page(HTMLParser):
    """Ids, links, resource attributes and the text inside each citation's tooltip."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.resources: list[tuple[str, str, str]] = []
        self.tips: dict[str, list[str]] = {}
        self._tip_depth, self._tip_for, self._last_href = 0, "", ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for name in ("src", "href", "xlink:href", "action", "data"):
            if a.get(name):
                self.resources.append((tag, name, a[name]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
            self._last_href = a["href"]
        if (tag == "span" and "tip" in (a.get("class") or "").split()) or self._tip_depth:
            if self._tip_depth == 0:
                self._tip_for = self._last_href
                self.tips.setdefault(self._tip_for, []).append("")
            self._tip_depth += tag == "span"

    def handle_endtag(self, tag: str) -> None:
        if self._tip_depth and tag == "span":
            self._tip_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._tip_depth:
            self.tips[self._tip_for][-1] += data + " "


def assert_self_contained(html: str) -> None:
    page = Page(html)
    remote = [r for r in page.resources if re.match(r"\s*(https?:)?//", r[2], re.I)]
    assert remote == []
    # url(#clip) is local; url(data:font/woff…) is the embedded CJK font
    assert not re.search(r"<link\b|@import|url\((?!#|data:font/woff;base64,)|<iframe|<object|<embed", html, re.I)
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I)
    assert html.count("<script") == 1  # the few lines that keep tooltips in the window


def assert_citations_resolve(html: str, report: Report) -> None:
    page = Page(html)
    for href in page.hrefs:
        assert href.startswith("#") and href[1:] in page.ids, href
    cited = {int(n) for s in report.sections for m in re.findall(r"\[(\d+(?:, \d+)*)\]", s.markdown)
             for n in m.split(", ")}
    assert cited and all(f"ref-{n}" in page.ids and f"#ref-{n}" in page.hrefs for n in cited)


async def test_graph_report_html_is_self_contained_and_linked(graph_reports: dict[str, Report]) -> None:
    report = graph_reports["en"]
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    assert_self_contained(html)
    assert_citations_resolve(html, report)
    for title in [report.title] + [s.title for s in report.sections]:
        assert title.replace("&", "&amp;") in html
    assert "References" in html and "Appendix: Method" in html and 'class="toc"' in html


async def test_hover_shows_the_passage_or_the_sql(graph_reports: dict[str, Report]) -> None:
    report = graph_reports["en"]
    tips = Page(render_html(report)).tips
    by_id = report.evidence_by_id()
    for ref in report.references:
        ev = by_id[ref.evidence_id]
        shown = " ".join(" ".join(tips[f"#ref-{ref.number}"]).split())
        if ev.kind == "sql":
            assert " ".join(ev.sql.split()) in shown and ev.columns[0] in shown
        else:
            assert " ".join(ev.text.split())[:80] in shown and ev.source in shown


async def test_chinese_report_has_lang_zh(graph_reports: dict[str, Report]) -> None:
    report = graph_reports["zh"]
    html = render_html(report)
    assert report.language == "zh" and '<html lang="zh">' in html and 'lang="zh"' in html
    assert "参考资料" in html and "附录：方法" in html
    assert_citations_resolve(html, report)


def test_hostile_passage_renders_as_text() -> None:
    html = render_html(handmade_report())
    assert "<script>alert(1)</script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html  # in the tooltip and the reference
    assert "docs/evil&lt;b&gt;.md" in html and "Spend &lt;review&gt;" in html
    assert_self_contained(html)


def test_handmade_tooltips_rows_and_unverified_badge() -> None:
    report = handmade_report()
    html = render_html(report)
    tips = Page(html).tips
    assert "SELECT month, sum(spend_cny)" in " ".join(tips["#ref-1"]) and "1500.5" in " ".join(tips["#ref-1"])
    assert "docs/budget.md" in " ".join(tips["#ref-5"]) and "1.8M CNY" in " ".join(tips["#ref-5"])
    assert '<span class="unverified"' in html and "⚠unverified" not in html
    assert re.search(r'\[<span class="cref"><a href="#ref-4">4</a>.*?, <span class="cref"><a href="#ref-5">', html)
    assert_citations_resolve(html, report)
    assert "engine fell back" in html and "The programme costs 9.9M CNY." in html  # method appendix
    assert "<pre><code class=\"language-text\">raw block 42 &lt;b&gt;" in html


def test_charts_for_time_series_and_categories_only() -> None:
    report = handmade_report()
    charts = charts_for(report)
    drawn = [(c.evidence_id, c.kind, c.reference) for c in charts]
    assert drawn == [("ts00000001", "line", 1), ("cat0000002", "bar", 2)]
    assert chart_data(report.evidence[2]) is None  # one row: nothing to draw
    line, bar = charts
    assert line.x == ["2025-01", "2025-02", "2025-03", "2025-05"]
    assert line.series == {"spend_cny": [float(r[1]) for r in TIME_ROWS]}
    assert bar.x == [r[0] for r in CATEGORY_ROWS] and bar.series == {"budget_cny": [float(r[1]) for r in CATEGORY_ROWS]}
    assert line.caption == "Figure 1: spend_cny by month — source [1]"
    assert bar.caption.endswith("source [2]")
    labels = re.findall(r"<text\b[^>]*>([^<]*)</text>", bar.svg)  # the bar labels, as drawn
    assert {human(v) for v in bar.series["budget_cny"]} <= set(labels)
    assert "R&amp;D &lt;lab&gt;" in bar.svg and "<lab>" not in bar.svg
    assert [c.svg for c in charts_for(report)] == [c.svg for c in charts]  # deterministic


def test_charts_sit_after_the_paragraph_that_cites_them() -> None:
    html = render_html(handmade_report())
    section = html[html.index('id="sec-2"'):html.index('id="references"')]
    assert section.count("<figure") == 2 and '<figure class="chart"' not in html[:html.index('id="sec-2"')]
    first_cite, table_end = section.index('href="#ref-1"'), section.index("</table>")
    assert table_end < section.index('data-evidence="ts00000001"') < section.index('href="#ref-2"')
    assert first_cite < table_end
    assert section.index('data-evidence="cat0000002"') > section.index('href="#ref-2"')


def test_one_row_sql_gets_no_chart() -> None:
    report = handmade_report()
    report.references = report.references[2:]  # cite only the one-row result and the passages
    assert charts_for(report) == [] and "<figure" not in render_html(report)


def test_jupyter_display_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    import dossier.render  # noqa: F401  (registers the Markdown renderer)

    report = handmade_report()
    assert report._repr_html_().startswith("<!DOCTYPE html>")
    assert report._repr_markdown_().startswith("# Spend &lt;review>")  # markup in a title is text
    monkeypatch.setattr("tools.vocabulary._RENDERERS", {})
    assert report._repr_html_() is None and report._repr_markdown_() is None
    assert set(_RENDERERS) >= {"html", "markdown"}


def test_output_format_from_extension_and_flag(tmp_path: Path) -> None:
    assert output_format(tmp_path / "r.html", None) == "html"
    assert output_format(tmp_path / "r.PDF", None) == "pdf"
    assert output_format(None, None) == "md" and output_format(tmp_path / "r.txt", "md") == "md"
    with pytest.raises(ValueError, match=r"unknown report format .txt"):  # never Markdown in a .txt/.docx
        output_format(tmp_path / "r.txt", None)
    assert output_format(tmp_path / "r.md", "pdf") == "pdf"  # --format wins
    with pytest.raises(ValueError, match="-o"):
        output_format(None, "pdf")


@pytest.fixture
def cli_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    monkeypatch.setenv("DOSSIER_CHUNK_TOKENS", "64")
    monkeypatch.setenv("DOSSIER_CHUNK_OVERLAP", "8")
    kb = tmp_path / "kb"
    assert main(["--kb", str(kb), "ingest", *map(str, write_corpus(tmp_path / "corpus")), "--quiet"]) == 0
    return kb


def test_cli_report_writes_html(cli_kb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    assert main(["--kb", str(cli_kb), "report", QUESTION, "--offline", "-q", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'href="#ref-1"' in html
    assert_self_contained(html)


def test_cli_resume_writes_the_format_asked(cli_kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--kb", str(cli_kb), "report", QUESTION, "--offline", "-q", "-o", str(tmp_path / "a.md")]) == 0
    capsys.readouterr()
    assert main(["--kb", str(cli_kb), "runs"]) == 0
    run_id = capsys.readouterr().out.split()[0]
    out = tmp_path / "again.txt"
    assert main(["--kb", str(cli_kb), "resume", run_id, "-q", "-o", str(out), "--format", "html"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def body_table_report() -> Report:
    """The category result shown in full as a body table, the time series only cited."""
    report = handmade_report()
    table = "| department | budget_cny |\n| --- | --- |\n" + "\n".join(f"| {d} | {v} |" for d, v in CATEGORY_ROWS)
    body = f"Customer Support has the largest budget, 1200000 [2].\n\n{table}\n\nMonthly spend rose, then fell [1]."
    report.sections[1] = Section(id="s1", title="Budgets", markdown=body, order=1)
    return report


def test_sql_rows_shown_in_the_body_are_not_repeated_in_references() -> None:
    from dossier.render import body_rows, render_markdown

    report = body_table_report()
    assert body_rows(report) == {"cat0000002": 3}
    md = render_markdown(report)
    refs = md[md.index("## References"):]
    assert "SELECT department, budget_cny FROM budgets" in refs and "SQL on spend — 3 rows" in refs
    assert "the rows are in the report body" in refs and md.count("| Legal | 800000 |") == 1
    assert "| 2025-02-01 | 1500.5 |" in refs  # a result the body does not show keeps its rows
    html = render_html(report)
    listed = html[html.index('id="references"'):]
    assert "Legal" not in listed and "1500.5" in listed and "the rows are in the report body" in listed
    assert "Legal" in " ".join(Page(html).tips["#ref-2"])  # the tooltip keeps the rows
