"""Shared fixtures: hermetic settings, a throwaway knowledge base per test, no writes outside tmp.

Every test gets its own ``tmp_path``; ``DOSSIER_*`` variables from the developer's shell are
cleared so a local ``DOSSIER_EMBEDDER=e5-small`` cannot change what a test builds, and HOME and
the XDG folders point into the test's tmp folder so nothing lands in the real home folder.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dossier.settings import Settings
from tools.embeddings import Embedder, HashEmbedder
from tools.knowledge_base import KnowledgeBase

SMALL_CHUNKS = {"chunk_tokens": 64, "chunk_overlap": 8}


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME/XDG tree and no inherited DOSSIER_* settings, for every test."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("DOSSIER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    return home


@pytest.fixture
def kb_settings(tmp_path: Path) -> Settings:
    """Settings for a knowledge base in ``tmp_path/kb``: hash embedder, small chunks, offline engine."""
    return Settings(kb_dir=tmp_path / "kb", embedder="hash", engine="offline", **SMALL_CHUNKS)


MakeKB = Callable[..., Awaitable[KnowledgeBase]]


@pytest.fixture
async def make_kb(kb_settings: Settings) -> MakeKB:
    """``await make_kb(embedder=..., **setting_overrides)`` opens a KnowledgeBase; all are closed after."""
    opened: list[KnowledgeBase] = []

    async def factory(*, embedder: Embedder | None = None, **overrides) -> KnowledgeBase:
        settings = kb_settings.model_copy(update=overrides) if overrides else kb_settings
        kb = await KnowledgeBase.open(settings=settings, embedder=embedder or HashEmbedder())
        opened.append(kb)
        return kb

    yield factory
    for kb in opened:
        await kb.close()
        kb.corpus.close()
