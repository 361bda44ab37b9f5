"""``dossier demo``: build the bundled demo knowledge base and answer from it, offline."""

from __future__ import annotations

from pathlib import Path

from dossier.console import RichIngestProgress, console, print_hits, print_result, print_summary, wants_progress
from dossier.settings import Settings
from tools.knowledge_base import KnowledgeBase

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_QUESTION = "What does RAG cost compared with fine-tuning, and how many people does each need?"
DEMO_SQL = (
    "SELECT approach, count(*) AS projects, min(budget_cny) AS min_budget_cny, "
    "max(budget_cny) AS max_budget_cny, round(avg(team_size), 1) AS avg_team_size "
    "FROM llm_projects GROUP BY approach ORDER BY min_budget_cny"
)


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
    kb = await build_demo_kb(settings, quiet=quiet)
    console.rule(f"[bold]search[/bold]: {DEMO_QUESTION}")
    print_hits(await kb.search(DEMO_QUESTION, k=5))
    console.rule("[bold]sql[/bold]")
    console.print(DEMO_SQL, markup=False, style="dim")
    print_result(await kb.sql(DEMO_SQL))
    await kb.close()
    return 0
