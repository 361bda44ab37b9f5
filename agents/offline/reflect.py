"""Offline reflection: which sub-questions the evidence covers, what is missing, where sources disagree.

Coverage is lexical: a sub-question is answered when some of its evidence supports it on its own
(agents.offline.support: key words and anchors within one passage or result), the supporting
evidence mentions enough of its key terms, and it holds a table result when it asked for one.
Contradictions are the same measure stated with different numbers by two sources; a draft against a
final version is the common case.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

from agents.offline.conflicts import find_contradictions, is_draft  # noqa: F401 (re-exported)
from agents.offline.support import assess
from tools.text.terms import keywords, terms
from tools.vocabulary import Evidence, Finding, Gap, Plan, Reflection, SubQuestion

COVERAGE_THRESHOLD = 0.6  # weighted share of a sub-question's key terms its evidence must contain
MAX_FOLLOW_UPS = 3
_SQL_LITERAL_RE = re.compile(r"'((?:[^']|'')*)'")


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
    # Terms count only from evidence that supports the sub-question on its own (key words and
    # anchors within one passage or result): 'PostgreSQL' in one passage and 'GB' in another is no answer.
    support = assess(sq.question, evs)
    found = set().union(*(_evidence_terms(e) for e in support.evidence)) if support.supported else set()
    total = sum(weights.get(t, 1.0) for t in key)
    hit = sum(weights.get(t, 1.0) for t in key if t in found)
    coverage = hit / total if total else float(bool(evs))
    needs_sql = sq.needs == "tables" or (sq.needs == "both" and bool(sq.tables))
    has_sql = any(e.kind == "sql" and e.rows for e in evs)
    # A result from a table the sub-question expected answers it even when its column names
    # ('overrun_pct') do not repeat the question's words.
    expected = support.supported and any(e.kind == "sql" and e.rows and set(e.tables) & set(sq.tables)
                                         for e in support.evidence)
    if evs and (coverage >= COVERAGE_THRESHOLD or expected) and (has_sql or not needs_sql):
        return None
    missing = list(dict.fromkeys([*support.missing, *_missing_keywords(sq.question, found)]))[:8]
    pooled = set().union(*(_evidence_terms(e) for e in evs)) if evs else set()
    queries = _follow_ups(sq, missing, weights, pooled, tried)
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
