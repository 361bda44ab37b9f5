"""Which document is a later version of which: draft/final, v1/v2, "supersedes", effective dates.

Two documents are versions of one another when their names (file stem with its folder, or title in
the same folder) agree once the version markers are taken out: 'budget_v1_draft.md' and
'budget_v2.md', '预算草稿.md' and '预算定稿.md'. Their order comes, first to last, from an explicit
"supersedes"/"replaces" statement, a version number, a date (in the name, or an effective date in
the text), then the status word (draft < unmarked < revised < final). A bare year stays part of the
name: 'budget 2025' and 'budget 2026' are two documents, not two versions of one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tools.text.language import HAN
from tools.text.terms import terms
from tools.vocabulary import Evidence

_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九十", 0)}
_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_MONTH_RE = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"

# Status words, each with its rank: a draft is earliest, a final or approved version latest.
STATUS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\b(?:drafts?|wip|preliminary|proposed|for comment)\b|草稿|初稿|征求意见稿|讨论稿|草案|送审稿",
                re.I), 0),
    (re.compile(r"\b(?:revised|revision|updated|amended|rev)\b|修订版|修订稿|修订|更新版|修正版", re.I), 2),
    (re.compile(r"\b(?:final|approved|signed|released|official)\b|终稿|定稿|正式版|批准稿|发布版|最终版", re.I), 3),
)
UNMARKED = 1
_VERSION_RES = (
    re.compile(r"(?<![a-z])(?:v|ver\.?|version|rev\.?|revision|release|edition)\s?(\d+(?:\.\d+)*)", re.I),
    re.compile(r"(\d+)(?:st|nd|rd|th)\s+(?:edition|version|revision|draft)\b", re.I),
    re.compile(r"第\s?([\d一二三四五六七八九十]+)\s?[版稿次]"),
    re.compile(r"(?<![\d.])(\d+(?:\.\d+)*)\s?版"),
    re.compile(r"\b(first|second|third|fourth|fifth)\s+(?:edition|version|revision|draft)\b", re.I),
)
_WORD_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_DATE_RES = (  # full dates only: a bare year names the subject ('budget 2026'), not a version
    (re.compile(r"(?<!\d)((?:19|20)\d{2})[-_./]([01]?\d)(?:[-_./]([0-3]?\d))?(?![\d])"), "ymd"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})([01]\d)([0-3]\d)(?!\d)"), "ymd"),
    (re.compile(r"((?:19|20)\d{2})\s?年\s?(\d{1,2})\s?月(?:\s?(\d{1,2})\s?[日号])?"), "ymd"),
    (re.compile(rf"(?<![a-z])(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH_RE}\s+((?:19|20)\d{{2}})", re.I), "dmy"),
    (re.compile(rf"(?<![a-z]){_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+((?:19|20)\d{{2}})", re.I), "mdy"),
    (re.compile(rf"(?<![a-z]){_MONTH_RE}\s+((?:19|20)\d{{2}})", re.I), "my"),
)
_EFFECTIVE_RE = re.compile(
    r"(?:effective(?:\s+(?:date|from|as of|on))?|valid from|in force from|as of|dated|last updated|updated on"
    r"|生效日期|施行日期|发布日期|更新日期|修订日期|自)\s*[:：]?\s*", re.I)
_SUPERSEDES_RE = re.compile(r"\b(?:supersedes?|superseding|replaces|replacing|obsoletes)\b|取代|替代|代替|废止", re.I)
_FILLER_RE = re.compile(r"\b(?:the|copy|latest|new|old|current|clean)\b|最新|旧版|新版|副本", re.I)


@dataclass(frozen=True)
class Version:
    """One document's place among its versions."""

    doc: str  # doc_id or source: what tells two documents apart
    family: tuple[str, str]  # (folder + stem, folder + title) with the version markers taken out
    number: tuple[int, ...] | None
    date: tuple[int, int, int] | None
    status: int
    supersedes: bool  # its text says it supersedes or replaces an earlier version
    marker: str  # how the name marks it: 'v0.3', 'draft', '2025-03-01'; '' when unmarked


def superseded_ids(evs: list[Evidence]) -> dict[str, str]:
    """Evidence id of an earlier version -> evidence id of the latest version of the same document
    (its passage closest in words), for every passage whose document has a later version here."""
    passages = [e for e in evs if e.kind == "passage"]
    docs: dict[str, list[Evidence]] = {}
    for ev in passages:
        docs.setdefault(_doc(ev), []).append(ev)
    infos = {doc: version_of(chunks) for doc, chunks in docs.items()}
    out: dict[str, str] = {}
    for doc in docs:
        latest = _latest(doc, infos)
        if latest != doc:
            for ev in docs[doc]:
                out[ev.id] = _closest(ev, docs[latest]).id
    return out


def later(a: Evidence, b: Evidence, evs: list[Evidence] | None = None) -> Evidence | None:
    """The later of two passages when they are versions of one document with a known order."""
    pool = evs or [a, b]
    va = version_of([e for e in pool if _doc(e) == _doc(a)] or [a])
    vb = version_of([e for e in pool if _doc(e) == _doc(b)] or [b])
    order = compare(va, vb)
    return a if order > 0 else b if order < 0 else None


def compare(a: Version, b: Version) -> int:
    """1 when ``a`` is the later version, -1 when ``b`` is, 0 when unrelated or undecided."""
    if a.doc == b.doc or not _same_family(a, b):
        return 0
    if a.supersedes != b.supersedes:
        return 1 if a.supersedes else -1
    for x, y in ((a.number, b.number), (a.date, b.date)):
        if x is not None and y is not None and x != y:
            return 1 if x > y else -1
    return (a.status > b.status) - (a.status < b.status)


