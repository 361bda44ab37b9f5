"""Overlap terms of English and Chinese text: English words minus stopwords, lightly stemmed;
Chinese as character bigrams, so no dictionary ships.
"""

from __future__ import annotations

import re
import unicodedata

from tools.text.language import HAN, HAN_RE

_TOKEN_RE = re.compile(rf"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)*(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[{HAN}]+")
_STOPWORDS = frozenset("""
a about above across after again against all also am an and any are as at be been before being below between both but
by can could did do does doing done down during each either few for from further had has have having he her here hers
him his how however i if in into is it its itself just me might more most much must my no nor not now of off on once
only or other our ours out over own per same shall she should so some such than that the their theirs them then there
these they this those through to too under until up upon us very via was we were what whats when where which while who
whom whose why will with within without would yet you your yours compare compared comparison versus vs describe explain
list give tell show according overview summarize summarise summary respectively regarding based etc many say says said
mention mentioned""".split())
# Question words and glue removed before bigrams, so '微调的成本是多少' yields 微调, 成本.
_ZH_STOP_PHRASES = re.compile("为什么|什么样|什么|多少|多大|多长|多久|哪些|哪个|哪里|如何|怎么|怎样|是否|"
                              "有何|分别|以及|还是|请问|比较|对比|关于|根据|之间")
_ZH_STOP_CHARS = re.compile("[的了是吗呢吧啊么和与及或在对把被就都也而为之其这那有至到]")


def fold_accents(text: str) -> str:
    """Latin letters without their accents, one character for one ('Akinoshū' -> 'Akinoshu', 'Zürich'
    -> 'Zurich'), so a name written with or without them is one name; other scripts are untouched."""
    return text.translate(_FOLD)


def _fold_table() -> dict[int, str]:
    table = {}
    for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        base = unicodedata.normalize("NFKD", chr(code))[:1]
        if base.isascii() and base.isalpha() and base != chr(code):
            table[code] = base
    return table


_FOLD = _fold_table()


def keywords(text: str, *, numbers: bool = True) -> list[tuple[str, tuple[str, ...]]]:
    """Content words in order as (surface, terms): English words minus stopwords, lightly stemmed;
    Chinese runs split at function characters, each run's terms its character bigrams."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for token in _TOKEN_RE.findall(fold_accents(text)):
        token = re.sub(r"'s$", "", token)  # "Apple's" is about Apple
        if HAN_RE.match(token):
            out += _chinese_keywords(token)
        elif token[0].isdigit():
            if numbers:
                out.append((token, (token.replace(",", ""),)))
        else:
            parts = tuple(stem(w) for w in token.lower().split("-") if len(w) > 1 and w not in _STOPWORDS)
            out += [(token, parts)] if parts else []
    return out


def terms(text: str, *, numbers: bool = True) -> list[str]:
    """The distinct overlap terms of ``text``, in first-appearance order."""
    return list(dict.fromkeys(t for _, ts in keywords(text, numbers=numbers) for t in ts))


def stem(word: str) -> str:
    """Plural endings only: predictable, and enough for 'costs' to meet 'cost'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def _chinese_keywords(run: str) -> list[tuple[str, tuple[str, ...]]]:
    pieces = _ZH_STOP_CHARS.split(_ZH_STOP_PHRASES.sub(" ", run))
    words = [p for part in pieces for p in part.split()]
    return [(w, tuple(w[i:i + 2] for i in range(len(w) - 1)) or (w,)) for w in words]
