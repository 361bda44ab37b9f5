"""Incremental ingestion: files → parsed, chunked, embedded passages in LanceDB and tables in DuckDB.

Consistency under crashes: for a changed document the new chunks are written and the old version's
chunks deleted in one LanceDB commit, then the manifest row is updated. A run killed anywhere in
between leaves the manifest pointing at the old content hash, so the next run redoes that file, and
the idempotent merge on chunk ids makes the redo harmless. Readers always see a committed LanceDB
version, so a search finds a document's old chunk set or its new one, never a mix.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tools.chunking import chunk_document, content_hash, make_doc_id
from tools.config import KBSettings
from tools.confined import ConfinedReadError, open_confined
from tools.corpus import Corpus
from tools.discover import FoundFile, Problem, discover, root_prefix, sidecar_for
from tools.embeddings import Embedder
from tools.models import Chunk, DocRecord, IngestSummary, SkippedFile
from tools.parsing import ParseError, parse_bytes
from tools.warehouse import TableImportError, Warehouse

FLUSH_CHUNKS = 512  # chunks embedded and written per batch: large enough to amortise LanceDB commits


class IngestProgress(Protocol):
    """What a progress display needs: ``begin`` with the number of files found, a ``step`` per file,
    ``end``. The CLI passes tools.ingest_display's display; ``progress=True`` makes one."""

    def begin(self, total: int) -> None: ...
    def step(self, source: str, status: str) -> None: ...
    def end(self) -> None: ...


@runtime_checkable
class ChunkProgress(Protocol):
    """Optional for a progress display: chunk counts, reported on the event loop's thread after each
    document is chunked (``total`` grows) and after each embedded batch (``embedded`` grows, up to
    ``total``). Embedding is most of an ingest's time, so this is what keeps a display moving."""

    def chunks(self, embedded: int, total: int) -> None: ...


@dataclass
class PreparedDoc:
    record: DocRecord
    chunks: list[Chunk]
    replaces: bool  # an earlier version of this source is in the corpus


