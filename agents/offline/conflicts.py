"""Where sources disagree: the same measure of the same subject stated with different figures.

A figure is compared only when it measures something (a unit, a scale, a percentage, a measure
word nearby); version numbers, section numbers, dates, years, ids and figures that are part of
the document's own name are not measurements. Two figures in one language conflict when the
words around them agree; across languages (an English and a Chinese document) when they name the
same measure (through the lexicon and glossary concepts) of the same subject (shared Latin names
or glossary terms) in the same unit. When the two documents are versions of one another (see
agents.offline.versions) the sentence says which is later: the later version's figure stands.
Comparison with warehouse rows lives in agents.offline.conflicts_sql.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from agents.offline import text as lexicon
from agents.offline.conflicts_sql import sql_conflicts
from agents.offline.versions import has_marker, later, version_of
from tools.text.language import HAN, HAN_RE
from tools.text.numbers import Number, find_numbers, number_values, supported
from tools.text.sentences import split_sentences
from tools.text.terms import keywords, terms
from tools.vocabulary import Contradiction, Evidence

MAX_CONTRADICTIONS = 8
WINDOW_BEFORE, WINDOW_AFTER = 6.0, 3.0  # words around a number that say what it measures
SENTENCE_OVERLAP = 0.3  # least Jaccard overlap of two sentences that state the same measure
CROSS_SCORE = 0.5  # a cross-language match ranks below a same-language one with most words shared
DRAFT_RE = re.compile(r"draft|草稿|初稿|征求意见稿", re.IGNORECASE)
CURRENCIES = {"cny", "rmb", "usd", "eur", "yuan"}
_UNIT_AFTER_RE = re.compile(r"\s?(?:[A-Z]{3}\b|元|万元|亿元|人)")
_UNIT_WORD_RE = re.compile(r"\s*([A-Za-z]+|" + HAN_RE.pattern + ")")
_CURRENCY_BEFORE_RE = re.compile(r"(?:[$¥€£]|\b(?:CNY|RMB|USD|EUR|GBP|JPY)\s?)$")
_WINDOW_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)*|\d+(?:[.,]\d+)*[A-Za-z%]*|"
                              + HAN_RE.pattern)
_NAME_RE = re.compile(r"\^?[A-Za-z][\w&^-]*")
# Units that tell what kind of quantity a figure is, whatever the language writes.
_UNIT_CLASSES = (
    ("cny", r"cny|rmb|yuan|renminbi|元|人民币|¥"), ("usd", r"usd|dollars?|美元|\$"), ("eur", r"eur|euros?|欧元|€"),
    ("people", r"people|persons?|staff|employees|headcount|人|名"), ("days", r"days?|天|日"),
    ("months", r"months?|个月|月"), ("hours", r"hours?|小时"), ("items", r"items?|件|项|个"),
)
_UNIT_ONLY_RE = re.compile("|".join(p for _, p in _UNIT_CLASSES) + "|万元|亿元|万|亿")
_MONTH_WORDS = frozenset("january february march april may june july august september october november december "
                         "jan feb mar apr jun jul aug sep sept oct nov dec".split())


@dataclass(frozen=True)
class _Claim:
    ev: Evidence
    numbers: tuple[Number, ...]  # one figure, or the two ends of a range
    written: str
    context: frozenset[str]  # non-number terms around the figure
    years: frozenset[str]
    sentence_years: frozenset[str]  # years anywhere in the sentence: across languages the window differs
    sentence_terms: frozenset[str]
    near: str  # the words around the figure, for the description
    unit: str  # the word right after it: 'cny', 'people', '人'; '' when none
    unit_class: str  # 'cny', 'people', '%' ...: comparable across languages; '' when unknown
    script: str  # 'zh' or 'en': the sentence's main script
    measures: frozenset[str]  # lexicon measure concepts near the figure ('cost')
    anchors: frozenset[str]  # what it is about: names and non-measure concepts in its clause
    mentions: frozenset[str]  # names, glosses and concepts anywhere in the sentence
    subject: str  # the clause's names and measure words as written ('Harbour Bridge budget')
    key: tuple[str, int, int]  # evidence id, sentence, figure: each figure is reported once


def find_contradictions(evs: list[Evidence], *, language: str = "en") -> list[Contradiction]:
    """Figures for the same measure that differ between two sources, versions and drafts first;
    each figure is reported once, against its closest match."""
    claims = [c for e in evs if e.kind == "passage" for c in _claims(e)]
    found = [(a.key, b.key, score, a.ev, b.ev, _describe(a, b, language, evs))
             for a, b, score in _conflicting_pairs(claims)]
    for claim, key, ev, column, value in sql_conflicts(claims, evs):
        found.append((claim.key, key, 0.5, claim.ev, ev, _describe_sql(claim, ev, column, value, language)))
    found.sort(key=lambda f: (not _ordered(f[3], f[4], evs), -f[2], sorted([f[3].id, f[4].id]), f[0], f[1]))
    used: set[tuple] = set()
    out: list[Contradiction] = []
    for key_a, key_b, _, a, b, text in found:
        if key_a not in used and key_b not in used:
            used |= {key_a, key_b}
            out.append(Contradiction(description=text, evidence_ids=[i.id for i in _earlier_first(a, b, evs)]))
    return out[:MAX_CONTRADICTIONS]


def is_draft(ev: Evidence) -> bool:
    return bool(DRAFT_RE.search(f"{ev.source or ''} {ev.title or ''}"))


def _ordered(a: Evidence, b: Evidence, evs: list[Evidence]) -> bool:
    """One of the two is known to be the earlier: a draft, or an earlier version of the other."""
    return is_draft(a) != is_draft(b) or (a.kind == b.kind == "passage" and later(a, b, evs) is not None)


def _earlier_first(a: Evidence, b: Evidence, evs: list[Evidence]) -> tuple[Evidence, Evidence]:
    newer = later(a, b, evs) if a.kind == b.kind == "passage" else None
    if newer is not None:
        return (b, a) if newer is a else (a, b)
    return (b, a) if is_draft(b) and not is_draft(a) else (a, b)


# --- claims ----------------------------------------------------------------------------------

def _claims(ev: Evidence) -> list[_Claim]:
    """Every measurement (figure or range) stated in the evidence, with the words around it."""
    out = []
    naming = f"{ev.title or ''} {ev.section or ''} {(ev.source or '').rsplit('/', 1)[-1]}"
    for index, sentence in enumerate(split_sentences(ev.text)):
        numbers = find_numbers(sentence)
        plain = sentence
        for n in numbers:  # figures say nothing about what is measured: blank them out
            plain = plain[:n.start] + " " * (n.end - n.start) + plain[n.end:]
        hits = [h for h in lexicon.find_concepts(sentence) if h.kind != "op"]
        script = "zh" if len(HAN_RE.findall(sentence)) * 2 >= len(re.findall(r"[A-Za-z]", sentence)) else "en"
        previous = 0
        for group in dict.fromkeys(n.group for n in numbers if n.kind == "claim"):
            ends = tuple(n for n in numbers if n.group == group and n.kind == "claim")
            clause_start, previous = previous, ends[-1].end
            s, e = _window(plain, ends[0].start, ends[-1].end)
            currency = _UNIT_AFTER_RE.match(sentence, ends[-1].end)
            after = _UNIT_WORD_RE.match(sentence, ends[-1].end)
            unit = (terms(after.group(1), numbers=False) if after else []) or [""]
            before = _CURRENCY_BEFORE_RE.search(sentence[:ends[0].start])
            unit_class = _unit_class(ends, sentence, before)
            near_hits = [h for h in hits if s <= h.start < e]
            measures = frozenset(_measure(h) for h in near_hits if h.kind == "measure")
            if _naming(ends, sentence, naming, before) or not (unit_class or unit[0] or measures):
                continue  # a version, a name's number, or a bare figure that measures nothing said
            clause = (max(s, clause_start), ends[0].start)
            anchors = _anchors(sentence, clause, hits, script)
            years = frozenset(str(int(n.value)) for n in numbers
                              if n.kind in ("year", "date") and s <= n.start < e and 1900 <= n.value <= 2100)
            all_years = frozenset(str(int(n.value)) for n in numbers
                                  if n.kind in ("year", "date") and 1900 <= n.value <= 2100)
            start = before.start() if before else ends[0].start
            near = plain[s:ends[0].start] + " " + plain[ends[-1].end:e]
            out.append(_Claim(
                ev, ends, sentence[start:currency.end() if currency else ends[-1].end], _context_terms(near),
                years, all_years,
                frozenset(terms(sentence, numbers=False)), near, unit[0], unit_class, script, measures, anchors,
                _anchors(sentence, (0, len(sentence)), hits, script),
                _subject_words(sentence, clause, hits, script), (ev.id, index, group)))
    return out


def _naming(ends: tuple[Number, ...], sentence: str, naming: str, currency: re.Match[str] | None) -> bool:
    """A version or a figure of the document's own name ('httpx 0.27', 'release 2.0.1', '2.0版')."""
    first, last = ends[0], ends[-1]
    if currency or first.percent or first.bare is not None:
        return False
    if re.match(r"\.\d|\s?版", sentence[last.end:last.end + 2]):
        return True  # '2.0.1', '2.0版'
    if re.search(r"(?i:\b(?:version|release|ver|rev|revision|edition|v)\s*|版本\s*)$", sentence[:first.start]):
        return True
    named = re.search(rf"(?<![\d.]){re.escape(first.raw)}(?![\d])", naming) is not None
    after_name = re.search(r"[A-Za-z][\w-]*\s$", sentence[max(0, first.start - 30):first.start])
    return named or ("." in first.raw and after_name is not None and not _UNIT_AFTER_RE.match(sentence, last.end))