def version_of(chunks: list[Evidence]) -> Version:
    """A document's version, read from its name and (for effective dates, 'supersedes') its text."""
    ev = chunks[0]
    source = (ev.source or "").replace("\\", "/")
    folder, _, file = source.rpartition("/")
    stem = file.rsplit(".", 1)[0] if "." in file else file
    title = ev.title or ""
    names = f"{_spaced(stem)} {title}"
    text = " ".join(c.text for c in chunks)
    number = _number(names)
    date = _date(names) or _effective_date(text)
    status = _status(names)
    folder_key = _family_key(folder)
    family = (f"{folder_key}/{_family_key(stem)}" if stem else "",
              f"{folder_key}/{_family_key(title)}" if title else "")
    return Version(doc=_doc(ev), family=family, number=number, date=date, status=status,
                   supersedes=bool(_SUPERSEDES_RE.search(text)), marker=_marker(names, number, date, status))


def describe(v: Version, language: str = "en") -> str:
    """'draft', 'version v0.3', '终稿' ...: what kind of version it is, for a sentence."""
    if v.status == 0:
        return "草稿" if language == "zh" else "draft"
    return "版本" if language == "zh" else "version"


def has_marker(name: str) -> bool:
    """Whether a name says which version it is ('v2', 'draft', '第二版', '2025-03-01')."""
    return _number(name) is not None or _date(name) is not None or _status(name) != UNMARKED


# --- reading names ---

def _doc(ev: Evidence) -> str:
    return ev.doc_id or ev.source or ev.title or ev.id


def _spaced(name: str) -> str:
    """'budget_v2-final' -> 'budget v2 final' (word boundaries for the markers), dates kept whole."""
    name = re.sub(r"(?<=\d)_(?=\d)", "-", name).replace("_", " ")
    return re.sub(r"(?<=[A-Za-z])[-.](?=[A-Za-z])|(?<=[A-Za-z])-(?=\d)|(?<=\d)-(?=[A-Za-z])", " ", name)


@lru_cache(maxsize=4096)
def _family_key(name: str) -> str:
    """The name without version markers, status words, full dates, filler and punctuation."""
    text = _spaced(name).lower()
    for pattern in (*(p for p, _ in _DATE_RES), *_VERSION_RES, *(p for p, _ in STATUS), _FILLER_RE):
        text = pattern.sub(" ", text)
    return " ".join(re.sub(rf"[^\w{HAN}]+", " ", text).split())


def _same_family(a: Version, b: Version) -> bool:
    return any(x and x == y and x.rpartition("/")[2] for x, y in zip(a.family, b.family))


def _number(text: str) -> tuple[int, ...] | None:
    for pattern in _VERSION_RES:
        m = pattern.search(text)
        if m:
            raw = m.group(1).lower()
            if raw in _WORD_ORDINALS:
                return (_WORD_ORDINALS[raw],)
            if raw and raw[0] in _ZH_DIGITS:
                return (_zh_number(raw),)
            return tuple(int(p) for p in raw.split(".") if p.isdigit())
    return None


def _zh_number(raw: str) -> int:
    """'二' -> 2, '十二' -> 12 (versions rarely go further)."""
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        return _ZH_DIGITS.get(tens, 1) * 10 + _ZH_DIGITS.get(ones, 0)
    return _ZH_DIGITS.get(raw, 0)


def _date(text: str) -> tuple[int, int, int] | None:
    for pattern, order in _DATE_RES:
        m = pattern.search(text)
        if m:
            return _ymd(m, order)
    return None


def _ymd(m: re.Match[str], order: str) -> tuple[int, int, int] | None:
    g = m.groups()
    if order == "ymd":
        y, mo, d = int(g[0]), int(g[1]), int(g[2] or 1)
    elif order == "dmy":
        y, mo, d = int(g[2]), _MONTHS[g[1][:3].lower()], int(g[0])
    elif order == "mdy":
        y, mo, d = int(g[2]), _MONTHS[g[0][:3].lower()], int(g[1])
    else:
        y, mo, d = int(g[1]), _MONTHS[g[0][:3].lower()], 1
    return (y, mo, d) if 1 <= mo <= 12 and 1 <= d <= 31 else None


def _effective_date(text: str) -> tuple[int, int, int] | None:
    """The first date that follows 'effective', 'as of', '生效日期' ... in the text."""
    for m in _EFFECTIVE_RE.finditer(text):
        found = _date(text[m.end():m.end() + 24])
        if found:
            return found
    return None


def _status(text: str) -> int:
    ranks = [rank for pattern, rank in STATUS if pattern.search(text)]
    return max(ranks) if ranks else UNMARKED


def _marker(names: str, number: tuple[int, ...] | None, date: tuple[int, int, int] | None, status: int) -> str:
    if number is not None:
        return "v" + ".".join(map(str, number))
    if date is not None and _date(names):
        return "-".join(f"{p:02d}" for p in date)
    return {0: "draft", 2: "revised", 3: "final"}.get(status, "")


def _latest(doc: str, infos: dict[str, Version]) -> str:
    """Follow 'is later than' to the latest version; the first in order wins among equals."""
    current, seen = doc, {doc}
    while True:
        newer = [d for d in infos if d not in seen and compare(infos[d], infos[current]) > 0]
        if not newer:
            return current
        current = max(newer, key=lambda d: sum(compare(infos[d], infos[o]) for o in infos))
        seen.add(current)


def _closest(ev: Evidence, candidates: list[Evidence]) -> Evidence:
    mine = set(terms(ev.text))
    return max(candidates, key=lambda c: (len(mine & set(terms(c.text))), -candidates.index(c)))
