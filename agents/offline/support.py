"""Does the gathered evidence support a question, or must the report say the knowledge base lacks it?

Support is judged per piece of evidence, never pooled: 'PostgreSQL' in one passage and 'GB' in
another support nothing. A question is supported when some passages or table results, each on
their own, hold enough of its key words (SUPPORT_THRESHOLD) and, between them, name every anchor
(the names and specific terms the question is about). Abstention wording is shared with the
benchmarks, which detect it by its first words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from agents.offline.relevance import RELEVANCE_THRESHOLD, Query, make_query, names, relevance
from agents.offline.schema_link import place_phrase_picked
from agents.offline.sql_answer import is_overview
from agents.offline.sql_intent import family_words
from agents.offline.text import abbreviates
from tools.text.numbers import claim_numbers
from tools.text.terms import terms
from tools.vocabulary import Evidence

# Calibrated by benchmarks/calibrate_relevance.py on the HotpotQA dev split (questions 1-50): the
# least per-passage key-word coverage that keeps false abstention on gold paragraphs <= 10% while
# abstaining most often against other questions' paragraphs (see calibrate_relevance.json).
SUPPORT_THRESHOLD = 0.15  # dev: false abstention 0.08, abstention 0.94; test: 0.08 and 0.98
MAX_RELATED = 3
MAX_BRIDGE_CANDIDATES = 8  # best-scoring pieces tried in pairs for a multi-hop bridge
ABSTAIN = {"en": "The knowledge base does not contain", "zh": "知识库中没有"}
_SQL_LITERAL_RE = re.compile(r"'((?:[^']|'')*)'")
_SQL_IDENT_RE = re.compile(r'"((?:[^"]|"")+)"')
MAX_BOUND_GAP = 2
_SPLIT_RE = re.compile(r"[,;:.!?()，；：。！？、]|"
                       r"\b(?:and|or|but|vs|versus|than|with|which|who|whom|whose|that|is|are|was|were)\b"
                       r"|和|与|及|或|还是|以及|而", re.IGNORECASE)


@dataclass(frozen=True)
class Support:
    supported: bool
    evidence: tuple[Evidence, ...]  # the pieces that support it, best first
    missing: tuple[str, ...]  # anchors no supporting piece names
    closest: tuple[Evidence, ...]  # the best-scoring pieces, supporting or not
    absent: tuple[str, ...] = ()  # anchors no gathered piece names at all: what the wording may deny


def evidence_text(ev: Evidence) -> tuple[str, str]:
    """(body, heading) a piece of evidence is judged on: a passage's text under its title and
    section; a table result's rows under its tables, columns and the literals it filtered on."""
    if ev.kind == "sql":
        literals = " ".join(m.group(1) for m in _SQL_LITERAL_RE.finditer(ev.sql or ""))
        # the columns it read, filtered or grouped on too: a count of rows with "Laps" = 80 is about laps
        read = dict.fromkeys([*ev.columns, *(m.group(1) for m in _SQL_IDENT_RE.finditer(ev.sql or ""))])
        cols = " ".join(c.replace("_", " ") for c in read if c not in ev.tables)
        return f"{ev.text} {literals}", f"{' '.join(ev.tables)} {cols}"
    return ev.text, f"{ev.title or ''} {ev.section or ''}"


def assess(question: str | Query, evs: list[Evidence], *, threshold: float | None = None) -> Support:
    query = make_query(question) if isinstance(question, str) else question
    limit = SUPPORT_THRESHOLD if threshold is None else threshold
    usable = [e for e in evs if e.kind == "passage" or (e.kind == "sql" and e.rows)]
    scored = sorted(((_score(query, e), i, e) for i, e in enumerate(usable)), key=lambda t: (-t[0], t[1]))
    good = [e for s, _, e in scored if s >= limit and _anchored(query, e)]
    missing = tuple(a for a in query.anchors if not any(named_by(a, e) for e in good))
    ok = bool(good) and not missing and _together(query, good)
    absent = tuple(a for a in missing if not any(named_by(a, e) for e in usable))
    return Support(ok, tuple(good), missing, tuple(e for _, _, e in scored[:MAX_RELATED]), absent)