def _measure(hit: lexicon.ConceptHit) -> str:
    """A measure as its English word: one lexicon concept holds budget, spend and cost, which differ."""
    word = hit.gloss if hit.gloss and HAN_RE.search(hit.surface) else hit.surface
    return f"{hit.key}:{' '.join(terms(word, numbers=False)) or hit.key}"


def _unit_class(ends: tuple[Number, ...], sentence: str, before: re.Match[str] | None) -> str:
    if ends[0].percent:
        return "%"
    tail = sentence[ends[-1].end:ends[-1].end + 12].lstrip().lower()
    head = before.group().strip().lower() if before else ""
    for name, pattern in _UNIT_CLASSES:
        if (head and re.fullmatch(pattern, head)) or re.match(rf"(?:{pattern})(?![a-z])", tail):
            return name
    return ""


def _anchors(sentence: str, span: tuple[int, int], hits: list, script: str) -> frozenset[str]:
    """What a clause is about, in a form both languages share: glossary/lexicon concepts other
    than measures, and names (capitalised or Latin words in Chinese text, stemmed)."""
    s, e = span
    out = {h.key if h.kind == "entity" else f"~{h.key}" for h in hits if h.kind != "measure" and s <= h.start < e}
    out |= {t for h in hits if s <= h.start < e and h.gloss and h.kind == "entity" for t in terms(h.gloss)}
    for m in _NAME_RE.finditer(sentence, s, e):
        word = m.group()
        initial = not sentence[:m.start()].strip()
        named = script == "zh" or (not initial and (word[0].isupper() or any(c.isdigit() for c in word)))
        if named and word.lower() not in CURRENCIES | _MONTH_WORDS and word.upper() not in ("CNY", "RMB", "USD"):
            # an id stays whole: NW-016 and NW-019 are two things, not one 'nw'
            out |= {word.lower()} if re.search(r"\d", word) else set(terms(word, numbers=False))
    return frozenset(out)


