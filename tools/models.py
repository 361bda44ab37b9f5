"""Typed objects that cross the tools boundary: parsed documents, chunks, hits, tables, SQL results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class Block:
    """A structural unit of a parsed document: a paragraph, a list, a table or a page's text.

    ``start``/``end`` are character offsets into ``ParsedDocument.text`` so every chunk cut from the
    block can point back at its exact span in the source text.
    """

    text: str
    start: int
    end: int
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class ParsedDocument:
    """One source file turned into plain text plus the structure chunking follows."""

    source: str  # path relative to the ingest root, POSIX separators (portable, URI-friendly)
    title: str
    text: str
    blocks: list[Block]
    language: str  # "zh", "en" or "mixed"
    metadata: dict[str, str] = field(default_factory=dict)


class Chunk(BaseModel):
    """A retrievable passage with full provenance."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str = ""  # heading path joined with " > "
    page: int | None = None
    char_start: int
    char_end: int
    language: str
    text: str
    content_hash: str
    token_count: int
    metadata: dict[str, str] = Field(default_factory=dict)


class Hit(BaseModel):
    """A search result: the chunk, its fused score and the score from each side that found it."""

    chunk: Chunk
    score: float
    vector_score: float | None = None
    text_score: float | None = None
    rank: int


class ColumnInfo(BaseModel):
    name: str
    type: str
    description: str = ""
    null_count: int = 0
    distinct_count: int | None = None
    samples: list[str] = Field(default_factory=list)
    min: str | None = None
    max: str | None = None


class TableInfo(BaseModel):
    """A warehouse table as the catalog describes it to people and to the planner."""

    name: str
    source: str
    source_hash: str
    row_count: int
    columns: list[ColumnInfo]
    description: str = ""


class SqlResult(BaseModel):
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    row_count: int  # rows returned (after the cap)
    truncated: bool  # the query had more rows than the cap allowed
    tables: list[str]
    elapsed_ms: float


class SkippedFile(BaseModel):
    path: str
    reason: str


class IngestSummary(BaseModel):
    """What an ingest run did, file by file category, for the CLI summary and the API."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    tables_new: int = 0
    tables_changed: int = 0
    tables_unchanged: int = 0
    tables_removed: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0


SearchMode = Literal["hybrid", "vector", "text"]


class DocRecord(BaseModel):
    """The ingest manifest's row for one document: what was ingested, so re-ingest can skip it."""

    source: str
    doc_id: str
    content_hash: str
    size: int
    mtime_ns: int
    title: str
    language: str
    n_chunks: int
    ingested_at: str  # ISO-8601 UTC
