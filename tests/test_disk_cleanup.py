"""Issue 12 item 15: old LanceDB versions are cleaned after an ingest, so a prune frees disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.graph_fixtures import graph_settings
from tools.knowledge_base import KnowledgeBase


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _write_docs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(f"word{i}x{j} about topic {i} and more padding text" for j in range(120))
        (folder / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n", encoding="utf-8")


@pytest.mark.filterwarnings("ignore:optimize.cleanup_older_than=0.")  # what this test sets on purpose
async def test_prune_frees_disk_once_old_versions_expire(tmp_path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs, 12)
    settings = graph_settings(tmp_path / "kb").model_copy(update={"version_retention_s": 0})
    kb = await KnowledgeBase.open(settings=settings)
    try:
        await kb.ingest([docs])
        full = _size(tmp_path / "kb" / "lancedb")
        for path in sorted(docs.iterdir())[2:]:
            path.unlink()
        summary = await kb.ingest([docs], prune=True)
        assert summary.removed == 10
        after = _size(tmp_path / "kb" / "lancedb")
        assert after < full * 0.6, (full, after)
        hits = await kb.search("topic 1", k=3)
        assert hits and all(h.chunk.source.endswith(("doc00.md", "doc01.md")) for h in hits)
    finally:
        await kb.close()


async def test_default_retention_keeps_recent_versions(tmp_path) -> None:
    """With the default retention a version a reader may still pin survives the ingest."""
    docs = tmp_path / "docs"
    _write_docs(docs, 3)
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    try:
        await kb.ingest([docs])
        before = await kb.corpus.version()
        (docs / "doc00.md").unlink()
        await kb.ingest([docs], prune=True)
        table = await kb.corpus._table("chunks")
        versions = [v["version"] for v in await table.list_versions()]
        assert before in versions
    finally:
        await kb.close()
