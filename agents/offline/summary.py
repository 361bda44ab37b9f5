"""The executive summary: a direct answer to the question as asked, then a few supporting facts.

The answer is chosen for the whole question, not per sub-question: for "Are X and Y both Z?", Yes
or No with the sentences that decide it (agents.offline.yes_no); for a comparison, one sentence per
compared subject; for a question a table answers, the SQL result's headline (what it shows, never
how many rows); for a "why", the reasons; for a multi-hop question, the bridge and the sentence it
leads to (agents.offline.bridge); otherwise the best-supported sentences. Then at most MAX_BULLETS
bullets, each a different fact. When the knowledge base holds nothing for the question, the first
sentence says so ("The knowledge base does not contain …"); when it names what the question asks
about but no sentence passes the gate, the summary says that no passage states the answer directly
and quotes the nearest ones. A summary is never empty.
"""

from __future__ import annotations

import re
from dataclasses import replace

from agents.offline.blocks import cite, has_rows, headline, join
from agents.offline.bridge import best_bridge
from agents.offline.candidates import Sentence, Topic, candidates, is_cjk, on_topic, redundancy, select
from agents.offline.item import item_named, item_phrase
from agents.offline.plan_words import is_generic
from agents.offline.relevance import anchors, make_query, names, overlaps, relevance
from agents.offline.sql_answer import headline as sql_headline
from agents.offline.sql_answer import is_overview, matched_nothing
from agents.offline.sql_intent import SUM_RE, question_ops
from agents.offline.support import abstention, assess, evidence_text, holds_nothing, named_by, related
from agents.offline.yes_no import yes_no_lead
from tools.text.language import HAN
from tools.vocabulary import Evidence, SubQuestion

MAX_ANSWER = 3  # sentences in the answer
MAX_BULLETS = 3
_COMPARE_RE = re.compile(r"\b(?:or|vs\.?|versus|compare[ds]?|comparison|differ\w*|better|"
                         r"between(?!\s+(?:the\s+)?(?:years?\s+)?\d))\b|或|还是|对比|比较|区别|差异|相比",
                         re.IGNORECASE)
# 'X and Y', 'X or Y', 'X vs Y' (the first such pair of content words); 'X和Y', 'X还是Y'.
_PAIR_RE = re.compile(r"(?<![\w-])(?!(?:the|a|an|and|or|what|which|how|is|are|do|does|should|we|i)\b)([\w^.+#-]{2,})\s+"
                      r"(?:and|or|vs\.?|versus)\s+(?:the\s+)?(?!(?:the|a|an|what|which|how)\b)([\w^.+#-]{2,})",
                      re.IGNORECASE)
_PAIR_ZH_RE = re.compile(rf"([{HAN}A-Za-z0-9-]{{2,12}}?)\s*(?:和|与|还是|或|跟)\s*([{HAN}A-Za-z0-9-]{{2,12}}?)"
                         r"(?=[的在上之哪谁，,？?]|$)")
_WHY_RE = re.compile(r"\bwhy\b|\breasons?\b|\bcaused?\b|为什么|为何|原因", re.IGNORECASE)
_BECAUSE_RE = re.compile(r"\b(?:because|due to|since|as a result|caused|owing to|reason|led to|driven by|blame[sd]?)\b"
                         r"|因为|由于|原因|导致|所以", re.IGNORECASE)


def write_summary(question: str, sqs: list[SubQuestion], evs: list[Evidence], all_sqs: list[SubQuestion],
                  language: str) -> str:
    """``sqs``: the sub-questions the evidence supports; ``all_sqs``: every planned one."""
    item_missing = not sqs and not item_named(question, evs)
    if not sqs and not item_missing and not holds_nothing(question, evs) and (
            near := _nearest(question, candidates(evs), language)):
        return near
    if not sqs:
        whole = assess(question, evs)
        if item_missing and not whole.absent:  # "the effective tax rate": no piece names the item the figure is of
            whole = replace(whole, absent=(*whole.absent, item_phrase(question)))
        return join([abstention(question, whole, language), related(whole, language)]).strip()
    every = candidates(evs)
    cands = [c for c in every if not c.superseded]  # the summary states the latest version's figures only
    tables = [e for e in evs if has_rows(e)]
    lead, used = _answer(question, sqs, cands, tables, language)
    bullets = _bullets(sqs, cands, tables, used, lead, language)
    missing = [sq for sq in all_sqs if sq not in sqs and not is_generic(sq.question)]  # a filler's gap is no news
    bullets += ["- " + abstention(sq.question, assess(sq.question, evs), language) for sq in missing[:1]]
    if not lead and not bullets:  # nothing passed the gates: never an empty summary
        return (_nearest(question, cands, language) or _nearest_table(question, sqs, tables, language)
                or write_summary(question, [], evs, all_sqs, language))
    return "\n\n".join(p for p in [join(lead), "\n".join(bullets)] if p)