def _subject_words(sentence: str, span: tuple[int, int], hits: list, script: str) -> str:
    """The clause's names and concept words as written, in their order: 'Harbour Bridge budget'."""
    s, e = span
    found = [(h.start, h.surface) for h in hits if s <= h.start < e]
    found += [(m.start(), m.group()) for m in _NAME_RE.finditer(sentence, s, e)
              if (script == "zh" or m.group()[0].isupper()) and terms(m.group(), numbers=False)
              and m.group().lower() not in CURRENCIES | _MONTH_WORDS and m.group().upper() not in ("CNY", "RMB", "USD")
              and not any(a <= m.start() < a + len(w) for a, w in found)]
    words = list(dict.fromkeys(w for _, w in sorted(found)))
    return re.sub(rf"(?<=[{HAN}]) (?=[{HAN}])", "", " ".join(words))


def _window(sentence: str, start: int, end: int) -> tuple[int, int]:
    """Span of WINDOW_BEFORE content words before the figure and WINDOW_AFTER after (a Chinese
    character counts half), so 'RAG costs 0.2M-3M CNY (200k to 3M CNY) and needs' keeps 'RAG'."""
    tokens = list(_WINDOW_TOKEN_RE.finditer(sentence))
    before = _reach(reversed([m for m in tokens if m.end() <= start]), WINDOW_BEFORE)
    after = _reach([m for m in tokens if m.start() >= end], WINDOW_AFTER)
    return (before[-1].start() if before else start), (after[-1].end() if after else end)


