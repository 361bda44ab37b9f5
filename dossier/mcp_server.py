"""``dossier mcp``: the knowledge base as an MCP server over stdio, or streamable HTTP with ``--http``,
for any MCP client (desktop assistants, IDE agents, other agent frameworks).

Five tools: ``search`` (passages with their evidence ids), ``tables`` and ``describe_table`` (the
catalog), ``sql`` (the CLI's guarded executor: one read-only SELECT/WITH, row/time/memory limits) and
``research`` (a cited report from the configured engine, offline unless an endpoint is set, with
progress notifications while it runs).

Read-only by construction: no tool ingests, deletes or takes a path. The knowledge-base folder is
fixed when the server starts (``--kb`` or ``DOSSIER_KB_DIR``); a client only sends queries. The one
file a tool writes is the run's checkpoint in ``kb/runs.sqlite``, as ``dossier report`` does, so
``dossier runs`` lists it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

from pydantic import BaseModel, Field

try:  # an optional extra: say how to get it rather than "No module named 'mcp'"
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp_types import CallToolResult, TextContent, ToolAnnotations
except ModuleNotFoundError as exc:  # pragma: no cover - the test extra installs it
    raise ModuleNotFoundError("`dossier mcp` needs the MCP SDK: pip install 'dossier[mcp]'", name=exc.name) from exc

from dossier import __version__
from dossier.cli_checks import require_kb
from dossier.events import DoneEvent, Event, EvidenceEvent, GapEvent, PlanEvent, SectionEvent, VerificationEvent
from dossier.render import render_markdown
from dossier.research import Researcher
from dossier.settings import Settings
from tools.evidence import evidence_from_hit, evidence_from_sql
from tools.knowledge_base import KnowledgeBase
from tools.models import SearchMode, TableInfo
from tools.redact import redact
from tools.vocabulary import Evidence, Report

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# A report is read-only too, but not idempotent: each call is a new run, checkpointed in runs.sqlite.
RESEARCH = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
INSTRUCTIONS = (
    "Dossier answers from one private knowledge base: documents (search) and tables (tables, "
    "describe_table, sql). Cite passages and query results by their evidence_id. For a whole cited "
    "report on a question, call research."
)


class Passage(BaseModel):
    evidence_id: str = Field(description="stable id of this passage; reports cite it as [ev:ID]")
    source: str
    title: str
    section: str | None = None
    page: int | None = None
    score: float | None = None
    text: str


class SearchAnswer(BaseModel):
    query: str
    passages: list[Passage]


class TableSummary(BaseModel):
    name: str
    description: str
    source: str
    row_count: int
    columns: list[str] = Field(description="'name type' per column; describe_table gives samples and ranges")


class TablesAnswer(BaseModel):
    tables: list[TableSummary]


class SqlAnswer(BaseModel):
    evidence_id: str = Field(description="stable id of this query and result, citable like a passage")
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="the query had more rows than the row limit returned")
    tables: list[str]


class ResearchReference(BaseModel):
    number: int
    evidence_id: str
    label: str
    kind: str
    source: str | None = None
    sql: str | None = None


class ResearchAnswer(BaseModel):
    run_id: str
    title: str
    markdown: str
    references: list[ResearchReference]
    stop_reason: str
    engine: str


class ServedKB:
    """The knowledge base the server answers from, opened once (``tables_only``: the corpus opens at
    the first search). A SQL connection sees the tables as they were when it opened, so after another
    process re-imports tables (``dossier ingest``) the next call gets a freshly opened knowledge base;
    calls already running finish on theirs, which closes after the last one. Documents need none of
    this: LanceDB readers see each new version."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._kb: KnowledgeBase | None = None
        self._catalog = ""
        self._users: Counter[KnowledgeBase] = Counter()
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        require_kb(self.settings.kb_dir)  # a mistyped --kb fails at start, not at the first tool call
        self._kb = await KnowledgeBase.open(settings=self.settings, tables_only=True)
        self._catalog = await asyncio.to_thread(self._kb.warehouse.catalog_hash)

    @asynccontextmanager
    async def use(self) -> AsyncIterator[KnowledgeBase]:
        async with self._lock:
            assert self._kb is not None, "open() first"
            catalog = await asyncio.to_thread(self._kb.warehouse.catalog_hash)
            if catalog != self._catalog:
                old, self._kb = self._kb, await KnowledgeBase.open(settings=self.settings, tables_only=True)
                self._catalog = catalog
                if not self._users[old]:  # else the last call still using it closes it
                    del self._users[old]
                    await old.close()
            kb = self._kb
            self._users[kb] += 1
        try:
            yield kb
        finally:
            self._users[kb] -= 1
            if kb is not self._kb and not self._users[kb]:
                del self._users[kb]
                await kb.close()

    async def close(self) -> None:
        if self._kb is not None:
            await self._kb.close()