def holds_nothing(question: str | Query, evs: list[Evidence]) -> bool:
    """The knowledge base has nothing on the question: a name it asks about is in no gathered passage
    or table, or no piece reaches SUPPORT_THRESHOLD of its key words. The report then says so."""
    query = make_query(question) if isinstance(question, str) else question
    usable = [e for e in evs if e.kind == "passage" or (e.kind == "sql" and e.rows)]
    if any(not any(named_by(a, e) for e in usable) for a in query.anchors):
        return True
    return max((_score(query, e) for e in usable), default=0.0) < SUPPORT_THRESHOLD


def answered_as_asked(question: str | Query, evs: list[Evidence]) -> bool:
    """The question as written is about what was gathered: no name it asks about is missing and some
    piece holds at least RELEVANCE_THRESHOLD of its key words (the sentence gate's bar, stricter than
    the per-piece SUPPORT_THRESHOLD that multi-hop pieces each meet)."""
    query = make_query(question) if isinstance(question, str) else question
    usable = [e for e in evs if e.kind == "passage" or (e.kind == "sql" and e.rows)]
    if holds_nothing(query, usable):
        return False
    ranked = sorted(usable, key=lambda e: -_score(query, e))[:MAX_BRIDGE_CANDIDATES]
    return any(_score(query, e) >= _bar(e) for e in ranked) or _bridged(query, ranked)


def _bar(ev: Evidence) -> float:
    """A table result holds column names and cells, never the question's verbs and nouns of time
    ('On which day did … trade'): half the sentence bar is its share of the key words."""
    return RELEVANCE_THRESHOLD / 2 if ev.kind == "sql" else RELEVANCE_THRESHOLD


def _bridged(query: Query, ranked: list[Evidence]) -> bool:
    """A multi-hop question is answered by two pieces together when one names the other's subject
    (its title): the bridge. Their joint text must then hold RELEVANCE_THRESHOLD of the key words."""
    texts = [" ".join(evidence_text(e)) for e in ranked]
    subjects = [e.title or "" for e in ranked]
    for i, j in ((i, j) for i in range(len(ranked)) for j in range(len(ranked)) if i != j):
        if (subjects[j] and names(subjects[j], texts[i])
                and relevance(query, f"{texts[i]} {texts[j]}") >= RELEVANCE_THRESHOLD):
            return True
    return False


def _together(query: Query, good: list[Evidence]) -> bool:
    """Anchors the question binds into one subject ('PostgreSQL shared_buffers', 'the budget of
    Harbour Bridge') are named by one piece of evidence, or by pieces linked through their subjects
    (one names the other's title, as a bridge in a multi-hop question does). Anchors in different
    clauses, or set side by side ('X and Y', 'X vs Y'), may each stand in their own evidence."""
    pairs = _bound(query.text, query.anchors)
    if not pairs:
        return True
    texts = [" ".join(evidence_text(e)) for e in good]
    joined = [" ".join(texts[i] for i in group) for group in _linked(good, texts)]
    return all(any(names(a, j) and names(b, j) for j in joined) for a, b in pairs)


def _bound(question: str, found: tuple[str, ...]) -> list[tuple[str, str]]:
    """Neighbouring anchors in one phrase: at most MAX_BOUND_GAP words between them, and no
    punctuation, conjunction or relative word ('PostgreSQL shared_buffers', 'PostgreSQL set
    shared_buffers', 'the budget of Harbour Bridge'; not 'X and Y', not 'X, which … Y')."""
    spans = sorted((question.find(a), a) for a in found if question.find(a) >= 0)
    out = []
    for (s1, a), (s2, b) in pairwise(spans):
        gap = question[s1 + len(a):s2]
        if len(gap.split()) <= MAX_BOUND_GAP and not _SPLIT_RE.search(gap):
            out.append((a, b))
    return out


