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

    def _skipped(self, item: object, summary: IngestSummary) -> bool:
        """A path discovery could not use (a Problem): recorded with its reason, nothing else done."""
        if not isinstance(item, Problem):
            return False
        summary.skipped.append(SkippedFile(path=item.source, reason=item.reason))
        self._step(item.source, "skipped")
        return True

    async def _process(self, found, manifest, table_hashes, seen, summary) -> None:
        batch: list[PreparedDoc] = []
        writer: asyncio.Task | None = None
        for item in found:
            if self._skipped(item, summary):
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
        file = read_if_changed(item, previous, self.settings)
        if file is None:
            return None
        return prepare_document(file, settings=self.settings, count_tokens=self.embedder.count_tokens,
                                replaces=previous is not None)

    async def _write(self, batch: list[PreparedDoc], summary: IngestSummary) -> None:
        if not batch:
            return
        chunks = [c for d in batch for c in d.chunks]
        loop = asyncio.get_running_loop()

        def embedded(n: int) -> None:  # called from the embedding thread: hand the count to the loop
            loop.call_soon_threadsafe(lambda: self._count_chunks(embedded=n))

        vectors = await asyncio.to_thread(self._embed, [c.text for c in chunks], embedded)
        await self._commit(batch, vectors, summary)

    async def _commit(self, batch: list[PreparedDoc], vectors: np.ndarray, summary: IngestSummary) -> None:
        """Store whole documents whose chunks are embedded (``vectors`` in chunk order), then the manifest."""
        chunks = [c for d in batch for c in d.chunks]
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
        return embed_texts(self.embedder, texts, batch=self.settings.embedding_batch, on_batch=on_batch)

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


# -- one document, on any worker: the steps tools.ingest_ray runs as Ray tasks ------------------


@dataclass
class ReadFile:
    """A document's bytes as read for ingest, with what its manifest row records about the file."""

    source: str
    suffix: str
    data: bytes
    digest: str
    size: int
    mtime_ns: int


def read_if_changed(item: FoundFile, previous: DocRecord | None, settings: KBSettings) -> ReadFile | None:
    """The file's bytes, or None when the manifest already holds this content (same size and mtime,
    or same hash). Raises ParseError past ``max_file_mb`` and OSError when unreadable."""
    stat = item.path.stat()
    if previous and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
        return None
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    if stat.st_size > max_bytes:
        raise ParseError(f"file larger than {settings.max_file_mb:g} MB limit")
    data = read_regular(item.path, max_bytes + 1, root=item.root)  # one over: parse_bytes names the limit
    digest = content_hash(data)
    if previous and previous.content_hash == digest:
        return None
    return ReadFile(item.source, item.path.suffix, data, digest, stat.st_size, stat.st_mtime_ns)


def prepare_document(
    file: ReadFile, *, settings: KBSettings, count_tokens: Callable[[str], int], replaces: bool
) -> PreparedDoc:
    """Parse and chunk one document; raises ParseError when it has nothing to index."""
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    doc = parse_bytes(file.data, suffix=file.suffix, source=file.source, max_bytes=max_bytes)
    doc_id = make_doc_id(file.source, file.digest)
    chunks = chunk_document(
        doc, doc_id=doc_id, chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap,
        count_tokens=count_tokens,
    )
    if not chunks:
        raise ParseError("no text to index after chunking")
    record = DocRecord(
        source=file.source, doc_id=doc_id, content_hash=file.digest, size=file.size,
        mtime_ns=file.mtime_ns, title=doc.title, language=doc.language,
        n_chunks=len(chunks), ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return PreparedDoc(record, chunks, replaces=replaces)


def embed_texts(
    embedder: Embedder, texts: list[str], *, batch: int, on_batch: Callable[[int], None] | None = None
) -> np.ndarray:
    """Passage vectors in slices of ``batch``; ``on_batch`` gets each slice's size once embedded."""
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(embedder.embed_passages(texts[i : i + batch]))
        if on_batch is not None:
            on_batch(len(parts[-1]))
    return np.vstack(parts).astype(np.float32)


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
