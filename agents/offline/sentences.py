"""Sentences, overlap terms and numbers for English and Chinese text, with no tokenizer model.

The offline reflector and writer and the citation verifier all use these, so they agree on what a
sentence and a number are. Chinese is handled with character bigrams: no dictionary to ship.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK}]")

# --- sentences -------------------------------------------------------------------------------

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
    text = re.sub(rf"(?<=[{_CJK}，。])\s*\n\s*(?=[{_CJK}])", "", text)
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
        return after.isupper() or bool(CJK_RE.match(after))
    initial = len(word) == 1 and text[k - 1:k] in ("", " ", "(") and text[k].isupper()
    return not initial  # 'J. Smith' but '1.8M.' ends a sentence


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    chunk = text[s:e]
    return s + len(chunk) - len(chunk.lstrip()), e - len(chunk) + len(chunk.rstrip())


# --- terms -----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(rf"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)*(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[{_CJK}]+")
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
_ZH_STOP_PHRASES = re.compile("为什么|什么样|什么|多少|多大|多长|多久|哪些|哪个|哪里|如何|怎么|怎样|是否|有何|分别|以及|还是|请问|比较|对比|"
                              "关于|根据|之间")
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
        if CJK_RE.match(token):
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


# --- numbers ---------------------------------------------------------------------------------

_FULLWIDTH = str.maketrans("０１２３４５６７８９．％", "0123456789.%")
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9,
           "trillion": 1e12, "千": 1e3, "万": 1e4, "百万": 1e6, "千万": 1e7, "亿": 1e8, "万亿": 1e12}
_NUM_RE = re.compile(
    r"(?<![A-Za-z0-9_.,])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<scale>[\s-]?(?i:thousand|million|billion|trillion)s?\b|\s?(?:万亿|百万|千万|万|亿|千)"
    r"|(?:mn|bn|[kKMB])(?![A-Za-z]))?"
    r"(?P<pct>\s?(?:%|(?i:percent|per\s?cent)\b))?"
)
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
          r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE_RE = re.compile(
    rf"(?:19|20)\d{{2}}[-/.]\d{{1,2}}(?:[-/.]\d{{1,2}})?|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|\d{{1,2}}:\d{{2}}"
    rf"|\d{{4}}\s?年(?:\s?\d{{1,2}}\s?月)?(?:\s?\d{{1,2}}\s?[日号])?|\d{{1,2}}\s?月(?:\s?\d{{1,2}}\s?[日号])?"
    rf"|(?i:\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\b(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,\s*\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{4}})"
)
_REF_BEFORE_RE = re.compile(r"(?i:\b(?:section|sec\.|chapter|ch\.|table|figure|fig\.|appendix|step|phase|part"
                            r"|page|pp?\.|no\.|item|round|version|rule|article|clause)\s*|[§#第]\s*)$")
_UNIT_AFTER_RE = re.compile(r"\s?(?i:cny|rmb|usd|eur|yuan|dollars?|people|persons?|staff|employees|users|rows|gpus?"
                            r"|hours?|days?|tokens?|items?)\b|\s?[元人名个台张次]")
_RANGE_RE = re.compile(r"\s*(?:-|–|—|~|～|至|到|to)\s*")


@dataclass(frozen=True)
class Number:
    """A number as written, normalised: '1.8M', '1,800,000' and '180万' all have value 1800000."""

    start: int
    end: int
    raw: str
    value: float
    kind: str  # claim | year | date | ref | ordinal | id — only claims are checked
    percent: bool = False
    tolerance: float = 0.0  # the rounding its written precision allows: 1.8M covers 1.75M-1.85M
    bare: float | None = None  # the figure without an inferred scale ('0.2' in '0.2-3M')
    group: int = 0  # the two ends of a range share a group

    def candidates(self) -> list[tuple[float, float]]:
        """(value, tolerance) pairs it may match: 45% is also 0.45; '0.2' of '0.2-3M' is also 0.2."""
        pct = [(self.value / 100, self.tolerance / 100)] if self.percent else []
        return [(self.value, self.tolerance), *pct, *([(self.bare, 0.0)] if self.bare is not None else [])]


def find_numbers(text: str) -> list[Number]:
    t = text.translate(_FULLWIDTH)  # one character for one, so offsets stay valid
    dates = [m.span() for m in _DATE_RE.finditer(t)]
    return _link_ranges(t, [_parse(t, m, dates) for m in _NUM_RE.finditer(t)])


def claim_numbers(text: str) -> list[Number]:
    """Numbers that state a quantity; years, dates, section numbers and ordinals do not."""
    return [n for n in find_numbers(text) if n.kind == "claim"]


def number_values(text: str) -> list[float]:
    """Every value a number in ``text`` can stand for: evidence a claim is checked against."""
    return [v for n in find_numbers(text) for v, _ in n.candidates()]


def supported(number: Number, values: list[float]) -> bool:
    """True when some value equals the number, or rounds to it at the number's written precision."""
    pairs = ((c, tol, v) for c, tol in number.candidates() for v in values)
    return any(abs(c - v) <= max(tol, 1e-9 * max(abs(c), abs(v), 1.0)) for c, tol, v in pairs)


