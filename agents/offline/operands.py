"""The things a comparison coordinates: "httpx and aiosqlite", "RAG or fine-tuning", "A vs B", "A和B".

Names need no capital letter and no lexicon entry: the words joined by the coordinating word are the
operands, up to the nearest stopword, punctuation, time expression or general-language concept
("cost", "compare", "department"). So "Compare httpx and aiosqlite" keeps both package names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.offline.text import CJK_RE, ConceptHit, extract_time_ranges, find_concepts, is_stopword, words

_CONJ = frozenset("and or vs versus 和 与 跟 或 或者 还是 及".split())
_AFTER_COMPARE = frozenset("with to against".split())  # "X compared with Y", "compare X to Y"
_COMPARE_VERBS = frozenset("compare compared comparing 比较 对比 相比".split())
_OPEN_KINDS = ("entity", "topic")  # lexicon concepts that can be compared things themselves
_JOIN = re.compile(r"^[\s&.'+/-]*$")  # what may sit between the words of one name ("S&P 500", "C++")
_MAX_WORDS = 4


@dataclass(frozen=True)
class Operand:
    label: str
    start: int
    end: int


def coordinated_operands(question: str) -> list[Operand]:
    """The first coordination of two or more named things in the question, in order; [] when none."""
    toks = _tokens(question)
    for i, (surface, _, _, _) in enumerate(toks):
        low = surface.lower()
        if low not in _CONJ and not (low in _AFTER_COMPARE and _after_compare(toks, i)):
            continue
        right = _run(question, toks, i + 1, step=1)
        left_end = i - 1 - (1 if low in _AFTER_COMPARE and toks[i - 1][0].lower() in _COMPARE_VERBS else 0)
        left = _run(question, toks, left_end, step=-1)
        if left and right:
            return [*_extend_list(question, toks, left), right]
    return []


def _after_compare(toks: list[tuple[str, str, int, bool]], i: int) -> bool:
    """"with" coordinates only after a comparing verb: "Microsoft compared with X", "compare A with B"."""
    window = [t[0].lower() for t in toks[max(0, i - _MAX_WORDS - 1):i]]
    return any(w in _COMPARE_VERBS for w in window)


def _tokens(question: str) -> list[tuple[str, str, int, bool]]:
    """(surface, term, offset, usable as part of a name) for every word."""
    blocked = [(h.start, h.end) for h in find_concepts(question) if h.kind not in _OPEN_KINDS]
    spans = [r.span for r in extract_time_ranges(question)]
    out = []
    for surface, term, pos in words(question):
        inside = any(s <= pos < e for s, e in blocked + spans)
        # Capital letters inside a name ("S&P", "AT&T") are not the stopwords "s" and "t".
        word = not is_stopword(surface, term) or (surface.isupper() and surface not in ("A", "I"))
        usable = not inside and word and surface.lower() not in _CONJ | _COMPARE_VERBS
        out.append((surface, term, pos, usable))
    return _open_concepts(question, out)


def _open_concepts(question: str, toks: list[tuple[str, str, int, bool]]) -> list[tuple[str, str, int, bool]]:
    # A glossary name made of stopwords ("The Who") is still a name: its words stay usable.
    hits: list[ConceptHit] = [h for h in find_concepts(question) if h.kind in _OPEN_KINDS]
    return [(s, t, p, u or any(h.start <= p < h.end for h in hits)) for s, t, p, u in toks]


def _run(question: str, toks: list[tuple[str, str, int, bool]], i: int, *, step: int) -> Operand | None:
    """The longest run of name words starting at token ``i`` and going in direction ``step``."""
    if step == 1:  # "compare X with the S&P 500": an article may open the right operand
        while 0 <= i < len(toks) and toks[i][0].lower() in ("the", "a", "an"):
            i += 1
    picked: list[int] = []
    j = i
    while 0 <= j < len(toks) and toks[j][3] and len(picked) < _MAX_WORDS:
        if picked:
            a, b = sorted((picked[-1], j))
            gap = question[toks[a][2] + len(toks[a][0]):toks[b][2]]
            if not _JOIN.match(gap):
                break
        picked.append(j)
        j += step
    if not picked:
        return None
    first, last = min(picked), max(picked)
    start, end = toks[first][2], toks[last][2] + len(toks[last][0])
    label = question[start:end]
    if label[0].isdigit() or (len(label) == 1 and not CJK_RE.match(label)):
        return None  # "more than 5": a number is not a compared thing
    return Operand(label, start, end)


def _extend_list(question: str, toks: list[tuple[str, str, int, bool]], left: Operand) -> list[Operand]:
    """"prompt engineering, RAG, fine-tuning and pre-training": earlier list items joined by commas."""
    items = [left]
    while True:
        before = [k for k, t in enumerate(toks) if t[2] < items[0].start]
        if not before:
            break
        k = before[-1]
        gap = question[toks[k][2] + len(toks[k][0]):items[0].start]
        if not re.fullmatch(r"\s*[,，、]\s*", gap):
            break
        prev = _run(question, toks, k, step=-1)
        if prev is None or (prev.label.islower() and all(any(c.isupper() for c in i.label) for i in items)):
            break  # "the oldest, Sid Haig or Vic Darchinyan": a lower-case word before names is no list item
        items.insert(0, prev)
    return items
