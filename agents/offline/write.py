"""Offline writing: an outline from the plan and the evidence, then extractive sections.

Every sentence in a section is a sentence of a cited passage (or a one-line lead-in to a cited SQL
table), followed by its ``[ev:ID]`` marker, so no number appears that the evidence does not hold.
Text in another language than the report is quoted as it is: nothing is translated offline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

from agents.offline.reflect import evidence_ids_for, is_draft
from agents.offline.sentences import CJK_RE, claim_numbers, sentence_spans, squash, terms
from tools.evidence import Evidence
from tools.research_models import Finding, Outline, Plan, Reflection, Section, SectionPlan, SubQuestion

MAX_SENTENCES = 6  # per section
MAX_PER_SOURCE = 3  # so one long document cannot fill a section
MAX_TABLE_ROWS = 12
MAX_TABLES = 3  # SQL results per section
DUPLICATE_JACCARD = 0.6  # term overlap at which two sentences say the same thing
CENTRALITY_WEIGHT, NUMBERS_BONUS, REDUNDANCY_PENALTY = 0.5, 0.1, 0.5
DRAFT_FACTOR = 0.6
SUMMARY, OPEN = "summary", "open"  # section ids with a role of their own; the rest answer sub-questions
_TEXT = {
    "en": {"summary": "Executive summary", "open": "Contradictions and open questions",
           "contradictions": "Contradictions", "gaps": "Open questions",
           "nothing": "The retrieved passages contain no sentence that addresses this question.",
           "no_evidence": "No evidence that addresses “{q}” was found."},
    "zh": {"summary": "摘要", "open": "矛盾与待解决问题", "contradictions": "矛盾", "gaps": "待解决问题",
           "nothing": "检索到的段落中没有直接回答该问题的句子。", "no_evidence": "没有找到与“{q}”相关的证据。"},
}
_END_RE = re.compile(r"[.!?。！？；;]+[”’」』）)\"']*$")
_WIDE_RE = re.compile("[\u3000-\u303f\uff00-\uffef]")  # full-width punctuation takes no space
_NOISE_RE = re.compile(r"\*\*|__|`|\[ev:[^\]]*\]|\[\d+(?:,\s*\d+)*\]")


def outline(question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence], *,
            language: str, reflection: Reflection | None = None) -> Outline:
    """Summary, one section per sub-question (merged when they share all their evidence), then
    contradictions and open questions when there are any."""
    groups: list[tuple[list[str], list[str]]] = []
    unanswered = []
    for sq in plan.sub_questions:
        ids = evidence_ids_for(sq.id, findings, evidence)
        same = next((g for g in groups if set(g[1]) == set(ids)), None)
        if not _answerable(sq, [evidence[i] for i in ids]):
            unanswered.append(sq.id)
        elif same:
            same[0].append(sq.id)
        else:
            groups.append(([sq.id], ids))
    by_id = {sq.id: sq for sq in plan.sub_questions}
    text = _TEXT.get(language, _TEXT["en"])
    body = [SectionPlan(id=f"s{n}", title=" / ".join(_plain(by_id[i].question) for i in sq_ids),
                        goal="Answer: " + " ".join(by_id[i].question for i in sq_ids),
                        sub_question_ids=sq_ids, evidence_ids=ids)
            for n, (sq_ids, ids) in enumerate(groups, 1)]
    sections = []
    if body:
        every = list(dict.fromkeys(i for s in body for i in s.evidence_ids))
        sections.append(SectionPlan(id=SUMMARY, title=text["summary"], goal="The best answer to each sub-question.",
                                    sub_question_ids=[i for s in body for i in s.sub_question_ids], evidence_ids=every))
    sections += body
    conflicts = reflection.contradictions if reflection else []
    if unanswered or (reflection and (reflection.gaps or conflicts)):
        ids = list(dict.fromkeys(i for c in conflicts for i in c.evidence_ids if i in evidence))
        sections.append(SectionPlan(id=OPEN, title=text["open"], goal="Where sources disagree and what is missing.",
                                    sub_question_ids=unanswered, evidence_ids=ids))
    return Outline(title=_plain(question), sections=sections)


def _answerable(sq: SubQuestion, evs: list[Evidence]) -> bool:
    """Some table result, or some sentence on topic: else the sub-question goes to open questions."""
    return any(_has_rows(e) for e in evs) or bool(_select(_candidates(evs), _query_weights([sq]), 1))


def write_section(section: SectionPlan, *, question: str, plan: Plan, evidence: Mapping[str, Evidence],
                  language: str, reflection: Reflection | None = None) -> Section:
    by_id = {sq.id: sq for sq in plan.sub_questions}
    sqs = [by_id[i] for i in section.sub_question_ids if i in by_id]
    if not sqs and section.id not in (OPEN, SUMMARY):  # a section planned elsewhere: its title is the question
        sqs = [SubQuestion(id=section.id, question=f"{section.title} {section.goal}")]
    evs = [evidence[i] for i in section.evidence_ids if i in evidence]
    text = _TEXT.get(language, _TEXT["en"])
    if section.id == OPEN:
        markdown = _open_questions(sqs, evidence, reflection, text)
    elif section.id == SUMMARY:
        markdown = _summary(sqs, evs, language)
    else:
        markdown = _body(sqs, evs, language) or text["nothing"]
    return Section(id=section.id, title=section.title, markdown=markdown)


# --- sentences and their scores --------------------------------------------------------------

@dataclass(frozen=True)
class _Sentence:
    ev: Evidence
    rank: int  # the evidence's place in the section (retrieval order)
    pos: int  # offset in the evidence text
    text: str
    terms: frozenset[str]
    figures: tuple[float, ...]  # the values it states: same words, other figures is no duplicate
    centrality: float = 0.0  # mean similarity to the other candidates: what many passages agree on


def _candidates(evs: list[Evidence]) -> list[_Sentence]:
    out = []
    for rank, ev in enumerate(e for e in evs if e.kind == "passage"):
        for start, end in sentence_spans(ev.text):
            text = _tidy(ev.text[start:end])
            if _usable(text):
                figures = tuple(sorted(n.value for n in claim_numbers(text)))
                out.append(_Sentence(ev, rank, start, text, frozenset(terms(text, numbers=False)), figures))
    return [replace(c, centrality=_centrality(c, out)) for c in out]


def _centrality(c: _Sentence, cands: list[_Sentence]) -> float:
    sims = [len(c.terms & o.terms) / math.sqrt(len(c.terms) * len(o.terms) or 1) for o in cands if o is not c]
    return sum(sims) / len(sims) if sims else 0.0


def _tidy(raw: str) -> str:
    """Markdown emphasis and the source's own footnote marks out; a clause cut at a semicolon is
    made a sentence. Punctuation and case only: the words and figures stay as written."""
    text = " ".join(_NOISE_RE.sub("", squash(raw)).split())
    text = text[:-1] + "." if text.endswith(";") else text[:-1] + "。" if text.endswith("；") else text
    return text[:1].upper() + text[1:] if text[:1].islower() and text[:1].isascii() else text


def _usable(text: str) -> bool:
    """Whole statements only: not list lead-ins, not fragments, not walls of text."""
    cjk = len(CJK_RE.findall(text))
    long_enough = cjk >= 10 or (len(text) >= 30 and len(text.split()) >= 5)
    return long_enough and len(text) <= 500 and not text.endswith((":", "：", ","))


def _query_weights(sqs: list[SubQuestion]) -> dict[str, float]:
    """The sub-question's own words count fully; its search queries' extra words count half."""
    weights: dict[str, float] = {}
    for sq in sqs:
        for t in terms(" ".join(sq.queries), numbers=False):
            weights.setdefault(t, 0.5)
        for t in terms(sq.question, numbers=False):
            weights[t] = 1.0
    return weights


def _scores(cands: list[_Sentence], weights: dict[str, float]) -> list[tuple[float, float]]:
    """(score, overlap) per candidate: overlap with the query, centrality, a bonus for figures;
    a draft's sentences lose to the final version's."""
    total = sum(weights.values()) or 1.0
    out = []
    for c in cands:
        overlap = sum(w for t, w in weights.items() if t in c.terms) / total
        score = overlap + CENTRALITY_WEIGHT * c.centrality + NUMBERS_BONUS * bool(c.figures)
        out.append((score * (DRAFT_FACTOR if is_draft(c.ev) else 1.0), overlap))
    return out


def _select(cands: list[_Sentence], weights: dict[str, float], limit: int,
            taken: list[_Sentence] | None = None) -> list[_Sentence]:
    """Greedy maximal marginal relevance: the best remaining sentence, less its similarity to what
    is already chosen; near-duplicates (overlapping chunks repeat sentences) are dropped."""
    # A sentence sharing no word with the question is off topic, unless all the evidence is in the
    # other script: then nothing can share words, and the most central sentences are quoted as is.
    script = _is_cjk(" ".join(weights))
    pairs = list(zip(cands, _scores(cands, weights)))
    scored = [(c, s) for c, (s, overlap) in pairs if overlap > 0]
    if not scored and all(_is_cjk(c.text) != script for c in cands):
        scored = [(c, s) for c, (s, _) in pairs]
    chosen: list[_Sentence] = []
    taken = list(taken or [])
    while scored and len(chosen) < limit:
        def adjusted(k: int) -> tuple[float, int]:
            c, s = scored[k]
            return s - REDUNDANCY_PENALTY * _redundancy(c, chosen + taken), -k
        best = max(range(len(scored)), key=adjusted)
        cand, _ = scored.pop(best)
        per_source = sum(_source(c.ev) == _source(cand.ev) for c in chosen)
        if _redundancy(cand, chosen + taken) < DUPLICATE_JACCARD and per_source < MAX_PER_SOURCE:
            chosen.append(cand)
    return chosen


def _redundancy(cand: _Sentence, chosen: list[_Sentence]) -> float:
    """Word overlap with the closest chosen sentence, halved when the figures differ: a draft and
    a final version of one sentence both deserve a place."""
    sims = [len(cand.terms & c.terms) / (len(cand.terms | c.terms) or 1) * (1.0 if cand.figures == c.figures else 0.5)
            for c in chosen]
    return max(sims, default=0.0)


def _is_cjk(text: str) -> bool:
    return len(CJK_RE.findall(text)) * 3 >= len(re.findall(r"[A-Za-z]", text)) and bool(CJK_RE.search(text))


def _source(ev: Evidence) -> str:
    return ev.source or ev.doc_id or ev.id


# --- sections --------------------------------------------------------------------------------

def _body(sqs: list[SubQuestion], evs: list[Evidence], language: str) -> str:
    """Up to MAX_SENTENCES sentences, a paragraph per source (sources by their best sentence, the
    sentences in the source's own order), then the SQL results as tables."""
    chosen = _select(_candidates(evs), _query_weights(sqs), MAX_SENTENCES)
    paragraphs = []
    for source in dict.fromkeys(_source(c.ev) for c in chosen):
        mine = [c for c in chosen if _source(c.ev) == source]
        mine.sort(key=lambda c: (c.ev.char_start or 0, c.ev.id, c.pos))
        paragraphs.append(_join([cite(c.text, [c.ev.id]) for c in mine]))
    tables = [e for e in evs if _has_rows(e)][:MAX_TABLES]
    paragraphs += [_sql_block(e, language) for e in tables]
    return "\n\n".join(paragraphs)


def extractive_answer(question: str, evs: list[Evidence], language: str = "en") -> str:
    """The section the writer would make of ``evs`` for ``question`` alone: no plan, no second
    search, no reflection. The benchmarks' single-shot baseline writes with it."""
    return _body([SubQuestion(id="q1", question=question, needs="documents")], evs, language)


def _summary(sqs: list[SubQuestion], evs: list[Evidence], language: str) -> str:
    """The single best sentence per sub-question (a table's lead-in when only a table answers it)."""
    cands, bullets, taken = _candidates(evs), [], []
    for sq in sqs:
        best = [] if sq.needs == "tables" else _select(cands, _query_weights([sq]), 1, taken)
        if best:
            taken.append(best[0])
            bullets.append("- " + cite(best[0].text, [best[0].ev.id]))
            continue
        sql = _best_sql(sq, evs)
        if sql is not None:
            bullets.append("- " + _lead_in(sql, language))
    return "\n".join(dict.fromkeys(bullets))


def _best_sql(sq: SubQuestion, evs: list[Evidence]) -> Evidence | None:
    """The table result sharing most words with the sub-question; the tables it expected count double."""
    wanted = set(terms(sq.question, numbers=False))
    tables = [e for e in evs if _has_rows(e)]
    scores = [len(wanted & set(terms(" ".join([e.text, *e.tables, *e.columns]))))
              + 2 * len(set(sq.tables) & set(e.tables)) for e in tables]
    best = max(range(len(tables)), key=lambda i: (scores[i], -i), default=None)
    return tables[best] if best is not None and scores[best] > 0 else None


def _open_questions(sqs: list[SubQuestion], evidence: Mapping[str, Evidence], reflection: Reflection | None,
                    text: dict[str, str]) -> str:
    parts = []
    conflicts = reflection.contradictions if reflection else []
    if conflicts:
        lines = ["- " + cite(c.description, [i for i in c.evidence_ids if i in evidence]) for c in conflicts]
        parts.append(f"### {text['contradictions']}\n\n" + "\n".join(lines))
    gaps = [g.description for g in (reflection.gaps if reflection else [])]
    gapped = {g.sub_question_id for g in (reflection.gaps if reflection else [])}
    gaps += [text["no_evidence"].format(q=_plain(sq.question)) for sq in sqs if sq.id not in gapped]
    if gaps:
        parts.append(f"### {text['gaps']}\n\n" + "\n".join("- " + g for g in gaps))
    return "\n\n".join(parts)


def _has_rows(ev: Evidence) -> bool:
    """A SQL result that says something: not empty, and not one row of empty aggregates (count 0)."""
    return ev.kind == "sql" and bool(ev.rows) and any(v not in (None, 0, "") for row in ev.rows for v in row)


def _sql_block(ev: Evidence, language: str) -> str:
    rows = ev.rows[:MAX_TABLE_ROWS]
    lines = ["| " + " | ".join(_cell(c) for c in ev.columns) + " |", "|" + " --- |" * len(ev.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return _lead_in(ev, language) + "\n\n" + "\n".join(lines)


def _lead_in(ev: Evidence, language: str) -> str:
    """One sentence that introduces a table; its only number is the row count the evidence holds."""
    n = ev.row_count if ev.row_count is not None else len(ev.rows)
    partial = min(len(ev.rows), MAX_TABLE_ROWS) < n
    tables = ", ".join(ev.tables) or ("数据仓库" if language == "zh" else "the warehouse")
    if language == "zh":
        more = "，下表列出其中前几行" if partial else ""
        cap = "（结果已达行数上限）" if ev.truncated else ""
        return cite(f"对 {tables} 的数据仓库查询返回 {n} 行{cap}{more}。", [ev.id])
    more = ", of which the first are shown below" if partial else ""
    cap = " (the result hit the row cap)" if ev.truncated else ""
    return cite(f"The warehouse query over {tables} returns {n} row{'s' if n != 1 else ''}{cap}{more}.", [ev.id])


def cite(sentence: str, ids: list[str]) -> str:
    """Put the markers before the sentence's final punctuation (or at its end)."""
    markers = "".join(f"[ev:{i}]" for i in ids)
    if not markers:
        return sentence
    m = _END_RE.search(sentence)
    head, tail = (sentence[:m.start()], m.group()) if m else (sentence, "")
    space = "" if head and (CJK_RE.match(head[-1]) or _WIDE_RE.match(head[-1])) else " "
    return f"{head.rstrip()}{space}{markers}{tail}"


def _cell(value: Any) -> str:
    """Floats without exponents ('3210000', not '3.21e+06'); the verifier matches cells by value."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif isinstance(value, float):
        text = f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    else:
        text = str(value)
    return " ".join(text.replace("|", "\\|").split())


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        glue = "" if not out or _WIDE_RE.match(out[-1]) or (CJK_RE.match(s[:1]) and CJK_RE.match(out[-1])) else " "
        out += glue + s
    return out


def _plain(question: str) -> str:
    return " ".join(question.split()).rstrip("?？。.! ")
