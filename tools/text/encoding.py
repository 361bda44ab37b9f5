"""How bytes of unknown encoding (GBK included) become clean text."""

from __future__ import annotations

import re

from tools.text.language import CJK_PUNCTUATION, FULLWIDTH_FORMS, HAN_BMP, HANGUL_SYLLABLES, KANA

_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.1
_CONTROL_BYTES = frozenset(set(range(32)) - {8, 9, 10, 12, 13, 27}) | {127}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GB_ENCODINGS = frozenset({"gb2312", "gbk", "gb18030", "hz"})
_HANGUL_RE = re.compile(f"[{HANGUL_SYLLABLES}\u1100-\u11ff\u3130-\u318f]")  # with jamo
_KANA_RE = re.compile(f"[{KANA}]")
_NATIVE_SCRIPTS = {
    **dict.fromkeys(("euc_kr", "cp949", "johab", "iso2022_kr"), (_HANGUL_RE, 0.9)),
    **dict.fromkeys(("shift_jis", "cp932", "euc_jp", "iso2022_jp", "shift_jis_2004"), (_KANA_RE, 0.2)),
}
_MAX_LATIN_NON_ASCII = 0.3  # accented letters are a minority in Latin-script text
# Han ideographs and CJK punctuation: what GBK text decodes into (kana and Hangul do not count).
_CHINESE_RE = re.compile(f"[{CJK_PUNCTUATION}{HAN_BMP}{FULLWIDTH_FORMS}]")
_EXTRA_BLANKS_RE = re.compile(r"\n(?:[ \t]*\n){3,}")


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
