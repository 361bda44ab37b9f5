"""Candidate sentences of the gathered passages, gated for relevance and chosen without repeats.

A candidate is a clean prose sentence (agents.offline.prose) of a passage. It may stand in a section
only when it is about that section's question: relevance at or above the calibrated threshold, a
key word in the sentence itself, a key word besides the names (what is asked about them), and, when
the question names a subject that sets it apart from its sibling questions, that subject in the
sentence or its passage heading. The best are then picked by maximal marginal relevance, so
near-duplicates from overlapping chunks are not repeated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from agents.offline.prose import is_prose, tidy_links
from agents.offline.reflect import is_draft
from agents.offline.relevance import RELEVANCE_THRESHOLD, Query, names, on_aspect, overlaps, relevance
from agents.offline.versions import superseded_ids
from tools.text.language import HAN_RE
from tools.text.numbers import claim_numbers
from tools.text.sentences import sentence_spans, squash
from tools.text.terms import terms
from tools.vocabulary import Evidence

MAX_PER_SOURCE = 3  # so one long document cannot fill a section
DUPLICATE_JACCARD = 0.6  # term overlap at which two sentences say the same thing
CENTRALITY_WEIGHT, NUMBERS_BONUS, REDUNDANCY_PENALTY = 0.5, 0.1, 0.5
DRAFT_FACTOR = 0.6
_QUALIFIER_RE = re.compile(r"\s*\([^)]*\)\s*$")
_NOISE_RE = re.compile(r"\*\*|__|`|\[ev:[^\]]*\]|\[\d+(?:,\s*\d+)*\]")


@dataclass(frozen=True)
class Sentence:
    ev: Evidence
    rank: int  # the evidence's place in the section (retrieval order)
    pos: int  # offset in the evidence text
    text: str
    terms: frozenset[str]
    figures: tuple[float, ...]  # the values it states: same words, other figures is no duplicate
    centrality: float = 0.0  # mean similarity to the other candidates: what many passages agree on
    superseded: bool = False  # from an earlier version of a document whose later version is here too

    @property
    def heading(self) -> str:
        return f"{self.ev.title or ''} {self.ev.section or ''}"

    @property
    def subject(self) -> str:
        """The document's title without a trailing qualifier: 'Strandloper (novel)' is 'Strandloper'."""
        return _QUALIFIER_RE.sub("", " ".join((self.ev.title or "").split()))

    def names_any(self, anchors: tuple[str, ...]) -> bool:
        """The sentence, or its heading, names one of ``anchors``."""
        return any(names(a, f"{self.heading} {self.text}") for a in anchors)


@dataclass(frozen=True)
class Topic:
    """What a section is about: its questions, and the subjects that set it apart (any one must appear)."""

    queries: tuple[Query, ...]
    subjects: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # the sibling sections' subjects: a sentence about one of them belongs there


def candidates(evs: list[Evidence]) -> list[Sentence]:
    old = superseded_ids(evs)  # a draft, v1 or replaced document loses to its later version
    out = []
    for rank, ev in enumerate(e for e in evs if e.kind == "passage"):
        for start, end in sentence_spans(ev.text):
            text = tidy(ev.text[start:end])
            if usable(text):
                figures = tuple(sorted(n.value for n in claim_numbers(text)))
                out.append(Sentence(ev, rank, start, text, frozenset(terms(text, numbers=False)), figures,
                                    superseded=ev.id in old))
    return [replace(c, centrality=_centrality(c, out)) for c in out]


def _centrality(c: Sentence, cands: list[Sentence]) -> float:
    sims = [len(c.terms & o.terms) / math.sqrt(len(c.terms) * len(o.terms) or 1) for o in cands if o is not c]
    return sum(sims) / len(sims) if sims else 0.0


def tidy(raw: str) -> str:
    """Markdown emphasis, links and the source's own footnote marks out; a clause cut at a semicolon
    is made a sentence. Punctuation and case only: the words and figures stay as written."""
    text = " ".join(_NOISE_RE.sub("", tidy_links(squash(raw))).split())
    text = text[:-1] + "." if text.endswith(";") else text[:-1] + "。" if text.endswith("；") else text
    return text[:1].upper() + text[1:] if text[:1].islower() and text[:1].isascii() else text