def _parse(t: str, m: re.Match[str], dates: list[tuple[int, int]]) -> Number:
    digits = m["num"].replace(",", "")
    scale = _SCALES.get((m["scale"] or "").strip(" -").lower().rstrip("s"), 1.0)
    value = float(digits) * scale
    kind = _kind(t, m, dates, value, bool(m["scale"] or m["pct"] or "," in m["num"] or "." in digits))
    return Number(m.start(), m.end(), m.group(), value, kind, bool(m["pct"]), _tolerance(digits, scale),
                  float(digits) if scale != 1.0 else None)


def _kind(t: str, m: re.Match[str], dates: list[tuple[int, int]], value: float, marked: bool) -> str:
    s, e = m.start(), m.end()
    if any(a <= s < b for a, b in dates):
        return "date"
    if s >= 2 and t[s - 1] in "-_/" and t[s - 2].isalpha() and not re.search(r"\d[A-Za-z]+$", t[max(0, s - 12):s - 1]):
        return "id"  # NW-008, GPT-4; but '0.2M-3M' is a range
    if _REF_BEFORE_RE.search(t[max(0, s - 16):s]):
        return "ref"
    if re.match(r"(?:st|nd|rd|th)(?![A-Za-z])", t[e:e + 3]):
        return "ordinal"
    if not marked and 1900 <= value <= 2100 and not _UNIT_AFTER_RE.match(t, e):
        return "year"
    return "claim"


def _tolerance(digits: str, scale: float) -> float:
    """Half a unit in the last written digit, if it has two significant digits ('2M' is exact)."""
    if "." in digits:
        significant = len(digits.replace(".", "").lstrip("0"))
        unit = 10.0 ** -len(digits.split(".")[1])
    else:
        core = digits.lstrip("0")
        significant = len(core.rstrip("0"))
        unit = 10.0 ** (len(core) - significant)
    return 0.5 * unit * scale if significant >= 2 else 0.0


def _link_ranges(t: str, numbers: list[Number]) -> list[Number]:
    """Give range ends one group, and carry a scale back: '0.2-3M' means 0.2M to 3M."""
    out: list[Number] = []
    for i, n in enumerate(numbers):
        prev = out[-1] if out else None
        if prev and prev.kind == n.kind == "claim" and _RANGE_RE.fullmatch(t[prev.end:n.start]):
            n = replace(n, group=prev.group)
            if n.percent and not prev.percent:
                out[-1] = prev = replace(prev, percent=True)
            if prev.bare is None and not prev.percent and n.bare is not None:
                scale = n.value / n.bare
                out[-1] = replace(prev, value=prev.value * scale, bare=prev.value, tolerance=prev.tolerance * scale)
        else:
            n = replace(n, group=i)
        out.append(n)
    return out

