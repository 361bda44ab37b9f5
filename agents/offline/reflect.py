"""Offline reflection: which sub-questions the evidence covers, what is missing, where sources disagree.

Coverage is lexical: a sub-question is answered when its evidence mentions enough of its key terms
(and holds a table result when it asked for one). Contradictions are the same measure stated with
different numbers by two sources; a draft against a final version is the common case.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from agents.offline.sentences import (
    CJK_RE, Number, find_numbers, keywords, number_values, split_sentences, supported, terms,
)
from tools.evidence import Evidence
from tools.research_models import Contradiction, Finding, Gap, Plan, Reflection, SubQuestion

COVERAGE_THRESHOLD = 0.6  # weighted share of a sub-question's key terms its evidence must contain
MAX_FOLLOW_UPS = 3
MAX_CONTRADICTIONS = 8
WINDOW_BEFORE, WINDOW_AFTER = 6.0, 3.0  # words around a number that say what it measures
SENTENCE_OVERLAP = 0.3  # least Jaccard overlap of two sentences that state the same measure
DRAFT_RE = re.compile(r"draft|草稿|初稿|征求意见稿", re.IGNORECASE)
_CURRENCIES = {"cny", "rmb", "usd", "eur", "yuan"}
_UNIT_TERMS = _CURRENCIES | {"amount", "value", "num", "number", "total"}  # column words that name no measure
_SQL_LITERAL_RE = re.compile(r"'((?:[^']|'')*)'")
_UNIT_AFTER_RE = re.compile(r"\s?(?:[A-Z]{3}\b|元|万元|亿元|人)")
_UNIT_WORD_RE = re.compile(r"\s*([A-Za-z]+|" + CJK_RE.pattern + ")")
_WINDOW_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)*|\d+(?:[.,]\d+)*[A-Za-z%]*|"
                              + CJK_RE.pattern)


def reflect(plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence], *, round: int) -> Reflection:
    findings = [f for f in findings if f.round <= round]
    tried, tried_sql = _tried(plan, findings)
    weights = _term_weights(plan)
    covered: dict[str, bool] = {}
    gaps: list[Gap] = []
    for sq in plan.sub_questions:
        ids = evidence_ids_for(sq.id, findings, evidence)
        gap = _gap(sq, [evidence[i] for i in ids], weights, tried, tried_sql, plan.language)
        covered[sq.id] = gap is None
        gaps += [gap] if gap else []
    used = sorted({i for f in findings for i in _finding_ids(f) if i in evidence})
    contradictions = find_contradictions([evidence[i] for i in used], language=plan.language)
    return Reflection(covered=covered, gaps=gaps, contradictions=contradictions)


def evidence_ids_for(sub_question_id: str, findings: list[Finding], evidence: Mapping[str, Evidence]) -> list[str]:
    """The sub-question's evidence in retrieval order (tool calls first: finding ids are sorted)."""
    ids = [i for f in findings if f.sub_question_id == sub_question_id for i in _finding_ids(f)]
    return [i for i in dict.fromkeys(ids) if i in evidence]


def _finding_ids(f: Finding) -> list[str]:
    return [i for c in f.tool_calls for i in c.evidence_ids] + list(f.evidence_ids)


# --- coverage and gaps -----------------------------------------------------------------------

def _term_weights(plan: Plan) -> dict[str, float]:
    """IDF over sub-questions: the words that set one sub-question apart weigh more than the topic."""
    df = Counter(t for sq in plan.sub_questions for t in terms(sq.question))
    n = len(plan.sub_questions)
    return {t: 1.0 + math.log((1 + n) / (1 + c)) for t, c in df.items()}


def _evidence_terms(ev: Evidence) -> set[str]:
    """A passage with its title and section; a SQL result with its tables, columns and the literals
    it filtered on ('rag', '2026-01-01'), which its rows no longer show."""
    literals = [m.group(1) for m in _SQL_LITERAL_RE.finditer(ev.sql or "")]
    extra = [*ev.tables, *ev.columns, *literals] if ev.kind == "sql" else [ev.title or "", ev.section or ""]
    return set(terms(" ".join([ev.text, *extra])))


