"""What the CLI checks before it works: the knowledge base exists, paths exist, the output can be
written in a known format; and what it says when a run stops: how to resume it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

KB_MARKERS = ("kb.json", "warehouse.duckdb", "runs.sqlite", "glossary.json")
SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}


class NotAKnowledgeBase(ValueError):
    pass


def require_kb(kb_dir: Path) -> None:
    """A reading command on a folder that holds no knowledge base (a mistyped --kb) is an error,
    not an empty answer."""
    if not any((Path(kb_dir) / name).exists() for name in KB_MARKERS):
        raise NotAKnowledgeBase(f"no knowledge base at {kb_dir}: create one with `dossier ingest FILES --kb {kb_dir}`"
                                f" (or pass the right --kb)")


def require_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")


def check_output(output: Path | None, fmt: str | None) -> str:
    """The report's format from --format or the extension of -o, checked before any research runs:
    an unknown extension, a folder, or a place that cannot be written is an error now, not later."""
    if output is None:
        if fmt == "pdf":
            raise ValueError("a PDF report needs a file: add -o report.pdf")
        return fmt or "md"
    if output.is_dir():
        raise IsADirectoryError(f"-o {output} is a folder: name a file, e.g. {output / 'report.md'}")
    suffix = output.suffix.lower()
    if fmt is None and suffix not in SUFFIXES:
        raise ValueError(f"unknown report format {suffix or '(no extension)'} for {output}: use .md, .html or .pdf"
                         f" (or --format)")
    parent = output.parent if str(output.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise PermissionError(f"cannot write the report to {output}")
    return fmt or SUFFIXES[suffix]


def resume_hint(kb_dir: Path, run_id: str) -> str | None:
    """'dossier resume RUN_ID --kb KB' once the run has a checkpoint; None before its first one."""
    db = Path(kb_dir) / "runs.sqlite"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2) as con:
            found = con.execute("SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (run_id,)).fetchone()
    except sqlite3.Error:
        return None
    return f"run {run_id} stopped; continue it with: dossier resume {run_id} --kb {kb_dir}" if found else None
