"""The passage store: chunks with vectors and a BM25 index in LanceDB, plus the ingest manifest.

Hybrid search runs the vector and full-text queries as two LanceDB queries and fuses them here
(``tools.fusion``) rather than with LanceDB's built-in hybrid query, because the fusion rules
that matter (zero-score hits dropped, cross-lingual weighting) are ours.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.index import HnswSq
from pydantic import SecretStr

from tools import fusion
from tools.config import KBSettings
from tools.corpus_rows import (
    CHUNK_COLUMNS,
    chunk_schema,
    chunks_to_arrow,
    doc_schema,
    docs_to_arrow,
    row_to_chunk,
    sql_str,
    where_clause,
)
from tools.embeddings import Embedder
from tools.fts import fts_index, fts_query, safe_query
from tools.models import Chunk, DocRecord, Hit, SearchMode
from tools.text.language import detect_language

CHUNKS = "chunks"
DOCUMENTS = "documents"
KB_FILE = "kb.json"
# Re-rank ANN candidates by exact cosine distance: IVF_HNSW_SQ otherwise returns quantised
# squared-L2 distances (measured: 2x the cosine distance), which 1 - d cannot turn into a similarity.
_REFINE = 4
# Strong read consistency: an ingest in another process is visible to the next search here.
_CONSISTENCY = timedelta(0)


class KBMismatch(RuntimeError):
    """The knowledge base on disk was built with settings the configured ones cannot extend."""


class EmbedderMismatch(KBMismatch):
    """Vectors from two embedders are not comparable; mixing them would corrupt search."""


class TokenizerMismatch(KBMismatch):
    """The BM25 index (and the jieba token column) were built for another tokenizer mode."""


def _setting_hint(name: str) -> str:
    if name.startswith("openai:"):
        return f"DOSSIER_EMBEDDER=openai and DOSSIER_EMBEDDING_MODEL={name.split(':', 1)[1]}"
    return f"DOSSIER_EMBEDDER={'hash' if name.startswith('hash-') else name}"


def _found(side_scores: Mapping[str, Mapping[str, float]], side: str, chunk_id: str) -> float | None:
    """A side's score for a chunk, or None where that side did not match it (score <= 0)."""
    score = side_scores.get(side, {}).get(chunk_id)
    return score if score is not None and score > 0 else None


async def _rows(builder: Any, filt: str | None, limit: int, score: str) -> list[dict]:
    """Run one side's query; ``_side_score`` is BM25, or 1 - cosine distance for vectors."""
    if filt:
        builder = builder.where(filt)
    # Naming the score column keeps LanceDB from warning that auto-projection will change.
    rows = await builder.select([*CHUNK_COLUMNS, score]).limit(limit).to_list()
    for row in rows:
        raw = float(row.pop(score))
        row["_side_score"] = 1.0 - raw if score == "_distance" else raw
    return rows


def _stale_where(current: Mapping[str, str]) -> str:
    """Chunks of ``current``'s sources (source -> doc_id) that belong to another version."""
    sources = ", ".join(sql_str(s) for s in current)
    doc_ids = ", ".join(sql_str(d) for d in current.values())
    return f"source IN ({sources}) AND doc_id NOT IN ({doc_ids})"


def _embedder_dim(embedder: Embedder) -> int | None:
    """The embedder's width without a network call where it is not yet known."""
    return getattr(embedder, "known_dim", None) if hasattr(embedder, "known_dim") else embedder.dim


