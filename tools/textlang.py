"""Text helpers for Chinese/English: which characters are CJK, which language a text is, and how
bytes of unknown encoding (GBK included) become clean text."""

from __future__ import annotations

import re

# Han ideographs (basic, extension A, compatibility, extensions B+), kana and Hangul syllables:
# scripts written without spaces, where one character is roughly one model token.
CJK_CHAR_CLASS = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B..H
)
CJK_RE = re.compile(f"[{CJK_CHAR_CLASS}]")
# Letters of the space-separated alphabets (Latin with accents, Greek, Cyrillic).
LATIN_RE = re.compile("[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")

# One ideograph carries about as much content as three Latin letters, so letters are
# down-weighted before comparing; otherwise a half-Chinese document reads as English.
_LETTERS_PER_CJK_CHAR = 3.0
_ZH_SHARE = 0.7
_EN_SHARE = 0.3

_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.1
_CONTROL_BYTES = frozenset(set(range(32)) - {8, 9, 10, 12, 13, 27}) | {127}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GB_ENCODINGS = frozenset({"gb2312", "gbk", "gb18030", "hz"})
_HANGUL_RE = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_KANA_RE = re.compile("[\u3040-\u30ff]")
_NATIVE_SCRIPTS = {
    **dict.fromkeys(("euc_kr", "cp949", "johab", "iso2022_kr"), (_HANGUL_RE, 0.9)),
    **dict.fromkeys(("shift_jis", "cp932", "euc_jp", "iso2022_jp", "shift_jis_2004"), (_KANA_RE, 0.2)),
}
_MAX_LATIN_NON_ASCII = 0.3  # accented letters are a minority in Latin-script text
# Han ideographs and CJK punctuation: what GBK text decodes into (kana and Hangul do not count).
_CHINESE_RE = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_EXTRA_BLANKS_RE = re.compile(r"\n(?:[ \t]*\n){3,}")


def is_cjk(ch: str) -> bool:
    """True for a single Han, kana or Hangul character (not CJK punctuation)."""
    return len(ch) == 1 and CJK_RE.match(ch) is not None


def cjk_share(text: str) -> float | None:
    """Weighted share of CJK content among the letters of ``text``; None when it has no letters."""
    cjk = len(CJK_RE.findall(text))
    latin = len(LATIN_RE.findall(text)) / _LETTERS_PER_CJK_CHAR
    if cjk + latin == 0:
        return None
    return cjk / (cjk + latin)


def detect_language(text: str, *, default: str = "en") -> str:
    """``"zh"``, ``"en"`` or ``"mixed"`` by the share of CJK vs Latin letters.

    ``default`` is returned for text without letters (numbers, symbols, empty).
    """
    share = cjk_share(text)
    if share is None:
        return default
    if share >= _ZH_SHARE:
        return "zh"
    if share <= _EN_SHARE:
        return "en"
    return "mixed"


def looks_binary(data: bytes) -> bool:
    """True when the first 8 KB hold NUL bytes or many control characters (not a text file)."""
    head = data[:_SNIFF_BYTES]
    if head.startswith(_UTF16_BOMS):
        return False
    if b"\x00" in head:
        return True
    return sum(1 for b in head if b in _CONTROL_BYTES) > _MAX_CONTROL_SHARE * len(head)


def decode_bytes(data: bytes) -> str:
    """Decode text of unknown encoding: UTF-8 (BOM allowed), UTF-16 by BOM, else the likeliest
    legacy code page, GBK/GB18030 first. Never raises; undecodable bytes become U+FFFD."""
    if data.startswith(_UTF16_BOMS):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data[: _SNIFF_BYTES * 8]):
        return data.decode("utf-8-sig", errors="replace")
    import charset_normalizer  # slow to import, and most files are UTF-8

    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        return data.decode("utf-8", errors="replace")
    if best.encoding in _GB_ENCODINGS:
        return str(best)
    # charset-normalizer takes short GBK text for Big5, Korean or Japanese; Chinese is this
    # tool's second language, so clean GB text wins unless the guess reads like its language.
    gb_text = _as_gb18030(data)
    if gb_text is not None and not _reads_natively(str(best)[:_SNIFF_BYTES], best.encoding):
        return gb_text
    sample = data[:_SNIFF_BYTES]
    if sum(1 for b in sample if b > 127) <= _MAX_LATIN_NON_ASCII * len(sample):
        # Mostly ASCII: Latin-script text, where guesses on short input are close to a coin toss
        # between code pages; Western European (cp1252) is by far the most common.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return str(best)


def _as_gb18030(data: bytes) -> str | None:
    """The GB18030 reading of ``data`` if it is clean Chinese text, else None."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    wide = [ch for ch in text[:_SNIFF_BYTES] if ord(ch) > 127]
    chinese = sum(1 for ch in wide if _CHINESE_RE.match(ch))
    # Common Chinese lies in GB2312 (trail bytes >= 0xA1); accented Latin letters read as GBK
    # pair with a following ASCII letter and fall outside it.
    outside = data[:_SNIFF_BYTES].decode("gb2312", errors="replace").count("\ufffd")
    return text if wide and chinese >= 0.9 * len(wide) and outside <= 0.05 * len(wide) + 1 else None


def _reads_natively(text: str, encoding: str) -> bool:
    """True when a Korean or Japanese decoding is mostly Hangul or rich in kana, as real text is."""
    wide = [ch for ch in text if ord(ch) > 127]
    script = _NATIVE_SCRIPTS.get(encoding)
    if script is None or not wide:
        return False
    pattern, share = script
    return sum(1 for ch in wide if pattern.match(ch)) >= share * len(wide)


def _mostly_utf8(sample: bytes) -> bool:
    """UTF-8 with a few damaged bytes: replacing those beats guessing a code page for the rest."""
    text = sample.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    multibyte = sum(1 for ch in text if ord(ch) > 127) - bad
    return multibyte > 0 and bad <= max(2, len(text) // 1000)


def normalize_text(text: str) -> str:
    """Unix newlines, no NULs or BOMs, form feeds as newlines, at most two blank lines in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n")
    text = text.replace("\x00", "").replace("\ufeff", "")
    return _EXTRA_BLANKS_RE.sub("\n\n\n", text)