def _context_terms(text: str) -> frozenset[str]:
    """Terms, keeping compounds whole: 'application-building' and 'capability-building' differ."""
    return frozenset(t for w, ts in keywords(text, numbers=False) for t in ([w.lower()] if "-" in w else ts))


def _reach(tokens: Iterable[re.Match[str]], budget: float) -> list[re.Match[str]]:
    """Tokens up to a budget of content words: stopwords and figures ride free."""
    out = []
    for m in tokens:
        budget -= 0.5 if HAN_RE.match(m.group()) else 1.0 if terms(m.group(), numbers=False) else 0.0
        if budget < 0:
            break
        out.append(m)
    return out


# --- pairs -----------------------------------------------------------------------------------

def _conflicting_pairs(claims: list[_Claim]) -> Iterable[tuple[_Claim, _Claim, float]]:
    postings: dict[str, list[int]] = {}
    for i, c in enumerate(claims):
        for t in sorted(c.context | {f"\x00{m}" for m in c.measures}):
            postings.setdefault(t, []).append(i)
    for i, a in enumerate(claims):
        shared = Counter(j for t in sorted(a.context) for j in postings[t] if j > i)
        near = {j for j, n in shared.items() if n >= 2 and claims[j].script == a.script}
        near |= {j for m in sorted(a.measures) for j in postings[f"\x00{m}"] if j > i and claims[j].script != a.script}
        for j in sorted(near):
            b = claims[j]
            score = _conflict(a, b) if a.script == b.script else _cross_conflict(a, b)
            if score:
                yield a, b, score


def _comparable(a: _Claim, b: _Claim) -> bool:
    """Two figures from two sources that could measure one thing and do not agree."""
    years = (a.years, b.years) if a.script == b.script else (a.sentence_years, b.sentence_years)
    if (_source(a.ev) == _source(b.ev) or len(a.numbers) != len(b.numbers) or years[0] != years[1]
            or a.numbers[0].percent != b.numbers[0].percent
            or (a.unit_class and b.unit_class and a.unit_class != b.unit_class)):
        return False
    if all(supported(x, [y.value]) or supported(y, [x.value]) for x, y in zip(a.numbers, b.numbers)):
        return False
    return not (_states(b.ev, a.numbers) and _states(a.ev, b.numbers))  # both give both: two measures


def _conflict(a: _Claim, b: _Claim) -> float:
    """Similarity of two same-language claims that measure the same thing with different numbers, else 0."""
    if not _comparable(a, b) or (a.unit and b.unit and a.unit != b.unit and not (a.unit_class and b.unit_class)):
        return 0.0
    shared = len(a.context & b.context)
    # The words around the two figures agree but for one ('in this draft, the total budget' / 'the
    # total budget'). One more differing word is often the whole point: 'application-building' /
    # 'capability-building', 'RAG' / 'prompt engineering', 'the Customer Support' / 'the whole'.
    if shared < 2 or len(a.context ^ b.context) > 1:
        return 0.0
    if len(a.sentence_terms & b.sentence_terms) < SENTENCE_OVERLAP * len(a.sentence_terms | b.sentence_terms):
        return 0.0  # same words near the figure, but the sentences are about different things
    return shared / len(a.context | b.context)


def _cross_conflict(a: _Claim, b: _Claim) -> float:
    """An English and a Chinese figure: the same measure concept, the same unit, a shared subject,
    and nothing named on one side that the other sentence does not name."""
    if not _comparable(a, b) or not (a.unit_class and a.unit_class == b.unit_class):
        return 0.0
    if not a.measures or a.measures != b.measures or not (_names(a.anchors) & _names(b.anchors)):
        return 0.0  # no name or entity in common: the same measure, perhaps of two things
    if not (_names(a.anchors) <= b.mentions and _names(b.anchors) <= a.mentions):
        return 0.0  # one clause names something ('Tower') the other sentence never mentions
    return CROSS_SCORE


def _names(anchors: frozenset[str]) -> frozenset[str]:
    """Names and entities; general concepts ('~project') may be left unsaid by one side."""
    return frozenset(a for a in anchors if not a.startswith("~"))