class Corpus:
    """One knowledge base's LanceDB tables, behind one connection."""

    def __init__(self, kb_dir: Path, db: Any, embedder: Embedder, settings: KBSettings) -> None:
        self.kb_dir = kb_dir
        self.embedder = embedder
        self.settings = settings
        self._db = db
        self._tables: dict[str, Any] = {}
        self._create_lock = asyncio.Lock()
        self._languages: tuple[int, dict[str, float]] | None = None  # (table version, shares)
        self._pinned: tuple[int, Any] | None = None  # (version, read-only chunks handle at it)

    @classmethod
    async def open(cls, kb_dir: Path, *, embedder: Embedder, settings: KBSettings) -> Corpus:
        kb_dir = Path(kb_dir)
        uri = settings.corpus_uri
        if uri is None:
            await asyncio.to_thread((kb_dir / "lancedb").mkdir, parents=True, exist_ok=True)  # off the event loop
            uri = str(kb_dir / "lancedb")
        # On object storage, as in a local folder, readers see only committed versions; one host ingests
        # (the ingest lock is per machine: docs/scaling.md).
        # Secrets once validated; plain strings where a caller used model_copy(update=...), which skips validation.
        options = {k: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
                   for k, v in settings.storage_options.items()}
        db = await lancedb.connect_async(uri, read_consistency_interval=_CONSISTENCY, storage_options=options or None)
        corpus = cls(kb_dir, db, embedder, settings)
        if (record := corpus._read_record()) is not None:
            corpus._check_record(record, _embedder_dim(embedder))
        return corpus

    def _read_record(self) -> dict[str, Any] | None:
        path = self.kb_dir / KB_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def _check_record(self, record: Mapping[str, Any], dim: int | None) -> None:
        name, built_dim = record["embedder"], int(record["dim"])
        if name != self.embedder.name or (dim is not None and dim != built_dim):
            shown = "unknown" if dim is None else dim
            raise EmbedderMismatch(
                f"this knowledge base was built with {name} (dim {built_dim}); the configured "
                f"embedder is {self.embedder.name} (dim {shown}). Re-ingest into a new --kb folder "
                f"or set {_setting_hint(name)}."
            )
        built_tok = record.get("fts_tokenizer", self.settings.fts_tokenizer)
        if built_tok != self.settings.fts_tokenizer:
            raise TokenizerMismatch(
                f"this knowledge base's full-text index was built with the {built_tok} tokenizer; the "
                f"configured one is {self.settings.fts_tokenizer}. Re-ingest into a new --kb folder "
                f"or set DOSSIER_FTS_TOKENIZER={built_tok}."
            )

    def _ensure_record(self, dim: int) -> None:
        if (existing := self._read_record()) is not None:
            return self._check_record(existing, dim)
        record = {"embedder": self.embedder.name, "dim": dim, "fts_tokenizer": self.settings.fts_tokenizer}
        path = self.kb_dir / KB_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves a half-written record

    async def _table(self, name: str) -> Any | None:
        if name not in self._tables:
            try:
                self._tables[name] = await self._db.open_table(name)
            except ValueError:  # lancedb raises ValueError("Table ... was not found")
                return None
        return self._tables[name]

    async def _create(self, name: str, schema: pa.Schema) -> Any:
        async with self._create_lock:
            table = await self._table(name)
            if table is None:
                table = await self._db.create_table(name, schema=schema, exist_ok=True)
                if name == CHUNKS:
                    # Indexed while empty: LanceDB then also scans rows added since the last
                    # refresh, so text search finds new chunks before refresh_indexes runs.
                    column, config = fts_index(self.settings.fts_tokenizer)
                    await table.create_index(column, config=config, replace=True)
                self._tables[name] = table
            return table

    async def add_chunks(self, chunks: list[Chunk], vectors: np.ndarray, *, replace_versions: bool = False) -> int:
        """Insert or replace chunks by ``chunk_id`` (re-running an ingest changes nothing).

        ``replace_versions`` also deletes, in the same commit, the chunks of other versions (doc ids)
        of the sources written: a concurrent search sees the old document or the new one, never both.
        Returns how many chunks that deleted.
        """
        if not chunks:
            return 0
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise ValueError(f"expected {len(chunks)} vectors, got shape {vectors.shape}")
        dim = int(vectors.shape[1])
        self._ensure_record(dim)
        table = await self._table(CHUNKS) or await self._create(CHUNKS, chunk_schema(dim))
        data = await asyncio.to_thread(chunks_to_arrow, chunks, vectors, self.settings.fts_tokenizer)
        merge = table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
        if replace_versions:
            merge = merge.when_not_matched_by_source_delete(_stale_where({c.source: c.doc_id for c in chunks}))
        return int((await merge.execute(data)).num_deleted_rows)

    async def delete_source(self, source: str, *, keep_doc_id: str | None = None) -> int:
        """Delete a source's chunks (except those of ``keep_doc_id``, its new version); returns how many."""
        table = await self._table(CHUNKS)
        if table is None:
            return 0
        where = f"source = {sql_str(source)}"
        if keep_doc_id is not None:
            where += f" AND doc_id != {sql_str(keep_doc_id)}"
        result = await table.delete(where)
        return int(result.num_deleted_rows)

    async def delete_stale(self, current: Mapping[str, str]) -> int:
        """Delete chunks of ``current``'s sources (source -> doc_id) that belong to another version."""
        table = await self._table(CHUNKS)
        if table is None or not current:
            return 0
        result = await table.delete(_stale_where(current))
        return int(result.num_deleted_rows)

    async def chunk_sources(self) -> set[str]:
        """Every source with at least one stored chunk (the manifest may lag after a crash)."""
        table = await self._table(CHUNKS)
        if table is None:
            return set()
        column = (await table.query().select(["source"]).to_arrow())["source"]
        return set(pc.unique(column).to_pylist())

    async def count(self) -> int:
        table = await self._table(CHUNKS)
        return 0 if table is None else int(await table.count_rows())

    async def version(self) -> int:
        """The chunks table's LanceDB version (0 before the first write), for report provenance."""
        table = await self._table(CHUNKS)
        return 0 if table is None else int(await table.version())

    async def languages(self) -> dict[str, float]:
        """Share of chunks per language (``zh``/``en``/``mixed``), cached until the next write.

        Keyed by table version, so a write from another process also invalidates it.
        """
        version = await self.version()
        if self._languages is None or self._languages[0] != version:
            self._languages = (version, await self._count_languages())
        return dict(self._languages[1])

    async def _count_languages(self) -> dict[str, float]:
        table = await self._table(CHUNKS)
        if table is None:
            return {}
        column = (await table.query().select(["language"]).to_arrow())["language"]
        total = len(column)
        counts = pc.value_counts(column).to_pylist() if total else []
        return {c["values"]: c["counts"] / total for c in counts}

    async def indexes_current(self) -> bool:
        """True when the chunks table has its full-text index over every row: an ingest that changed
        nothing then leaves the table (and its version, which runs record) as it was."""
        table = await self._table(CHUNKS)
        if table is None:
            return True
        indices = await table.list_indices()
        return any(i.index_type == "FTS" for i in indices) and all(i.num_unindexed_rows == 0 for i in indices)

    async def refresh_indexes(self) -> None:
        """Fold recent writes into the indexes; call after an ingest batch, not per chunk.

        The FTS index is rebuilt so BM25 statistics reflect deletions too. Below
        ``ann_index_threshold`` chunks, exact search is fast enough (and exact); past it an
        IVF_HNSW_SQ index is built once, and ``optimize`` keeps it current afterwards.
        """
        table = await self._table(CHUNKS)
        if table is not None:
            column, config = fts_index(self.settings.fts_tokenizer)
            await table.create_index(column, config=config, replace=True)
            if await self._needs_ann(table):
                await table.create_index("vector", config=HnswSq(distance_type="cosine"), replace=True)
            await table.optimize(cleanup_older_than=self._retention())
        docs = await self._table(DOCUMENTS)
        if docs is not None:
            await docs.optimize(cleanup_older_than=self._retention())

    def _retention(self) -> timedelta:
        return timedelta(seconds=self.settings.version_retention_s)

    async def _needs_ann(self, table: Any) -> bool:
        if await table.count_rows() < self.settings.ann_index_threshold:
            return False
        return not any(idx.columns == ["vector"] for idx in await table.list_indices())

    async def search(
        self, query: str, *, k: int, mode: SearchMode = "hybrid", source_glob: str | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[Hit]:
        """Top ``k`` chunks for ``query``.

        ``score`` is the fused RRF score in hybrid mode and the side's own score otherwise (cosine
        similarity for vector, BM25 for text). ``source_glob`` is a shell glob on source paths
        (``*`` also crosses ``/``); ``where`` requires metadata key = value for every pair.
        """
        table = await self._table(CHUNKS)
        if table is None or not query.strip() or k <= 0:
            return []
        if mode == "hybrid":
            table = await self._at_current_version(table)
        filt = where_clause(source_glob, where)
        limit = max(k, self.settings.search_candidates)
        sides = [fusion.VECTOR, fusion.TEXT] if mode == "hybrid" else [mode]
        runs = [self._vector_side(table, query, limit, filt) if s == fusion.VECTOR
                else self._text_side(table, query, limit, filt) for s in sides]
        results = dict(zip(sides, await asyncio.gather(*runs), strict=True))
        return await self._fuse(query, results, k=k, hybrid=mode == "hybrid")

    async def _at_current_version(self, table: Any) -> Any:
        """A handle pinned to the current version: the two sides of a hybrid search are two queries,
        and an ingest committing between them made one see a document's old version and the other
        its new one. Shared by searches until the next write."""
        version = await table.version()
        if self._pinned is None or self._pinned[0] != version:
            handle = await self._db.open_table(CHUNKS)
            await handle.checkout(version)
            self._pinned = (version, handle)  # the old handle is dropped, not closed: a search may hold it
        return self._pinned[1]

    async def _vector_side(self, table: Any, query: str, limit: int, filt: str | None) -> list[dict]:
        vector = await asyncio.to_thread(self.embedder.embed_query, query)
        builder = table.query().nearest_to(vector).distance_type("cosine").refine_factor(_REFINE)
        return await _rows(builder, filt, limit, "_distance")

    async def _text_side(self, table: Any, query: str, limit: int, filt: str | None) -> list[dict]:
        column, _ = fts_index(self.settings.fts_tokenizer)
        text = fts_query(query) if self.settings.fts_tokenizer == "jieba" else safe_query(query)
        if not text:
            return []
        return await _rows(table.query().nearest_to_text(text, columns=[column]), filt, limit, "_score")

    async def _fuse(self, query: str, results: dict[str, list[dict]], *, k: int, hybrid: bool) -> list[Hit]:
        rows: dict[str, dict] = {}
        side_scores: dict[str, dict[str, float]] = {}
        for side, side_rows in results.items():
            side_scores[side] = {r["chunk_id"]: r["_side_score"] for r in side_rows}
            for row in side_rows:
                rows.setdefault(row["chunk_id"], row)
        ranked = {side: list(scores.items()) for side, scores in side_scores.items()}
        weights = None
        if hybrid:
            langs = getattr(self.embedder, "languages", None)
            weights = fusion.query_weights(detect_language(query), await self.languages(), vector_langs=langs)
        fused = fusion.rrf_fuse(ranked, k=self.settings.rrf_k, weights=weights)[:k]
        hits = []
        for rank, (chunk_id, score) in enumerate(fused, start=1):
            vec, txt = (_found(side_scores, side, chunk_id) for side in (fusion.VECTOR, fusion.TEXT))
            own = score if hybrid else (vec if vec is not None else txt)  # a fused id is on one side at least
            hits.append(Hit(chunk=row_to_chunk(rows[chunk_id]), score=float(own or 0.0), rank=rank,
                            vector_score=vec, text_score=txt))
        return hits

    async def upsert_documents(self, records: list[DocRecord]) -> None:
        if not records:
            return
        table = await self._table(DOCUMENTS) or await self._create(DOCUMENTS, doc_schema())
        upsert = table.merge_insert("source").when_matched_update_all().when_not_matched_insert_all()
        await upsert.execute(docs_to_arrow(records))

    async def document_records(self) -> dict[str, DocRecord]:
        table = await self._table(DOCUMENTS)
        if table is None:
            return {}
        rows = (await table.query().to_arrow()).to_pylist()
        return {r["source"]: DocRecord(**r) for r in rows}

    async def delete_document(self, source: str) -> None:
        table = await self._table(DOCUMENTS)
        if table is not None:
            await table.delete(f"source = {sql_str(source)}")

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._tables.clear()
        if self._pinned is not None:
            self._pinned[1].close()
            self._pinned = None
