"""Find the files an ingest run should look at, and name them portably.

A file's ``source`` is its path relative to the parent of the folder the user named, with POSIX
separators (``docs/a.md`` for ``dossier ingest ./docs``), so stored data carries no absolute local
path and the same folder ingested from another machine or a bucket keeps its ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.confined import LEAVES_ROOT, leaves_root, real_root
from tools.glossary import is_glossary_name
from tools.parsing import DOC_SUFFIXES
from tools.warehouse import TABLE_SUFFIXES

FileKind = Literal["document", "table", "sidecar", "glossary", "unsupported"]
SIDECAR_SUFFIX = ".meta.yaml"


@dataclass(frozen=True)
class FoundFile:
    path: Path
    source: str
    kind: FileKind
    root: str | None = None  # real path of the folder reads must stay inside (tools.confined)


@dataclass(frozen=True)
class Problem:
    """A path that cannot be ingested, reported in the summary instead of stopping the run."""

    source: str
    reason: str


def classify(path: Path) -> FileKind:
    name = path.name.lower()
    if name.endswith(SIDECAR_SUFFIX) or name.endswith(".meta.yml"):
        return "sidecar"
    if is_glossary_name(name):  # the organisation's terms (tools/glossary.py), not a table or document
        return "glossary"
    suffix = path.suffix.lower()
    if suffix in DOC_SUFFIXES:
        return "document"
    if suffix in TABLE_SUFFIXES:
        return "table"
    return "unsupported"


def root_prefix(root: Path) -> str:
    """The source prefix every file under ``root`` gets; pruning is limited to it."""
    return root.resolve().name if root.is_dir() else ""


def discover(roots: list[Path]) -> Iterator[FoundFile | Problem]:
    seen: set[str] = set()
    for item in _discover(roots):
        # Two roots with the same folder name (a/docs, b/docs) would give two files one source.
        if isinstance(item, FoundFile) and item.source in seen:
            yield Problem(item.source, f"same source name as an earlier file; {item.path} not ingested")
            continue
        seen.add(item.source)
        yield item


def _discover(roots: list[Path]) -> Iterator[FoundFile | Problem]:
    for root in roots:
        if not root.exists():
            yield Problem(str(root), "path does not exist")
        elif root.is_dir():
            yield from _walk(root)
        else:
            yield _named(FoundFile(root, root.name, classify(root), real_root(root)))


def _walk(root: Path) -> Iterator[FoundFile | Problem]:
    prefix = root_prefix(root)
    real = real_root(root)
    # followlinks=False: a symlinked folder is never entered, so symlink loops cannot recurse.
    for folder, dirs, files in os.walk(root, followlinks=False, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for d in dirs:
            if (base / d).is_symlink():
                yield _named(Problem(_source(prefix, root, base / d), "symlinked folder not followed"))
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield _found(prefix, root, base / name, real)


def _found(prefix: str, root: Path, path: Path, real: str) -> FoundFile | Problem:
    source = _source(prefix, root, path)
    if path.is_symlink() and not path.exists():
        return _named(Problem(source, "broken or looping symlink"))
    if leaves_root(path, real):  # one link policy for documents, tables and sidecars
        return _named(Problem(source, LEAVES_ROOT))
    if not path.is_file():
        return _named(Problem(source, "not a regular file"))
    return _named(FoundFile(path, source, classify(path), real))


def _named(item: FoundFile | Problem) -> FoundFile | Problem:
    """A name that is not UTF-8 (say GBK bytes from an old archive) decodes to surrogates that no
    id, database or report can store: report it, with the bad bytes escaped, and go on."""
    try:
        item.source.encode("utf-8")
    except UnicodeEncodeError:
        shown = item.source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Problem(shown, "file name is not valid UTF-8; rename the file")
    return item


def _source(prefix: str, root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return f"{prefix}/{rel}" if prefix else rel


def sidecar_for(path: Path) -> Path | None:
    """``sales.csv`` → ``sales.meta.yaml`` (or .meta.yml) when present."""
    for suffix in (".meta.yaml", ".meta.yml"):
        candidate = path.with_name(path.name[: -len(path.suffix)] + suffix) if path.suffix else None
        if candidate is not None and candidate.is_file():
            return candidate
    return None
