"""What a question asks a table for: the computation (ranking, count per group, overrun, share, growth,
series), its direction and size, and the measure words it implies ("disk space" -> a size column).

General language only: operations, units and measure families, never a knowledge base's own vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from agents.offline.text import find_concepts, stem
from tools.text.language import has_han

# Measure families: words a question uses for a quantity -> column-name tokens that hold it.
# Nouns and units link strongly; superlative adjectives ("largest") only pick among columns.
_FAMILIES: dict[str, tuple[str, str]] = {
    "size": ("size|disk|disk space|space|storage|footprint|kb|mb|gb|tb|byte|bytes|kilobyte|megabyte|gigabyte|"
             "体积|大小|磁盘|空间|存储", "size byte bytes kb mb gb tb disk storage footprint"),
    "duration": ("duration|how long|time taken|runtime|latency|elapsed|耗时|时长",
                 "duration time runtime latency elapsed ms second seconds minute minutes hour hours day days"),
    "weight": ("weight|mass|kg|kilogram|重量", "weight mass kg"),
    "height": ("height|tall|身高|高度", "height"),
    "population": ("population|populous|inhabitant|人口", "population"),
    "age": ("age|old|年龄", "age"),
    "popularity": ("download|downloads|popular|popularity|star|stars|下载", "download downloads star stars users"),
}
_ADJECTIVES: dict[str, str] = {  # superlative -> family
    "largest": "size", "biggest": "size", "smallest": "size", "heaviest": "weight", "lightest": "weight",
    "longest": "duration", "shortest": "duration", "slowest": "duration", "fastest": "duration",
    "tallest": "height", "oldest": "age", "youngest": "age", "most popular": "popularity",
    "least popular": "popularity",
}
IMPLIED_WEIGHT = 0.8  # a family noun or unit ("disk space", "MB") as good as a lexicon term
ADJECTIVE_WEIGHT = 0.5  # an adjective alone chooses among columns but does not link a table

_OVERRUN_RE = re.compile(r"over\s?-?ran|over\s?-?run|over\s?-?budget|overspen[dt]|"
                         r"exceed\w*\s+(?:its\s+|the\s+|their\s+)?budget|budget\s+variance|variance|cost\s+overrun|under\s?-?budget|underspen[dt]|超支|超预算|"
                         r"超出预算|预算偏差|节约", re.IGNORECASE)
_UNDER_RE = re.compile(r"under\s?-?budget|underspen[dt]|节约", re.IGNORECASE)
_SHARE_RE = re.compile(r"\bshare\b|proportion|of\s+(?:the\s+)?total|fraction\s+of|占比|份额|比重", re.IGNORECASE)
_PERCENT_RE = re.compile(r"percent|percentage|%|relative|proportion|比例|百分比|幅度", re.IGNORECASE)
_GROWTH_RE = re.compile(r"\bgr[eo]w\w*|\bgrowth|increas\w*|decreas\w*|declin\w*|\bris(?:e|en|ing)\b|\brose\b|\bfell\b|"
                        r"\bfall\w*|\bchang\w*|perform\w*|\bdo\b.*\bagainst\b|\bdid\b.*\b(?:do|fare)\b|\breturns?\b|"
                        r"\bgain\w*|增长|变化|涨|跌|表现|走势", re.IGNORECASE)
# "altogether", "combined", "in total": the figures of the rows picked, added up
# "...combined", "...in all", and "how many medals did A and B total?" (the verb, closing the question)
SUM_RE = re.compile(r"\b(?:all\s+together|altogether|combined|in\s+total|in\s+all)\b|\btotal\s*[?.]?\s*$",
                    re.IGNORECASE)
_DIFF_RE = re.compile(r"difference\s+between|gap\s+between|how\s+much\s+(?:more|less|higher|lower)|差额|差值|相差",
                      re.IGNORECASE)
_RATIO_RE = re.compile(r"\bratio\b|times\s+(?:as|more)|比率|倍", re.IGNORECASE)
_MODE_RE = re.compile(r"most\s+(?:common|frequent|popular|used|usual|widely\s+used)|commonest|\bfrequency\b|"
                      r"最常见|最常用|最普遍|最流行", re.IGNORECASE)
_TOPK_RE = re.compile(r"\btop\s+(\d{1,2})\b|\b(\d{1,2})\s+(?:largest|biggest|highest|most|best|lowest|smallest|"
                      r"cheapest|worst|fewest|least)\b|前\s*(\d{1,2})", re.IGNORECASE)
_PER_RE = re.compile(r"\b(?:by|per|for\s+each|each|every|across)\s+(?!all\b)([A-Za-z][A-Za-z0-9_]*)", re.IGNORECASE)
_GRAIN_RE = [("year", re.compile(r"by\s+year|per\s+year|yearly|annual|each\s+year|year\s+by\s+year|按年|每年|年度",
                                 re.IGNORECASE)),
             ("quarter", re.compile(r"by\s+quarter|per\s+quarter|quarterly|each\s+quarter|按季|每季|季度",
                                    re.IGNORECASE)),
             ("month", re.compile(r"by\s+month|per\s+month|monthly|each\s+month|按月|每月|月度", re.IGNORECASE))]


@dataclass(frozen=True)
class Intent:
    ops: frozenset[str]  # lexicon operations: top, bottom, count, trend, average, total, compare...
    direction: str | None  # "DESC"/"ASC" when a ranking is asked
    k: int  # rows a ranking shows
    overrun: bool
    under: bool  # "under budget": the smallest overrun first
    share: bool
    percent: bool
    growth: bool
    difference: bool
    ratio: bool
    mode: bool  # "most common X": count per X
    per: tuple[str, ...]  # stemmed words after by/per/each
    grain: str | None  # a period grain the question names


def question_ops(text: str) -> set[str]:
    """The computations the text asks for (top, count, trend, average, total, compare, choose...)."""
    # "at least 30 points" is a filter (sql_build's comparisons), not a ranking of the least
    text = _BOUND_RE.sub(lambda m: " " * len(m.group(0)), text)
    hits = find_concepts(text)
    ops = {h.key for h in hits if h.kind == "op"}
    # "how many people/months" asks for a measure, not for a row count; "how many times" counts rows.
    if any(a.key == "count" and b.kind == "measure" and not text[a.end:b.start].strip()
           and not _TIMES_RE.match(text, b.start) for a, b in pairwise(hits)):
        ops.discard("count")
    return ops


_BOUND_RE = re.compile(r"\b(?:at\s+least|at\s+most|no\s+less\s+than|no\s+more\s+than|not\s+less\s+than)\b", re.I)
_TIMES_RE = re.compile(r"times\b", re.I)


def intent(text: str) -> Intent:
    ops = question_ops(text)
    mode = bool(_MODE_RE.search(text))
    under = bool(_UNDER_RE.search(text))
    direction = "ASC" if "bottom" in ops and "top" not in ops else "DESC" if ops & {"top", "bottom"} or mode else None
    m = _TOPK_RE.search(text)
    k = min(20, max(1, int(next(g for g in m.groups() if g)))) if m else 5
    grain = next((g for g, rx in _GRAIN_RE if rx.search(text)), None)
    per = tuple(dict.fromkeys(stem(w) for w in _PER_RE.findall(text)))
    return Intent(frozenset(ops), direction, k, bool(_OVERRUN_RE.search(text)), under, bool(_SHARE_RE.search(text)),
                  bool(_PERCENT_RE.search(text)), bool(_GROWTH_RE.search(text)) or "trend" in ops,
                  bool(_DIFF_RE.search(text)), bool(_RATIO_RE.search(text)), mode, per, grain)


def _term_re(term: str) -> re.Pattern[str]:
    if has_han(term):
        return re.compile(re.escape(term))
    return re.compile(r"(?<![a-z0-9])" + r"\s+".join(map(re.escape, term.split())) + r"(?![a-z0-9])")


def implied_tokens(text: str) -> dict[str, float]:
    """Column-name tokens a question's measure words imply, with how strongly ("disk space" -> size, kb)."""
    lowered = text.lower()
    out: dict[str, float] = {}
    for words, tokens in _FAMILIES.values():
        if any(_term_re(w).search(lowered) for w in words.split("|")):
            _add(out, tokens, IMPLIED_WEIGHT)
    for adjective, family in _ADJECTIVES.items():
        if _term_re(adjective).search(lowered):
            _add(out, _FAMILIES[family][1], ADJECTIVE_WEIGHT)
    return out


