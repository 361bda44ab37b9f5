"""Text utilities of the offline roles: terms, keywords, time ranges, the lexicon (language, sentences and
numbers live in tools/text/)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache

from tools.glossary import GlossaryEntry
from tools.text.language import CJK_RE

# General language only: operations, units, measures and common business nouns. An organisation's own
# names, jargon and translations (its products, departments, methods) belong in its glossary, a file the
# knowledge base ingests (tools/glossary.py); ``use_glossary`` adds it to this lexicon for one run.
# One row per concept: kind | English terms | Chinese terms | column-name tokens it points at.
# kind: measure (numeric aspects), aspect (qualitative), entity (a category value; its column
# tokens name the column holding it), dimension (a grouping column), op (what to compute), topic.
# English terms match whole words, any of space/hyphen/underscore between parts, plus s/es/ed/ing.
# A Chinese term may carry its English gloss ("支出=spend"); without one it glosses as the first English term.
_RAW_LEXICON: dict[str, tuple[str, str, str, str]] = {
    "cost": ("measure", "cost|price|pricing|budget|spend|spent|expense|expenditure|money|how much|cheap|cheaper|"
                        "expensive|affordable",
             "成本|费用|预算=budget|花费=spend|支出=spend|开销=spend|价格=price|投入|多少钱",
             "cost budget spend price"),
    "team": ("measure", "team|team size|people|staff|staffing|headcount|engineer|person|fte|manpower",
             "团队|团队规模=team size|人数=headcount|人员=staff|人力=staff|人手=staff",
             "team size headcount people staff"),
    "duration": ("measure", "duration|how long|timeline|time|month|week|delivery time|schedule",
                 "周期|时间=time|工期|多久|多长时间|个月=months|交付时间=delivery time", "duration month"),
    "satisfaction": ("measure", "satisfaction|satisfied|rating|score|feedback",
                     "满意度|满意|评分=score|打分=score|评价=rating", "satisfaction score"),
    "size": ("measure", "size|disk space|storage|footprint|capacity", "大小|规模|容量|体积|占用空间",
             "size kb mb gb bytes capacity"),
    "risk": ("aspect", "risk|danger|threat|pitfall|downside|concern", "风险|隐患|威胁", ""),
    "benefit": ("aspect", "benefit|advantage|pros|strength|upside", "优势|优点|好处|收益", ""),
    "quality": ("aspect", "quality|accuracy|performance|effectiveness", "质量|准确率|准确性|效果|性能", ""),
    "project": ("dimension", "project", "项目", "project"),
    "department": ("dimension", "department|business unit|division|dept", "部门|事业部", "department"),
    "vendor": ("dimension", "vendor|supplier|provider|contractor", "供应商|厂商|服务商|承包商", "vendor supplier"),
    "approach": ("dimension", "approach|method|option|strategy|technique", "方案|方法|路线|技术路线|途径", "approach"),
    "category": ("dimension", "category|type|kind", "类别|类型|种类", "category type"),
    "status": ("dimension", "status|progress", "状态|进展|进度", "status"),
    "yearly": ("topic", "annual|annually|yearly|per year|each year|a year", "每年|年度|全年", "annual year"),
    "average": ("op", "average|avg|mean|typical|typically", "平均|均值|人均|一般", ""),
    "total": ("op", "total|sum|overall|combined|altogether|in total", "总计|合计|总共|总额|一共|累计|总", ""),
    "count": ("op", "how many|number of|count", "多少个|几个|数量|个数|多少家|多少项", ""),
    "compare": ("op", "compare|comparison|versus|vs|difference|differ|tradeoff|trade off",
                "比较|对比|区别|差异|相比|还是|优劣", ""),
    "trend": ("op", "trend|monthly|over time|per month|each month|by month|month over month|develop|evolve|evolution|"
                    "growth|grow|change|quarterly",
              "趋势|每月=monthly|月度=monthly|逐月=monthly|变化=change|走势|增长=growth|按月=monthly", "month date"),
    "top": ("op", "largest|most|top|highest|biggest|maximum|max|best|most expensive|peak",
            "最高|最多|最大|最贵|最好|排名", "max"),
    "bottom": ("op", "smallest|least|lowest|minimum|min|cheapest|fewest|worst", "最低|最少|最小|最便宜|最差", "min"),
    "choose": ("op", "should|choose|choice|recommend|recommendation|decide|decision|pick|better",
               "应该|选择|推荐|建议|决定|选哪个|选用|更好", ""),
    "explain": ("op", "why|explain|reason|cause|how can|how to|drive|drove|driver|factor",
                "为什么|为何|原因|如何|怎样|怎么|因素|驱动", ""),
}


@dataclass(frozen=True)
class Concept:
    key: str
    kind: str
    en: tuple[str, ...]
    zh: tuple[str, ...]
    columns: tuple[str, ...]
    gloss: dict[str, str]  # Chinese term -> English words
    value: str = ""  # the table value it stands for (glossary entries); "" when none
    table: str = ""
    origin: str = "builtin"  # or "glossary"
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class ConceptHit:
    key: str
    kind: str
    start: int
    end: int
    surface: str  # the words as the text wrote them
    gloss: str = ""  # English words for a Chinese surface


def _concept(key: str, kind: str, en: str, zh: str, cols: str) -> Concept:
    english = tuple(en.split("|"))
    pairs = [[*t.split("="), english[0]][:2] for t in zh.split("|")]
    return Concept(key, kind, english, tuple(t for t, _ in pairs), tuple(cols.split()), dict(pairs))


BUILTIN_LEXICON: dict[str, Concept] = {key: _concept(key, *row) for key, row in _RAW_LEXICON.items()}
_ACTIVE: ContextVar[dict[str, Concept] | None] = ContextVar("dossier_lexicon", default=None)


class _Lexicon(Mapping[str, Concept]):
    """The lexicon in force: built-in general language, plus the glossary ``use_glossary`` entered."""

    def _current(self) -> dict[str, Concept]:
        return _ACTIVE.get() or BUILTIN_LEXICON

    def __getitem__(self, key: str) -> Concept:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


LEXICON: Mapping[str, Concept] = _Lexicon()


@contextmanager
def use_glossary(entries: Sequence[GlossaryEntry]) -> Iterator[None]:
    """Within the block (this task or thread only), every lexicon user also sees ``entries``."""
    from agents.offline.glossary_lexicon import lexicon_with  # it builds on this module's Concept

    token = _ACTIVE.set(lexicon_with(tuple(entries)) if entries else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


_EN_STOP = frozenset(
    "a an the and or but if of in on at to for from by with about as into than then so such is are was were be "
    "been being am do does did doing have has had having will would shall should can could may might must "
    "i we you he she it they me us him her them my our your his its their this that these those there here "
    "what which who whom whose when where why how all any both each either few more most other some no not "
    "only own same too very just also per via vs versus between over under up down out off again further "
    "once s t don let lets get got need needs needed use used using make made like want wants please tell "
    "show give much many would could one two".split()
)
_ZH_STOP = frozenset(
    "的 了 是 在 有 和 与 及 以及 或 或者 还是 什么 哪些 哪个 哪 怎么 怎样 如何 吗 呢 吧 啊 我们 你们 他们 它们 "
    "我 你 他 她 它 这 那 这个 那个 这些 那些 一个 对 把 被 让 给 从 到 为 为了 以 等 之 其 中 上 下 会 能 可以 "
    "要 需要 多少 请 个 各 每 都 也 就 还 更 很 非常 之间 方面 情况 有没有 是否".split()
)
_TOKEN_RE = re.compile(rf"[{CJK_RE.pattern[1:-1]}]+|[A-Za-z][A-Za-z0-9]*|\d+(?:\.\d+)?")


def stem(word: str) -> str:
    """Light suffix stripping; both sides of every comparison go through it, so it need not be a real stem."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("sses"):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        return w[:-2]
    return w


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    # Imported and initialised on first use: loading the dictionary takes about a second.
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


