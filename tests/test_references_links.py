"""References lead back to what they cite: a passage links to its file, relative to where the report
is written (Markdown and HTML), and a SQL result carries a ``dossier sql`` command that runs its query
again. Links and commands are built in code: hostile file names and SQL stay inert."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from dossier.cli import main
from dossier.ref_links import RefLinks, shell_quote
from dossier.render import render_markdown
from dossier.render_html import render_html
from tests.graph_fixtures import QUESTION, write_corpus
from tests.test_render_html import handmade_report
from tools.vocabulary import Evidence, Reference, Report

HOSTILE_SQL = [
    "SELECT 'it''s' AS a, \"col\" FROM t WHERE x <> '$(touch PWNED)' AND y = '`touch PWNED`'",
    "SELECT 1 -- ! not history\n  , 'a\\b' AS \"q\"\"uote\"",
    "-- a leading comment\nSELECT 2",
    "SELECT '!x', \"$HOME\"",
    "SELECT ```x``` AS ticks",
]


def passage(eid: str, source: str, *, page: int | None = None) -> Evidence:
    return Evidence(id=eid, kind="passage", text="The budget is 1.8M CNY.", doc_id="d" + eid, source=source,
                    title="Budget", page=page, char_start=0, char_end=23)


def with_evidence(*evidence: Evidence) -> Report:
    report = handmade_report()
    refs = [*report.references, *(Reference(number=len(report.references) + i, evidence_id=e.id, label=e.label())
                                  for i, e in enumerate(evidence, 1))]
    return report.model_copy(update={"evidence": [*report.evidence, *evidence], "references": refs})


def md_links(markdown: str) -> list[tuple[str, str]]:
    """(text, href) of every link a Markdown renderer would make."""
    found = []
    for token in MarkdownIt("commonmark").parse(markdown):
        children = token.children or []
        for i, child in enumerate(children):
            if child.type == "link_open":
                found.append((children[i + 1].content, child.attrs["href"]))
    return found


class Anchors(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((data, self._href))
            self._href = None


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A folder as ingested: ``docs/…`` files under it; the report goes to ``out/sub/``."""
    for name in ("docs/plan.md", "docs/scan.pdf", "docs/a b [1].md", "docs/x](javascript:alert(1)).md",
                 "javascript:alert(2).md", "docs/成本.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text", encoding="utf-8")
    return tmp_path


def test_passage_links_to_its_file_from_the_report(sources: Path) -> None:
    report = with_evidence(passage("p1", "docs/plan.md"), passage("p2", "docs/scan.pdf", page=4),
                           passage("p3", "docs/成本.md"))
    out = sources / "out" / "sub" / "r.md"
    md = render_markdown(report, output=out, sources_root=sources)
    links = dict(md_links(md))
    assert links["docs/plan.md"] == "../../docs/plan.md"
    assert links["docs/scan.pdf"] == "../../docs/scan.pdf#page=4"  # a PDF opens at the cited page
    assert (out.parent / unquote(links["docs/成本.md"])).resolve() == (sources / "docs/成本.md").resolve()
    html_links = dict(Anchors(render_html(report, output=out.with_suffix(".html"), sources_root=sources)).links)
    assert html_links["docs/plan.md"] == "../../docs/plan.md"
    assert html_links["docs/scan.pdf"] == "../../docs/scan.pdf#page=4"


def test_the_working_folder_is_the_default_root(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sources)
    md = render_markdown(with_evidence(passage("p1", "docs/plan.md")), output=Path("r.md"))
    assert ("docs/plan.md", "docs/plan.md") in md_links(md)


def test_no_link_without_a_file_or_a_report_location(sources: Path) -> None:
    report = with_evidence(passage("p1", "docs/missing.md"), passage("p2", "../outside.md"),
                           passage("p3", "/etc/passwd"), passage("p4", "docs/plan.md"))
    (sources.parent / "outside.md").write_text("x", encoding="utf-8")
    md = render_markdown(report, output=sources / "r.md", sources_root=sources)
    assert [text for text, _ in md_links(md)] == ["docs/plan.md"]
    assert md_links(render_markdown(report, sources_root=sources)) == []  # printed: no location to link from
    assert [h for _, h in Anchors(render_html(report, sources_root=sources)).links if not h.startswith("#")] == []


