"""Dossier: cited research reports over your private documents and tables.

    import dossier
    kb = await dossier.KnowledgeBase.open("kb")
    await kb.ingest(["docs/", "tables/"])
    hits = await kb.search("fine-tuning cost")
    rows = await kb.sql("SELECT approach, avg(budget_cny) FROM llm_projects GROUP BY 1")
"""

from tools.knowledge_base import KBVersion, KnowledgeBase
from tools.models import Chunk, Hit, IngestSummary, SqlResult, TableInfo

from dossier.settings import Settings
from dossier.sync import run_sync

__all__ = [
    "Chunk", "Hit", "IngestSummary", "KBVersion", "KnowledgeBase", "Settings", "SqlResult",
    "TableInfo", "run_sync",
]
__version__ = "0.1.0"
