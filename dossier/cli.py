"""The ``dossier`` command: ingest, search, sql, tables, demo, report, resume, runs.

Errors print as one line on stderr with exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dossier.cli_checks import require_kb, require_paths
from dossier.cli_report import add_report_commands
from dossier.console import (
    RichIngestProgress,
    err_console,
    print_catalog,
    print_hits,
    print_result,
    print_summary,
    wants_progress,
)
from tools.redact import redact, scrub_exception

if TYPE_CHECKING:  # pydantic-settings and the settings chain load when a command runs, not for --help
    from dossier.settings import Settings

Handler = Callable[[argparse.Namespace, "Settings"], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dossier",
        description="Cited research reports over your private documents (LanceDB) and tables (DuckDB).",
    )
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: $DOSSIER_KB_DIR or ./kb)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ingest(subs)
    _add_search(subs)
    _add_sql(subs)
    _add_tables(subs)
    _add_glossary(subs)
    _add_demo(subs)
    _add_mcp(subs)
    add_report_commands(subs)
    _accept_global_options_after(subs)
    return parser


def _accept_global_options_after(subs) -> None:
    """``dossier ingest docs/ --kb kb`` works as well as ``dossier --kb kb ingest docs/``: each command
    also takes the global options; SUPPRESS keeps a value given before the command when none follows."""
    for name, sub in subs.choices.items():
        if name != "demo":  # the demo's own --kb names the folder it builds
            sub.add_argument("--kb", type=Path, default=argparse.SUPPRESS, help="knowledge-base folder")
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def _add_ingest(subs) -> None:
    p = subs.add_parser("ingest", help="add documents and tables to the knowledge base",
                        description="Ingest files and folders (recursively). Documents: .md .txt .html "
                        ".pdf .docx; tables: .csv .tsv .parquet .json .jsonl .xlsx .sqlite. Unchanged "
                        "files are skipped, changed ones replaced.")
    p.add_argument("paths", nargs="+", type=Path, help="files or folders")
    p.add_argument("--prune", action="store_true", help="remove files that disappeared from the given folders")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--ray", nargs="?", const=True, default=False, metavar="ADDRESS",
                   help="parse, chunk and embed on Ray: a local Ray, or the cluster at ADDRESS ('auto', "
                        "'ray://host:10001'); after the paths, or as --ray=ADDRESS; needs the 'ray' extra")
    p.set_defaults(handler=cmd_ingest)


def _add_search(subs) -> None:
    p = subs.add_parser("search", help="hybrid search over the documents",
                        description="Search passages: hybrid (vector + BM25, fused), vector or text.")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=None, help="number of hits (default: settings.search_k)")
    p.add_argument("--mode", choices=["hybrid", "vector", "text"], default=None)
    p.add_argument("--source", help="only sources matching this glob, e.g. 'docs/legal/*'")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata filter (front matter), repeatable")
    p.add_argument("--json", action="store_true", help="print hits as JSON")
    p.set_defaults(handler=cmd_search)


def _add_sql(subs) -> None:
    p = subs.add_parser("sql", help="run a read-only SQL query on the tables",
                        description="Run one SELECT/WITH statement on the warehouse tables, read-only, "
                        "with row, time and memory limits.")
    p.add_argument("query")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_sql)


def _add_tables(subs) -> None:
    p = subs.add_parser("tables", help="print the table catalog",
                        description="List tables with row counts, columns, types, samples and ranges.")
    p.add_argument("name", nargs="?", help="describe one table")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
    p.set_defaults(handler=cmd_tables)


def _add_glossary(subs) -> None:
    p = subs.add_parser("glossary", help="print the organisation's glossary",
                        description="List the terms ingested from glossary files (glossary.yaml, glossary.csv "
                        "or *.glossary.yaml/.csv): synonyms, kind and the table column or value each stands for.")
    p.add_argument("--json", action="store_true", help="print the glossary as JSON")
    p.set_defaults(handler=cmd_glossary)


def _add_demo(subs) -> None:
    p = subs.add_parser("demo", help="build the bundled demo knowledge base and answer from it",
                        description="Ingest the bundled demo (LLM-adoption notes in English and Chinese, "
                        "plus tables) and answer a question from it, offline.")
    p.add_argument("--kb", dest="demo_kb", type=Path, default=Path("kb-demo"),
                   help="where to build the demo knowledge base (default ./kb-demo)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_demo)


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    require_paths(args.paths)  # a mistyped folder is an error, not an empty ingest
    kb = await open_kb(settings, create=True)
    progress = RichIngestProgress() if wants_progress(args.quiet) else None
    try:
        summary = await kb.ingest(args.paths, prune=args.prune, progress=progress, ray=args.ray)
    finally:
        await kb.close()
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        print_summary(summary)
    return 0


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    kb = await open_kb(settings)
    try:
        hits = await kb.search(args.query, k=args.k, mode=args.mode, source=args.source,
                               where=_parse_where(args.where))
    finally:
        await kb.close()
    if args.json:
        print(json.dumps([h.model_dump() for h in hits], ensure_ascii=False, indent=2))
    else:
        print_hits(hits)
    return 0


async def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    kb = await open_kb(settings, tables_only=True)  # SQL needs no embeddings: no embedder check
    try:
        result = await kb.sql(args.query)
    finally:
        await kb.close()  # ends the SQL worker process, refused or not
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(result)
    return 0


async def cmd_tables(args: argparse.Namespace, settings: Settings) -> int:
    kb = await open_kb(settings, tables_only=True)
    try:
        tables = [await kb.describe_table(args.name)] if args.name else await kb.tables()
        if args.json:
            print(json.dumps([t.model_dump() for t in tables], ensure_ascii=False, indent=2))
        else:
            print_catalog(tables)
            terms = await kb.glossary()
            if terms and not args.name:
                print(f"Glossary: {len(terms)} terms (dossier glossary)")
    finally:
        await kb.close()
    return 0


async def cmd_glossary(args: argparse.Namespace, settings: Settings) -> int:
    kb = await open_kb(settings, tables_only=True)  # the glossary is data beside the tables: no LanceDB
    try:
        terms = await kb.glossary()
    finally:
        await kb.close()
    if args.json:
        print(json.dumps([t.model_dump(exclude_none=True) for t in terms], ensure_ascii=False, indent=2))
        return 0
    if not terms:
        print("No glossary: add a glossary.yaml (or glossary.csv) to an ingested folder.")
    for t in terms:
        stands = f"  -> {t.stands_for}" if t.stands_for else ""
        print(f"{t.term} [{t.resolved_kind}]{stands}  ({t.source})")
        if t.synonyms:
            print(f"    synonyms: {', '.join(t.synonyms)}")
        if t.description:
            print(f"    {t.description}")
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from dossier.demo import run_demo

    return await run_demo(settings.model_copy(update={"kb_dir": args.demo_kb}), quiet=args.quiet)


def _add_mcp(subs) -> None:
    p = subs.add_parser("mcp", help="serve the knowledge base to MCP clients over stdio (or streamable HTTP)",
                        description="Serve this knowledge base, read-only, to any MCP client over stdio: tools "
                        "search, tables, describe_table, sql and research (needs the mcp extra).")
    p.add_argument("--http", metavar="[HOST:]PORT", type=_host_port, default=None,
                   help="serve over streamable HTTP at http://HOST:PORT/mcp instead (HOST defaults to 127.0.0.1)")
    p.set_defaults(handler=cmd_mcp)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT with a port from 1 to 65535, got {text!r}")
    return host or "127.0.0.1", int(port)


async def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from dossier.mcp_server import serve  # the MCP SDK loads only for this command

    await serve(settings, http=args.http)
    return 0


async def open_kb(settings: Settings, *, tables_only: bool = False, create: bool = False):
    # Imported only when a command runs. LanceDB loads only when the corpus is opened, which a
    # ``tables_only`` command (sql, tables, glossary) never does; an embedding model only at first use.
    from tools.knowledge_base import KnowledgeBase

    if not create:
        require_kb(settings.kb_dir)

    return await KnowledgeBase.open(settings=settings, tables_only=tables_only)


def _parse_where(items: list[str]) -> dict[str, str] | None:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--where expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs or None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _sql_worker_started_early(args.command == "sql"):
        return _run(args)


def _sql_worker_started_early(wanted: bool):
    """`sql` runs its query in a worker process (tools.sql_worker): started first, it loads DuckDB
    while this one loads the settings and the knowledge base (issue 14: start-up)."""
    if not wanted:
        return nullcontext()
    from tools.sql_worker import started_early

    return started_early()


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from dossier.settings import Settings

    try:
        settings = Settings(**({"kb_dir": args.kb} if args.kb else {}))
        return asyncio.run(args.handler(args, settings))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # the CLI's single error boundary: one clear line, or the traceback on --debug
        if args.debug:
            scrub_exception(exc)  # masks secrets in place: re-raise the same exception
            raise
        err_console.print(f"error: {redact(_one_line(exc))}", style="red", markup=False, soft_wrap=True)
        return 1


def _one_line(exc: BaseException) -> str:
    from pydantic import ValidationError  # loaded already: the settings are pydantic

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # str(KeyError) adds quotes
    text = str(message).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