def test_hostile_file_names_stay_one_inert_relative_link(sources: Path) -> None:
    names = ["docs/a b [1].md", "docs/x](javascript:alert(1)).md", "javascript:alert(2).md"]
    report = with_evidence(*(passage(f"h{i}", name) for i, name in enumerate(names)))
    out = sources / "r.md"
    md_found = md_links(render_markdown(report, output=out, sources_root=sources))
    html_found = [(t, h) for t, h in Anchors(render_html(report, output=out, sources_root=sources)).links
                  if not h.startswith("#")]
    for found in (md_found, html_found):
        assert [text for text, _ in found] == names
        for text, href in found:
            assert ":" not in href.split("/")[0] and "(" not in href and " " not in href, href
            assert (sources / unquote(href)).resolve() == (sources / text).resolve()


@pytest.mark.parametrize("sql", HOSTILE_SQL)
@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_the_rerun_command_gives_the_shell_the_exact_query(sql: str, shell: str, tmp_path: Path) -> None:
    ev = Evidence(id="s1", kind="sql", text="", sql=sql, tables=["t"])
    command = RefLinks(kb_dir=Path("my kb's")).sql_command(ev)
    assert command is not None and command.startswith("dossier sql ")
    argv_printer = f'dossier() {{ "{sys.executable}" -c "import json,sys; print(json.dumps(sys.argv[1:]))" "$@"; }}'
    done = subprocess.run([shell, "-c", f"{argv_printer}\n{command}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    args = json.loads(done.stdout)
    assert args[0] == "sql" and args[1].lstrip() == sql and args[2:] == ["--kb", "my kb's"]
    assert not (tmp_path / "PWNED").exists()


def test_shell_quote_reads_well_for_sql_strings() -> None:
    assert shell_quote("SELECT a FROM t") == "'SELECT a FROM t'"
    assert shell_quote("SELECT a FROM t WHERE b = 'x'") == "\"SELECT a FROM t WHERE b = 'x'\""


def test_sql_reference_shows_its_rerun_line_in_markdown_and_html(tmp_path: Path) -> None:
    multi = Evidence(id="m1", kind="sql", text="", sql="SELECT ```a```\nFROM t", tables=["t"], columns=["a"],
                     rows=[[1]], row_count=1)
    report = with_evidence(multi)
    md = render_markdown(report, output=tmp_path / "r.md", kb_dir=Path("kb"))
    refs = md[md.index("## References"):md.index("## Method")]
    rerun = "Re-run: `dossier sql \"SELECT department, budget_cny FROM budgets WHERE department <> 'x'\" --kb kb`"
    assert rerun in refs
    # the list keeps one item per reference, whatever the SQL holds (backticks, lines)
    items = [t for t in MarkdownIt("commonmark").parse(refs) if t.type == "list_item_open" and t.level == 1]
    assert len(items) == len(report.references)
    fences = [t for t in MarkdownIt("commonmark").parse(refs) if t.type == "fence"]
    assert "SELECT ```a```\nFROM t\n" in [f.content for f in fences]
    assert any(f.info == "sh" and f.content.startswith("dossier sql 'SELECT ```a```\nFROM t' --kb kb") for f in fences)
    html = render_html(report, kb_dir=Path("kb"))
    assert '<p class="rerun">Re-run: <code>dossier sql &#x27;SELECT month' in html
    assert "Re-run" not in render_markdown(report).split("## References")[0]


def test_cli_report_links_files_and_its_sql_reruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    """As a user meets it: ingest a folder, write the report elsewhere, follow a link, re-run a query."""
    for name, value in (("DOSSIER_EMBEDDER", "hash"), ("DOSSIER_CHUNK_TOKENS", "64"), ("DOSSIER_CHUNK_OVERLAP", "8")):
        monkeypatch.setenv(name, value)
    root = tmp_path / "project"
    paths = write_corpus(root)
    monkeypatch.chdir(root)
    assert main(["ingest", *(p.name for p in paths), "--kb", "kb", "--quiet"]) == 0
    assert main(["report", QUESTION, "--offline", "-q", "--kb", "kb", "-o", "out/r.md", "-o", "out/r.html"]) == 0
    capsys.readouterr()
    md = (root / "out" / "r.md").read_text(encoding="utf-8")
    files = [href for _, href in md_links(md)]
    assert files and all(href.startswith("../docs/") and (root / "out" / unquote(href)).is_file() for href in files)
    html_files = [h for _, h in Anchors((root / "out" / "r.html").read_text(encoding="utf-8")).links if h[0] != "#"]
    assert sorted(set(html_files)) == sorted(set(files))
    commands = [line.split(": ", 1)[1].strip("`") for line in md.splitlines() if line.strip().startswith("Re-run: ")]
    assert commands, "no SQL reference with a re-run line"
    argv = shlex.split(commands[0])
    assert argv[:2] == ["dossier", "sql"] and argv[-2:] == ["--kb", "kb"]
    assert main([*argv[1:], "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["rows"] and rerun["columns"]
