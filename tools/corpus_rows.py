"""How the passage store lays out rows in LanceDB (Arrow schemas, Chunk <-> row) and how search
filters become LanceDB ``where`` expressions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from tools.config import FtsTokenizer
from tools.fts import fts_text
from tools.models import Chunk, DocRecord

# -- rows: how a Chunk is stored -------------------------------------------------------------

# Stored columns a search returns (never the vector or the token column).
CHUNK_COLUMNS = [*Chunk.model_fields]


def chunk_schema(dim: int) -> pa.Schema:
    """Chunk fields, plus ``tags`` ("key=value" per metadata pair, filterable with array_has),
    ``fts`` (the text the BM25 index covers) and the vector."""
    types = {"page": pa.int32(), "char_start": pa.int64(), "char_end": pa.int64(), "token_count": pa.int32()}
    fields = [pa.field(n, types.get(n, pa.string()), nullable=n not in ("chunk_id", "text"))
              for n in CHUNK_COLUMNS]
    return pa.schema([*fields, pa.field("tags", pa.list_(pa.string())), pa.field("fts", pa.string()),
                      pa.field("vector", pa.list_(pa.float32(), dim))])


def chunks_to_arrow(chunks: list[Chunk], vectors: np.ndarray, tokenizer: FtsTokenizer) -> pa.Table:
    rows = [c.model_dump() for c in chunks]
    for row in rows:
        meta = row["metadata"]
        row["metadata"] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        row["tags"] = [f"{k}={v}" for k, v in sorted(meta.items())]
        # Title and section headings are searchable words too; every tokenizer mode sees the same.
        searchable = "\n".join(p for p in (row["title"], row["section"], row["text"]) if p)
        row["fts"] = fts_text(searchable) if tokenizer == "jieba" else searchable
    schema = chunk_schema(vectors.shape[1])
    table = pa.Table.from_pylist(rows, schema=schema.remove(schema.get_field_index("vector")))
    flat = pa.array(np.ascontiguousarray(vectors).reshape(-1), type=pa.float32())
    return table.append_column(schema.field("vector"), pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))


def row_to_chunk(row: Mapping[str, Any]) -> Chunk:
    fields = {n: row[n] for n in CHUNK_COLUMNS}
    fields["metadata"] = json.loads(row["metadata"] or "{}")
    return Chunk(**fields)


DOC_TYPES = {"size": pa.int64(), "mtime_ns": pa.int64(), "n_chunks": pa.int32()}


def doc_schema() -> pa.Schema:
    return pa.schema([pa.field(n, DOC_TYPES.get(n, pa.string()), nullable=n != "source")
                      for n in DocRecord.model_fields])


def docs_to_arrow(records: list[DocRecord]) -> pa.Table:
    return pa.Table.from_pylist([r.model_dump() for r in records], schema=doc_schema())


# -- filters: SQL for LanceDB's where clause --------------------------------------------------

def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def glob_sql(glob: str) -> str:
    """A shell glob on ``source`` as SQL: LIKE for ``*``/``?``, a regex when it has ``[...]``."""
    if "[" in glob:
        return f"regexp_like(source, {sql_str(_glob_regex(glob))})"
    like = "".join({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(c, c) for c in glob)
    return f"source LIKE {sql_str(like)} ESCAPE '\\'"


def _glob_regex(glob: str) -> str:
    # fnmatch.translate emits Python-only syntax ((?s:...)\Z); Rust's regex needs plain ^...$.
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        end = glob.find("]", i + 2) if c == "[" else -1
        if c == "[" and end != -1:
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def where_clause(source_glob: str | None, where: Mapping[str, str] | None) -> str | None:
    parts = [glob_sql(source_glob)] if source_glob else []
    parts += [f"array_has(tags, {sql_str(f'{k}={v}')})" for k, v in sorted((where or {}).items())]
    return " AND ".join(f"({p})" for p in parts) or None