def words(text: str) -> list[tuple[str, str, int]]:
    """Every word as (surface, term, offset): English lowercased and stemmed, Chinese cut by jieba."""
    out: list[tuple[str, str, int]] = []
    for m in _TOKEN_RE.finditer(text):
        run = m.group()
        if CJK_RE.match(run):
            pos = m.start()
            for piece in _jieba().lcut(run):
                out.append((piece, piece, pos))
                pos += len(piece)
        else:
            out.append((run, stem(run), m.start()))
    return out


def _is_stop(surface: str, term: str) -> bool:
    return surface.lower() in _EN_STOP or term in _EN_STOP or surface in _ZH_STOP


def is_stopword(surface: str, term: str = "") -> bool:
    return _is_stop(surface, term or stem(surface))


def tokenize(text: str) -> list[str]:
    """Content terms in order: stopwords removed, English stemmed, Chinese as jieba words."""
    return [term for surface, term, _ in words(text) if not _is_stop(surface, term)]


def abbreviates(code: str, name: str) -> bool:
    """A code of capitals that stands for a name: its letters in order within the name, from the
    name's first letter ('MSFT' for Microsoft, 'AAPL' for Apple: a doubled letter counts once), or a
    multi-word name's initials ('IBM'). Tickers, table and column codes are written this way."""
    letters = re.sub(r"[^A-Za-z]", "", code)
    if not (2 <= len(letters) <= 6 and letters.isupper()):
        return False
    words_ = re.findall(r"[a-z0-9]+", name.lower())
    if len(words_) > 1 and "".join(w[0] for w in words_) == letters.lower():
        return True
    flat, wanted = "".join(words_), re.sub(r"(.)\1", r"\1", letters.lower())
    if len(wanted) < 3 or not flat.startswith(wanted[0]) or flat == letters.lower():
        return False
    rest = iter(flat)
    return all(ch in rest for ch in wanted)


