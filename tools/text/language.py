"""Scripts and languages: the one definition of the CJK character ranges and the one language rule.

Language rule (documents, chunks, queries and questions alike): Latin letters are down-weighted
(three letters carry about as much as one ideograph), then the CJK share of the letters decides —
at least ``ZH_SHARE`` is Chinese, at most ``EN_SHARE`` is English, in between is mixed. A question
is planned and answered in Chinese when it is not English by that rule and holds a Han character
(``question_language``), so the offline planner and the report always pick the same language.
"""

from __future__ import annotations

import re

# --- character ranges (regex class bodies: combine them inside [...]) -------------------------

HAN_BMP = (
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
)
HAN_SUPPLEMENTARY = "\U00020000-\U0003134f"  # CJK extensions B..H
HAN = HAN_BMP + HAN_SUPPLEMENTARY  # Chinese characters (also Japanese kanji)
KANA = "\u3040-\u30ff"  # hiragana, katakana
HANGUL_SYLLABLES = "\uac00-\ud7af"
CJK_PUNCTUATION = "\u3000-\u303f"  # ideographic space, 。、「」 and friends
FULLWIDTH_FORMS = "\uff00-\uffef"  # ，！？０-９ and halfwidth katakana
# Scripts written without spaces, where one character is roughly one model token.
CJK_CHAR_CLASS = KANA + HAN + HANGUL_SYLLABLES

HAN_RE = re.compile(f"[{HAN}]")
CJK_RE = re.compile(f"[{CJK_CHAR_CLASS}]")
# Letters of the space-separated alphabets (Latin with accents, Greek, Cyrillic).
LATIN_RE = re.compile("[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")

# --- the language rule ---------------------------------------------------------------------------

LETTERS_PER_CJK_CHAR = 3.0  # one ideograph carries about as much content as three Latin letters
ZH_SHARE = 0.7  # weighted CJK share at or above which a text is Chinese
EN_SHARE = 0.3  # at or below which it is English; in between it is mixed


def is_cjk(ch: str) -> bool:
    """True for a single Han, kana or Hangul character (not CJK punctuation)."""
    return len(ch) == 1 and CJK_RE.match(ch) is not None


def has_han(text: str) -> bool:
    return HAN_RE.search(text) is not None


def cjk_share(text: str) -> float | None:
    """Weighted share of CJK content among the letters of ``text``; None when it has no letters."""
    cjk = len(CJK_RE.findall(text))
    latin = len(LATIN_RE.findall(text)) / LETTERS_PER_CJK_CHAR
    if cjk + latin == 0:
        return None
    return cjk / (cjk + latin)


def detect_language(text: str, *, default: str = "en") -> str:
    """``"zh"``, ``"en"`` or ``"mixed"`` by the weighted share of CJK vs Latin letters.

    ``default`` is returned for text without letters (numbers, symbols, empty).
    """
    share = cjk_share(text)
    if share is None:
        return default
    if share >= ZH_SHARE:
        return "zh"
    if share <= EN_SHARE:
        return "en"
    return "mixed"


def question_language(question: str, setting: str = "auto") -> str:
    """``"zh"`` or ``"en"``: the language a question is planned and reported in, unless ``setting``
    fixes it. Chinese when the question is Chinese or mixed and has a Han character, so
    'LangChain 和 LlamaIndex 哪个好' is answered in Chinese."""
    if setting != "auto":
        return setting
    return "zh" if detect_language(question) != "en" and has_han(question) else "en"