def _answer(question: str, sqs: list[SubQuestion], cands: list[Sentence], tables: list[Evidence],
            language: str) -> tuple[list[str], list[Sentence]]:
    """The answer's sentences (cited) and the passage sentences they used."""
    topic = Topic((make_query(question), *(make_query(sq.question) for sq in sqs)))
    subjects = _compared(question, sqs)
    verdict = yes_no_lead(question, cands, language)
    if verdict is not None:
        word, shown = verdict
        return [word, *(cite(c.text, [c.ev.id]) for c in shown)][:MAX_ANSWER + 1], shown
    if len(subjects) >= 2:
        compared, used = _comparison(question, subjects, cands, tables, topic, language)
        if compared:
            return compared, used
    best_table = _best_table(question, sqs, [t for t in tables if _says(t, question)])
    best = _best_sentences(question, cands, topic)
    lead: list[str] = []
    if best_table is not None and (not best or _table_first(sqs, best_table, best[0], question)):
        lead.append(headline(best_table, question, language))
    if _WHY_RE.search(question):
        reasons = [c for c in cands if _BECAUSE_RE.search(c.text)]
        focus = _row_labels(best_table) if best_table is not None and lead else []
        # A reason that names what the table's answer names is about it, whatever its other words.
        named = [c for c in reasons if any(names(f, c.text) for f in focus)]
        chosen = named[:MAX_ANSWER - len(lead)] or select(reasons, topic, MAX_ANSWER - len(lead)) or best
    else:
        chosen = best if not lead else []
    lead += [cite(c.text, [c.ev.id]) for c in chosen]
    return lead[:MAX_ANSWER], chosen


_NEAREST = {"en": "No passage gathered states the answer directly; the nearest:",
            "zh": "收集到的材料没有直接给出答案，最接近的是："}


def _nearest(question: str, cands: list[Sentence], language: str) -> str:
    """No sentence passes the gate but the question names something the evidence names: say so, then
    quote the sentences nearest the question that name it. Empty for a question without names ('What
    was the effective tax rate in 2019?'): nothing then shows the evidence is about its subject."""
    query = make_query(question)
    named = [c for c in cands if c.names_any(query.anchors)]
    near = sorted((c for c in named if overlaps(query, c.text)),
                  key=lambda c: -relevance(query, c.text, c.heading))[:2]
    return join([_NEAREST.get(language, _NEAREST["en"]), *(cite(c.text, [c.ev.id]) for c in near)]) if near else ""


def _nearest_table(question: str, sqs: list[SubQuestion], tables: list[Evidence], language: str) -> str:
    """A table result about the question that the SQL helper has no sentence for: shown as the nearest
    result, plainly (its first row), rather than denying what the knowledge base holds."""
    table = _best_table(question, sqs, [t for t in tables if not is_overview(t, question)])
    return join([_NEAREST.get(language, _NEAREST["en"]), headline(table, question, language)]) if table else ""


def _best_sentences(question: str, cands: list[Sentence], topic: Topic) -> list[Sentence]:
    """The sentence that answers best, or a multi-hop pair (agents.offline.bridge) when the pair
    holds more of the question's key words than any single sentence."""
    best = select(cands, topic, 1)
    query = make_query(question)
    bridge = best_bridge(query, cands)
    if bridge is not None and (not best or bridge.score > relevance(query, best[0].text, best[0].heading)):
        return bridge.sentences
    return best