def squash(text: str) -> str:
    """Case, space and punctuation blind form, so "fine-tuning", "Fine Tuning" and "fine_tuning" agree."""
    return re.sub(rf"[^a-z0-9{CJK_RE.pattern[1:-1]}]+", "", text.lower())


@cache
def _term_regex(term: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in re.split(r"[\s_\-]+", term.lower()) if p]
    body = r"[\s_\-]*".join(parts)
    return re.compile(rf"(?<![a-z0-9]){body}(?:s|es|ed|d|ing)?(?![a-z0-9])")


def find_concepts(text: str) -> list[ConceptHit]:
    """Lexicon concepts mentioned in ``text``, in order of position; longer terms win overlaps."""
    lowered = text.lower()
    candidates: list[tuple[int, int, str]] = []
    for concept in LEXICON.values():
        for term in concept.en:
            candidates += [(m.start(), m.end(), concept.key) for m in _term_regex(term).finditer(lowered)]
        for term in concept.zh:
            candidates += [(m.start(), m.end(), concept.key) for m in re.finditer(re.escape(term), text)]
    taken: list[tuple[int, int]] = []
    hits: list[ConceptHit] = []
    for start, end, key in sorted(candidates, key=lambda c: (c[0] - c[1], c[0], c[2])):
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        surface = text[start:end]
        hits.append(ConceptHit(key, LEXICON[key].kind, start, end, surface, LEXICON[key].gloss.get(surface, "")))
    return sorted(hits, key=lambda h: (h.start, h.key))