def _linked(good: list[Evidence], texts: list[str]) -> list[list[int]]:
    """Groups of evidence connected by naming each other's title (or table)."""
    subjects = [(", ".join(e.tables) if e.kind == "sql" else e.title or "") for e in good]
    parent = list(range(len(good)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i
    for i, text in enumerate(texts):
        for j, subject in enumerate(subjects):
            if i != j and subject and names(subject, text):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(good)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def supported(question: str | Query, evs: list[Evidence], *, threshold: float | None = None) -> bool:
    return assess(question, evs, threshold=threshold).supported


def _score(query: Query, ev: Evidence) -> float:
    if is_overview(ev, query.text):  # a whole table's averages describe it; they answer no question about it
        return 0.0
    body, heading = evidence_text(ev)
    if ev.kind == "sql":  # a column named by the name's code ('AAPL' for Apple) is about that name
        heading += " " + " ".join(a for a in query.anchors if named_by(a, ev))
        heading += " " + (place_phrase_picked(query.text, ev.sql or "") or "")
    return relevance(query, body, heading)


def filtered_by_question(ev: Evidence, question: str) -> bool:
    """A table result picked by a value the question writes ("placed 5th": WHERE ... '5th'): about the
    question by construction, however few of its other words the rows hold."""
    if ev.kind != "sql" or " WHERE " not in (ev.sql or ""):
        return False
    asked = f" {' '.join(re.findall(r'[a-z0-9]+', question.lower()))} "
    for m in _SQL_LITERAL_RE.finditer((ev.sql or "").split(" WHERE ", 1)[1]):
        words = " ".join(re.findall(r"[a-z0-9]+", m.group(1).lower()))
        if len(words) >= 2 and f" {words} " in asked:
            return _asks_what_it_holds(ev, asked.replace(f" {words} ", " "))
    return False


_AGGREGATE_RE = re.compile(r"\b(?:count|sum|avg|min|max)\s*\(", re.I)


def _asks_what_it_holds(ev: Evidence, rest: str) -> bool:
    """A row looked up by name answers only a question about one of its columns: "which version of httpx"
    (a version column), not "who is the chief executive of the company behind jieba" (no such column).
    A count or total over the picked rows is what was asked of them."""
    if _AGGREGATE_RE.search(ev.sql or ""):
        return True
    wanted = set(terms(rest, numbers=False))
    held = set(terms(" ".join([*ev.columns, *ev.tables]).replace("_", " "), numbers=False))
    return bool(wanted & (held | family_words(held)))


def _anchored(query: Query, ev: Evidence) -> bool:
    return not query.anchors or any(named_by(a, ev) for a in query.anchors)


def named_by(anchor: str, ev: Evidence) -> bool:
    """The evidence names the anchor: in its text or heading, or, for a table result, through a
    column or table whose name is the anchor's code ('MSFT' for Microsoft)."""
    if names(anchor, " ".join(evidence_text(ev))):
        return True
    return ev.kind == "sql" and any(abbreviates(code, anchor) for code in [*ev.columns, *ev.tables])


# --- wording ---------------------------------------------------------------------------------

def abstention(question: str, support: Support, language: str) -> str:
    """'The knowledge base does not contain …' naming what is missing; no figures of its own (it is
    printed uncited), so a question with figures is described by its names instead of quoted."""
    q = " ".join(question.split()).rstrip("?？。.! ")
    quoted = "" if claim_numbers(q) else q
    what = [a for a in support.absent if not claim_numbers(a)]
    if language == "zh":
        if what:
            tail = f"，无法回答“{quoted}”" if quoted else ""
            return f"{ABSTAIN['zh']}关于{'、'.join(what)}的内容{tail}。"
        return f"{ABSTAIN['zh']}能回答“{quoted}”的内容。" if quoted else f"{ABSTAIN['zh']}能回答这个问题的内容。"
    if what:
        tail = f", so it cannot answer “{quoted}”" if quoted else ""
        return f"{ABSTAIN['en']} anything on {_and(what)}{tail}."
    return f"{ABSTAIN['en']} an answer to “{quoted}”." if quoted else f"{ABSTAIN['en']} an answer to this question."


def related(support: Support, language: str) -> str:
    """What the knowledge base holds nearest the question: titles of the closest documents and
    tables, uncited (they do not support it), without figures the verifier could not check."""
    names_ = list(dict.fromkeys(n for n in (_name(e) for e in support.closest) if n))
    if not names_:
        return ""
    if language == "zh":
        return "知识库中最接近的材料：" + "；".join(names_) + "。"
    return "The closest material it holds: " + "; ".join(names_) + "."


def _name(ev: Evidence) -> str:
    if ev.kind == "sql":
        candidates = [f"table {', '.join(ev.tables)}"] if ev.tables else []
    else:
        candidates = [ev.title or "", (ev.source or "").rsplit("/", 1)[-1]]
    for c in candidates:
        c = re.sub(r"[.!?;。！？；]+(?=\s|$)", "", " ".join(c.split())).strip()
        if c and not claim_numbers(c):
            return c
    return ""


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
