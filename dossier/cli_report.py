"""CLI commands for research runs: report, resume, runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dossier.cli_checks import FORMATS, check_output, check_outputs, require_kb, resume_hint
from dossier.console import console, err_console

if TYPE_CHECKING:  # the run display, the report models and the settings load only when a command runs
    from dossier.events import Event
    from dossier.progress import RunDisplay
    from dossier.settings import Settings
    from tools.vocabulary import Plan, Report, SubQuestion

OUTPUT_HELP = ("write the report to this file; its extension picks the format: .md, .html, .pdf or .docx; "
               "repeat for several formats from one run (-o r.md -o r.pdf); default: print Markdown")
FORMAT_HELP = "md, html, pdf or docx (wins over the extension of a single -o)"


def add_report_commands(subs) -> None:
    p = subs.add_parser("report", help="research a question and write a cited report",
                        description="Plan, research (documents + SQL), reflect, and write a report in which "
                        "every claim cites its evidence. Offline unless an endpoint is configured.")
    p.add_argument("question")
    p.add_argument("-o", "--output", dest="outputs", action="append", type=Path, metavar="FILE", help=OUTPUT_HELP)
    p.add_argument("--format", choices=FORMATS, help=FORMAT_HELP)
    engine = p.add_mutually_exclusive_group()
    engine.add_argument("--offline", action="store_true", help="use the offline engine")
    engine.add_argument("--model", help="LLM model for every role (sets the LLM engine)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--max-rounds", type=int, help="research rounds before writing")
    p.add_argument("--review", action="store_true", help="review and edit the plan before research")
    p.add_argument("--quiet", "-q", action="store_true", help="no live progress display")
    p.set_defaults(handler=cmd_report)
    r = subs.add_parser("resume", help="continue a stopped or killed run",
                        description="Resume a run from its last completed step.")
    r.add_argument("run_id")
    r.add_argument("-o", "--output", dest="outputs", action="append", type=Path, metavar="FILE", help=OUTPUT_HELP)
    r.add_argument("--format", choices=FORMATS, help=FORMAT_HELP)
    r.add_argument("--quiet", "-q", action="store_true")
    r.set_defaults(handler=cmd_resume)
    s = subs.add_parser("runs", help="list research runs and their state", description="List checkpointed runs.")
    s.set_defaults(handler=cmd_runs)


def report_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    from dossier.settings import Settings

    update: dict = {}
    if args.offline:
        update["engine"] = "offline"
    if args.model:
        update.update(engine="llm", model_fast=args.model, model_strong=args.model)
    if args.base_url:
        update.update(base_url=args.base_url, engine=update.get("engine", "llm"))
    if args.max_rounds:
        update["max_rounds"] = args.max_rounds
    return Settings(**{**settings.model_dump(), **update}) if update else settings


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    outputs = check_outputs(args.outputs, args.format)  # a bad -o or format fails before the run, not after
    settings = report_settings(args, settings)
    researcher = await _researcher(settings, approve_plan=args.review)
    from dossier.research import new_run_id

    run_id = new_run_id()
    try:
        report, paused = await _follow(researcher.stream(args.question, run_id=run_id), args.quiet)
        while report is None and paused:  # --review: the stream paused at the plan
            plan = review_plan(await researcher.pending_plan(paused))
            report, paused = await _follow(researcher.resume_stream(paused, plan=plan), args.quiet)
    except (Exception, asyncio.CancelledError, KeyboardInterrupt):
        url = settings.runs_url.get_secret_value() if settings.runs_url else None
        if hint := resume_hint(settings.kb_dir, run_id, url):  # Ctrl-C or a failure: say how to go on
            err_console.print(hint, markup=False)
        raise
    if report is None:
        raise RuntimeError("the run ended without a report")
    return _emit(report, outputs, settings.kb_dir)


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    outputs = check_outputs(args.outputs, args.format)
    researcher = await _researcher(settings)
    report, _ = await _follow(researcher.resume_stream(args.run_id), args.quiet)
    if report is None:
        raise RuntimeError(f"run {args.run_id} is waiting for plan approval; use `dossier report --review`")
    return _emit(report, outputs, settings.kb_dir)


async def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    require_kb(settings.kb_dir)
    from dossier.runs_store import read_run_index  # sqlite3 only: no LangGraph for an up-to-date index

    runs = read_run_index(settings.kb_dir / "runs.sqlite") if settings.runs_url is None else None
    if runs is None:  # runs from before the index, a shared PostgreSQL store, or a damaged file
        researcher = await _researcher(settings, tables_only=True)  # reads the run store: no LanceDB
        try:
            runs = await researcher.runs()
        finally:
            await researcher.kb.close()
    if not runs:
        console.print("no runs yet")
    for run in runs:
        console.print(f"{run.run_id}  {run.status:<18} next: {run.next_step:<10} {run.question}", markup=False)
    return 0


async def _researcher(settings: Settings, *, approve_plan: bool = False, tables_only: bool = False):
    # Heavy imports (LangGraph) happen only when a research command runs, not for --help; with
    # ``tables_only`` (listing runs) the corpus, and so LanceDB, is not even opened.
    require_kb(settings.kb_dir)
    from dossier.research import Researcher
    from tools.knowledge_base import KnowledgeBase

    kb = await KnowledgeBase.open(settings=settings, tables_only=tables_only)
    return Researcher(kb, settings=settings, approve_plan=approve_plan)


async def _follow(events, quiet: bool) -> tuple[Report | None, str | None]:
    """Drive a run's event stream with a live display in a terminal; returns (report, id of a paused run)."""
    from dossier.events import PlanEvent
    from dossier.progress import RunDisplay

    show = not quiet and sys.stderr.isatty()
    display = RunDisplay(err_console) if show else None
    report, paused = None, None
    if display:
        display.__enter__()
    try:
        async for event in events:  # consumed to the end, so a plan interrupt is checkpointed
            report = _track(event, display) or report
            if isinstance(event, PlanEvent) and event.awaiting_approval:
                paused = event.run_id
    finally:
        if display:
            display.__exit__(None, None, None)
    return report, paused