@dataclass
class Ingestor:
    corpus: Corpus
    warehouse: Warehouse
    embedder: Embedder
    settings: KBSettings
    progress: IngestProgress | bool | None = None  # True: the rich display (terminal or Jupyter)

    def __post_init__(self) -> None:
        if self.progress is True:
            from tools.ingest_display import IngestDisplay  # rich loads only when a display is asked for

            self.progress = IngestDisplay()
        self._display: IngestProgress | None = self.progress or None
        self._chunks_total = 0
        self._chunks_embedded = 0

    async def run(self, paths: list[Path], *, prune: bool = False) -> IngestSummary:
        started = time.perf_counter()
        summary = IngestSummary()
        found = list(discover(paths))
        manifest = await self.corpus.document_records()
        table_hashes = await asyncio.to_thread(self.warehouse.sources)
        seen: set[str] = set()
        self._begin(len(found))
        try:
            if prune:  # deletions first: they still run on a full disk, and free space for the rest
                seen.update(f.source for f in found if not isinstance(f, Problem))
                await self._prune(paths, manifest, table_hashes, seen, summary)
            await self._process(found, manifest, table_hashes, seen, summary)
            if summary.chunks_added or summary.chunks_deleted or not await self.corpus.indexes_current():
                await self.corpus.refresh_indexes()
            await asyncio.to_thread(self.warehouse.close)
        finally:
            self._end()  # a live display must give the terminal back on an error or Ctrl-C too
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    async def _process(self, found, manifest, table_hashes, seen, summary) -> None:
        batch: list[PreparedDoc] = []
        writer: asyncio.Task | None = None
        for item in found:
            if isinstance(item, Problem):
                summary.skipped.append(SkippedFile(path=item.source, reason=item.reason))
                self._step(item.source, "skipped")
                continue
            seen.add(item.source)
            status = await self._handle(item, manifest, table_hashes, summary, batch)
            self._step(item.source, status)
            if sum(len(d.chunks) for d in batch) >= FLUSH_CHUNKS:
                # Double-buffer: parse the next files while this batch embeds and writes.
                if writer is not None:
                    await writer
                writer, batch = asyncio.create_task(self._write(batch, summary)), []
        if writer is not None:
            await writer
        await self._write(batch, summary)

    async def _handle(self, item: FoundFile, manifest, table_hashes, summary, batch) -> str:
        if item.kind == "document":
            return await self._handle_document(item, manifest.get(item.source), summary, batch)
        if item.kind == "table":
            return await self._handle_table(item, table_hashes.get(item.source), summary)
        if item.kind == "unsupported":
            reason = f"unsupported file type '{item.path.suffix or item.path.name}'"
            summary.skipped.append(SkippedFile(path=item.source, reason=reason))
            return "skipped"
        return "sidecar"

    async def _handle_document(self, item, previous: DocRecord | None, summary, batch) -> str:
        try:
            prepared = await asyncio.to_thread(self._prepare, item, previous)
        except (ParseError, OSError) as exc:
            summary.skipped.append(SkippedFile(path=item.source, reason=_reason(exc)))
            return "skipped"
        if prepared is None:
            summary.unchanged += 1
            return "unchanged"
        if prepared.replaces:
            summary.changed += 1
        else:
            summary.new += 1
        batch.append(prepared)
        self._count_chunks(total=len(prepared.chunks))
        return "changed" if prepared.replaces else "new"

    def _prepare(self, item: FoundFile, previous: DocRecord | None) -> PreparedDoc | None:
        """Runs in a worker thread: read, hash, and (when new or changed) parse and chunk."""
        stat = item.path.stat()
        if previous and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
            return None
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        if stat.st_size > max_bytes:
            raise ParseError(f"file larger than {self.settings.max_file_mb:g} MB limit")
        data = read_regular(item.path, max_bytes + 1, root=item.root)  # one over: parse_bytes names the limit
        digest = content_hash(data)
        if previous and previous.content_hash == digest:
            return None
        doc = parse_bytes(data, suffix=item.path.suffix, source=item.source, max_bytes=max_bytes)
        doc_id = make_doc_id(item.source, digest)
        chunks = chunk_document(
            doc,
            doc_id=doc_id,
            chunk_tokens=self.settings.chunk_tokens,
            overlap=self.settings.chunk_overlap,
            count_tokens=self.embedder.count_tokens,
        )
        if not chunks:
            raise ParseError("no text to index after chunking")
        record = DocRecord(
            source=item.source, doc_id=doc_id, content_hash=digest, size=stat.st_size,
            mtime_ns=stat.st_mtime_ns, title=doc.title, language=doc.language,
            n_chunks=len(chunks), ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        return PreparedDoc(record, chunks, replaces=previous is not None)

    async def _write(self, batch: list[PreparedDoc], summary: IngestSummary) -> None:
        if not batch:
            return
        chunks = [c for d in batch for c in d.chunks]
        loop = asyncio.get_running_loop()
        vectors = await asyncio.to_thread(
            self._embed, [c.text for c in chunks],
            lambda n: loop.call_soon_threadsafe(lambda: self._count_chunks(embedded=n)),
        )
        # One commit adds the new versions and drops the old ones, of every written source (new ones
        # too: a run that died before its manifest update may have left another version behind).
        summary.chunks_deleted += await self.corpus.add_chunks(chunks, vectors, replace_versions=True)
        summary.chunks_added += len(chunks)
        summary.chunks_embedded += len(chunks)
        # Normally deletes nothing now; kept as the step tests/support/crash_hook.py can kill at.
        summary.chunks_deleted += await self.corpus.delete_stale({d.record.source: d.record.doc_id for d in batch})
        await self.corpus.upsert_documents([d.record for d in batch])

    def _embed(self, texts: list[str], on_batch: Callable[[int], None]) -> np.ndarray:
        """Runs in a worker thread; ``on_batch`` gets the size of each batch as it is embedded."""
        size = self.settings.embedding_batch
        parts = []
        for i in range(0, len(texts), size):
            parts.append(self.embedder.embed_passages(texts[i : i + size]))
            on_batch(len(parts[-1]))
        return np.vstack(parts).astype(np.float32)

    async def _handle_table(self, item: FoundFile, previous_hash: str | None, summary) -> str:
        try:
            digest = await asyncio.to_thread(_table_hash, item.path, item.root, self._max_table_bytes())
            if digest == previous_hash:
                summary.tables_unchanged += 1
                return "unchanged"
            await asyncio.to_thread(
                self.warehouse.import_file, item.path, source=item.source, source_hash=digest, root=item.root
            )
        except (TableImportError, ParseError, OSError) as exc:
            summary.skipped.append(SkippedFile(path=item.source, reason=_reason(exc)))
            return "skipped"
        if previous_hash is None:
            summary.tables_new += 1
            return "new"
        summary.tables_changed += 1
        return "changed"

    def _max_table_bytes(self) -> int:
        return int(self.settings.max_table_mb * 2**20)

    async def _prune(self, paths, manifest, table_hashes, seen, summary) -> None:
        prefixes = [root_prefix(p) for p in paths if p.is_dir()]
        # Sources with chunks but no manifest row were written by a run that died before its
        # manifest update; if their file is gone too, they are pruned like any vanished file.
        orphans = await self.corpus.chunk_sources() - set(manifest)
        for source in sorted((set(manifest) | orphans) - seen):
            if _under(source, prefixes):
                summary.chunks_deleted += await self.corpus.delete_source(source)
                if source in manifest:
                    await self.corpus.delete_document(source)
                    summary.removed += 1
        for source in sorted(set(table_hashes) - seen):
            if _under(source, prefixes):
                await asyncio.to_thread(self.warehouse.remove_source, source)
                summary.tables_removed += 1

    def _begin(self, total: int) -> None:
        if self._display:
            self._display.begin(total)

    def _step(self, source: str, status: str) -> None:
        if self._display:
            self._display.step(source, status)

    def _count_chunks(self, *, total: int = 0, embedded: int = 0) -> None:
        self._chunks_total += total
        self._chunks_embedded += embedded
        if isinstance(self._display, ChunkProgress):
            self._display.chunks(self._chunks_embedded, self._chunks_total)

    def _end(self) -> None:
        if self._display:
            self._display.end()


def read_regular(path: Path, limit: int = -1, *, root: str | None = None) -> bytes:
    """Read a file that must still be a regular file inside ``root`` (tools.confined: checked on
    the open descriptor, which O_NONBLOCK opens at once even when the path became a FIFO after
    discovery: read_bytes() on one blocked the whole ingest forever)."""
    with open_confined(path, root) as handle:
        return handle.read(limit)


def _table_hash(path: Path, root: str | None, max_bytes: int) -> str:
    """A table's version covers its sidecar too, so an edited description re-imports the table.
    Streamed in blocks and stopped at the size limit: a table file is never held in memory here."""
    digest = hashlib.sha256()
    with open_confined(path, root) as handle:
        read = 0
        while block := handle.read(1 << 20):
            read += len(block)
            if read > max_bytes:
                raise ConfinedReadError(f"table file larger than {max_bytes / 2**20:g} MB limit (max_table_mb)")
            digest.update(block)
    sidecar = sidecar_for(path)
    if sidecar is not None:
        try:
            digest.update(read_regular(sidecar, 1 << 20, root=root))
        except ConfinedReadError as exc:
            raise ConfinedReadError(f"sidecar {sidecar.name}: {exc}") from exc
    return digest.hexdigest()


def _under(source: str, prefixes: list[str]) -> bool:
    return any(p and source.startswith(p + "/") for p in prefixes)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file disappeared during ingestion"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