def _gap(sq: SubQuestion, evs: list[Evidence], weights: dict[str, float], tried: set[str],
         tried_sql: set[str], language: str) -> Gap | None:
    key = terms(sq.question)
    found = set().union(*(_evidence_terms(e) for e in evs)) if evs else set()
    total = sum(weights.get(t, 1.0) for t in key)
    hit = sum(weights.get(t, 1.0) for t in key if t in found)
    coverage = hit / total if total else float(bool(evs))
    needs_sql = sq.needs == "tables" or (sq.needs == "both" and bool(sq.tables))
    has_sql = any(e.kind == "sql" and e.rows for e in evs)
    if evs and coverage >= COVERAGE_THRESHOLD and (has_sql or not needs_sql):
        return None
    missing = _missing_keywords(sq.question, found)[:8]
    queries = _follow_ups(sq, missing, weights, found, tried)
    sql = _follow_up_sql(sq, evs, tried_sql) if needs_sql and not has_sql else []
    return Gap(sub_question_id=sq.id, description=_gap_text(sq, evs, missing, needs_sql and not has_sql, language),
               follow_up_queries=queries, follow_up_sql=sql)


def _missing_keywords(question: str, found: set[str]) -> list[str]:
    """Words of the question whose terms (at least half of a Chinese word's bigrams) are not found."""
    return list(dict.fromkeys(w for w, ts in keywords(question) if sum(t not in found for t in ts) * 2 >= len(ts)))


def _follow_ups(sq: SubQuestion, missing: list[str], weights: dict[str, float], found: set[str],
                tried: set[str]) -> list[str]:
    """Reformulations that drop what was found and keep what is missing, anchored by the
    sub-question's most specific found keywords; word order varies so each query differs."""
    present = [s for s, ts in keywords(sq.question) if s not in missing and any(t in found for t in ts)]
    anchors = sorted(dict.fromkeys(present), key=lambda s: -max(weights.get(t, 1.0) for t in terms(s) or [s]))[:2]
    candidates = [missing, missing + anchors, anchors + missing[::-1], *([m, *anchors] for m in missing), anchors]
    out: list[str] = []
    for words in candidates:
        query = " ".join(dict.fromkeys(words))
        if query and _norm(query) not in tried and _norm(query) not in map(_norm, out):
            out.append(query)
    return out[:MAX_FOLLOW_UPS]


def _follow_up_sql(sq: SubQuestion, evs: list[Evidence], tried_sql: set[str]) -> list[str]:
    """A first look at each expected table no query has read yet (the research step guards the SQL)."""
    queried = {t for e in evs if e.kind == "sql" and e.rows for t in e.tables}
    sqls = [f'SELECT * FROM "{t}" LIMIT 50' for t in sq.tables if t not in queried and re.fullmatch(r"\w+", t)]
    return [q for q in sqls if _norm(q) not in tried_sql]


def _gap_text(sq: SubQuestion, evs: list[Evidence], missing: list[str], no_sql: bool, language: str) -> str:
    """One sentence, no figures of its own (it is printed uncited in the report)."""
    q = sq.question.strip().rstrip("?？。.")
    if language == "zh":
        parts = [f"证据中没有提到{'、'.join(missing)}"] * bool(missing) + ["尚无返回数据的表查询"] * no_sql
        parts = parts or ["证据只覆盖了其中部分关键词"]
        return f"“{q}”尚未得到充分回答：{'，且'.join(parts)}。" if evs else f"尚未找到关于“{q}”的证据。"
    parts = [f"the evidence does not mention {', '.join(missing)}"] * bool(missing)
    parts += ["no table query has returned rows for it"] * no_sql
    parts = parts or ["the evidence holds only some of its key words"]
    if not evs:
        return f"No evidence has been found yet for “{q}”."
    return f"“{q}” is not fully answered: {' and '.join(parts)}."


def _tried(plan: Plan, findings: list[Finding]) -> tuple[set[str], set[str]]:
    """Past search queries and SQL (from the tool calls' arguments), plus the plan's own queries."""
    queries = {_norm(q) for sq in plan.sub_questions for q in sq.queries}
    sql: set[str] = set()
    for key, value in ((k, v) for f in findings for c in f.tool_calls for k, v in c.arguments.items()):
        values = value if isinstance(value, (list, tuple)) else [value]
        (sql if key == "sql" else queries).update(_norm(v) for v in values if isinstance(v, str))
    return queries, sql


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# --- contradictions --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Claim:
    ev: Evidence
    numbers: tuple[Number, ...]  # one figure, or the two ends of a range
    written: str
    context: frozenset[str]  # non-number terms around the figure
    years: frozenset[str]
    sentence_terms: frozenset[str]
    near: str  # the words around the figure, for the description
    unit: str  # the word right after it: 'cny', 'people', '人'; '' when none
    key: tuple[str, int, int]  # evidence id, sentence, figure: each figure is reported once


