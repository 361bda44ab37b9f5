"""Links from a report's references back to what they cite: a passage to its source file, relative
to where the report is written, and a SQL result to the ``dossier sql`` command that runs its query
again. Both are built here, in code, from the evidence's provenance, never from document text, so a
hostile passage or file name can neither plant a link nor break out of the shell quoting.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from tools.vocabulary import Evidence

_DOUBLE_QUOTED_SPECIAL_RE = re.compile(r'([\\"$`])')  # what stays special inside "..." in a POSIX shell


@dataclass(frozen=True)
class RefLinks:
    """Where a report goes: ``report_dir`` (None when it is printed or shown inline: no file links),
    the knowledge base its queries ran on, and the folder that ``source`` paths are relative to
    (the parent of the folder that was ingested; the working folder unless given)."""

    report_dir: Path | None = None
    kb_dir: Path | None = None
    sources_root: Path | None = None

    @classmethod
    def for_output(cls, output: Path | None, *, kb_dir: Path | None = None,
                   sources_root: Path | None = None) -> RefLinks:
        return cls(Path(output).parent if output is not None else None, kb_dir, sources_root)

    def file_href(self, ev: Evidence) -> str | None:
        """A relative URL from the report to the passage's file (a PDF opens at its page), when the
        file is there; None otherwise."""
        if self.report_dir is None or ev.kind == "sql" or not ev.source:
            return None
        source = PurePosixPath(ev.source)
        if source.is_absolute() or ".." in source.parts:
            return None  # sources are relative paths inside the ingested folder; anything else is not followed
        path = (self.sources_root or Path.cwd()) / Path(*source.parts)
        if not path.is_file():
            return None
        try:
            rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.report_dir))
        except ValueError:  # another drive on Windows: no relative path exists
            return None
        href = quote(Path(rel).as_posix(), safe="/")  # ':' too: a file named 'javascript:x' stays a path
        return href + (f"#page={ev.page}" if ev.page and path.suffix.lower() == ".pdf" else "")

    def sql_command(self, ev: Evidence) -> str | None:
        """``dossier sql "…" --kb KB``: the query again, quoted for a POSIX shell."""
        if ev.kind != "sql" or not ev.sql:
            return None
        sql = ev.sql if not ev.sql.startswith("-") else " " + ev.sql  # a leading '--' comment is not an option
        command = f"dossier sql {shell_quote(sql)}"
        return command + (f" --kb {shell_quote(str(self.kb_dir))}" if self.kb_dir is not None else "")


def shell_quote(text: str) -> str:
    """One shell word for ``text``. SQL quotes its strings with ', which single quotes can only
    spell as '"'"': double quotes read better, escaping the four characters special there. With
    '!' (history expansion in an interactive bash) it falls back to single quotes."""
    if "'" not in text or "!" in text or not text:
        return shlex.quote(text)
    return '"' + _DOUBLE_QUOTED_SPECIAL_RE.sub(r"\\\1", text) + '"'
