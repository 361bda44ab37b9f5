"""The organisation's own terms, carried by the knowledge base as data.

A glossary file sits among the ingested files: ``glossary.yaml`` / ``glossary.yml`` / ``glossary.csv`` or
``<anything>.glossary.yaml`` / ``.yml`` / ``.csv``. Each entry names a canonical term, its synonyms in any
language, optionally what kind of thing it is and the table column (or column value) it stands for:

    terms:
      - term: Microsoft
        synonyms: [MSFT, 微软]
        kind: entity
        column: MSFT            # the term names this column
      - term: customer support
        synonyms: [customer service, 客服]
        kind: entity
        column: department      # the term names this value of this column
        value: Customer Support

CSV: a header with ``term,synonyms,kind,table,column,value,description``; synonyms separated by ``|``.

Ingest keeps the parsed entries in ``<kb>/glossary.json`` keyed by source (re-ingest replaces a file's
entries, ``--prune`` drops a vanished file's, a bad file is skipped with its reason). The offline engine
reads them back and plans with the built-in general lexicon plus these terms.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

GLOSSARY_FILE = "glossary.json"
MAX_GLOSSARY_BYTES = 2 * 2**20  # a glossary is a curated list, not a data dump
_NAME_RE = re.compile(r"(?:^|.*\.)glossary\.(?:ya?ml|csv)$", re.IGNORECASE)

Kind = Literal["entity", "measure", "dimension", "aspect", "topic"]


class GlossaryEntry(BaseModel):
    """One term as the glossary file states it (validated at the file boundary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str = Field(min_length=1, max_length=200)
    synonyms: tuple[str, ...] = ()
    kind: Kind | None = None  # None: entity when it names a value or column, topic otherwise
    table: str | None = None
    column: str | None = None
    value: str | None = None
    description: str = ""
    source: str = ""  # the glossary file it came from (filled in at ingest)

    @field_validator("term", "description", mode="before")
    @classmethod
    def _strip(cls, v: object) -> object:
        return v.strip() if isinstance(v, str) else v

    @field_validator("synonyms", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if v is None:
            return ()
        if isinstance(v, str):  # CSV cells and hand-written YAML: "a | b | c"
            v = v.split("|")
        if isinstance(v, (list, tuple)):
            return tuple(dict.fromkeys(str(s).strip() for s in v if str(s).strip()))
        return v

    @field_validator("table", "column", "value", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        if v is None:
            return None
        text = str(v).strip()  # YAML reads `value: 2024` or `value: true` as non-strings
        return text or None

    @property
    def resolved_kind(self) -> str:
        if self.kind:
            return self.kind
        return "entity" if self.value or self.column else "topic"

    @property
    def stands_for(self) -> str:
        """What it maps to in the warehouse, as shown to a user: ``table.column = 'value'``."""
        if not self.column:
            return self.table or ""
        where = f"{self.table}.{self.column}" if self.table else self.column
        return f"{where} = {self.value!r}" if self.value else where


class GlossaryFileError(ValueError):
    pass


def is_glossary_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))


def parse_glossary(data: bytes, *, name: str, source: str = "") -> list[GlossaryEntry]:
    """Entries of one glossary file; raises GlossaryFileError naming the first problem."""
    if len(data) > MAX_GLOSSARY_BYTES:
        raise GlossaryFileError(f"glossary larger than {MAX_GLOSSARY_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GlossaryFileError("glossary is not UTF-8 text") from exc
    rows = _csv_rows(text) if name.lower().endswith(".csv") else _yaml_rows(text)
    out: list[GlossaryEntry] = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise GlossaryFileError(f"entry {i} is not a mapping of fields")
        try:
            out.append(GlossaryEntry(**{**row, "source": source}))
        except (ValidationError, TypeError) as exc:
            raise GlossaryFileError(f"entry {i}: {_first_error(exc)}") from exc
    if not out:
        raise GlossaryFileError("glossary has no entries")
    return out


def _yaml_rows(text: str) -> list[object]:
    import yaml  # only when a glossary file is read: `dossier tables` reads the stored glossary

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GlossaryFileError(f"invalid YAML: {str(exc).splitlines()[0]}") from exc
    if isinstance(data, dict) and "terms" in data:
        data = data["terms"]
    if not isinstance(data, list):
        raise GlossaryFileError("expected a list of entries under 'terms:'")
    return data


def _csv_rows(text: str) -> list[object]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "term" not in [f.strip() for f in reader.fieldnames]:
        raise GlossaryFileError("CSV glossary needs a 'term' column")
    return [{k.strip(): v for k, v in row.items() if k and v not in (None, "")} for row in reader]


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc'])) or 'entry'}: {err['msg']}"
    return str(exc).splitlines()[0]


def merge_entries(entries: list[GlossaryEntry]) -> list[GlossaryEntry]:
    """One entry per term (case- and spacing-blind): synonyms unioned, the first file's fields kept."""
    merged: dict[str, GlossaryEntry] = {}
    for e in entries:
        key = term_key(e.term)
        if key not in merged:
            merged[key] = e
            continue
        old = merged[key]
        merged[key] = old.model_copy(update={
            "synonyms": tuple(dict.fromkeys(old.synonyms + e.synonyms)),
            **{f: getattr(e, f) for f in ("kind", "table", "column", "value", "description")
               if not getattr(old, f) and getattr(e, f)},
        })
    return list(merged.values())


def term_key(term: str) -> str:
    """A term's identity: "Fine-tuning", "fine tuning" and "fine_tuning" are one term."""
    return re.sub(r"[^\w&]+", "_", term.lower()).strip("_") or term


# ---- storage in the knowledge-base folder ----------------------------------------------------------

@dataclass
class GlossaryStore:
    """``<kb>/glossary.json``: {source: {"hash": ..., "entries": [...]}}; written atomically."""

    path: Path
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, kb_dir: Path) -> GlossaryStore:
        path = Path(kb_dir) / GLOSSARY_FILE
        try:
            files = json.loads(path.read_text(encoding="utf-8")).get("files", {})
        except FileNotFoundError:
            files = {}
        return cls(path, files)

    def entries(self) -> list[GlossaryEntry]:
        rows = [GlossaryEntry(**row) for source in sorted(self.files) for row in self.files[source]["entries"]]
        return merge_entries(rows)

    def digest(self) -> str:
        """Changes whenever any stored glossary does ("" when there is none)."""
        if not self.files:
            return ""
        blob = json.dumps({s: f["hash"] for s, f in sorted(self.files.items())}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"files": self.files}, ensure_ascii=False, indent=1, sort_keys=True),
                       encoding="utf-8")
        os.replace(tmp, self.path)  # a crash leaves the old file or the new one, never half of one


