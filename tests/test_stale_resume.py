"""Issue 12 item 11: a run resumed on a changed knowledge base must not cite what is gone.

A run records the knowledge-base version it started on; resuming it after documents were pruned
or changed, tables re-imported, or in another knowledge base is refused with a clear message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dossier.events import PlanEvent
from dossier.research import Researcher, StaleRun
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase


@asynccontextmanager
async def ingested_kb(tmp_path: Path) -> AsyncIterator[tuple[KnowledgeBase, list[Path]]]:
    """A knowledge base over the graph fixtures' corpus, closed afterwards."""
    paths = write_corpus(tmp_path / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    try:
        await kb.ingest(paths)
        yield kb, paths
    finally:
        await kb.close()


async def _paused_run(kb: KnowledgeBase) -> tuple[Researcher, str]:
    researcher = Researcher(kb, approve_plan=True)
    events = [e async for e in researcher.stream(QUESTION)]
    assert isinstance(events[-1], PlanEvent) and events[-1].awaiting_approval
    return researcher, events[-1].run_id


async def test_resume_after_a_prune_is_refused(tmp_path) -> None:
    async with ingested_kb(tmp_path) as (kb, _):
        researcher, run_id = await _paused_run(kb)
        docs = sorted(p for p in (tmp_path / "corpus").rglob("*.md"))
        docs[0].unlink()
        await kb.ingest([tmp_path / "corpus"], prune=True)
        with pytest.raises(StaleRun, match=f"run {run_id} started on another state.*corpus_version"):
            await researcher.resume(run_id)


async def test_resume_on_the_same_kb_still_works(tmp_path) -> None:
    async with ingested_kb(tmp_path) as (kb, paths):
        researcher, run_id = await _paused_run(kb)
        await kb.ingest(paths)  # nothing changed: the same version
        report = await researcher.resume(run_id)
        assert report.references and report.kb_version["corpus_version"] == (await kb.version()).corpus_version


async def test_a_stopped_run_points_to_its_resume_command(tmp_path) -> None:
    """Issue 14 item 4: after a checkpoint exists, an interrupt or failure prints the way out."""
    from dossier.cli_checks import resume_hint

    async with ingested_kb(tmp_path) as (kb, _):
        _, run_id = await _paused_run(kb)
    assert resume_hint(tmp_path / "kb", run_id) == (f"run {run_id} stopped; continue it with: "
                                                    f"dossier resume {run_id} --kb {tmp_path / 'kb'}")
    assert resume_hint(tmp_path / "kb", "no-such-run") is None
