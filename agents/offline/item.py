"""The line item a figure question asks about, and whether any gathered piece names it.

"What was the effective tax rate in 2019?", "What was the percentage change in gross profit between 2018
and 2019?": the answer is a figure of one named item (a row or column of a table, a noun phrase of a
passage). A knowledge base that holds other figures for those years, but nowhere the words of that item
together, does not hold the answer, however many of the question's other words ("change", "2019") it
matches. Names (capitalised anchors) are checked elsewhere (``agents.offline.support``); this covers the
lower-case items financial and operational questions are made of.

Only figure questions are judged: they open with "what was/were/is/are (the)" or "how much", and name a
year or a figure operation. Other questions (who, why, which film...) keep the relevance gates alone.
"""

from __future__ import annotations

import re

from agents.offline.sql_intent import family_words
from tools.text.terms import terms
from tools.vocabulary import Evidence

_FIGURE_Q_RE = re.compile(r"^\s*(?:what\s+(?:was|were|is|are)\b|how\s+much\b)", re.I)
_FIGURE_HINT_RE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)|\b(?:change|percentage|percent|average|total|"
                             r"respectively|difference|ratio|increase|decrease)\b", re.I)
# Words of the computation and its framing, never of the item itself.
_FRAME = frozenset(terms(
    "change changes percentage percent average total respective respectively value values amount amounts "
    "difference ratio increase decrease growth sum number figure figures company company's group year years "
    "fiscal financial period periods end ended ending beginning reported million millions billion thousand "
    "thousands proportion what was were is are the of in from to between and for as at on during "
    "january february march april may june july august september october november december quarter"))
MAX_ITEM_WORDS = 5  # longer questions describe more than an item; they are left to the relevance gates
_TOKEN_RE = re.compile(r"[a-z]+")
_SPLIT_RE = re.compile(r"\band\b|\bor\b|,|/", re.I)
_CLAUSE_RE = re.compile(r"[?;]|,?\s+(?:and|but)\s+(?=(?:how|what|which|who|whom|why|when|where|is|are|was|were|"
                        r"did|does|do|has|have|had|can|will)\b)", re.I)


def item_terms(question: str) -> list[str]:
    """The item's words (stemmed) when ``question`` is a figure question about one, else []."""
    return [t for part in item_parts(question) for t in part]


def item_parts(question: str) -> list[list[str]]:
    """The items a figure question names, each as its words: "between Deferred Revenue and Other
    non-current liabilities" names two, each of which may stand in its own row."""
    if not _FIGURE_Q_RE.match(question) or not _FIGURE_HINT_RE.search(question):
        return []
    first = _CLAUSE_RE.split(question, 1)[0]  # "..., and how much had been spent?" asks a second question
    parts = [_content(chunk) for chunk in _SPLIT_RE.split(first)]
    parts = [p for p in parts if p]
    return parts if 0 < sum(map(len, parts)) <= MAX_ITEM_WORDS else []


def _content(text: str) -> list[str]:
    return [t for t in terms(text, numbers=False) if t not in _FRAME and _TOKEN_RE.fullmatch(t)]


def _terms(ev: Evidence) -> set[str]:
    found = set(terms(_text(ev), numbers=False))
    return found | family_words(found) if ev.kind == "sql" else found  # "size_kb" is the "disk space"


def _text(ev: Evidence) -> str:
    if ev.kind == "sql":
        return " ".join([ev.text, ev.sql or "", " ".join(ev.columns)])
    return f"{ev.title or ''} {ev.section or ''} {ev.text}"


def item_named(question: str, evs: list[Evidence]) -> bool:
    """Every item the question names is held by some gathered piece: its words together (all of them;
    all but one of four or five)."""
    texts = [_terms(e) for e in evs]
    for part in item_parts(question):
        need = len(part) - (len(part) >= 4)
        if not any(len(set(part) & found) >= need for found in texts):
            return False
    return True


def item_phrase(question: str) -> str:
    """The item as the question writes it, for the abstention ("anything on effective tax rate")."""
    wanted = set(item_terms(question))
    words = re.findall(r"[A-Za-z][\w'-]*", question)
    kept = [w for w in words if set(terms(w, numbers=False)) & wanted]
    return " ".join(kept)