def _track(event: Event, display: RunDisplay | None) -> Report | None:
    from dossier.events import DoneEvent

    if display:
        display.handle(event)
    return event.report if isinstance(event, DoneEvent) else None


def review_plan(plan: Plan) -> Plan:
    """Interactive plan review: Enter approves; '-N' removes, '+ text' adds, 'N: text' rewrites."""
    subs = list(plan.sub_questions)
    while True:
        err_console.print("\n[bold]Plan[/bold]")
        for i, sq in enumerate(subs, 1):
            err_console.print(f"  {i}. {sq.question} ({sq.needs})", markup=False)
        answer = input("Enter to approve, -N remove, + TEXT add, N: TEXT rewrite > ").strip()
        if not answer:
            return plan.model_copy(update={"sub_questions": _renumber(subs)})
        subs = _edit(subs, answer)


def _edit(subs: list[SubQuestion], answer: str) -> list[SubQuestion]:
    from tools.vocabulary import SubQuestion

    if answer.startswith("-") and answer[1:].strip().isdigit():
        index = int(answer[1:]) - 1
        return [sq for i, sq in enumerate(subs) if i != index] if len(subs) > 1 else subs
    if answer.startswith("+") and answer[1:].strip():
        added = answer[1:].strip()
        return [*subs, SubQuestion(id="new", question=added, needs="both", queries=[added])]
    number, sep, text = answer.partition(":")
    if sep and number.strip().isdigit() and text.strip() and 0 < int(number) <= len(subs):
        index = int(number) - 1
        edited = subs[index].model_copy(update={"question": text.strip(), "queries": [text.strip()]})
        return [*subs[:index], edited, *subs[index + 1:]]
    err_console.print("not understood; try '-2', '+ What about X?' or '1: new wording'")
    return subs


def _renumber(subs: list[SubQuestion]) -> list[SubQuestion]:
    return [sq.model_copy(update={"id": f"q{i}"}) for i, sq in enumerate(subs, 1)]


def output_format(output: Path | None, fmt: str | None) -> str:
    """--format wins; else the extension of -o (.md, .html, .pdf, .docx; another is an error); else
    Markdown. PDF and DOCX need a file to go to; its folder must be writable. Checked before any research."""
    return check_output(output, fmt)


def _emit(report: Report, outputs: list[tuple[Path | None, str]], kb_dir: Path | None = None) -> int:
    """Print the report (no -o) or write each file asked for, in its format."""
    for output, fmt in outputs:
        if output is None:
            _print(report, fmt, kb_dir)
            continue
        write_report(report, output, fmt, kb_dir=kb_dir)
        console.print(f"report written to {output} ({fmt}, {len(report.references)} references, stop rule "
                      f"{report.stop_reason}, run {report.run_id})", markup=False)
    return 0


def write_report(report: Report, path: Path, fmt: str, *, kb_dir: Path | None = None) -> Path:
    """One report file in ``fmt`` (md, html, pdf, docx); each renderer is imported only when asked for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pdf":
        from dossier.render_pdf import render_pdf  # fpdf2 and fonts

        return render_pdf(report, path)
    if fmt == "docx":
        from dossier.render_docx import render_docx  # python-docx

        return render_docx(report, path, kb_dir=kb_dir)
    if fmt == "html":
        from dossier.render_html import render_html

        path.write_text(render_html(report, output=path, kb_dir=kb_dir), encoding="utf-8")
    else:
        from dossier.render import render_markdown

        path.write_text(render_markdown(report, output=path, kb_dir=kb_dir), encoding="utf-8")
    return path


def _print(report: Report, fmt: str, kb_dir: Path | None = None) -> None:
    if fmt == "html":
        from dossier.render_html import render_html

        sys.stdout.write(render_html(report, kb_dir=kb_dir))
    else:
        from dossier.render import render_markdown

        console.print(render_markdown(report, kb_dir=kb_dir), markup=False, highlight=False)
