"""Terminal rendering for the CLI: progress bars, hit lists, result tables, the catalog, summaries."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dossier.safe_text import plain
from tools.models import Hit, IngestSummary, SqlResult, TableInfo

if TYPE_CHECKING:  # rich.progress loads only for an ingest that shows progress
    from tools.ingest_display import IngestDisplay

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)


def RichIngestProgress() -> IngestDisplay:
    """The CLI's ingest display (files, then chunks embedded with rate and ETA) on stderr; cleared
    when done, as the summary follows. The CLI uses it only when stderr is a terminal."""
    from tools.ingest_display import IngestDisplay

    return IngestDisplay(err_console, transient=True)


def wants_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def print_summary(summary: IngestSummary) -> None:
    console.print(
        f"documents: {summary.new} new, {summary.changed} changed, {summary.unchanged} unchanged, "
        f"{summary.removed} removed, {len(summary.skipped)} skipped"
    )
    console.print(
        f"tables: {summary.tables_new} new, {summary.tables_changed} changed, "
        f"{summary.tables_unchanged} unchanged, {summary.tables_removed} removed"
    )
    console.print(
        f"chunks: {summary.chunks_added} added ({summary.chunks_embedded} embedded), "
        f"{summary.chunks_deleted} deleted in {summary.seconds:.1f} s"
    )
    for item in summary.skipped:
        console.print(f"  skipped {plain(str(item.path))}: {plain(item.reason)}", style="yellow", markup=False)


def print_hits(hits: list[Hit]) -> None:
    if not hits:
        console.print("no results")
        return
    for hit in hits:
        c = hit.chunk
        where = c.source + (f" p.{c.page}" if c.page else "") + (f" § {c.section}" if c.section else "")
        console.print(f"[bold]{hit.rank}.[/bold] {escape(plain(where))}  [dim]score {hit.score:.4f}[/dim]")
        console.print("   " + _clip(c.text, 300).replace("\n", " "), markup=False)


def result_table(result: SqlResult, *, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for name in result.columns:
        table.add_column(name, overflow="fold")
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def print_result(result: SqlResult) -> None:
    console.print(result_table(result))
    note = " (truncated at the row cap)" if result.truncated else ""
    console.print(f"{result.row_count} row{'' if result.row_count == 1 else 's'}{note} in {result.elapsed_ms:.0f} ms",
                  style="dim")


def print_catalog(tables: list[TableInfo]) -> None:
    if not tables:
        console.print("no tables; ingest .csv/.tsv/.parquet/.json/.xlsx/.sqlite files to add some")
        return
    for info in tables:
        rows = f"{info.row_count} row{'' if info.row_count == 1 else 's'}"
        console.print(f"[bold]{info.name}[/bold]  {rows}  [dim]from {escape(plain(info.source))}[/dim]")
        if info.description:
            console.print(f"  {info.description}")
        for col in info.columns:
            extra = _column_extra(col)
            console.print(f"  - {col.name} {col.type}{extra}", markup=False)


def _column_extra(col) -> str:
    parts = []
    if col.min is not None or col.max is not None:
        parts.append(f"range {col.min} .. {col.max}")
    if col.samples:
        parts.append("e.g. " + ", ".join(col.samples[:3]))
    if col.description:
        parts.append(col.description)
    return ("  — " + "; ".join(parts)) if parts else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
