"""Names the warehouse gives tables and columns: safe lowercase identifiers, made unique with _2, _3."""

from __future__ import annotations

import re
from collections.abc import Callable


def identifier(text: str, fallback: str) -> str:
    """Lowercase; every character outside ``[a-z0-9_]`` becomes ``_``, runs of ``_`` collapse, edge
    ``_`` are trimmed, at most 60 characters; ``fallback`` when nothing is left."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", text.lower())).strip("_")[:60] or fallback


def suffixed(base: str, taken: set[str], fold: Callable[[str], str] = str) -> str:
    """``base``, or ``base_2``, ``base_3``… the first not in ``taken`` (compared after ``fold``), which
    it joins: a name never replaces one already given."""
    name, n = base, 1
    while fold(name) in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(fold(name))
    return name