def find_contradictions(evs: list[Evidence], *, language: str = "en") -> list[Contradiction]:
    """Figures for the same measure that differ between two sources, drafts first; each figure is
    reported once, against its closest match."""
    claims = [c for e in evs if e.kind == "passage" for c in _claims(e)]
    found = [(a.key, b.key, score, a.ev, b.ev, _describe(a, b, language)) for a, b, score in _conflicting_pairs(claims)]
    for rows in (_sql_rows(e) for e in evs if e.kind == "sql" and e.rows):
        for claim in claims:
            hit = _sql_conflict(claim, rows, language)
            if hit:
                found.append((claim.key, hit[0], 0.5, claim.ev, rows[0].ev, hit[1]))
    found.sort(key=lambda f: (not (is_draft(f[3]) or is_draft(f[4])), -f[2], sorted([f[3].id, f[4].id]), f[0], f[1]))
    used: set[tuple] = set()
    out: list[Contradiction] = []
    for key_a, key_b, _, a, b, text in found:
        if key_a not in used and key_b not in used:
            used |= {key_a, key_b}
            first, second = (b, a) if is_draft(b) and not is_draft(a) else (a, b)  # the draft first, as in the text
            out.append(Contradiction(description=text, evidence_ids=[first.id, second.id]))
    return out[:MAX_CONTRADICTIONS]


def _claims(ev: Evidence) -> list[_Claim]:
    """Every figure (or range) stated in the evidence, with the words around it."""
    out = []
    for index, sentence in enumerate(split_sentences(ev.text)):
        numbers = find_numbers(sentence)
        plain = sentence
        for n in numbers:  # figures say nothing about what is measured: blank them out
            plain = plain[:n.start] + " " * (n.end - n.start) + plain[n.end:]
        for group in dict.fromkeys(n.group for n in numbers if n.kind == "claim"):
            ends = tuple(n for n in numbers if n.group == group and n.kind == "claim")
            s, e = _window(plain, ends[0].start, ends[-1].end)
            near = plain[s:ends[0].start] + " " + plain[ends[-1].end:e]
            years = frozenset(str(int(n.value)) for n in numbers
                              if n.kind in ("year", "date") and s <= n.start < e and 1900 <= n.value <= 2100)
            currency = _UNIT_AFTER_RE.match(sentence, ends[-1].end)
            after = _UNIT_WORD_RE.match(sentence, ends[-1].end)
            unit = (terms(after.group(1), numbers=False) if after else []) or [""]
            out.append(_Claim(ev, ends, sentence[ends[0].start:currency.end() if currency else ends[-1].end],
                              _context_terms(near), years, frozenset(terms(sentence, numbers=False)), near, unit[0],
                              (ev.id, index, group)))
    return out


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
        budget -= 0.5 if CJK_RE.match(m.group()) else 1.0 if terms(m.group(), numbers=False) else 0.0
        if budget < 0:
            break
        out.append(m)
    return out


def _subject(claim: _Claim, shared: frozenset[str]) -> str:
    """The words both sources use around the figure, as the first one writes them."""
    words = [w for w, _ in keywords(claim.near, numbers=False) if _context_terms(w) & (shared - _CURRENCIES)]
    return " ".join(dict.fromkeys(words)) or "the same measure"


def _conflicting_pairs(claims: list[_Claim]) -> Iterable[tuple[_Claim, _Claim, float]]:
    postings: dict[str, list[int]] = {}
    for i, c in enumerate(claims):
        for t in sorted(c.context):
            postings.setdefault(t, []).append(i)
    for i, a in enumerate(claims):
        shared = Counter(j for t in sorted(a.context) for j in postings[t] if j > i)
        for j in sorted(k for k, n in shared.items() if n >= 2):
            score = _conflict(a, claims[j])
            if score:
                yield a, claims[j], score


def _conflict(a: _Claim, b: _Claim) -> float:
    """Similarity of two claims that measure the same thing with different numbers, else 0."""
    if (_source(a.ev) == _source(b.ev) or len(a.numbers) != len(b.numbers) or a.years != b.years
            or a.numbers[0].percent != b.numbers[0].percent or (a.unit and b.unit and a.unit != b.unit)):
        return 0.0
    shared = len(a.context & b.context)
    # The words around the two figures agree but for one ('in this draft, the total budget' / 'the
    # total budget'). One more differing word is often the whole point: 'application-building' /
    # 'capability-building', 'RAG' / 'prompt engineering', 'the Customer Support' / 'the whole'.
    if shared < 2 or len(a.context ^ b.context) > 1:
        return 0.0
    if len(a.sentence_terms & b.sentence_terms) < SENTENCE_OVERLAP * len(a.sentence_terms | b.sentence_terms):
        return 0.0  # same words near the figure, but the sentences are about different things
    if all(supported(x, [y.value]) or supported(y, [x.value]) for x, y in zip(a.numbers, b.numbers)):
        return 0.0
    if _states(b.ev, a.numbers) and _states(a.ev, b.numbers):
        return 0.0  # each source also gives the other's figure: they measure different things
    return shared / len(a.context | b.context)


