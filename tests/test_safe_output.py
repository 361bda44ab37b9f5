"""Issue 12 items 13-14: markup from documents and cells is inert in report.md; table cells keep
their table; control characters and rich markup in names are shown as text."""

from __future__ import annotations

from dossier.render import render_markdown, sql_table
from dossier.safe_text import markdown_text, plain, table_cell
from tools.vocabulary import Evidence, Plan, Reference, Report, Section


def test_markup_from_sources_is_inert_and_citations_stay() -> None:
    text = ('Pay here <script>alert(1)</script> <img src=x onerror=alert(1)> and '
            '[Click here](javascript:alert(1)) or ![x](http://evil/x.png) [3].')
    out = markdown_text(text)
    assert "<script>" not in out and "<img" not in out and "](" not in out
    assert out.endswith("[3].") and "&lt;script>" in out


def test_cells_keep_the_table_and_controls_are_gone() -> None:
    assert table_cell("a|b\nc") == "a\\|b c"
    ev = Evidence(id="e1", kind="sql", text="", sql="SELECT 1", columns=["x|y"], rows=[["1|2\n3"]], tables=["t"])
    table = sql_table(ev)
    assert table.splitlines()[0] == "| x\\|y |" and table.splitlines()[2] == "| 1\\|2 3 |"
    assert plain("report\x07\u202eftp.exe") == "reportftp.exe"


def test_report_markdown_neutralises_a_hostile_passage() -> None:
    ev = Evidence(id="p1", kind="passage", text="See <script>steal()</script> [now](javascript:x).",
                  source="docs/a.md", title="A <b>bold</b> title", char_start=0, char_end=40)
    report = Report(run_id="r", question="Why\x07?", language="en", title="Why\u202e", plan=Plan(question="q",
                    sub_questions=[]), sections=[Section(id="s1", title="S", markdown="See <script>x</script> [1].")],
                    references=[Reference(number=1, evidence_id="p1", label="A")], evidence=[ev], stop_reason="covered",
                    rounds=1, engine="offline", settings_hash="h", created_at="now")
    md = render_markdown(report)
    assert "<script>" not in md and "<b>" not in md and "](javascript" not in md
    assert "\x07" not in md and "\u202e" not in md and "See &lt;script>x&lt;/script> [1]." in md