def family_words(found: set[str]) -> set[str]:
    """The measure words a column's tokens stand for ("size_kb" holds "disk space", "size"): what a
    question may call a column the table names otherwise."""
    out: set[str] = set()
    for words, tokens in _FAMILIES.values():
        if any(stem(t) in found for t in tokens.split()):
            out |= {stem(w) for phrase in words.split("|") for w in phrase.split()}
    return out


def _add(out: dict[str, float], tokens: str, weight: float) -> None:
    for token in tokens.split():
        out[stem(token)] = max(out.get(stem(token), 0.0), weight)


# Measures observed at a point in time are averaged over a period; flows are summed.
LEVEL_WORDS = frozenset(stem(w) for w in "price prices close closing open opening high low rate rates index level "
                        "score rating temperature ratio pct percent percentage balance yield average avg mean share "
                        "satisfaction nav quote exchange inflation unemployment utilisation utilization".split())
FLOW_WORDS = frozenset(stem(w) for w in "cost costs spend spent sales sale count revenue amount quantity volume income "
                       "expense expenses profit units orders visits downloads payments tax hours shipments "
                       "bookings deliveries transactions".split())


def measure_kind(name_words: list[str], description_words: list[str]) -> str | None:
    """"level", "flow" or None: the column name decides first, its description second."""
    for words in (name_words, description_words):
        for w in words:
            s = stem(w)
            if s in LEVEL_WORDS:
                return "level"
            if s in FLOW_WORDS:
                return "flow"
    return None


BUDGET_TOKENS = frozenset("budget budgeted planned plan estimate estimated forecast target baseline approved "
                          "projected expected contract".split())
ACTUAL_TOKENS = frozenset("actual actuals spent spend outturn final cost real realised realized incurred".split())