def _states(ev: Evidence, numbers: tuple[Number, ...]) -> bool:
    values = number_values(ev.text)
    return all(supported(n, values) for n in numbers)


def _source(ev: Evidence) -> str:
    return ev.doc_id or ev.source or ev.title or ev.id


def is_draft(ev: Evidence) -> bool:
    return bool(DRAFT_RE.search(f"{ev.source or ''} {ev.title or ''}"))


def _describe(a: _Claim, b: _Claim, language: str) -> str:
    if is_draft(b.ev) and not is_draft(a.ev):
        a, b = b, a
    tail = is_draft(a.ev) and not is_draft(b.ev)
    return _sentence(a, a.context & b.context, _name(b.ev, language), b.written, language, tail)


def _sentence(a: _Claim, shared: frozenset[str], other: str, figure: str, language: str, tail: bool) -> str:
    """'For <what>, <source A> gives <figure> but <source B> gives <figure>': one sentence, each
    figure as its source writes it, so the verifier finds it in the cited evidence."""
    subject, name = _subject(a, shared), _name(a.ev, language)
    if language == "zh":
        end = "，草稿中的数字可能已被取代" if tail else ""
        return f"关于{subject}，{name}给出的是{a.written}，而{other}给出的是{figure}{end}。"
    end = ", so the draft figure is probably superseded" if tail else ""
    return f"For {subject}, {name} gives {a.written} but {other} gives {figure}{end}."


def _name(ev: Evidence, language: str) -> str:
    """The document's title (no section: '1. Summary' would read as a sentence end and a figure),
    saying 'draft' when the title itself does not."""
    name = re.sub(r"[.!?;。！？；]+(?=\s|$)", "", ev.title or (ev.source or ev.id).rsplit("/", 1)[-1]).strip()
    if not is_draft(ev) or DRAFT_RE.search(name):
        return name
    return f"{name}（草稿）" if language == "zh" else f"{name} (a draft)"


@dataclass(frozen=True)
class _SqlRow:
    ev: Evidence
    labels: tuple[frozenset[str], ...]  # short text cells and the query's literals: the entity
    years: frozenset[str]
    measures: tuple[tuple[str, float, frozenset[str]], ...]  # column, value, the column's terms


def _sql_rows(ev: Evidence) -> list[_SqlRow]:
    literals = [m.group(1) for m in _SQL_LITERAL_RE.finditer(ev.sql or "")]
    sql_years = {str(int(n.value)) for n in find_numbers(ev.sql or "") if n.kind in ("year", "date")}
    out = []
    for row in ev.rows:
        labels = [frozenset(terms(v, numbers=False)) for v in [*row, *literals] if isinstance(v, str)]
        years = sql_years | {str(v) for v in row if isinstance(v, int) and 1900 <= v <= 2100}
        measures = [(c, float(v), frozenset(terms(c, numbers=False)) - _UNIT_TERMS)
                    for c, v in zip(ev.columns, row) if _is_measure(c, v)]
        out.append(_SqlRow(ev, tuple(ls for ls in labels if 0 < len(ls) <= 3), frozenset(years),
                           tuple(m for m in measures if m[2])))
    return out


def _sql_conflict(claim: _Claim, rows: list[_SqlRow], language: str) -> tuple[tuple, str] | None:
    """A document figure against a warehouse cell, only when the match is unambiguous: exactly one
    row fits (its label or the query's filter names the entity, years agree), the column names the
    measure, and the figures differ."""
    if len(claim.numbers) != 1 or claim.numbers[0].percent:
        return None
    fits = [r for r in rows if claim.years <= r.years
            and (any(ls <= claim.sentence_terms for ls in r.labels) or (len(rows) == 1 and not r.labels))]
    if len(fits) != 1:
        return None
    for column, value, needed in fits[0].measures:
        if needed <= claim.context and not supported(claim.numbers[0], [value]):
            key = (fits[0].ev.id, rows.index(fits[0]), column)
            return key, _describe_sql(claim, fits[0].ev, column, value, language)
    return None


def _is_measure(column: str, value: Any) -> bool:
    name = column.lower()
    keys = name == "id" or name.endswith("_id") or any(w in name for w in ("year", "date", "month"))
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not keys


def _describe_sql(claim: _Claim, ev: Evidence, column: str, value: float, language: str) -> str:
    shown = f"{value:.6g}" if value != int(value) else str(int(value))
    where = ("数据仓库" if language == "zh" else "the warehouse") + f" ({', '.join(ev.tables)}, {column})"
    return _sentence(claim, claim.context, where, shown, language, False)
