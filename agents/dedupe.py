"""One fact once per report: a pass over the written sections before citations are numbered.

Both engines' sections go through it. A body sentence that repeats an earlier body sentence (most of
the same words and the same figures) is removed; a SQL result table already shown is removed with
its one-sentence lead-in; a section left with nothing to say is dropped. The executive summary may
restate body facts, so it is neither checked nor counted. The lead-in of a table that stays is never
touched: the verifier checks the table's cells against the evidence that lead-in cites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.verify import MARKER_RE, marked_sentence_spans
from tools.text.language import HAN_RE
from tools.text.numbers import claim_numbers
from tools.text.terms import terms
from tools.vocabulary import Section

NEAR_DUPLICATE = 0.6  # Jaccard overlap of terms at which two sentences with the same figures say one thing
CONTAINED = 0.9  # share of a sentence's terms found in an earlier one (with no figure of its own) that repeats it
MIN_TERMS = 4  # shorter sentences are too generic to call repeats
_SUMMARY_RE = re.compile(r"summary|摘要|概要|总结|概述", re.IGNORECASE)


@dataclass(frozen=True)
class _Fact:
    terms: frozenset[str]
    figures: frozenset[float]


def dedupe_sections(sections: list[Section]) -> list[Section]:
    """The sections with repeated body sentences and tables removed, and emptied sections dropped."""
    seen: list[_Fact] = []
    tables: set[tuple[str, ...]] = set()
    out = []
    for k, section in enumerate(sections):
        if k == 0 and (section.id == "summary" or _SUMMARY_RE.search(section.title or "")):
            out.append(section)
            continue
        markdown = _dedupe(section.markdown, seen, tables)
        if _says_something(markdown):
            out.append(section.model_copy(update={"markdown": markdown}))
    return out


def _dedupe(markdown: str, seen: list[_Fact], tables: set[tuple[str, ...]]) -> str:
    blocks = _blocks(markdown)
    keep = [True] * len(blocks)
    for i, block in enumerate(blocks):
        if _is_table(block):
            key = tuple(" ".join(line.split()) for line in block if not re.match(r"^\s*\|?[\s:|-]+\|?\s*$", line))
            if key in tables:
                keep[i] = False
                if i > 0 and keep[i - 1] and _is_prose(blocks[i - 1]) and _sentence_count(blocks[i - 1]) <= 1:
                    keep[i - 1] = False  # its lead-in goes with it
            tables.add(key)
    for i, block in enumerate(blocks):
        if not keep[i] or not _is_prose(block):
            continue
        lead_in = i + 1 < len(blocks) and keep[i + 1] and _is_table(blocks[i + 1])
        blocks[i] = [line for line in (_line(line, seen, lead_in) for line in block) if line.strip()]
        keep[i] = bool(blocks[i])
    return "\n\n".join("\n".join(b) for b, k in zip(blocks, keep) if k)


def _line(line: str, seen: list[_Fact], lead_in: bool) -> str:
    """The line without the sentences that repeat an earlier one; each sentence kept is remembered."""
    if line.lstrip().startswith("#"):
        return line
    spans = marked_sentence_spans(line)
    if not spans:
        return line
    kept = []
    for start, end in spans:
        text = line[start:end]
        fact = _fact(text)
        if not lead_in and fact is not None and any(_repeats(fact, old) for old in seen):
            continue
        if fact is not None:
            seen.append(fact)
        kept.append(text.strip())
    if not kept:
        return ""
    glue = "" if HAN_RE.search(line) else " "
    return line[:spans[0][0]] + glue.join(kept) + line[spans[-1][1]:]


def _fact(sentence: str) -> _Fact | None:
    plain = MARKER_RE.sub(" ", sentence)
    words = frozenset(terms(plain, numbers=False))
    if len(words) < MIN_TERMS:
        return None
    return _Fact(words, frozenset(n.value for n in claim_numbers(plain)))


def _repeats(new: _Fact, old: _Fact) -> bool:
    shared = len(new.terms & old.terms)
    if new.figures == old.figures and shared / len(new.terms | old.terms) >= NEAR_DUPLICATE:
        return True
    return new.figures <= old.figures and shared >= CONTAINED * len(new.terms)


def _blocks(markdown: str) -> list[list[str]]:
    """Runs of lines separated by blank lines; a table is split from the prose around it."""
    blocks: list[list[str]] = []
    for line in markdown.split("\n"):
        if not line.strip():
            blocks.append([])
            continue
        if not blocks or (blocks[-1] and _is_table([line]) != _is_table(blocks[-1][-1:])):
            blocks.append([])
        blocks[-1].append(line)
    return [b for b in blocks if b]


def _is_table(block: list[str]) -> bool:
    return bool(block) and all(line.lstrip().startswith("|") for line in block)


def _is_prose(block: list[str]) -> bool:
    fenced = any(line.lstrip().startswith(("```", "~~~")) for line in block)  # code is never a repeat
    return not _is_table(block) and not fenced


def _sentence_count(block: list[str]) -> int:
    return sum(len(marked_sentence_spans(line)) for line in block)


def _says_something(markdown: str) -> bool:
    """Some prose or table left, not only headings."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in markdown.split("\n"))