def build_server(served: ServedKB) -> MCPServer:
    """The MCP server over one knowledge base; its tools close over ``served``, so no client
    argument can name another folder."""
    server = MCPServer("dossier", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    async def search(
        query: str,
        k: Annotated[int | None, Field(ge=1, le=50, description="passages to return")] = None,
        mode: Annotated[SearchMode | None, Field(description="hybrid (default), vector or text")] = None,
        source: Annotated[str | None, Field(description="only sources matching this glob, e.g. 'docs/*'")] = None,
    ) -> SearchAnswer:
        """Search the documents (hybrid vector + BM25 by default); each passage has its evidence id."""
        with tool_errors():
            async with served.use() as kb:
                hits = await kb.search(query, k=k, mode=mode, source=source)
        return SearchAnswer(query=query, passages=[passage(evidence_from_hit(h)) for h in hits])

    @server.tool(annotations=READ_ONLY)
    async def tables() -> TablesAnswer:
        """List the warehouse tables: name, description, row count and columns."""
        with tool_errors():
            async with served.use() as kb:
                catalog = await kb.tables()
        return TablesAnswer(tables=[table_summary(t) for t in catalog])

    @server.tool(annotations=READ_ONLY)
    async def describe_table(name: str) -> TableInfo:
        """One table in full: columns with types, null and distinct counts, samples and ranges."""
        with tool_errors():
            async with served.use() as kb:
                return await kb.describe_table(name)

    @server.tool(annotations=READ_ONLY)
    async def sql(query: str) -> SqlAnswer:
        """Run one read-only SELECT/WITH statement on the tables (DuckDB SQL), with row, time and
        memory limits; anything else (INSERT, DROP, COPY, ATTACH, file access) is refused."""
        with tool_errors():
            async with served.use() as kb:
                result = await kb.sql(query)
        evidence = evidence_from_sql(result)
        return SqlAnswer.model_validate(result.model_dump(mode="json") | {"evidence_id": evidence.id})

    @server.tool(annotations=RESEARCH)
    async def research(
        question: str,
        ctx: Context,
        max_rounds: Annotated[int | None, Field(ge=1, le=10, description="research rounds before writing")] = None,
    ) -> Annotated[CallToolResult, ResearchAnswer]:
        """Research a question over the documents and tables and return a Markdown report in which
        every claim cites its evidence, with the numbered references. Takes seconds to minutes;
        progress is reported while it runs."""
        settings = served.settings
        run_settings = settings.model_copy(update={"max_rounds": max_rounds}) if max_rounds else settings
        with tool_errors():
            async with served.use() as kb:
                report = await run_report(Researcher(kb, settings=run_settings), question, ctx)
        answer = research_answer(report, render_markdown(report, kb_dir=settings.kb_dir))
        return CallToolResult(content=[TextContent(type="text", text=answer.markdown)],
                              structured_content=answer.model_dump(mode="json"))

    return server


async def serve(settings: Settings, *, http: tuple[str, int] | None = None) -> None:
    """Serve the knowledge base over stdio until the client closes the connection, or, with ``http``
    (host, port), over streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted."""
    served = ServedKB(settings)
    await served.open()
    try:
        server = build_server(served)
        if http is None:
            await server.run_stdio_async()
        else:
            await server.run_streamable_http_async(host=http[0], port=http[1])
    finally:
        await served.close()


async def run_report(researcher: Researcher, question: str, ctx: Context) -> Report:
    """Drive a run to its report, sending one progress notification per step (when asked for)."""
    report, step = None, 0
    async for event in researcher.stream(question):
        if message := progress_message(event):
            step += 1
            await ctx.report_progress(step, message=message)
        if isinstance(event, DoneEvent):
            report = event.report
    if report is None:
        raise RuntimeError("the run ended without a report")
    return report


def progress_message(event: Event) -> str | None:
    if isinstance(event, PlanEvent):
        return f"plan: {len(event.plan.sub_questions)} sub-questions"
    if isinstance(event, EvidenceEvent):
        return f"research {event.sub_question_id}, round {event.round}: evidence {len(event.evidence_ids)}"
    if isinstance(event, GapEvent):
        return f"reflect, round {event.round}: {len(event.gaps)} gaps"
    if isinstance(event, SectionEvent):
        return f"writing: {event.title}"
    if isinstance(event, VerificationEvent):
        v = event.verification
        return f"verified: {v.markers_resolved} of {v.markers_total} citations resolve"
    if isinstance(event, DoneEvent):
        return "done"
    return None


@contextmanager
def tool_errors() -> Iterator[None]:
    """Bad input (a refused statement, an unknown table) comes back as the CLI's one clear line,
    secrets masked; the SDK would otherwise hide any unexpected exception's text from the client."""
    from dossier.cli import _one_line  # the CLI's own error wording: one definition

    try:
        yield
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(redact(_one_line(exc))) from exc


def passage(ev: Evidence) -> Passage:
    return Passage(evidence_id=ev.id, source=ev.source or "", title=ev.title or "", section=ev.section,
                   page=ev.page, score=ev.score, text=ev.text)


def table_summary(t: TableInfo) -> TableSummary:
    return TableSummary(name=t.name, description=t.description, source=t.source, row_count=t.row_count,
                        columns=[f"{c.name} {c.type}" for c in t.columns])


def research_answer(report: Report, markdown: str) -> ResearchAnswer:
    by_id = report.evidence_by_id()
    references = []
    for ref in report.references:
        ev = by_id.get(ref.evidence_id)
        references.append(ResearchReference(number=ref.number, evidence_id=ref.evidence_id, label=ref.label,
                                            kind=ev.kind if ev else "unknown", source=ev.source if ev else None,
                                            sql=ev.sql if ev else None))
    return ResearchAnswer(run_id=report.run_id, title=report.title, markdown=markdown, references=references,
                          stop_reason=str(report.stop_reason), engine=report.engine)
