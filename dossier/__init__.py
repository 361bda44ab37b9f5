"""Dossier: cited research reports over your private documents and tables.

    import dossier
    kb = await dossier.KnowledgeBase.open("kb")
    await kb.ingest(["docs/", "tables/"])
    report = await dossier.Researcher(kb).run("What does RAG cost compared with fine-tuning?")
    print(dossier.render_markdown(report))

Scripts without an event loop use ``dossier.run_sync(...)`` or ``Researcher.run_sync(...)``.
Names are imported on first use, so ``import dossier`` (and ``dossier --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Evidence": "tools.vocabulary",
    "KBVersion": "tools.knowledge_base", "KnowledgeBase": "tools.knowledge_base",
    "Chunk": "tools.models", "Hit": "tools.models", "IngestSummary": "tools.models",
    "SqlResult": "tools.models", "TableInfo": "tools.models",
    "Plan": "tools.vocabulary", "Report": "tools.vocabulary", "SubQuestion": "tools.vocabulary",
    "Event": "dossier.events",
    "render_markdown": "dossier.render",
    "Researcher": "dossier.research", "RunInfo": "dossier.research", "RunNotFound": "dossier.research",
    "StaleRun": "dossier.research", "ForeignRun": "dossier.research",
    "Settings": "dossier.settings",
    "run_sync": "dossier.sync",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dossier' has no attribute {name!r}")
    _register_renderers()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _register_renderers() -> None:
    """Give Report its Jupyter display: the Markdown and HTML renderers register themselves on import.
    Done on first use of a public name rather than on ``import dossier``, which stays instant."""
    importlib.import_module("dossier.render")
    importlib.import_module("dossier.render_html")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