def _states(ev: Evidence, numbers: tuple[Number, ...]) -> bool:
    values = number_values(ev.text)
    return all(supported(n, values) for n in numbers)


def _source(ev: Evidence) -> str:
    return ev.doc_id or ev.source or ev.title or ev.id


# --- sentences -------------------------------------------------------------------------------

def _describe(a: _Claim, b: _Claim, language: str, evs: list[Evidence]) -> str:
    """One sentence naming both sources and both figures as written (so the verifier finds each in
    the cited evidence); the later version first when one is known, else the draft first."""
    if a.script != b.script:
        if (b.script == "zh") == (language == "zh"):
            a, b = b, a
        subject = a.subject or b.subject
    else:
        subject = _subject(a, a.context & b.context)
    newer = later(a.ev, b.ev, evs)
    if newer is not None:
        new, old = (a, b) if newer is a.ev else (b, a)
        return _versions_sentence(subject, new, old, language, evs)
    if is_draft(b.ev) and not is_draft(a.ev):
        a, b = b, a
    tail = is_draft(a.ev) and not is_draft(b.ev)
    return _sentence(subject, _name(a.ev, language), a.written, _name(b.ev, language), b.written, language, tail)


def _versions_sentence(subject: str, new: _Claim, old: _Claim, language: str, evs: list[Evidence]) -> str:
    pool = [e for e in evs if e.kind == "passage"]
    mark_new = version_of([e for e in pool if _source(e) == _source(new.ev)] or [new.ev])
    mark_old = version_of([e for e in pool if _source(e) == _source(old.ev)] or [old.ev])
    new_name, old_name = _marked(new.ev, mark_new.marker), _marked(old.ev, mark_old.marker)
    if language == "zh":
        kind = "草稿" if mark_old.status == 0 else "版本"
        return (f"关于{subject}，较新的版本“{new_name}”给出的是{new.written}，而较早的{kind}“{old_name}”给出的是"
                f"{old.written}，以较新版本为准。")
    kind = "draft" if mark_old.status == 0 else "version"
    return (f"For {subject}, the later version “{new_name}” gives {new.written}, while the earlier {kind} “{old_name}” "
            f"gave {old.written}, so the later figure stands.")


def _marked(ev: Evidence, marker: str) -> str:
    name = _title(ev)
    return f"{name} ({marker})" if marker and not has_marker(name) else name


def _subject(claim: _Claim, shared: frozenset[str]) -> str:
    """The words both sources use around the figure, as the first one writes them."""
    words = [w for w, _ in keywords(claim.near, numbers=False)
             if _context_terms(w) & (shared - CURRENCIES) and not _UNIT_ONLY_RE.fullmatch(w.lower())]
    text = re.sub(rf"(?<=[{HAN}]) (?=[{HAN}])", "", " ".join(dict.fromkeys(words)))
    return text or claim.subject or "the same measure"


def _sentence(subject: str, name: str, figure: str, other: str, other_figure: str, language: str,
              tail: bool) -> str:
    """'For <what>, <source A> gives <figure> but <source B> gives <figure>'."""
    if language == "zh":
        end = "，草稿中的数字可能已被取代" if tail else ""
        return f"关于{subject}，{name}给出的是{figure}，而{other}给出的是{other_figure}{end}。"
    end = ", so the draft figure is probably superseded" if tail else ""
    return f"For {subject}, {name} gives {figure} but {other} gives {other_figure}{end}."


def _title(ev: Evidence) -> str:
    """The document's title (no section: '1. Summary' would read as a sentence end and a figure)."""
    return re.sub(r"[.!?;。！？；]+(?=\s|$)", "", ev.title or (ev.source or ev.id).rsplit("/", 1)[-1]).strip()


def _name(ev: Evidence, language: str) -> str:
    """The title, saying 'draft' when the title itself does not."""
    name = _title(ev)
    if not is_draft(ev) or DRAFT_RE.search(name):
        return name
    return f"{name}（草稿）" if language == "zh" else f"{name} (a draft)"


def _describe_sql(claim: _Claim, ev: Evidence, column: str, value: float, language: str) -> str:
    shown = f"{value:.6g}" if value != int(value) else str(int(value))
    where = ("数据仓库" if language == "zh" else "the warehouse") + f" ({', '.join(ev.tables)}, {column})"
    subject = _subject(claim, claim.context)
    return _sentence(subject, _name(claim.ev, language), claim.written, where, shown, language, False)
