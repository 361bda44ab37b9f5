"""``dossier mcp`` (issue 16 §2): the knowledge base served over stdio, driven by the official MCP
Python client exactly as a desktop assistant would: a real ``python -m dossier.cli mcp --kb`` process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mcp", reason="the mcp extra (in the test extra) is not installed")

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import MakeKB
from tests.test_cli_startup import heavy_in, loaded

TOOLS = {"search", "tables", "describe_table", "sql", "research"}
NOTES_MD = """# Heron study

## Costs

The heron study found that retrieval costs 40 dollars per month while fine-tuning costs 900 dollars.
"""
# The server reads the knowledge base with the settings it was built with (conftest.kb_settings).
SERVER_ENV = {"DOSSIER_EMBEDDER": "hash", "DOSSIER_ENGINE": "offline", "DOSSIER_CHUNK_TOKENS": "64",
              "DOSSIER_CHUNK_OVERLAP": "8"}


@pytest.fixture
async def kb_dir(make_kb: MakeKB, tmp_path: Path) -> Path:
    """A tiny knowledge base: one Markdown note and one CSV table."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.md").write_text(NOTES_MD, encoding="utf-8")
    (src / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n", encoding="utf-8")
    kb = await make_kb()
    await kb.ingest([src])
    await kb.close()
    return kb.path


@asynccontextmanager
async def mcp_client(kb_dir: Path, cwd: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "dossier.cli", "mcp", "--kb", str(kb_dir)],
                                   env=SERVER_ENV, cwd=cwd)
    async with Client(params) as client:
        yield client