def _comparison(question: str, subjects: list[str], cands: list[Sentence], tables: list[Evidence],
                topic: Topic, language: str) -> tuple[list[str], list[Sentence]]:
    """One sentence per compared subject (a sentence naming both serves both)."""
    lead: list[str] = []
    used: list[Sentence] = []
    for subject in subjects[:MAX_ANSWER]:
        if any(names(subject, c.text) for c in used):
            continue
        own = [c for c in cands if names(subject, c.text)]  # the subject in the sentence itself
        own = [c for c in own if is_cjk(c.text) == (language == "zh")] or own  # the report's language first
        pick = select(own, Topic(topic.queries[:1], (subject,)), 1, used)  # scored on the question as asked
        if pick:
            used.append(pick[0])
            lead.append(cite(pick[0].text, [pick[0].ev.id]))
            continue
        table = next((t for t in tables if named_by(subject, t)), None)
        line = headline(table, question, language) if table is not None else ""
        if line and line not in lead:  # one result can serve both subjects (one table, two columns)
            lead.append(line)
    return lead, used


def _compared(question: str, sqs: list[SubQuestion]) -> list[str]:
    """The subjects a comparison question sets against each other: its names and specific terms
    that the sub-questions do not all share ('RAG' and 'fine-tuning', not the common 'support')."""
    if not _COMPARE_RE.search(question):
        return []
    found = anchors(question, compounds=True)
    texts = [sq.question for sq in sqs]
    if len(texts) > 1:
        found = [a for a in found if not all(names(a, t) for t in texts)] or found
    if len(found) >= 2:
        return found
    m = _PAIR_RE.search(question) or _PAIR_ZH_RE.search(question)
    return [m.group(1), m.group(2)] if m else []


def _says(table: Evidence, question: str) -> bool:
    """The SQL helper has a sentence for the result: a plain 'the first row has …' answers nothing
    and never opens a summary (the table still stands in its section)."""
    return not is_overview(table, question) and sql_headline(table, question=question, language="en") is not None


def _best_table(question: str, sqs: list[SubQuestion], tables: list[Evidence]) -> Evidence | None:
    """The table result most about the question; the tables its sub-questions expected count extra."""
    query = make_query(question)
    wanted = {t for sq in sqs for t in sq.tables}
    written = {t for e in tables for t in e.tables if names(t, question)}  # "in the msft table"
    # "how many ...": a plain count answers it (a difference of two counts too), unless a sum is asked
    counting = "count" in (ops := question_ops(question)) and "total" not in ops and not SUM_RE.search(question)

    def score(e: Evidence) -> float:
        counted = counting and (list(e.columns) == ["n"] or str(e.columns[-1]).startswith("difference"))
        return (relevance(query, *evidence_text(e)) + 0.25 * bool(wanted & set(e.tables))
                + 0.25 * bool(written & set(e.tables)) + 0.25 * counted - 0.5 * matched_nothing(e))
    scores = [score(e) for e in tables]
    best = max(range(len(tables)), key=lambda i: (scores[i], -i), default=None)
    return tables[best] if best is not None and scores[best] > 0 else None


def _table_first(sqs: list[SubQuestion], table: Evidence, sentence: Sentence, question: str) -> bool:
    """A table leads when a sub-question asked for tables only, or it matches the question better
    than the best sentence does."""
    if any(sq.needs == "tables" for sq in sqs):
        return True
    query = make_query(question)
    return relevance(query, *evidence_text(table)) > relevance(query, sentence.text, sentence.heading)


def _row_labels(ev: Evidence) -> list[str]:
    """The text cells of a result's first row: the entity its headline names."""
    return [v for v in (ev.rows[0] if ev.rows else []) if isinstance(v, str) and v.strip() and len(v) <= 60]


def _bullets(sqs: list[SubQuestion], cands: list[Sentence], tables: list[Evidence], used: list[Sentence],
             lead: list[str], language: str) -> list[str]:
    """The best further fact per sub-question, each different from the answer and from each other."""
    out: list[str] = []
    taken = list(used)
    for sq in sqs:
        if len(out) >= MAX_BULLETS:
            break
        pick = [] if sq.needs == "tables" else select(cands, Topic((make_query(sq.question),)), 1, taken)
        if pick and on_topic(pick[0], Topic((make_query(sq.question),))) and redundancy(pick[0], taken) < 0.5:
            taken.append(pick[0])
            out.append("- " + cite(pick[0].text, [pick[0].ev.id]))
            continue
        table = _best_table(sq.question, [sq], [t for t in tables if _says(t, sq.question)])
        line = headline(table, sq.question, language) if table is not None else ""
        if line and line not in lead and "- " + line not in out:
            out.append("- " + line)
    return out
