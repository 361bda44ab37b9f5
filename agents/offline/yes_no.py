"""'Are X and Y both Z?' answered Yes or No from sentences that say what each subject is.

The predicate (Z) is the question without its subjects and its question words. A subject holds it
when a sentence naming the subject (in the sentence, or the sentence's document is titled by it)
holds every key word of the predicate. Yes: every subject holds it. No: some subject holds it, and
another is described by its own document in the same terms but not all of them ('a film director'
but not 'American'). Otherwise the question stays a comparison: no verdict is guessed. English only:
the Chinese forms of the question differ too much for these rules.
"""

from __future__ import annotations

import re

from agents.offline.candidates import Sentence
from agents.offline.relevance import make_query, names, relevance

# 'Are X and Y both …', 'Were the X and the Y both …': the two subjects are what stands before 'both'.
_BOTH_RE = re.compile(r"^\s*(?:are|were|is|was|do|does|did|have|has)\s+(?:the\s+)?(.+?),?\s+and\s+(?:the\s+)?(.+?)"
                      r"\s+both\b", re.IGNORECASE)
_RELATIVE_RE = re.compile(r"\b(?:same|different|more|less|larger|smaller|older|younger|[a-z]+er than)\b", re.IGNORECASE)
_WORDS = {"en": ("Yes.", "No.")}


def yes_no_lead(question: str, cands: list[Sentence], language: str) -> tuple[str, list[Sentence]] | None:
    """The verdict and the sentences it rests on, or None when the rules cannot decide."""
    both = _BOTH_RE.search(question)
    if language not in _WORDS or both is None or _RELATIVE_RE.search(question):
        return None
    subjects = [both.group(1).strip(), both.group(2).strip()]
    predicate = make_query(_predicate(question, subjects))
    if not predicate.groups:
        return None
    holding = {s: _holding(predicate, s, cands) for s in subjects}
    yes, no = _WORDS[language]
    found = [h for s in subjects if (h := holding[s]) is not None]
    if len(found) == len(subjects):
        return yes, _distinct(found)
    lacking = [_described(predicate, s, cands) for s in subjects if holding[s] is None]
    described = [d for d in lacking if d is not None]
    if found and len(described) == len(lacking):
        return no, _distinct([found[0], *described])
    return None


def _distinct(sentences: list[Sentence]) -> list[Sentence]:
    """One sentence naming both subjects serves both."""
    out: list[Sentence] = []
    for c in sentences:
        if not any(o.ev.id == c.ev.id and o.pos == c.pos for o in out):
            out.append(c)
    return out


def _predicate(question: str, subjects: list[str]) -> str:
    text = question
    for s in sorted(subjects, key=len, reverse=True):
        text = re.sub(re.escape(s), " ", text, flags=re.IGNORECASE)
    text = re.sub(r"^\s*(?:are|were|is|was|do|does|did|have|has)\b|\bboth\b|\band\b|\bthe\b", " ", text,
                  flags=re.IGNORECASE)
    return " ".join(text.split())


def _about(subject: str, c: Sentence) -> bool:
    """The sentence names the subject, or its document is titled by it."""
    title = c.subject
    return names(subject, c.text) or (bool(title) and names(subject, title) and names(title, subject))


def _holding(predicate, subject: str, cands: list[Sentence]) -> Sentence | None:
    """The first sentence about the subject that holds every key word of the predicate."""
    return next((c for c in cands if _about(subject, c) and relevance(predicate, c.text) >= 1.0), None)


def _described(predicate, subject: str, cands: list[Sentence]) -> Sentence | None:
    """The opening sentence of the subject's own document when it shares some, not all, of the
    predicate's key words: it says what the subject is, and that is not quite the predicate."""
    own = [c for c in cands if _about(subject, c) and names(subject, c.text)
           and names(c.subject, subject)]
    if not own:
        return None
    first = min(own, key=lambda c: (c.ev.char_start or 0, c.pos))
    return first if 0 < relevance(predicate, first.text) < 1.0 else None