def concept_terms_en(key: str) -> list[str]:
    """Stemmed single English words a concept stands for: its key, column tokens and one-word terms."""
    concept = LEXICON[key]
    # Column names split as identifiers are ("^GSPC" -> "gspc", "sizeKb" -> "size", "kb").
    cols = [w for c in concept.columns for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", c))]
    raw = [*re.split(r"[_&\s]+", key), *cols, *(t for t in concept.en if " " not in t)]
    return list(dict.fromkeys(stem(w) for w in raw if w and w.lower() not in _EN_STOP))


def english_equivalents(text: str) -> str:
    """An English rendering of the lexicon terms and Latin words in ``text`` (for cross-language search)."""
    hits = find_concepts(text)
    parts = [h.gloss or h.surface for h in hits if h.kind != "op"]
    spans = [(h.start, h.end) for h in hits]
    for surface, term, pos in words(text):
        if surface.isascii() and not _is_stop(surface, term) and not any(s <= pos < e for s, e in spans):
            parts.append(surface)
    return " ".join(dict.fromkeys(parts))


def keywords(text: str, *, limit: int = 8) -> list[tuple[str, float]]:
    """Weighted keywords, best first: lexicon phrases, acronyms, numbers and longer words weigh more."""
    scores: dict[str, float] = {}
    order: dict[str, int] = {}
    hits = find_concepts(text)
    for hit in hits:
        if hit.kind != "op":
            _bump(scores, order, hit.surface.lower(), 2.0, hit.start)
    for surface, term, pos in words(text):
        lone_char = len(surface) == 1 and CJK_RE.match(surface)  # "年", "的": never a useful search term
        if _is_stop(surface, term) or lone_char or any(h.start <= pos < h.end for h in hits):
            continue
        weight = 1.0 + (0.5 if surface.isupper() and len(surface) > 1 else 0.0)
        weight += 0.5 if surface[0].isdigit() else 0.0
        weight += 0.25 * min(len(surface) - 1, 3) if CJK_RE.match(surface) else 0.0
        _bump(scores, order, surface if CJK_RE.match(surface) else surface.lower(), weight, pos)
    ranked = sorted(scores, key=lambda k: (-scores[k], order[k]))
    return [(k, scores[k]) for k in ranked[:limit]]


def _bump(scores: dict[str, float], order: dict[str, int], key: str, weight: float, pos: int) -> None:
    # A repeated word adds half its weight again: frequency matters, but less than kind.
    scores[key] = scores.get(key, 0.0) + (weight if key not in scores else weight / 2)
    order.setdefault(key, pos)


_Y = r"(?P<y>(?:19|20)\d{2})"
_Y2 = r"(?P<y2>(?:19|20)\d{2})"
_P = r"(?:(?:in|during|for|over|within|of|across)\s+(?:the\s+)?)?"
_ORDINAL = {"一": 1, "二": 2, "三": 3, "四": 4, "上": 1, "下": 2, "first": 1, "second": 2, "third": 3, "fourth": 4}
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_SPAN_MONTHS = {"quarter": 3, "half": 6, "month": 1, "year": 12}
# (kind, pattern) in order of precedence: a span taken by a more specific form is not read again.
_TIME_FORMS: list[tuple[str, str]] = [
    ("quarter", rf"{_P}q(?P<n>[1-4])\s*[-/,]?\s*{_Y}"), ("quarter", rf"{_P}{_Y}\s*年?\s*[-/]?\s*q(?P<n>[1-4])"),
    ("quarter", rf"{_Y}\s*年?\s*第?(?P<n>[一二三四1-4])\s*季度"),
    ("quarter", rf"{_P}(?P<n>first|second|third|fourth)\s+quarter\s+of\s+{_Y}"),
    ("half", rf"{_P}h(?P<n>[12])\s*[-/,]?\s*{_Y}"), ("half", rf"{_P}{_Y}\s*[-/]?\s*h(?P<n>[12])"),
    ("half", rf"{_P}(?P<n>first|second)\s+half\s+of\s+{_Y}"), ("half", rf"{_Y}\s*年?\s*(?P<n>上|下)半年"),
    ("month", rf"{_P}(?P<n>{'|'.join(_MONTHS)})[a-z]*\.?\s+{_Y}"),
    ("month", rf"{_Y}\s*年\s*(?P<n>1[0-2]|0?[1-9])\s*月"),
    ("month", rf"{_Y}-(?P<n>1[0-2]|0[1-9])(?!-?\d)"),
    ("between", rf"between\s+{_Y}\s+and\s+{_Y2}"), ("between", rf"{_P}(?:from\s+)?{_Y}\s*(?:-|–|to|through)\s*{_Y2}"),
    ("between", rf"{_Y}\s*年?\s*(?:至|到|~|-)\s*{_Y2}\s*年?"),
    ("since", rf"(?:since|from|starting(?:\s+in)?)\s+{_Y}"), ("since", rf"自?{_Y}\s*年?\s*(?:以来|起|至今)"),
    ("after", rf"after\s+{_Y}"), ("after", rf"{_Y}\s*年?\s*(?:之后|以后)"),
    ("before", rf"before\s+{_Y}"), ("before", rf"{_Y}\s*年?\s*(?:以前|之前)"),
    ("until", rf"(?:until|till|up to|through)\s+{_Y}"),
    # A bare number in the year range is an amount when money or a unit sits next to it ("2000 CNY").
    ("year", rf"(?<![$¥€£]){_P}{_Y}(?!\s*(?:cny|rmb|usd|eur|yuan|dollars?|元|万|人|people|%|k\b|m\b))\s*年?"),
]
# Word boundaries only where the match starts/ends on a letter or digit ("2026年上半年RAG" still matches).
_TIME_RES = [(kind, re.compile(rf"(?<![A-Za-z0-9]){p}(?:(?<![A-Za-z0-9])|(?![A-Za-z0-9]))", re.IGNORECASE))
             for kind, p in _TIME_FORMS]


@dataclass(frozen=True)
class TimeRange:
    start: date | None  # inclusive; None = open
    end: date | None  # exclusive; None = open
    label: str  # the words as the text wrote them, preposition included ("in H1 2026", "2026年上半年")
    kind: str
    span: tuple[int, int]


def _add_months(d: date, months: int) -> date:
    return date(d.year + (d.month - 1 + months) // 12, (d.month - 1 + months) % 12 + 1, 1)


def _bounds(kind: str, m: re.Match[str]) -> tuple[date | None, date | None]:
    y = int(m.group("y"))
    first, next_year = date(y, 1, 1), date(y + 1, 1, 1)
    n = (m.groupdict().get("n") or "").lower()
    num = int(n) if n.isdigit() else _ORDINAL.get(n, _MONTHS.index(n) + 1 if n in _MONTHS else 1)
    if kind in _SPAN_MONTHS:  # the num-th quarter/half/month of the year; a bare year is its 1st 12 months
        width = _SPAN_MONTHS[kind]
        return _add_months(first, width * (num - 1)), _add_months(first, width * num)
    if kind == "between":
        return first, date(int(m.group("y2")) + 1, 1, 1)
    return {"since": (first, None), "after": (next_year, None), "before": (None, first),
            "until": (None, next_year)}[kind]


def extract_time_ranges(text: str) -> list[TimeRange]:
    """Years, halves, quarters, months, open and closed ranges in English and Chinese, in text order."""
    found: list[TimeRange] = []
    for kind, regex in _TIME_RES:
        for m in regex.finditer(text):
            if any(m.start() < r.span[1] and r.span[0] < m.end() for r in found):
                continue
            start, end = _bounds(kind, m)
            found.append(TimeRange(start, end, m.group().strip(), kind, (m.start(), m.end())))
    return sorted(found, key=lambda r: r.span)


def time_range(text: str) -> TimeRange | None:
    """One range covering every time expression in ``text``; None when there is none."""
    ranges = extract_time_ranges(text)
    if len(ranges) <= 1:
        return ranges[0] if ranges else None
    starts, ends = [r.start for r in ranges], [r.end for r in ranges]
    start = None if None in starts else min(s for s in starts if s)
    end = None if None in ends else max(e for e in ends if e)
    return TimeRange(start, end, " / ".join(r.label for r in ranges), "span", (ranges[0].span[0], ranges[-1].span[1]))
