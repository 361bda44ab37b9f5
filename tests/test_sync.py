"""The one sync shim works from plain scripts and from inside a running loop (as in Jupyter)."""

from __future__ import annotations

import dossier
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus


def _research_sync(tmp_path):
    paths = write_corpus(tmp_path / "corpus")
    kb = dossier.run_sync(dossier.KnowledgeBase.open(settings=graph_settings(tmp_path / "kb")))
    dossier.run_sync(kb.ingest(paths))
    report = dossier.Researcher(kb).run_sync(QUESTION)
    dossier.run_sync(kb.close())
    return report


def test_run_sync_from_a_script(tmp_path):
    report = _research_sync(tmp_path)
    assert report.sections and report.references


async def test_run_sync_inside_a_running_loop(tmp_path):
    # Jupyter cells run inside an event loop; asyncio.run would fail there, the shim must not.
    report = _research_sync(tmp_path)
    assert report.references
