"""Per-report metrics of ``report_quality.py``: answer first, answer in report, citation precision, words,
abstention. Matching reuses ``research_quality``'s normalisation (lowercase, punctuation and symbols
removed, whole words) and its numeric matcher (TAT-QA scale words, tolerance of half the gold's last digit).
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from report_sets import RQ
from research_quality import contains, gold_number, normalise, numeric_match, report_numbers, strip_method

SUMMARY_TITLES = ("executive summary", "摘要")
ABSTAIN_PREFIXES = ("the knowledge base does not contain", "知识库中没有")
_CITE_RE = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]|\[ev:[^\]]*\]")
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’.,][A-Za-z0-9]+)*|[\u3400-\u9fff]")
_LEAD_RE = re.compile(r"^(?:\s|[-*+>#]|\*\*|__|\d+[.)]\s)+")
_SENT_END_RE = re.compile(r"(?<=[.!?。！？])\s")
_PAREN_RE = re.compile(r"\([^()]*\)|（[^（）]*）")


def summary_text(report: Any) -> str:
    """The executive summary section's Markdown (id ``summary`` or its title), else the first section."""
    for s in report.sections:
        if s.id == "summary" or s.title.strip().lower() in SUMMARY_TITLES:
            return s.markdown
    return report.sections[0].markdown if report.sections else ""


def body_text(report: Any) -> str:
    """What a reader reads: every section, without title, question line, References and Method."""
    return "\n\n".join(f"{s.title}\n\n{s.markdown}" for s in report.sections)


def words(text: str) -> int:
    """Words (CJK: characters) without citation markers or table rules."""
    text = _CITE_RE.sub(" ", text)
    text = "\n".join(line for line in text.splitlines() if not re.fullmatch(r"\s*\|?[\s:|-]*\|?\s*", line))
    return len(_WORD_RE.findall(text))


def first_sentence(markdown: str) -> str:
    for line in markdown.splitlines():
        line = _LEAD_RE.sub("", line).strip()
        if line:
            return _SENT_END_RE.split(line, 1)[0]
    return ""


def abstains(summary: str) -> bool:
    """The summary's first sentence says the knowledge base does not hold the answer (team wording)."""
    first = first_sentence(summary).replace("**", "").lower()
    return first.startswith(ABSTAIN_PREFIXES)


def answer_found(q: RQ, text: str) -> bool:
    """Every gold group appears in ``text``: any alternative as whole words, or numerically (q.numeric)."""
    if not q.groups:
        return False
    text = _CITE_RE.sub(" ", text)  # "necessary [1]." must still match "necessary."
    norm = normalise(text)
    numbers = report_numbers(text) if q.numeric else []
    for group in q.groups:
        ok = False
        for alt in group:
            num = gold_number(alt) if q.numeric else None
            if contains(norm, alt) or (num is not None and numeric_match(num, q.scale, numbers)):
                ok = True
                break
        if not ok:
            return False
    return True


def trivial(q: RQ) -> bool:
    """Yes/no answers and answers the question already spells out."""
    if not q.groups:
        return False
    first = normalise(q.groups[0][0])
    qn = normalise(q.question)
    return first in ("yes", "no") or all(any(contains(qn, a) for a in g) for g in q.groups)


def cited_units(report: Any) -> list[str]:
    """Documents (file names) and tables the report cites, sorted."""
    by_id = report.evidence_by_id()
    units: set[str] = set()
    for ref in report.references:
        ev = by_id.get(ref.evidence_id)
        if ev is None:
            continue
        if ev.kind == "sql":
            units |= set(ev.tables)
        elif ev.source:
            units.add(ev.source.rsplit("/", 1)[-1])
    return sorted(units)


def strict_answer_first(q: RQ, summary: str) -> bool:
    """The gold in the summary's FIRST sentence, parentheses left out: a one-digit gold ("1") must not be
    credited to a figure in brackets ("ahead of +0.090 (1)", "(row 1)") or to a later sentence."""
    return answer_found(q, _PAREN_RE.sub(" ", first_sentence(summary)))


def precision(units: list[str], gold: list[str]) -> float | None:
    return sum(u in gold for u in units) / len(units) if units else None


def measure(q: RQ, report: Any, markdown: str) -> dict[str, Any]:
    summary = summary_text(report)
    units = cited_units(report)
    abstained = abstains(summary)
    return {  # an abstaining summary that names the answer ("does not contain anything on Microsoft") is no answer
        "answer_first": answer_found(q, summary) and not abstained,
        "answer_first_strict": strict_answer_first(q, summary) and not abstained,
        "answer_in_report": answer_found(q, strip_method(markdown)), "abstained": abstained,
        "words": words(body_text(report)), "cited_units": units,
        "citation_precision": None if q.unanswerable else precision(units, q.gold_units),
        "summary_first_sentence": first_sentence(summary)[:300],
    }


def share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def aggregate(records: list[dict]) -> dict[str, Any]:
    """Figures over a group of records (answerable and unanswerable counted apart)."""
    ans = [r for r in records if not r["unanswerable"]]
    una = [r for r in records if r["unanswerable"]]
    precs = [r["citation_precision"] for r in ans if r["citation_precision"] is not None]
    nontriv = [r for r in ans if not r["trivial"]]
    return {
        "n_answerable": len(ans), "n_unanswerable": len(una),
        "answer_first": share([r["answer_first"] for r in ans]),
        "answer_first_strict": share([r.get("answer_first_strict", False) for r in ans]),
        "answer_first_non_trivial": share([r["answer_first"] for r in nontriv]), "n_non_trivial": len(nontriv),
        "answer_in_report": share([r["answer_in_report"] for r in ans]),
        "citation_precision": mean(precs), "reports_citing": len(precs),
        "words_median": median([r["words"] for r in ans]),
        "words_median_single_fact": median([r["words"] for r in ans if r["single_fact"]]),
        "words_median_unanswerable": median([r["words"] for r in una]),
        "abstention": share([r["abstained"] for r in una]),
        "false_abstention": share([r["abstained"] for r in ans]),
        "seconds_mean": mean([r["seconds"] for r in records]),
    }
