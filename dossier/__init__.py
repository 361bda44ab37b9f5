"""Dossier: cited research reports over your private documents and tables.

    import dossier
    kb = await dossier.KnowledgeBase.open("kb")
    await kb.ingest(["docs/", "tables/"])
    report = await dossier.Researcher(kb).run("What does RAG cost compared with fine-tuning?")
    print(dossier.render_markdown(report))

Scripts without an event loop use ``dossier.run_sync(...)`` or ``Researcher.run_sync(...)``.
"""

from tools.evidence import Evidence
from tools.knowledge_base import KBVersion, KnowledgeBase
from tools.models import Chunk, Hit, IngestSummary, SqlResult, TableInfo
from tools.research_models import Plan, Report, SubQuestion

from dossier.events import Event
from dossier.render import render_markdown
from dossier.research import Researcher, RunInfo, RunNotFound
from dossier.settings import Settings
from dossier.sync import run_sync

__all__ = [
    "Chunk", "Event", "Evidence", "Hit", "IngestSummary", "KBVersion", "KnowledgeBase", "Plan", "Report",
    "Researcher", "RunInfo", "RunNotFound", "Settings", "SqlResult", "SubQuestion", "TableInfo",
    "render_markdown", "run_sync",
]
__version__ = "0.1.0"
