"""Offline writing: an outline from the plan and the evidence, then extractive sections.

Every sentence in a section is a sentence of a cited passage (or a headline over a cited SQL table),
followed by its ``[ev:ID]`` marker, so no number appears that the evidence does not hold. Sentences
are gated for relevance to their section's sub-question (agents.offline.candidates); a sub-question
the evidence does not support gets a section that says so and names the closest material. Text in
another language than the report is quoted as it is: nothing is translated offline.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.offline.blocks import cite, has_rows, join, sql_block
from agents.offline.bridge import best_bridge
from agents.offline.candidates import Sentence, Topic, candidates, select, source
from agents.offline.item import item_named
from agents.offline.plan_words import is_generic
from agents.offline.reflect import evidence_ids_for
from agents.offline.relevance import (
    RELEVANCE_THRESHOLD,
    distinguishing_anchors,
    make_query,
    names,
    on_aspect,
    relevance,
    unique_words,
)
from agents.offline.sql_answer import headline as sql_headline
from agents.offline.summary import write_summary
from agents.offline.support import (
    abstention,
    answered_as_asked,
    assess,
    evidence_text,
    filtered_by_question,
    named_by,
    related,
)
from tools.vocabulary import Evidence, Finding, Outline, Plan, Reflection, Section, SectionPlan, SubQuestion

__all__ = ["cite", "extractive_answer", "outline", "write_section"]

MAX_SENTENCES = 4  # per section: fewer, better sentences
MAX_TABLES = 2  # SQL results per section
SUMMARY, OPEN = "summary", "open"  # section ids with a role of their own; the rest answer sub-questions
_TEXT = {
    "en": {"summary": "Executive summary", "open": "Contradictions and open questions",
           "contradictions": "Contradictions", "gaps": "Open questions"},
    "zh": {"summary": "摘要", "open": "矛盾与待解决问题", "contradictions": "矛盾", "gaps": "待解决问题"},
}


def outline(question: str, plan: Plan, findings: list[Finding], evidence: Mapping[str, Evidence], *,
            language: str, reflection: Reflection | None = None) -> Outline:
    """Summary, one section per sub-question (merged when they share all their evidence; one that
    the evidence does not support says so), then contradictions and open questions. A question the
    knowledge base holds nothing for gets the summary alone."""
    entries: list[tuple[list[str], list[str], bool]] = []
    for sq in plan.sub_questions:
        ids = evidence_ids_for(sq.id, findings, evidence)
        ok = _answerable(sq, [evidence[i] for i in ids], plan)
        same = next((e for e in entries if e[2] and ok and set(e[1]) == set(ids)), None)
        if same:
            same[0].append(sq.id)
        else:
            entries.append(([sq.id], ids, ok))
    by_id = {sq.id: sq for sq in plan.sub_questions}
    text = _TEXT.get(language, _TEXT["en"])
    gathered = list(dict.fromkeys(i for _, ids, _ in entries for i in ids))
    answered = [e for e in entries if e[2]]
    evs = [evidence[i] for i in gathered]
    specific = [e for e in answered if not all(_generic(by_id[i]) for i in e[0])]
    if not item_named(question, evs):  # a figure of an item no gathered piece names: not held here
        summary = SectionPlan(id=SUMMARY, title=text["summary"], goal="Say that the knowledge base does not hold it.",
                              sub_question_ids=[], evidence_ids=gathered)
        return Outline(title=_plain(question), sections=[summary])
    if not specific and answered_as_asked(question, evs):
        # No sub-question that asks what the user asked passes its own gate, but the question as
        # asked does (every name it asks about is there, a passage or result holds most of its key
        # words): answer it as asked, from everything gathered, rather than deny what is there.
        goal = "Answer: " + question
        return Outline(title=_plain(question), sections=[
            SectionPlan(id=SUMMARY, title=text["summary"], goal=goal, evidence_ids=gathered),
            SectionPlan(id="s1", title=_plain(question), goal=goal, evidence_ids=gathered)])
    if not specific or _outside(question, evs, [by_id[i] for e in answered for i in e[0]]):
        summary = SectionPlan(id=SUMMARY, title=text["summary"], goal="Say that the knowledge base does not hold it.",
                              sub_question_ids=[], evidence_ids=gathered)
        return Outline(title=_plain(question), sections=[summary])
    body = [SectionPlan(id=f"s{n}", title=" / ".join(_plain(by_id[i].question) for i in sq_ids),
                        goal=("Answer: " if ok else "Say it is not in the knowledge base: ")
                        + " ".join(by_id[i].question for i in sq_ids),
                        sub_question_ids=sq_ids, evidence_ids=ids)
            for n, (sq_ids, ids, ok) in enumerate(entries, 1)]
    every = list(dict.fromkeys(i for _, ids, _ in answered for i in ids))
    sections = [SectionPlan(id=SUMMARY, title=text["summary"], goal="The direct answer to the question.",
                            sub_question_ids=[i for ids, _, _ in answered for i in ids], evidence_ids=every), *body]
    abstained = {i for ids, _, ok in entries if not ok for i in ids}
    conflicts = reflection.contradictions if reflection else []
    if conflicts or (reflection and any(g.sub_question_id not in abstained for g in reflection.gaps)):
        ids = list(dict.fromkeys(i for c in conflicts for i in c.evidence_ids if i in evidence))
        sections.append(SectionPlan(id=OPEN, title=text["open"], goal="Where sources disagree and what is missing.",
                                    sub_question_ids=sorted(abstained), evidence_ids=ids))
    return Outline(title=_plain(question), sections=sections)


def _answerable(sq: SubQuestion, evs: list[Evidence], plan: Plan) -> bool:
    """The evidence supports it, and some table result or some sentence passes the section's gate."""
    if not assess(sq.question, evs).supported:
        return False
    topic = _topic([sq], plan)
    cands = candidates(evs)
    return (bool(_tables(topic, [sq], evs)) or bool(select(cands, topic, 1))
            or best_bridge(make_query(sq.question), cands) is not None)


