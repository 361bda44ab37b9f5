"""Sentences of English and Chinese prose, with no tokenizer model.

The offline reflector and writer and the citation verifier all split text here, so they agree on
what a sentence is.
"""

from __future__ import annotations

import re

from tools.text.language import HAN, HAN_RE

_HARD_STOPS = "。！？；"
_SOFT_STOPS = "!?;"  # need whitespace after them: 'Yahoo!Japan', 'a;b' are not boundaries
_CLOSERS = "”’」』）)]\"'】*"
_STRUCTURAL_RE = re.compile(r"^\s*(?:#{1,6}\s|\||```|~~~|(?:-{3,}|\*{3,}|_{3,})\s*$)")
_ITEM_RE = re.compile(r"^\s*(?:>\s*)*(?:[-*+•]\s+|\d{1,3}[.)]\s+|\(\d{1,3}\)\s+)?")
_ABBREVIATIONS = frozenset("e.g i.e vs mr mrs ms dr prof sr jr st inc ltd corp co dept approx est cf al fig figs eq "
                           "sec jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k ph.d".split())
_ABBR_BEFORE_DIGIT = frozenset("no p pp vol ch art nr".split())  # 'No. 5' but 'the answer is no.'
_ABBR_SOFT = frozenset("etc a.m p.m".split())  # end a sentence when a capital letter follows
_WRAP_MIN = 50  # a line at least this long without final punctuation is wrapped prose, not a break


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of prose in ``text``.

    Headings, table rows, code and rules are skipped; list markers are left out of the span. A
    newline ends a sentence unless the line looks hard-wrapped (long, no final punctuation), so
    PDF and plain-text paragraphs are not cut mid-sentence.
    """
    spans: list[tuple[int, int]] = []
    for start, end in _paragraphs(text):
        spans += _split_paragraph(text, start, end)
    return spans


def split_sentences(text: str) -> list[str]:
    return [squash(text[s:e]) for s, e in sentence_spans(text)]


def squash(text: str) -> str:
    """Collapse whitespace; a line break between two Chinese characters disappears."""
    text = re.sub(rf"(?<=[{HAN}，。])\s*\n\s*(?=[{HAN}])", "", text)
    return " ".join(text.split())


def _paragraphs(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos, fenced = 0, False
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        body = line.rstrip("\r\n")
        fenced ^= body.lstrip().startswith(("```", "~~~"))
        if fenced or not body.strip() or _STRUCTURAL_RE.match(body):
            out.append((start, start))  # a hard break: nothing continues across it
            continue
        item = _ITEM_RE.match(body)
        assert item is not None  # every part of _ITEM_RE is optional, so it matches any line
        bullet = bool(body[: item.end()].strip().lstrip(">").strip())
        if out and not bullet and out[-1][1] > out[-1][0] and _wraps(text[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], start + len(body))
        else:
            out.append((start + item.end(), start + len(body)))
    return [(s, e) for s, e in out if e > s]


def _wraps(paragraph: str) -> bool:
    last = paragraph.splitlines()[-1].strip()
    return len(last) >= _WRAP_MIN and last[-1] not in _HARD_STOPS + _SOFT_STOPS + ".:："


def _split_paragraph(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, begin, i, depth = [], start, start, 0
    while i < end:
        depth = max(0, depth + (text[i] in "(（") - (text[i] in ")）"))
        # A ';' inside parentheses ends no sentence: 'Nolan ( ; born 30 July 1970) is …' stays whole.
        stop = 0 if depth and text[i] in _SOFT_STOPS else _boundary(text, i, end)
        if stop:
            spans.append((begin, stop))
            begin, i = stop, stop
        else:
            i += 1
    spans.append((begin, end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _boundary(text: str, i: int, end: int) -> int:
    """The end offset of a sentence ending at ``text[i]``, or 0 when ``text[i]`` ends nothing."""
    ch = text[i]
    if ch not in _HARD_STOPS + _SOFT_STOPS + ".":
        return 0
    j = i + 1
    while j < end and text[j] in _CLOSERS + ".":
        j += 1
    if ch in _HARD_STOPS:
        return j
    if j < end and not text[j].isspace():
        return 0  # '0.2M', 'report.md', 'e.g.,'
    if ch == "." and not _ends_sentence(text, i, j, end):
        return 0
    return j


def _ends_sentence(text: str, i: int, j: int, end: int) -> bool:
    k = i
    while k > 0 and (text[k - 1].isalpha() or text[k - 1] == "."):
        k -= 1
    word = text[k:i].lower().strip(".")
    after = text[j:end].lstrip()[:1]
    if word in _ABBREVIATIONS:
        return False
    if word in _ABBR_BEFORE_DIGIT:
        return not after.isdigit()
    if word in _ABBR_SOFT:
        return after.isupper() or bool(HAN_RE.match(after))
    initial = len(word) == 1 and text[k - 1:k] in ("", " ", "(") and text[k].isupper()
    # "A.J. Foyt", "J.R.R. Tolkien": dotted initials go with the name after them
    initials = re.fullmatch(r"(?:[a-z]\.)+[a-z]", word) is not None and text[k].isupper() and after.isupper()
    return not (initial or initials)  # 'J. Smith' but '1.8M.' ends a sentence


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    chunk = text[s:e]
    return s + len(chunk) - len(chunk.lstrip()), e - len(chunk) + len(chunk.rstrip())
