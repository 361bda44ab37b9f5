"""Numbers as written in English and Chinese ('1.8M', '1,800,000', '180万'), normalised, classified
(claim, year, date, reference, ordinal, id) and compared at their written precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

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