def _generic(sq: SubQuestion) -> bool:
    return is_generic(sq.question)


def _outside(question: str, evs: list[Evidence], answered: list[SubQuestion]) -> bool:
    """The question names things, no gathered passage or row mentions any of them, and every
    sub-question answered is about them (so the answers are about something else by the same words)."""
    found = make_query(question).anchors
    if not found or any(named_by(a, e) for a in found for e in evs):
        return False
    return all(any(names(a, sq.question) for a in found) for sq in answered)


def write_section(section: SectionPlan, *, question: str, plan: Plan, evidence: Mapping[str, Evidence],
                  language: str, reflection: Reflection | None = None) -> Section:
    by_id = {sq.id: sq for sq in plan.sub_questions}
    sqs = [by_id[i] for i in section.sub_question_ids if i in by_id]
    if not sqs and section.id not in (OPEN, SUMMARY):  # a section planned elsewhere: its title is the question
        goal_question = section.goal.removeprefix("Answer: ") if section.goal.startswith("Answer: ") else ""
        sqs = [SubQuestion(id=section.id, question=goal_question or f"{section.title} {section.goal}")]
    evs = [evidence[i] for i in section.evidence_ids if i in evidence]
    text = _TEXT.get(language, _TEXT["en"])
    if section.id == OPEN:
        markdown = _open_questions(sqs, evidence, reflection, text)
    elif section.id == SUMMARY:
        asked = [SubQuestion(id="q0", question=question)] if section.goal == "Answer: " + question else []
        markdown = write_summary(question, sqs or asked, evs, list(plan.sub_questions) if sqs else asked, language)
    else:
        markdown = _body(sqs, evs, language, plan) or _abstain(sqs, evs, language)
    return Section(id=section.id, title=section.title, markdown=markdown)


def _topic(sqs: list[SubQuestion], plan: Plan | None) -> Topic:
    """The section's questions, and the subjects that set it apart from the plan's other sub-questions."""
    siblings = [sq.question for sq in plan.sub_questions] if plan else []
    subjects = [distinguishing_anchors(sq.question, siblings) or unique_words(sq.question, siblings) for sq in sqs]
    flat = [] if any(not s for s in subjects) else list(dict.fromkeys(a for s in subjects for a in s))
    mine = {sq.id for sq in sqs}
    others = [a for sq in (plan.sub_questions if plan else []) if sq.id not in mine
              for a in distinguishing_anchors(sq.question, siblings) if a not in flat and flat]
    return Topic(tuple(make_query(sq.question) for sq in sqs), tuple(flat), tuple(dict.fromkeys(others)))


