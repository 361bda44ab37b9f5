"""Settings for the knowledge base layer.

Higher layers extend ``KBSettings`` (agents add the LLM engine, graphs the research loop, and
``dossier.Settings`` is the public whole), so every field is read from ``DOSSIER_*`` variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbedderName = Literal["e5-small", "minilm", "hash", "openai"]
FtsTokenizer = Literal["jieba", "icu", "ngram"]


class KBSettings(BaseSettings):
    """Where the knowledge base lives and how documents are chunked, embedded and searched."""

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore", validate_default=True)

    kb_dir: Path = Field(Path("kb"), description="Knowledge-base folder (LanceDB, DuckDB, runs, reports).")
    corpus_uri: str | None = Field(
        None, pattern=r"^(s3|gs|az|file)://\S+$",
        description="Where the passage store (LanceDB) lives when not in kb_dir/lancedb, e.g. s3://bucket/kb; "
        "the warehouse, manifest record, ingest lock and runs stay in kb_dir (docs/scaling.md).",
    )
    storage_options: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="LanceDB object-store options for corpus_uri (JSON in DOSSIER_STORAGE_OPTIONS), e.g. "
        '{"endpoint": "http://127.0.0.1:9000", "region": "us-east-1", "allow_http": "true"}; values are kept '
        "as secrets (never printed): they may hold access keys.",
    )
    ray_num_cpus: int = Field(2, ge=1, le=1024, description="CPUs of the local Ray started by ingest --ray.")
    ray_object_store_mb: int = Field(
        128, ge=80, le=1_048_576,
        description="Object-store memory of the local Ray started by ingest --ray (Ray's minimum is ~75 MB).",
    )
    embedder: EmbedderName = Field(
        "e5-small",
        description="Embedding model: e5-small (multilingual-e5-small 4-bit, bundled, default), "
        "minilm (all-MiniLM-L6-v2, needs the 'minilm' extra), hash (deterministic, for tests), "
        "openai (an OpenAI-compatible /embeddings endpoint).",
    )
    embedding_model: str = Field(
        "text-embedding-3-small", description="Model name when embedder=openai.", min_length=1
    )
    embedding_base_url: str | None = Field(None, description="Base URL for embedder=openai.")
    embedding_batch: int = Field(32, ge=1, le=1024, description="Texts embedded per call.")
    chunk_tokens: int = Field(256, ge=32, le=2048, description="Target chunk size in embedder tokens.")
    chunk_overlap: int = Field(32, ge=0, le=512, description="Tokens shared by consecutive chunks.")
    fts_tokenizer: FtsTokenizer = Field(
        "jieba",
        description="Full-text index tokenization: jieba (Chinese words segmented into a token "
        "column, English stemmed), icu (LanceDB ICU word breaks), ngram (character n-grams, min 2).",
    )
    search_k: int = Field(10, ge=1, le=200, description="Hits returned by a search.")
    search_candidates: int = Field(50, ge=1, le=1000, description="Candidates per side before fusion.")
    search_mode: Literal["hybrid", "vector", "text"] = Field("hybrid", description="Default search mode.")
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal-rank-fusion constant.")
    version_retention_s: float = Field(
        600.0, ge=0, le=30 * 86400,
        description="After an ingest, LanceDB versions older than this are deleted so a prune frees disk; "
        "a search pins its version for milliseconds, so minutes keep every running reader safe.")
    ingest_lock_wait_s: float = Field(
        600.0, ge=0, le=86_400,
        description="How long an ingest waits for another ingest of the same knowledge base to finish "
        "before it gives up with an error; searches, SQL and reports never wait.")
    ann_index_threshold: int = Field(
        50_000, ge=1000, description="Build an IVF_HNSW_SQ vector index once the corpus has this many chunks."
    )
    max_file_mb: float = Field(64.0, gt=0, le=4096, description="Documents larger than this are skipped.")
    # Table imports (csv, tsv, parquet, json, xlsx, sqlite): every import is bounded by these; a table
    # past any of them is skipped with a one-line reason naming the setting, and the ingest goes on.
    max_table_mb: float = Field(
        512.0, gt=0, le=65536,
        description="Table files larger than this are skipped; also caps the text and blob bytes read "
        "out of a workbook or SQLite file.",
    )
    max_table_unpacked_mb: float = Field(
        512.0, gt=0, le=65536,
        description="An .xlsx whose parts inflate past this is skipped (zip-bomb guard, counted while "
        "inflating, not taken from the zip header).",
    )
    max_table_rows: int = Field(20_000_000, ge=1, le=2_000_000_000, description="Rows one table may have.")
    max_table_columns: int = Field(1000, ge=1, le=100_000, description="Columns one table may have.")
    max_table_cells: int = Field(
        50_000_000, ge=1, le=10_000_000_000, description="Rows x columns one table may have."
    )
    max_table_value_mb: float = Field(
        16.0, gt=0, le=1024, description="Largest single text or blob value read from a SQLite file."
    )
    table_import_timeout_s: float = Field(
        120.0, gt=0, le=86_400, description="Seconds one table file may take to import (read, check, describe)."
    )
    table_memory_limit: str = Field(
        "1GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$", description="DuckDB memory cap while importing tables."
    )
    sql_row_limit: int = Field(200, ge=1, le=100_000, description="Rows a SQL query may return.")
    sql_timeout_s: float = Field(10.0, gt=0, le=600, description="Seconds before a SQL query is interrupted.")
    sql_memory_limit: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$", description="DuckDB memory cap.")
    sql_threads: int = Field(2, ge=1, le=64, description="DuckDB threads for guarded queries.")
