"""``report``/``resume`` outputs (issue 14 item 3): several ``-o`` from one run, each file in the
format its extension names (.md, .html, .pdf, .docx), and every output checked before the research
runs: an unknown extension, the same file twice, a folder or a place that cannot be written is a
one-line error with exit 1, and no run is started."""

from __future__ import annotations

import os
import re
from pathlib import Path

import docx
import pytest

from tests import test_cli
from tests.test_cli import Cli, assert_one_line_error

# The CLI fixtures of tests/test_cli.py: an offline knowledge base built with the hash embedder.
cli_env, corpus, cli, ingested = test_cli.cli_env, test_cli.corpus, test_cli.cli, test_cli.ingested

QUESTION = "What does the sales table say about the north region?"


def runs(cli: Cli) -> list[str]:
    code, out, err = cli("runs")
    assert code == 0, err
    return re.findall(r"^(r\d{8}-\d{6}-[0-9a-f]+) ", out, re.M)  # the console may wrap a long question


def assert_formats(folder: Path, name: str = "r") -> None:
    assert (folder / f"{name}.md").read_text(encoding="utf-8").startswith("# ")
    assert (folder / f"{name}.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (folder / f"{name}.pdf").read_bytes().startswith(b"%PDF-")
    document = docx.Document(folder / f"{name}.docx")  # a real Word file, not Markdown in a .docx
    assert document.paragraphs[0].style.name == "Title"
    assert "References" in [p.text for p in document.paragraphs]


def test_several_outputs_from_one_run(ingested: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [a for ext in ("md", "html", "pdf", "docx") for a in ("-o", str(out / f"r.{ext}"))]
    code, stdout, err = ingested("report", QUESTION, "--offline", "-q", *args)
    assert code == 0, err
    assert_formats(out)
    stdout = " ".join(stdout.split())  # the console wraps long lines
    assert stdout.count("report written to") == 4
    for fmt in ("md", "html", "pdf", "docx"):
        assert f"({fmt}, " in stdout
    assert len(runs(ingested)) == 1  # one research run wrote all four


def test_format_flag_names_the_format_of_one_output(ingested: Cli, tmp_path: Path) -> None:
    out = tmp_path / "report.bin"
    code, _, err = ingested("report", QUESTION, "--offline", "-q", "-o", str(out), "--format", "docx")
    assert code == 0, err
    assert docx.Document(out).paragraphs[0].style.name == "Title"


@pytest.mark.parametrize(("outputs", "flags", "fragments"), [
    (["r.md", "r.txt"], [], ["unknown report format .txt", "use .md, .html, .pdf or .docx"]),
    (["r.md", "noext"], [], ["unknown report format (no extension)"]),
    (["r.md", "r.md"], [], ["is given twice"]),
    (["r.md", "r.html"], ["--format", "md"], ["--format applies to one -o"]),
    ([], ["--format", "docx"], ["a DOCX report needs a file", "-o report.docx"]),
    ([], ["--format", "pdf"], ["a PDF report needs a file"]),
    (["blocker/r.html"], [], ["blocker is a file, not a folder"]),
])
def test_bad_outputs_are_refused_before_the_research(ingested: Cli, tmp_path: Path, outputs: list[str],
                                                     flags: list[str], fragments: list[str]) -> None:
    (tmp_path / "blocker").write_text("a file where a folder is expected", encoding="utf-8")
    args = [a for name in outputs for a in ("-o", str(tmp_path / name))]
    code, out, err = ingested("report", QUESTION, "--offline", "-q", *args, *flags)
    assert_one_line_error(code, err, *fragments)
    assert "Errno" not in err and out == ""
    assert not (ingested.kb / "runs.sqlite").exists()  # no run was started
    assert not (tmp_path / "r.md").exists()  # and nothing written


def test_unwritable_folder_is_refused_before_the_research(ingested: Cli, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: folder permissions are not enforced")
        code, _, err = ingested("report", QUESTION, "--offline", "-q", "-o", str(tmp_path / "ok.md"),
                                "-o", str(locked / "r.pdf"))
        assert_one_line_error(code, err, f"cannot write the report to {locked / 'r.pdf'}")
        assert not (ingested.kb / "runs.sqlite").exists()
    finally:
        locked.chmod(0o700)


def test_resume_writes_several_outputs_and_checks_them_first(ingested: Cli, tmp_path: Path) -> None:
    code, _, err = ingested("report", QUESTION, "--offline", "-q", "-o", str(tmp_path / "first.md"))
    assert code == 0, err
    (run_id,) = runs(ingested)
    code, _, err = ingested("resume", run_id, "-q", "-o", str(tmp_path / "again.docx"))
    assert code == 0, err
    code, _, err = ingested("resume", run_id, "-q", "-o", str(tmp_path / "x.md"), "-o", str(tmp_path / "x.odt"))
    assert_one_line_error(code, err, "unknown report format .odt")
    assert not (tmp_path / "x.md").exists()
    out = tmp_path / "resumed"
    args = [a for ext in ("md", "html", "pdf", "docx") for a in ("-o", str(out / f"r.{ext}"))]
    code, stdout, err = ingested("resume", run_id, "-q", *args)
    assert code == 0, err
    assert_formats(out)
    assert " ".join(stdout.split()).count(f"run {run_id}") == 4


def test_no_output_prints_markdown(ingested: Cli) -> None:
    code, out, err = ingested("report", QUESTION, "--offline", "-q")
    assert code == 0, err
    assert out.startswith("# ") and "## References" in out


def test_help_names_every_format(ingested: Cli) -> None:
    for command in ("report", "resume"):
        code, out, _ = ingested(command, "--help", kb=False)
        flat = " ".join(out.split())
        assert code == 0 and ".docx" in flat and "repeat for several formats" in flat