def _body(sqs: list[SubQuestion], evs: list[Evidence], language: str, plan: Plan | None = None) -> str:
    """Up to MAX_SENTENCES on-topic sentences, a paragraph per source (sources by their best
    sentence, the sentences in the source's own order), then the relevant SQL results as tables."""
    if plan is not None and not any(assess(sq.question, evs).supported for sq in sqs):
        return ""
    topic = _topic(sqs, plan)
    cands = candidates(evs)
    chosen = _with_bridge(sqs, cands, select(cands, topic, MAX_SENTENCES))
    paragraphs = []
    for src in dict.fromkeys(source(c.ev) for c in chosen):
        mine = sorted((c for c in chosen if source(c.ev) == src), key=lambda c: (c.ev.char_start or 0, c.ev.id, c.pos))
        paragraphs.append(join([cite(c.text, [c.ev.id]) for c in mine]))
    question = " ".join(sq.question for sq in sqs)
    paragraphs += [sql_block(e, question, language) for e in _tables(topic, sqs, evs)]
    return "\n\n".join(paragraphs)


def _with_bridge(sqs: list[SubQuestion], cands: list[Sentence], chosen: list[Sentence]) -> list[Sentence]:
    """A multi-hop pair (agents.offline.bridge) first when it answers a sub-question better than
    every chosen sentence: the sentence naming the subject, then the one holding the answer."""
    best = None
    for sq in sqs:
        query = make_query(sq.question)
        bridge = best_bridge(query, cands)
        if bridge is not None and all(relevance(query, c.text, c.heading) < bridge.score for c in chosen) and (
                best is None or bridge.score > best.score):
            best = bridge
    if best is None:
        return chosen
    pair = best.sentences
    return (pair + [c for c in chosen if c not in pair])[:MAX_SENTENCES]


def _tables(topic: Topic, sqs: list[SubQuestion], evs: list[Evidence]) -> list[Evidence]:
    """SQL results about the section: its subject named, and relevant or from a table it expected."""
    wanted = {t for sq in sqs for t in sq.tables}
    out: list[tuple[float, int, Evidence]] = []
    for e in (e for e in evs if has_rows(e)):
        body, heading = evidence_text(e)
        score = max((relevance(q, body, heading) for q in topic.queries if on_aspect(q, body, heading)), default=0.0)
        named = not topic.subjects or any(names(s, f"{body} {heading} {e.sql or ''}") for s in topic.subjects)
        asked = any(filtered_by_question(e, sq.question) for sq in sqs)  # picked by a value the question writes
        if ((wanted & set(e.tables) or asked) and _says(e, sqs)) or (named and score >= RELEVANCE_THRESHOLD):
            out.append((score, len(out), e))
    return [e for _, _, e in sorted(out, key=lambda t: (-t[0], t[1]))[:MAX_TABLES]]


def _says(ev: Evidence, sqs: list[SubQuestion]) -> bool:
    """The SQL helper finds something to say about the result (None: the rows say nothing useful)."""
    return sql_headline(ev, question=" ".join(sq.question for sq in sqs), language="en") is not None


def _abstain(sqs: list[SubQuestion], evs: list[Evidence], language: str) -> str:
    """'The knowledge base does not contain …' and the closest material it does hold."""
    question = " ".join(sq.question for sq in sqs) or "this question"
    support = assess(question, evs)
    return join([abstention(question, support, language), related(support, language)]).strip()


def extractive_answer(question: str, evs: list[Evidence], language: str = "en") -> str:
    """The section the writer would make of ``evs`` for ``question`` alone: no plan, no second
    search, no reflection. The benchmarks' single-shot baseline writes with it."""
    return _body([SubQuestion(id="q1", question=question, needs="documents")], evs, language)


def _open_questions(sqs: list[SubQuestion], evidence: Mapping[str, Evidence], reflection: Reflection | None,
                    text: dict[str, str]) -> str:
    """Contradictions, then the gaps of sub-questions that have an answer section (the others say
    in their own section that the knowledge base lacks them)."""
    parts = []
    conflicts = reflection.contradictions if reflection else []
    if conflicts:
        lines = ["- " + cite(c.description, [i for i in c.evidence_ids if i in evidence]) for c in conflicts]
        parts.append(f"### {text['contradictions']}\n\n" + "\n".join(lines))
    own = {sq.id for sq in sqs}
    gaps = [g.description for g in (reflection.gaps if reflection else []) if g.sub_question_id not in own]
    if gaps:
        parts.append(f"### {text['gaps']}\n\n" + "\n".join("- " + g for g in gaps))
    return "\n\n".join(parts)


def _plain(question: str) -> str:
    return " ".join(question.split()).rstrip("?？。.! ")
