"""The ``dossier`` command: in-process through ``dossier.cli.main`` and as a real subprocess.

Output contract: results on stdout (``--json`` is parseable JSON), errors as one ``error: ...``
line on stderr with exit code 1, a traceback only with ``--debug``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dossier.cli import build_parser, main
from dossier.demo import demo_paths

COMMANDS = ["ingest", "search", "sql", "tables", "glossary", "demo", "report", "resume", "runs", "mcp"]

ALPHA_MD = """---
team: nlp
status: final
---

# Alpha

## Findings

The heron study shows that the shared keyword appears here.
"""

BETA_MD = """---
team: search
---

# Beta

The pelican notes also contain the shared keyword.
"""


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    monkeypatch.setenv("DOSSIER_CHUNK_TOKENS", "64")
    monkeypatch.setenv("DOSSIER_CHUNK_OVERLAP", "8")


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    docs, tables = tmp_path / "docs", tmp_path / "tables"
    (docs / "sub").mkdir(parents=True)
    tables.mkdir()
    (docs / "alpha.md").write_text(ALPHA_MD, encoding="utf-8")
    (docs / "sub" / "beta.md").write_text(BETA_MD, encoding="utf-8")
    (tables / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n", encoding="utf-8")
    (tables / "sales.meta.yaml").write_text("description: Sales by region\n", encoding="utf-8")
    return [docs, tables]


class Cli:
    """``main`` in-process against one knowledge-base folder; returns (exit code, stdout, stderr)."""

    def __init__(self, kb: Path, capsys: pytest.CaptureFixture) -> None:
        self.kb = kb
        self.capsys = capsys

    def __call__(self, *args: str | Path, kb: bool = True) -> tuple[int, str, str]:
        argv = [*(["--kb", str(self.kb)] if kb else []), *map(str, args)]
        self.capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str | Path):
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(cli_env, tmp_path: Path, capsys: pytest.CaptureFixture) -> Cli:
    return Cli(tmp_path / "kb", capsys)


@pytest.fixture
def ingested(cli: Cli, corpus: list[Path]) -> Cli:
    code, _, err = cli("ingest", *corpus, "--quiet")
    assert code == 0, err
    return cli


def assert_error(code: int, err: str, *fragments: str) -> None:
    """Exit 1 and an ``error: ...`` message without a traceback ."""
    assert code == 1
    assert err.startswith("error: ") and "Traceback" not in err, err
    text = " ".join(err.split())
    for fragment in fragments:
        assert fragment in text, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert_error(code, err, *fragments)
    assert err.endswith("\n") and err.count("\n") == 1, err


# -- help -------------------------------------------------------------------------------------


def test_help_lists_every_command(cli: Cli) -> None:
    code, out, _ = cli("--help", kb=False)
    assert code == 0
    for command in COMMANDS:
        assert command in out
    subparsers = build_parser()._subparsers._group_actions[0].choices
    assert sorted(subparsers) == sorted(COMMANDS)  # the list above is the whole CLI


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(cli: Cli, command: str) -> None:
    code, out, _ = cli(command, "--help", kb=False)
    assert code == 0
    assert out.startswith(f"usage: dossier {command}")


def test_missing_command_is_a_usage_error(cli: Cli) -> None:
    code, _, err = cli(kb=False)
    assert code == 2 and "usage: dossier" in err


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_prints_a_summary(cli: Cli, corpus: list[Path]) -> None:
    code, out, err = cli("ingest", *corpus)
    assert code == 0, err
    assert "documents: 2 new, 0 changed, 0 unchanged, 0 removed, 0 skipped" in out
    assert "tables: 1 new, 0 changed, 0 unchanged, 0 removed" in out
    assert "chunks: 2 added (2 embedded), 0 deleted" in out


def test_ingest_json_and_incremental_rerun(cli: Cli, corpus: list[Path]) -> None:
    first = cli.json("ingest", *corpus)
    assert (first["new"], first["tables_new"], first["chunks_embedded"], first["skipped"]) == (2, 1, 2, [])
    (corpus[0] / "notes.png").write_bytes(b"\x89PNG")
    second = cli.json("ingest", *corpus)
    assert (second["new"], second["unchanged"], second["tables_unchanged"], second["chunks_embedded"]) == (0, 2, 1, 0)
    assert second["skipped"] == [{"path": "docs/notes.png", "reason": "unsupported file type '.png'"}]


def test_ingest_prune_flag(cli: Cli, corpus: list[Path]) -> None:
    cli.json("ingest", *corpus)
    (corpus[0] / "sub" / "beta.md").unlink()
    assert cli.json("ingest", *corpus)["removed"] == 0
    assert cli.json("ingest", *corpus, "--prune")["removed"] == 1


def test_quiet_prints_no_progress(cli: Cli, corpus: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    made: list = []

    class RecordingProgress:
        def __init__(self) -> None:
            made.append(self)
            self.total, self.steps, self.ended = None, [], False

        def begin(self, total: int) -> None:
            self.total = total

        def step(self, source: str, status: str) -> None:
            self.steps.append(source)

        def end(self) -> None:
            self.ended = True

    monkeypatch.setattr("dossier.cli.RichIngestProgress", RecordingProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress is only drawn on a terminal
    code, out, err = cli("ingest", *corpus, "--quiet")
    assert code == 0 and "documents: 2 new" in out
    assert err == "" and made == []

    (corpus[0] / "gamma.md").write_text("# Gamma\n\nA third file.\n", encoding="utf-8")
    code, out, err = cli("ingest", *corpus)
    assert code == 0 and "documents: 1 new, 0 changed, 2 unchanged" in out
    (progress,) = made
    assert progress.total == len(progress.steps) == 5 and progress.ended  # 3 docs, 1 table, 1 sidecar


def test_ingest_without_a_terminal_draws_no_progress(cli: Cli, corpus: list[Path]) -> None:
    code, _, err = cli("ingest", *corpus)  # capsys is not a tty
    assert code == 0 and err == ""


# -- search -----------------------------------------------------------------------------------


def test_search_prints_hits(ingested: Cli) -> None:
    code, out, err = ingested("search", "heron")
    assert code == 0, err
    assert out.startswith("1. docs/alpha.md § Alpha > Findings")
    assert "heron study" in out
    code, out, _ = ingested("search", "zzzunknownword", "--mode", "text")
    assert code == 0 and out.strip() == "no results"


def test_search_json_modes_and_filters(ingested: Cli) -> None:
    hits = ingested.json("search", "shared keyword", "--k", "5")
    assert {h["chunk"]["source"] for h in hits} == {"docs/alpha.md", "docs/sub/beta.md"}
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))

    text = ingested.json("search", "pelican", "--mode", "text")
    assert [h["chunk"]["source"] for h in text] == ["docs/sub/beta.md"]
    assert text[0]["text_score"] > 0 and text[0]["vector_score"] is None

    only_sub = ingested.json("search", "shared keyword", "--source", "docs/sub/*")
    assert {h["chunk"]["source"] for h in only_sub} == {"docs/sub/beta.md"}

    nlp = ingested.json("search", "shared keyword", "--where", "team=nlp")
    assert [h["chunk"]["source"] for h in nlp] == ["docs/alpha.md"]
    assert nlp[0]["chunk"]["metadata"] == {"team": "nlp", "status": "final"}
    both = ingested.json("search", "shared keyword", "--where", "team=nlp", "--where", "status=draft")
    assert both == []


def test_search_bad_where_is_a_one_line_error(ingested: Cli) -> None:
    code, _, err = ingested("search", "heron", "--where", "no-equals-sign")
    assert_one_line_error(code, err, "--where expects KEY=VALUE")


# -- sql --------------------------------------------------------------------------------------


def test_sql_prints_a_result_table(ingested: Cli) -> None:
    code, out, err = ingested("sql", "SELECT region, amount FROM sales ORDER BY amount DESC")
    assert code == 0, err
    lines = out.splitlines()
    assert any("region" in line and "amount" in line for line in lines)
    assert any("south" in line and "20" in line for line in lines)
    assert "2 rows" in out
    result = ingested.json("sql", "SELECT sum(amount) AS total FROM sales")
    assert (result["columns"], result["rows"], result["tables"]) == (["total"], [[30]], ["sales"])


def test_sql_drop_is_refused_with_one_line(ingested: Cli) -> None:
    code, out, err = ingested("sql", "DROP TABLE sales")
    assert out == ""
    assert_one_line_error(code, err, "only SELECT/WITH")
    assert ingested.json("sql", "SELECT count(*) AS n FROM sales")["rows"] == [[2]]  # still there


def test_debug_shows_the_traceback(ingested: Cli) -> None:
    with pytest.raises(Exception, match="only SELECT/WITH"):  # --debug re-raises: Python prints it
        main(["--kb", str(ingested.kb), "--debug", "sql", "DROP TABLE sales"])


def test_global_options_also_follow_the_command(ingested: Cli, capsys: pytest.CaptureFixture) -> None:
    """Issue 14 item 1: the README writes ``dossier sql "..." --kb kb``."""
    assert main(["sql", "SELECT count(*) AS n FROM sales", "--kb", str(ingested.kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [[2]]
    with pytest.raises(Exception, match="only SELECT/WITH"):
        main(["sql", "DROP TABLE sales", "--kb", str(ingested.kb), "--debug"])
    assert main(["--kb", str(ingested.kb), "tables", "--json"]) == 0  # before the command still works


# -- tables -----------------------------------------------------------------------------------


def test_tables_lists_describes_and_refuses_unknown(ingested: Cli) -> None:
    code, out, err = ingested("tables")
    assert code == 0, err
    assert "sales  2 rows" in out and "from tables/sales.csv" in out and "Sales by region" in out
    assert "- region VARCHAR" in out and "- amount BIGINT" in out

    catalog = ingested.json("tables")
    assert [(t["name"], t["row_count"], t["source"]) for t in catalog] == [("sales", 2, "tables/sales.csv")]
    assert [c["name"] for c in catalog[0]["columns"]] == ["region", "amount"]

    code, out, _ = ingested("tables", "SALES")
    assert code == 0 and out.startswith("sales  2 rows")
    assert ingested.json("tables", "sales")[0]["description"] == "Sales by region"

    code, out, err = ingested("tables", "nope")
    assert out == ""
    assert_one_line_error(code, err, 'unknown table "nope"', "known tables: sales")


def test_reading_commands_refuse_a_folder_that_is_no_knowledge_base(cli: Cli) -> None:
    """Issue 14 item 2: a mistyped --kb is an error that says how to create one, not 'no results'."""
    for args in (("tables",), ("search", "anything"), ("sql", "SELECT 1"), ("glossary",), ("runs",),
                 ("report", "What does it cost?")):
        code, out, err = cli(*args)
        assert_one_line_error(code, err, "no knowledge base at", "dossier ingest FILES --kb")
        assert out == ""
    assert not (cli.kb / "lancedb").exists()  # and nothing was created by looking


def test_ingest_of_a_missing_path_is_an_error(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("ingest", str(tmp_path / "nonexist"), "--quiet")
    assert_one_line_error(code, err, "no such file or folder", "nonexist")


def test_report_output_is_checked_before_research(ingested: Cli, tmp_path: Path) -> None:
    """Issue 14 item 3: an unknown extension or an unwritable -o fails at once, before the run."""
    code, _, err = ingested("report", "What does it cost?", "-o", str(tmp_path / "r.txt"))
    assert_one_line_error(code, err, "unknown report format .txt", ".md, .html, .pdf or .docx")
    (tmp_path / "adir").mkdir()
    code, _, err = ingested("report", "What does it cost?", "-o", str(tmp_path / "adir"))
    assert code == 1 and "is a folder" in err
    assert not (ingested.kb / "runs.sqlite").exists()  # no run was started


def test_an_empty_but_real_kb_lists_no_tables(ingested: Cli) -> None:
    code, out, _ = ingested("tables")
    assert code == 0 and "sales" in out


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("var", "value", "setting"), [
    ("DOSSIER_CHUNK_TOKENS", "5", "chunk_tokens"),
    ("DOSSIER_EMBEDDER", "word2vec", "embedder"),
    ("DOSSIER_SEARCH_K", "many", "search_k"),
])
def test_invalid_setting_from_env_is_a_one_line_error(cli: Cli, monkeypatch, var: str, value: str,
                                                      setting: str) -> None:
    monkeypatch.setenv(var, value)
    code, out, err = cli("tables")
    assert out == ""
    assert_error(code, err, f"error: invalid setting {setting}:")
    if var == "DOSSIER_CHUNK_TOKENS":  # short enough to survive the wrapping defect below
        assert_one_line_error(code, err, "greater than or equal to 32")


def test_embedder_mismatch_is_a_clear_error(ingested: Cli, monkeypatch) -> None:
    monkeypatch.setenv("DOSSIER_EMBEDDER", "e5-small")
    code, _, err = ingested("search", "heron")
    assert_error(code, err, "built with hash-256 (dim 256)", "configured embedder is e5-small",
                 "DOSSIER_EMBEDDER=hash")


# -- the bundled demo -------------------------------------------------------------------------


def test_demo_content_through_the_cli(cli: Cli) -> None:
    summary = cli.json("ingest", *demo_paths())
    assert summary["skipped"] == [] and summary["new"] >= 10 and summary["tables_new"] == 4

    finance = cli.json("search", "budget", "--where", "department=Finance", "--k", "20")
    assert finance and {h["chunk"]["source"] for h in finance} <= {"docs/budget_draft_2026Q1.md",
                                                                   "docs/budget_final_2026Q1.md"}
    zh = cli.json("search", "微调", "--mode", "text", "--source", "docs/*_zh.*")
    assert zh and all(h["chunk"]["source"].endswith(("_zh.md", "_zh.html", "_zh.txt")) for h in zh)

    tables = {t["name"] for t in cli.json("tables")}
    assert tables == {"approach_benchmarks", "llm_projects", "monthly_spend", "vendors"}
    result = cli.json("sql", "SELECT approach, count(*) AS n FROM llm_projects GROUP BY 1 ORDER BY 1")
    assert result["columns"] == ["approach", "n"] and "rag" in {r[0] for r in result["rows"]}


# Known defects (see the report); strict, so they fail loudly once fixed and the marker can go.


def test_unknown_table_message_is_not_quoted(ingested: Cli) -> None:
    _, _, err = ingested("tables", "nope")
    assert err == 'error: unknown table "nope"; known tables: sales\n'


@pytest.mark.parametrize("case", ["unknown-table", "embedder-mismatch", "invalid-setting"])
def test_long_error_stays_on_one_line(cli: Cli, monkeypatch, case: str) -> None:
    docs, tables = demo_paths()
    if case == "unknown-table":
        cli.json("ingest", tables)
        code, _, err = cli("tables", "no_such_table")
    elif case == "embedder-mismatch":
        cli.json("ingest", docs)
        monkeypatch.setenv("DOSSIER_EMBEDDER", "e5-small")
        code, _, err = cli("search", "budget")
    else:
        monkeypatch.setenv("DOSSIER_EMBEDDER", "word2vec")
        code, _, err = cli("tables")
    assert_one_line_error(code, err)


HOLD_READ_ONLY = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_read_commands_work_while_another_process_reads(ingested: Cli) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_READ_ONLY, str(ingested.kb / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, _out, err = ingested("tables")
        assert code == 0, err
        code, _out, err = ingested("sql", "SELECT count(*) AS n FROM sales")
        assert code == 0, err
    finally:
        holder.communicate(timeout=60)


# -- a real process ---------------------------------------------------------------------------


def cli_process(tmp_path: Path, *args: str | Path, **env: str) -> subprocess.Popen:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_") and k != "PYTHONPATH"}
    full_env.update(DOSSIER_EMBEDDER="hash", HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                    XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
                    COLUMNS="80", **env)
    return subprocess.Popen(
        [sys.executable, "-m", "dossier.cli", *map(str, args)], cwd=tmp_path, env=full_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_real_process(tmp_path: Path) -> None:
    """``python -m dossier.cli`` end to end; independent invocations run side by side."""
    kb = tmp_path / "kb"
    helper = cli_process(tmp_path, "--help")
    ingest = cli_process(tmp_path, "--kb", kb, "ingest", *demo_paths(), "--json")
    code, out, err = finish(helper)
    assert code == 0 and all(c in out for c in COMMANDS), err
    code, out, err = finish(ingest)
    assert code == 0, err
    summary = json.loads(out)  # stdout carries nothing but the JSON
    assert summary["tables_new"] == 4 and summary["new"] >= 10 and summary["skipped"] == []
    assert err == ""  # stderr is a pipe: no progress bar

    # Search and SQL results are covered in-process above; here the exit paths matter. The two run
    # side by side, so only one of them may touch the DuckDB file (see the report: a read-only
    # command takes DuckDB's write lock to read the catalog).
    drop = cli_process(tmp_path, "--kb", kb, "sql", "DROP TABLE vendors")
    debug = cli_process(tmp_path, "--kb", kb, "--debug", "search", "budget", "--where", "no-equals-sign")
    code, out, err = finish(drop)
    assert out == ""
    assert_one_line_error(code, err, "only SELECT/WITH")
    code, out, err = finish(debug)
    assert code == 1 and out == ""
    assert "Traceback (most recent call last)" in err and "ValueError: --where expects KEY=VALUE" in err

    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "kb"]  # nothing written elsewhere
    assert list((tmp_path / "home").iterdir()) == []
