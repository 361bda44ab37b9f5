"""The knowledge base: one folder with a LanceDB corpus and a DuckDB warehouse, one object to use it.

``KnowledgeBase`` is what higher layers (the research agents, the CLI, notebooks) hold. It owns the
write path (ingest) and hands out read paths: hybrid search and guarded SQL.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.config import KBSettings
from tools.disk_space import DiskFull, is_disk_full
from tools.glossary import GlossaryEntry, GlossaryStore, sync_glossaries
from tools.kb_lock import ingest_lock
from tools.models import Hit, IngestSummary, SearchMode, SkippedFile, SqlResult, TableInfo
from tools.sqlguard import GuardedExecutor
from tools.table_limits import TableLimits
from tools.warehouse import Warehouse

if TYPE_CHECKING:  # LanceDB, the parsers and the chunker load only where used: `dossier sql` starts fast
    from tools.corpus import Corpus
    from tools.embeddings import Embedder
    from tools.ingest import IngestProgress


@dataclass(frozen=True)
class KBVersion:
    """What a report records so its evidence can be traced to the exact knowledge-base state."""

    corpus_version: int
    catalog_hash: str
    embedder: str


class KnowledgeBase:
    def __init__(self, settings: KBSettings, corpus: Corpus | None, warehouse: Warehouse,
                 embedder: Embedder | None = None):
        """``corpus`` None: opened when first reached for (``open(tables_only=True)``); ``embedder``
        None: the settings' one, made when first used."""
        self.settings = settings
        self.path = settings.kb_dir
        self._embedder = embedder
        self.corpus: Any = corpus if corpus is not None else _DeferredCorpus(settings, lambda: self.embedder)
        self.warehouse = warehouse
        self._executor: GuardedExecutor | None = None
        # One writer at a time (in this process; tools.kb_lock across processes); searches go on
        # while it runs (LanceDB readers see committed versions), SQL here waits for it (see ingest).
        self._write_lock = asyncio.Lock()
        self._sql_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str | Path | None = None, *, settings: KBSettings | None = None,
        embedder: Embedder | None = None, tables_only: bool = False,
    ) -> KnowledgeBase:
        """``tables_only``: for SQL and the table catalog, which need no embeddings, so a corpus
        built with another embedder or tokenizer does not stop them (search and ingest still say so)."""
        settings = settings or KBSettings()
        if path is not None:
            settings = settings.model_copy(update={"kb_dir": Path(path)})
        # In a thread: `langgraph dev` fails a run that makes a blocking call on the event loop.
        await asyncio.to_thread(settings.kb_dir.mkdir, parents=True, exist_ok=True)
        corpus = None
        if not tables_only:
            from tools.corpus import Corpus

            embedder = embedder or _make_embedder(settings)
            corpus = await Corpus.open(settings.kb_dir, embedder=embedder, settings=settings)
        warehouse = Warehouse(settings.kb_dir / "warehouse.duckdb", TableLimits.from_settings(settings))
        return cls(settings, corpus, warehouse, embedder)

    @property
    def embedder(self) -> Embedder:
        """The embedding model's handle. Made on first use, so SQL and the catalog of a ``tables_only``
        knowledge base never import numpy (issue 14: start-up); no model loads until it embeds."""
        if self._embedder is None:
            self._embedder = _make_embedder(self.settings)
        return self._embedder

    async def ingest(
        self, paths: Sequence[str | Path], *, prune: bool = False, progress: IngestProgress | bool | None = None,
        on_wait: Callable[[str], None] | None = None, ray: bool | str = False,
    ) -> IngestSummary:
        """Add new files, replace changed ones, skip unchanged ones; ``prune`` removes vanished ones.
        ``progress=True`` shows the files read and the chunks embedded, live (terminal or Jupyter).

        Another ingest of this knowledge base (in any process) is waited for, up to
        ``ingest_lock_wait_s``; ``on_wait`` gets the notice (default: stderr). Readers elsewhere go
        on meanwhile and see the last committed state. A full disk ends the ingest with ``DiskFull``.
        ``ray``: parse, chunk and embed on Ray (tools.ingest_ray): True starts a local Ray for the run, a
        string is a cluster address ("auto", "ray://host:10001")."""
        # SQL in this process waits for the whole ingest: its catalog would change under it.
        async with self._write_lock, self._sql_lock:
            await self._close_executor()
            try:
                async with ingest_lock(self.path, wait_s=self.settings.ingest_lock_wait_s, on_wait=on_wait):
                    return await self._ingest_locked([Path(p) for p in paths], prune, progress, ray)
            except DiskFull:
                raise
            except Exception as exc:
                if is_disk_full(exc):  # LanceDB's "LanceError(IO) … os error 28", said plainly
                    raise DiskFull(self.path) from exc
                raise

    async def _ingest_locked(
        self, paths: list[Path], prune: bool, progress: IngestProgress | bool | None, ray: bool | str = False
    ) -> IngestSummary:
        from tools.ingest import Ingestor

        try:
            if ray:
                from tools.ingest_ray import RayIngestor  # Ray loads only when asked for

                address = ray if isinstance(ray, str) else None
                ingestor: Ingestor = RayIngestor(self.corpus, self.warehouse, self.embedder, self.settings,
                                                 progress, address=address)
            else:
                ingestor = Ingestor(self.corpus, self.warehouse, self.embedder, self.settings, progress)
            summary = await ingestor.run(paths, prune=prune)
            await asyncio.to_thread(self._ingest_glossaries, paths, prune, summary)
            return summary
        finally:
            # Published under the lock, also after a failure: each table imported so far is whole.
            await asyncio.to_thread(self.warehouse.close)

    def _ingest_glossaries(self, paths: list[Path], prune: bool, summary: IngestSummary) -> None:
        """Glossary files (tools/glossary.py) found among the paths are stored as data, not indexed."""
        from tools.discover import FoundFile, discover, root_prefix

        found = [(f.path, f.source) for f in discover(paths) if isinstance(f, FoundFile) and f.kind == "glossary"]
        prefixes = [root_prefix(p) for p in paths if p.is_dir()] if prune else None
        update = sync_glossaries(self.path, found, prune_prefixes=prefixes)
        summary.skipped += [SkippedFile(path=source, reason=reason) for source, reason in update.skipped]

    async def glossary(self) -> list[GlossaryEntry]:
        """The organisation's terms from the ingested glossary files, merged, in source order."""
        return await asyncio.to_thread(lambda: GlossaryStore.load(self.path).entries())

    async def search(
        self, query: str, *, k: int | None = None, mode: SearchMode | None = None,
        source: str | None = None, where: Mapping[str, str] | None = None,
    ) -> list[Hit]:
        """Hybrid (default), vector or full-text search; ``source`` is a glob on source paths."""
        return await self.corpus.search(
            query, k=k or self.settings.search_k, mode=mode or self.settings.search_mode,
            source_glob=source, where=where,
        )

    async def sql(self, sql: str) -> SqlResult:
        """Run one read-only SELECT/WITH over the catalog tables, with row, time and memory limits."""
        async with self._sql_lock:
            executor = await self._get_executor()
            return await asyncio.to_thread(executor.execute, sql)

    async def tables(self) -> list[TableInfo]:
        return await asyncio.to_thread(self._catalog)

    async def describe_table(self, name: str) -> TableInfo:
        return await asyncio.to_thread(self._describe, name)

    async def version(self) -> KBVersion:
        catalog_hash = await asyncio.to_thread(self._catalog_hash)
        return KBVersion(await self.corpus.version(), catalog_hash, self.embedder.name)

    async def close(self) -> None:
        """End the SQL worker, publish and close the warehouse, and close the corpus (a ``tables_only``
        one only if it was opened)."""
        await self._drop_executor()
        await asyncio.to_thread(self.warehouse.close)
        self.corpus.close()

    async def _get_executor(self) -> GuardedExecutor:
        if self._executor is None:
            tables = {t.name for t in await self.tables()}
            self._executor = GuardedExecutor(
                self.warehouse.path, allowed_tables=tables, row_limit=self.settings.sql_row_limit,
                timeout_s=self.settings.sql_timeout_s, memory_limit=self.settings.sql_memory_limit,
                threads=self.settings.sql_threads,
            )
        return self._executor

    async def _drop_executor(self) -> None:
        async with self._sql_lock:
            await self._close_executor()

    async def _close_executor(self) -> None:
        # The write connection cannot coexist with a read-only one on the same file in one process.
        if self._executor is not None:
            await asyncio.to_thread(self._executor.close)
            self._executor = None

    # Catalog reads take a short read-only connection on the committed file (tools.warehouse):
    # never the write lock, and never the staging copy of an ingest running elsewhere.

    def _catalog(self) -> list[TableInfo]:
        return self.warehouse.catalog()

    def _describe(self, name: str) -> TableInfo:
        return self.warehouse.describe(name)

    def _catalog_hash(self) -> str:
        tables = self.warehouse.catalog_hash()
        # The glossary steers planning and linking, so a changed glossary is a new knowledge-base state.
        terms = GlossaryStore.load(self.path).digest()
        return hashlib.sha256(f"{tables}:{terms}".encode()).hexdigest()[:16] if terms else tables


def _make_embedder(settings: KBSettings) -> Embedder:
    from tools.embeddings import make_embedder  # numpy; builds a handle, no model loads until first use

    return make_embedder(settings)


class _DeferredCorpus:
    """The corpus of a ``tables_only`` knowledge base: SQL and the catalog never touch it, so LanceDB
    is imported and the corpus opened only when something reaches for it (its methods are async).
    A corpus the configured embedder or tokenizer cannot use raises its mismatch, with its advice, then."""

    def __init__(self, settings: KBSettings, embedder: Callable[[], Embedder]):
        self._settings, self._embedder = settings, embedder
        self._corpus: Corpus | None = None

    def close(self) -> None:
        if self._corpus is not None:
            self._corpus.close()
            self._corpus = None

    def __getattr__(self, name: str):
        async def opened(*args, **kwargs):
            if self._corpus is None:
                from tools.corpus import Corpus

                self._corpus = await Corpus.open(self._settings.kb_dir, embedder=self._embedder(),
                                                 settings=self._settings)
            return await getattr(self._corpus, name)(*args, **kwargs)

        return opened
