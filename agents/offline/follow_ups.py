"""Follow-up sub-questions and the planner's phrasing helpers (templates, time labels, clean endings)."""

from __future__ import annotations

import re

from agents.offline.plan_words import LEADING_STOP as _LEADING_STOP
from agents.offline.plan_words import Entity
from agents.offline.plan_words import phrases as _plan_phrases
from agents.offline.schema_link import question_ops
from agents.offline.text import LEXICON, ConceptHit, extract_time_ranges, find_concepts, keywords, squash

_TIME_PREP = re.compile(r"^(in|during|for|over|within|of|across|since|from|after|before|until|till|up to|"
                        r"through|between)\b", re.IGNORECASE)


def _facts_about_other_names(texts: list[str], lang: str, entities: list[Entity], when: str) -> list[str]:
    """A question naming several things ("If Gallu is a demon, Lilu is what?") needs evidence on each
    of them, not only on the first: one fact-finding sub-question per name no sub-question names yet."""
    template = _phrases(None)[5 if lang == "zh" else 4]
    named = [e for e in entities if not e.group]  # capitalised names, not lexicon or catalog values
    out: list[str] = []
    for e in named:
        if not any(e.label in t for t in texts[1:] + out):
            out.append(_finish(template.format(x=e.label, a=""), lang, when))
    return out if len(named) > 1 else []


def _follow_ups(question: str, lang: str, entities: list[Entity], when: str) -> list[str]:
    zh = lang == "zh"
    hits = find_concepts(question)
    found = aspects(question)
    measure = next((h for h in found if h.kind == "measure"), None)
    dims = [h for h in hits if h.kind == "dimension"]
    subject = entities[0].label if entities else (dims[0].surface if zh else f"the {dims[0].surface}") if dims else ""
    out: list[str] = []
    ops = {h.key for h in hits}
    if measure and dims and ops & {"top", "bottom", "average", "total"}:
        d, m = dims[0].surface, measure.surface.lower()
        if ops & {"top", "bottom"}:
            out.append(f"各{d}的{m}分布如何" if zh else f"How does the {m} break down across all {_plural(d.lower())}")
        else:
            out.append(f"各{d}之间{m}差异的原因是什么" if zh else f"What explains the differences in {m} between "
                       f"{_plural(d.lower())}")
    for a in found:
        x = f"{subject} {measure.surface}".strip() if a.key == "trend" and measure else subject
        if a.key == "count" and entities and dims:  # "how many projects were cancelled" -> "cancelled projects"
            x = f"{entities[0].label}{dims[0].surface}" if zh else f"{entities[0].label} {dims[0].surface}"
        if x:  # without a subject only a trend follow-up reads well ("what drove the changes in spend")
            out.append(_phrases(a.key)[5 if zh else 4].format(x=x, a=_aspect_phrase(question, a, zh, x)))
    if subject:
        out.append(_phrases(None)[5 if zh else 4].format(x=subject, a=""))
    # The background question names one thing, never a salad of keywords ("packages take disk").
    # A bare number ("80" of "completed 80 laps") is no topic.
    topic = subject or next((k for k, _ in keywords(question, limit=3) if re.search(r"[^\W\d_]", k)), "")
    if topic:
        out.append(f"文档中关于{topic}有哪些背景信息" if zh else f"What else do the documents say about {topic}")
    return [_finish(t, lang, when) for t in out]


def _aspect_phrase(question: str, hit: ConceptHit, zh: bool, subject: str = "") -> str:
    if zh:
        return hit.surface
    before = re.findall(r"([A-Za-z]+)\s+$", question[: hit.start])
    modifier = before[0] if before and before[0].lower() not in _LEADING_STOP and not before[0][0].isupper() else ""
    if modifier and subject and squash(modifier) in squash(subject):  # not "the parks budget of parks"
        modifier = ""
    return f"{modifier} {hit.surface}".strip().lower()


def _plural(noun: str) -> str:
    if noun.endswith("s") and not noun.endswith("ss"):  # already plural: "projects"
        return noun
    if noun.endswith(("ss", "x", "ch", "sh")):
        return noun + "es"
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def _time_label(question: str) -> str:
    labels = [r.label for r in extract_time_ranges(question)]
    return labels[0] + "".join(f" and {_TIME_PREP.sub('', x).strip()}" for x in labels[1:]) if labels else ""


def _finish(text: str, lang: str, when: str) -> str:
    """A clean question: capitalised, one question mark, the question's time range kept in it."""
    body = text.strip().rstrip("?？.。!！,，;；").strip()
    if when and not extract_time_ranges(body):
        if lang == "zh":
            body = f"{when}，{body}"
        else:
            body += f" {when}" if _TIME_PREP.match(when) else f" in {when}"
    if lang == "zh":
        return body + "？"
    return body[:1].upper() + body[1:] + "?"


def _dedupe(texts: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for t in texts:
        seen.setdefault(squash(t), t)
    return list(seen.values())


def aspects(question: str) -> list[ConceptHit]:
    """Measures and qualitative aspects the question asks about, first mention of each, in order."""
    ops = question_ops(question)  # "how many people" asks for team size, not for a count
    out: dict[str, ConceptHit] = {}
    for hit in find_concepts(question):
        if hit.kind in ("measure", "aspect") or (hit.key in ("trend", "count") and hit.key in ops):
            out.setdefault(hit.key, hit)
    return list(out.values())


def _phrases(key: str | None) -> tuple[str, str, str, str, str, str]:
    concept = LEXICON.get(key) if key else None
    en = next((t for t in concept.en), "") if concept else ""
    return _plan_phrases(key, en, concept.zh[0] if concept and concept.zh else "")
