"""``dossier demo``: build the bundled demo knowledge base and write cited reports from it, offline."""

from __future__ import annotations

import re
from pathlib import Path

from dossier.console import RichIngestProgress, console, print_summary, wants_progress
from dossier.render import render_markdown
from dossier.render_html import render_html
from dossier.research import Researcher
from dossier.settings import Settings
from tools.knowledge_base import KnowledgeBase

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_QUESTIONS = {
    "demo-report-en.md": "Should we choose RAG or fine-tuning for the customer-support assistant, "
                         "and what would each cost in money and people?",
    "demo-report-zh.md": "检索增强生成和微调的成本与团队规模有什么区别？",
}


def demo_paths() -> list[Path]:
    return [DEMO_DIR / "docs", DEMO_DIR / "tables"]


async def build_demo_kb(settings: Settings, *, quiet: bool = True) -> KnowledgeBase:
    kb = await KnowledgeBase.open(settings=settings)
    progress = RichIngestProgress() if wants_progress(quiet) else None
    summary = await kb.ingest(demo_paths(), prune=True, progress=progress)
    if not quiet:
        print_summary(summary)
    return kb


async def run_demo(settings: Settings, *, quiet: bool = False) -> int:
    """Ingest the demo (incrementally), research each demo question offline, write the reports
    as Markdown, HTML and PDF."""
    from dossier.render_pdf import render_pdf  # fpdf2 loads only here

    settings = settings.model_copy(update={"engine": "offline"})
    kb = await build_demo_kb(settings, quiet=quiet)
    out_dir = settings.kb_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    researcher = Researcher(kb, settings=settings)
    for name, question in DEMO_QUESTIONS.items():
        report = await researcher.run(question)
        path = out_dir / name
        links = {"kb_dir": settings.kb_dir, "sources_root": DEMO_DIR}  # reference links: demo files, re-run SQL
        path.write_text(render_markdown(report, output=path, **links), encoding="utf-8")
        html = path.with_suffix(".html")
        html.write_text(render_html(report, output=html, **links), encoding="utf-8")
        render_pdf(report, path.with_suffix(".pdf"))
        v = report.verification
        console.print(f"[bold]{question}[/bold]")
        console.print(f"  → {path} (+ .html, .pdf): {len(report.sections)} sections, "
                      f"{len(report.references)} references, "
                      f"{v.markers_resolved}/{v.markers_total} citations resolved, "
                      f"{v.numeric_claims_supported}/{v.numeric_claims} numeric claims supported, "
                      f"stop rule {report.stop_reason}")
        if report.sections:
            console.print(_excerpt(report.sections[0].markdown), markup=False, style="dim")
    await kb.close()
    return 0


def _excerpt(markdown: str, limit: int = 600) -> str:
    text = re.sub(r"\n{2,}", "\n", markdown.strip())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
