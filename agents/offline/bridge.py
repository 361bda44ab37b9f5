"""Two-sentence answers to multi-hop questions: a sentence about the question's subject that names
another document, then the sentence of that document that holds the rest of the answer.

'Grace Krilanovich's first novel was published by a publishing house founded in 2005, based where?'
No sentence holds both the name and the answer: Grace Krilanovich's page says her novel 'was
published by Two Dollar Radio', and Two Dollar Radio's page says it 'is an independent publishing
house based in Columbus, Ohio'. The first sentence is the bridge (it names the subject and the second
document's title); the pair together holds most of the question's key words, each alone does not.
The pair is scored like any sentence, on the key words of the question (relevance), the rest of the
first sentence's passage counting as its heading (it says what the bridge is about: 'the novel is
based on the story of William Buckley' under 'Strandloper (novel)'), so a single sentence that
answers outright still wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.offline.candidates import Sentence, source
from agents.offline.relevance import (
    RELEVANCE_THRESHOLD,
    Query,
    names,
    overlaps,
    relevance,
)

MAX_FIRST = 12  # bridge sentences tried, best first: enough for a page that names several others
MIN_TITLE_CHARS = 3


MAX_FOLLOWING = 2  # sentences taken from the document the bridge leads to


@dataclass(frozen=True)
class Bridge:
    first: Sentence  # names the question's subject (in it or its heading) and the next document
    following: tuple[Sentence, ...]  # from the document the first one names: the rest of the answer
    score: float  # the pair's relevance to the question (first and best following sentence)

    @property
    def sentences(self) -> list[Sentence]:
        return [self.first, *self.following]


def best_bridge(query: Query, cands: list[Sentence]) -> Bridge | None:
    """The pair of sentences that together answer the question best, if the pair reaches
    RELEVANCE_THRESHOLD and its second sentence adds key words the first lacks."""
    if not query.groups:
        return None
    titles = _titles(cands)
    firsts = sorted((c for c in cands if _anchored(query, c) and overlaps(query, f"{c.heading} {c.text}")),
                    key=lambda c: -relevance(query, c.text, c.heading))[:MAX_FIRST]
    best: Bridge | None = None
    for first in firsts:
        alone = relevance(query, first.text, first.heading)
        for src in (s for s, title in titles.items() if s != source(first.ev) and names(title, first.text)):
            for second in (c for c in cands if source(c.ev) == src and overlaps(query, c.text)):
                score = relevance(query, f"{first.text} {second.text}",
                                  f"{first.heading} {second.heading} {first.ev.text}")
                gain = score - alone
                if score >= RELEVANCE_THRESHOLD and gain * len(query.groups) >= 1 - 1e-9 and (
                        best is None or score > best.score):
                    best = Bridge(first, (second,), score)
    return _extended(query, best, cands) if best is not None else None


def _extended(query: Query, bridge: Bridge, cands: list[Sentence]) -> Bridge:
    """Another sentence of the same document when it holds a key word the pair lacks: the one
    describing the trust ('a harbour authority founded in 1911') is followed by the one saying where
    it is headquartered, when the question asks both."""
    chosen = list(bridge.following)
    src = source(chosen[0].ev)
    for c in sorted((c for c in cands if source(c.ev) == src and c not in chosen), key=lambda c: c.pos):
        if len(chosen) >= MAX_FOLLOWING:
            break
        held = " ".join(x.text for x in [bridge.first, *chosen])
        if relevance(query, f"{held} {c.text}") > relevance(query, held):
            chosen.append(c)
    return Bridge(bridge.first, tuple(sorted(chosen, key=lambda c: c.pos)), bridge.score)


def _titles(cands: list[Sentence]) -> dict[str, str]:
    """Each document's title, without a trailing qualifier, where it is long enough to be a name."""
    out: dict[str, str] = {}
    for c in cands:
        title = c.subject
        if len(title) >= MIN_TITLE_CHARS:
            out.setdefault(source(c.ev), title)
    return out


def _anchored(query: Query, c: Sentence) -> bool:
    """The sentence, or its heading, names a name of the question (any, when it names none)."""
    return not query.anchors or c.names_any(query.anchors)