async def test_lists_the_five_read_only_tools(kb_dir: Path, tmp_path: Path) -> None:
    async with mcp_client(kb_dir, tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(t.annotations and t.annotations.read_only_hint for t in tools.values())
    assert all(not (t.annotations and t.annotations.destructive_hint) for t in tools.values())
    # No tool takes a path: the knowledge-base folder is fixed when the server starts.
    arguments = {name for t in tools.values() for name in t.input_schema.get("properties", {})}
    assert arguments == {"query", "k", "mode", "source", "name", "question", "max_rounds"}


async def test_search_tables_and_describe(kb_dir: Path, tmp_path: Path) -> None:
    async with mcp_client(kb_dir, tmp_path) as client:
        found = await client.call_tool("search", {"query": "fine-tuning cost", "k": 3})
        listed = await client.call_tool("tables", {})
        described = await client.call_tool("describe_table", {"name": "sales"})
        unknown = await client.call_tool("describe_table", {"name": "nope"})
    assert not found.is_error
    (passage,) = found.structured_content["passages"]
    assert re.fullmatch(r"[0-9a-f]{10}", passage["evidence_id"])
    assert passage["source"].endswith("notes.md") and "900 dollars" in passage["text"]
    assert passage["section"] == "Heron study > Costs"
    (table,) = listed.structured_content["tables"]
    assert table["name"] == "sales" and table["row_count"] == 2
    assert table["columns"] == ["region VARCHAR", "amount BIGINT"]
    assert [c["name"] for c in described.structured_content["columns"]] == ["region", "amount"]
    assert unknown.is_error and 'unknown table "nope"' in unknown.content[0].text


async def test_sql_runs_a_select_and_refuses_writes(kb_dir: Path, tmp_path: Path) -> None:
    async with mcp_client(kb_dir, tmp_path) as client:
        total = await client.call_tool("sql", {"query": "SELECT sum(amount) AS total FROM sales"})
        refused = [await client.call_tool("sql", {"query": q}) for q in (
            "DROP TABLE sales", "INSERT INTO sales VALUES ('east', 5)",
            "COPY sales TO 'out.csv'", "SELECT * FROM read_csv('/etc/passwd')")]
        after = await client.call_tool("sql", {"query": "SELECT count(*) AS n FROM sales"})
        typed = await client.call_tool("sql", {"query": "SELECT DATE '2026-01-31' AS d, 1.5::DECIMAL(4, 2) AS x"})
    assert not total.is_error
    assert total.structured_content["rows"] == [[30]] and total.structured_content["tables"] == ["sales"]
    assert re.fullmatch(r"[0-9a-f]{10}", total.structured_content["evidence_id"])
    for result in refused:
        assert result.is_error and result.structured_content is None
        assert result.content[0].text.startswith("Error executing tool sql: ")
    assert "only SELECT/WITH" in refused[0].content[0].text
    assert after.structured_content["rows"] == [[2]]  # nothing was written
    assert not (tmp_path / "out.csv").exists()
    assert typed.structured_content["rows"] == [["2026-01-31", 1.5]]  # DuckDB values as plain JSON


async def test_tables_ingested_while_serving_are_queryable(kb_dir: Path, make_kb: MakeKB, tmp_path: Path) -> None:
    """A long-lived server sees what `dossier ingest` adds meanwhile, without a restart."""
    more = tmp_path / "more"
    more.mkdir()
    (more / "costs.csv").write_text("item,usd\ngpu,7\n", encoding="utf-8")
    (more / "pelican.md").write_text("# Pelican\n\nThe pelican notes mention a lighthouse.\n", encoding="utf-8")
    async with mcp_client(kb_dir, tmp_path) as client:
        before = await client.call_tool("sql", {"query": "SELECT count(*) AS n FROM sales"})
        kb = await make_kb()
        await kb.ingest([more])
        await kb.close()
        costs = await client.call_tool("sql", {"query": "SELECT usd FROM costs"})
        sales = await client.call_tool("sql", {"query": "SELECT count(*) AS n FROM sales"})
        found = await client.call_tool("search", {"query": "lighthouse", "mode": "text"})
    assert before.structured_content["rows"] == sales.structured_content["rows"] == [[2]]
    assert not costs.is_error, costs.content
    assert costs.structured_content["rows"] == [[7]]
    assert [p["source"] for p in found.structured_content["passages"]] == ["more/pelican.md"]

async def test_research_returns_a_cited_report_with_progress(kb_dir: Path, tmp_path: Path) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with mcp_client(kb_dir, tmp_path) as client:
        found = await client.call_tool("search", {"query": "fine-tuning cost"})
        result = await client.call_tool("research", {"question": "What does fine-tuning cost compared with retrieval?"},
                                        progress_callback=on_progress)
    assert not result.is_error, result.content
    answer = result.structured_content
    markdown = result.content[0].text
    assert markdown == answer["markdown"] and markdown.startswith("# ")
    assert answer["engine"] == "offline" and answer["run_id"]
    # Every [n] in the report resolves to a numbered reference, and the reference to its evidence.
    references = {r["number"]: r for r in answer["references"]}
    body = markdown.split("\n## References")[0]
    cited = {int(n) for group in re.findall(r"\[(\d+(?:,\s*\d+)*)\]", body) for n in group.split(",")}
    assert cited and cited <= set(references)
    assert all(f"`[ev:{r['evidence_id']}]`" in markdown for r in references.values())
    passage_ids = {p["evidence_id"] for p in found.structured_content["passages"]}
    passage_refs = [r for r in references.values() if r["kind"] == "passage"]
    assert passage_refs and all(r["source"].endswith("notes.md") for r in passage_refs)
    assert {r["evidence_id"] for r in passage_refs} <= passage_ids  # the ids search hands out are the ones cited
    assert "900" in body
    # Progress arrived as MCP progress notifications, in order, ending with "done".
    assert [v for v, _ in progress] == sorted(v for v, _ in progress) and progress[-1][1] == "done"
    assert any(m and m.startswith("plan:") for _, m in progress)


def test_a_folder_without_a_knowledge_base_fails_at_start(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "dossier.cli", "mcp", "--kb", str(tmp_path / "missing")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: no knowledge base at")


def test_cli_start_up_does_not_load_the_mcp_sdk(tmp_path: Path) -> None:
    code, modules = loaded(tmp_path, "--help")
    assert code == 0
    assert heavy_in(modules, ("mcp", "mcp_types", "dossier.mcp_server")) == []



async def test_a_call_in_flight_keeps_its_knowledge_base_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """After tables change, new calls get a fresh knowledge base; the old one closes after its last call."""
    from dossier import mcp_server

    catalog = ["v1"]

    class FakeKB:
        def __init__(self) -> None:
            self.closed = 0
            self.warehouse = SimpleNamespace(catalog_hash=lambda: catalog[0])

        async def close(self) -> None:
            self.closed += 1

    async def fake_open(**_: object) -> FakeKB:
        return FakeKB()

    monkeypatch.setattr(mcp_server.KnowledgeBase, "open", fake_open)
    monkeypatch.setattr(mcp_server, "require_kb", lambda _: None)
    served = mcp_server.ServedKB(SimpleNamespace(kb_dir=Path("kb")))
    await served.open()
    async with served.use() as first:
        catalog[0] = "v2"  # `dossier ingest` re-imported a table meanwhile
        async with served.use() as second:
            assert second is not first and not first.closed
        assert not second.closed and not first.closed  # first is still in use
    assert first.closed == 1
    async with served.use() as again:
        assert again is second
    await served.close()
    assert second.closed == 1


async def test_the_same_tools_over_streamable_http(kb_dir: Path, tmp_path: Path) -> None:
    """`dossier mcp --http PORT`: a team's shared server, reached by URL on loopback."""
    import asyncio
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dossier.cli", "mcp", "--kb", str(kb_dir), "--http", str(port)],
                            env={**os.environ, **SERVER_ENV}, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        for _ in range(300):  # up to 60 s for the server to listen (a loaded 2-core machine)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            await asyncio.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            listed = await client.call_tool("tables", {})
            answered = await client.call_tool("sql", {"query": "SELECT sum(amount) AS total FROM sales"})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert tools == TOOLS
    assert listed.structured_content["tables"][0]["name"] == "sales"
    assert not answered.is_error and "30" in answered.content[0].text


def test_http_takes_a_port_and_refuses_anything_else() -> None:
    from dossier.cli import _host_port

    assert _host_port("8765") == ("127.0.0.1", 8765)
    assert _host_port("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(Exception, match="PORT"):
        _host_port("localhost:http")