@dataclass
class GlossaryUpdate:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)


def sync_glossaries(kb_dir: Path, found: list[tuple[Path, str]], *, prune_prefixes: list[str] | None
                    ) -> GlossaryUpdate:
    """Store the glossary files found by an ingest run; with ``prune_prefixes``, drop vanished ones."""
    store = GlossaryStore.load(kb_dir)
    update = GlossaryUpdate()
    seen: set[str] = set()
    for path, source in found:
        seen.add(source)
        try:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if store.files.get(source, {}).get("hash") == digest:
                update.unchanged += 1
                continue
            entries = parse_glossary(data, name=path.name, source=source)
        except (GlossaryFileError, OSError) as exc:
            update.skipped.append((source, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        if source in store.files:
            update.changed += 1
        else:
            update.new += 1
        store.files[source] = {"hash": digest, "entries": [e.model_dump(exclude_none=True) for e in entries]}
    for source in sorted(set(store.files) - seen):
        if prune_prefixes is not None and any(p and source.startswith(p + "/") for p in prune_prefixes):
            del store.files[source]
            update.removed += 1
    if update.new or update.changed or update.removed:
        store.save()
    return update


def load_glossary(kb_dir: Path) -> list[GlossaryEntry]:
    return GlossaryStore.load(kb_dir).entries()