def usable(text: str) -> bool:
    """Whole prose statements only: not list lead-ins, fragments, walls of text, markup or code."""
    cjk = len(HAN_RE.findall(text))
    long_enough = cjk >= 10 or (len(text) >= 30 and len(text.split()) >= 5)
    return (long_enough and len(text) <= 500 and not text.endswith((":", "：", ",")) and is_prose(text)
            and not _cut_open(text))


def _cut_open(text: str) -> bool:
    """A ')' closes a '(' the sentence does not hold: the start of the sentence was cut off (a chunk
    that begins inside '(born …, 2 May 1936) is an English pop singer')."""
    depth = 0
    for ch in text:
        depth += (ch in "(（") - (ch in ")）")
        if depth < 0:
            return True
    return False


def on_topic(c: Sentence, topic: Topic) -> float:
    """The sentence's relevance to the topic, or 0 when it fails the gate."""
    if topic.subjects and not any(names(s, f"{c.heading} {c.text}") for s in topic.subjects):
        return 0.0
    if any(names(o, c.text) for o in topic.others) and not any(names(s, c.text) for s in topic.subjects):
        return 0.0  # it names another section's subject and not this one's
    best = max((relevance(q, c.text, c.heading) for q in topic.queries
                if overlaps(q, c.text) and on_aspect(q, c.text, c.heading)), default=0.0)
    return best if best >= RELEVANCE_THRESHOLD else 0.0


def select(cands: list[Sentence], topic: Topic, limit: int, taken: list[Sentence] | None = None) -> list[Sentence]:
    """Greedy maximal marginal relevance over the on-topic sentences: the best remaining one, less
    its similarity to what is already chosen; near-duplicates are dropped."""
    scored = [(c, _score(c, r)) for c, r in ((c, on_topic(c, topic)) for c in cands) if r > 0]
    if not scored and _other_script(cands, topic):
        # All the evidence is in the other script and no lexicon term bridges it: the most central
        # sentences of passages the research step found for this question are quoted as they are.
        scored = [(c, _score(c, 0.0)) for c in cands]
    chosen: list[Sentence] = []
    taken = list(taken or [])
    while scored and len(chosen) < limit:
        def adjusted(k: int) -> tuple[float, int]:
            c, s = scored[k]
            return s - REDUNDANCY_PENALTY * redundancy(c, chosen + taken), -k
        best = max(range(len(scored)), key=adjusted)
        cand, _ = scored.pop(best)
        per_source = sum(source(c.ev) == source(cand.ev) for c in chosen)
        if redundancy(cand, chosen + taken) < DUPLICATE_JACCARD and per_source < MAX_PER_SOURCE:
            chosen.append(cand)
    return chosen


def _score(c: Sentence, rel: float) -> float:
    score = rel + CENTRALITY_WEIGHT * c.centrality + NUMBERS_BONUS * bool(c.figures)
    return score * (DRAFT_FACTOR if c.superseded or is_draft(c.ev) else 1.0)


def _other_script(cands: list[Sentence], topic: Topic) -> bool:
    script = is_cjk(" ".join(q.text for q in topic.queries))
    return bool(cands) and all(is_cjk(c.text) != script for c in cands) and not topic.subjects


def redundancy(cand: Sentence, chosen: list[Sentence]) -> float:
    """Word overlap with the closest chosen sentence, halved when the figures differ: a draft and
    a final version of one sentence both deserve a place."""
    sims = [len(cand.terms & c.terms) / (len(cand.terms | c.terms) or 1) * (1.0 if cand.figures == c.figures else 0.5)
            for c in chosen]
    return max(sims, default=0.0)


def is_cjk(text: str) -> bool:
    return len(HAN_RE.findall(text)) * 3 >= len(re.findall(r"[A-Za-z]", text)) and bool(HAN_RE.search(text))


def source(ev: Evidence) -> str:
    return ev.source or ev.doc_id or ev.id
