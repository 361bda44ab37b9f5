"""What the CLI checks before it works: the knowledge base exists, paths exist, the output can be
written in a known format; and what it says when a run stops: how to resume it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

KB_MARKERS = ("kb.json", "warehouse.duckdb", "runs.sqlite", "glossary.json")
SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
FORMATS = ("md", "html", "pdf", "docx")
FILE_ONLY = ("pdf", "docx")  # binary: never printed to the terminal


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
    fmt = report_format(output, fmt)
    if output is not None:
        check_writable(output)
    return fmt


def check_outputs(outputs: list[Path] | None, fmt: str | None) -> list[tuple[Path | None, str]]:
    """Every ``-o`` with its format, all checked before any research runs (no -o: the terminal).
    With several, each file's extension picks its format; the same file twice is an error."""
    if not outputs:
        return [(None, check_output(None, fmt))]
    if fmt is not None and len(outputs) > 1:
        raise ValueError("--format applies to one -o; with several, each file's extension picks its format")
    seen: set[Path] = set()
    for output in outputs:
        if (key := output.expanduser().resolve()) in seen:
            raise ValueError(f"-o {output} is given twice")
        seen.add(key)
    formats = [report_format(output, fmt) for output in outputs]  # every name first, then the places
    for output in outputs:
        check_writable(output)
    return list(zip(outputs, formats))


def report_format(output: Path | None, fmt: str | None) -> str:
    """--format wins; else the extension of -o (an unknown one is an error); else Markdown."""
    if output is None:
        if fmt in FILE_ONLY:
            raise ValueError(f"a {fmt.upper()} report needs a file: add -o report.{fmt}")
        return fmt or "md"
    if output.is_dir():
        raise IsADirectoryError(f"-o {output} is a folder: name a file, e.g. {output / 'report.md'}")
    suffix = output.suffix.lower()
    if fmt is None and suffix not in SUFFIXES:
        raise ValueError(f"unknown report format {suffix or '(no extension)'} for {output}: use .md, .html, .pdf "
                         f"or .docx (or --format)")
    return fmt or SUFFIXES[suffix]


def check_writable(output: Path) -> None:
    """The file can be created: its nearest existing folder is a folder and writable (missing folders
    are made when the report is written), and an existing file may be replaced."""
    parent = output.parent if str(output.parent) else Path(".")
    existing = next(p for p in (parent, *parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise NotADirectoryError(f"cannot write the report to {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise PermissionError(f"cannot write the report to {output}: permission denied")


def resume_hint(kb_dir: Path, run_id: str, runs_url: str | None = None) -> str | None:
    """'dossier resume RUN_ID --kb KB' once the run has a checkpoint (in kb/runs.sqlite, or in PostgreSQL
    with ``runs_url``); None before its first one."""
    if runs_url is not None:
        from dossier.runs_postgres import has_run  # psycopg loads only where runs live in PostgreSQL

        found = has_run(runs_url, run_id)
    else:
        found = _in_sqlite(Path(kb_dir) / "runs.sqlite", run_id)
    return f"run {run_id} stopped; continue it with: dossier resume {run_id} --kb {kb_dir}" if found else None


def _in_sqlite(db: Path, run_id: str) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2) as con:
            row = con.execute("SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (run_id,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None
