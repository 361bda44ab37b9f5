"""Rule-based planning for the offline engine: clauses, entities, comparisons, aspects and time ranges.

The same question and catalog always give the same plan: no randomness, no unordered iteration.
"""

from __future__ import annotations

import re

from agents.offline.follow_ups import (
    _TIME_PREP,
    _dedupe,
    _facts_about_other_names,
    _finish,
    _follow_ups,
    _phrases,
    _time_label,
    aspects,
)
from agents.offline.operands import coordinated_operands
from agents.offline.plan_words import DEMONYMS as _DEMONYMS
from agents.offline.plan_words import LEADING_STOP as _LEADING_STOP
from agents.offline.plan_words import Entity
from agents.offline.schema_link import TableLink, link_schema, question_ops, relevant_links
from agents.offline.text import (
    LEXICON,
    ConceptHit,
    english_equivalents,
    extract_time_ranges,
    find_concepts,
    keywords,
    squash,
    tokenize,
    words,
)
from tools.models import TableInfo
from tools.text.language import question_language
from tools.vocabulary import Needs, Plan, SubQuestion

_CLAUSE_START = (r"what|how|which|who|whom|when|where|why|is|are|was|were|does|do|did|should|can|could|"
                 r"will|would|has|have|list|show|compare")
_CLAUSE_START_RE = re.compile(rf"(?:{_CLAUSE_START})\b", re.IGNORECASE)
_EN_SPLIT = re.compile(rf",?\s+(?:and|but|vs\.?|versus|compared (?:with|to))\s+(?=(?:{_CLAUSE_START})\b)|,\s+"
                       rf"(?=(?:{_CLAUSE_START})\b)", re.IGNORECASE)
_ZH_MARK = re.compile(r"什么|多少|如何|怎么|怎样|哪|吗|是否|几|为什么|为何|是不是|呢")
_ZH_CONJ = re.compile(r"以及|和|与|及|还是|对比|相比")
_ANAPHORA = re.compile(r"\b(each|both|they|them|their|it|its|either)\b|各自|分别|两者|它们|二者", re.IGNORECASE)
_COMPARE_CUE = re.compile(r"\b(or|vs\.?|versus|between)\b|还是|或者", re.IGNORECASE)
_BARE_WHY = re.compile(r"(?:and\s+)?(?:why|how come|why not)|为什么|为何|原因(?:是什么)?", re.IGNORECASE)
# A capitalised name, with the small words names carry inside: "Journal of Psychotherapy Integration",
# "The Lord of the Rings" ("and" stays a separator: "RAG and Fine Tuning" are two things).
# A version or index number after a name belongs to it ("S&P 500", "Windows 11"), a year does not.
_NAME_RE = re.compile(r"\b[A-Z][\w&'-]*(?:\s+(?:(?:of|the|de|du|la|le|von|van|der|del|da|y)\s+)*[A-Z][\w&'-]*)*"
                      r"(?:\s+(?!(?:19|20)\d\d\b)\d+(?:\.\d+)*\b(?!\s*%))?")
_AFTER_NUMBER = re.compile(r"\d\s*$")  # "64 GB", "10 MW": a unit, not a name


def decompose(question: str, catalog: list[TableInfo], *, max_sub_questions: int = 8) -> Plan:
    """Split ``question`` into 2..max_sub_questions self-contained sub-questions with search and table hints."""
    if not words(question):
        raise ValueError("the question has no words to plan from")
    limit = max(2, max_sub_questions)
    lang = question_language(question)  # the rule the report's language follows
    entities = detect_entities(question, catalog)
    compared = compared_entities(question, entities)
    periods = extract_time_ranges(question)
    if len(compared) >= 2:
        texts, rationale = _comparison(question, lang, entities, compared, limit)
    elif len(periods) >= 2 and _is_comparison(question):
        texts, rationale = _period_comparison(question, lang, entities, limit)
    else:
        texts, rationale = _clauses_and_follow_ups(question, lang, entities, limit)
    if len(texts) < 2:  # only when the question is itself our fallback wording
        texts.append(_finish("关于这个问题，文档中还有哪些相关信息" if lang == "zh" else
                             "What else do the documents say about this question", lang, ""))
    subs = [_sub_question(f"q{i}", text, lang, catalog) for i, text in enumerate(texts, 1)]
    return Plan(question=question, language=lang, sub_questions=subs, rationale=rationale)


def detect_entities(question: str, catalog: list[TableInfo]) -> list[Entity]:
    """Lexicon entities, catalog sample values and capitalised phrases named in the question, in order."""
    found: list[Entity] = []
    spans = [r.span for r in extract_time_ranges(question)]  # "Q1 2026" is a period, not a name

    def add(label: str, key: str, group: str, start: int) -> None:
        if any(e.key == key for e in found) or any(start < e and s < start + len(label) for s, e in spans):
            return
        found.append(Entity(label, key, group, start))
        spans.append((start, start + len(label)))

    for hit in find_concepts(question):
        if hit.kind == "entity":
            add(hit.surface, squash(hit.key), _entity_group(hit.key), hit.start)
    located = [(span, value, column) for link in link_schema(question, catalog) for column, value in link.values
               if (span := _locate(question, value)) is not None]
    # The longest value first: "City Library" (a project) is one name, not the department "Libraries".
    for (start, end), value, column in sorted(located, key=lambda v: (v[0][0] - v[0][1], v[0][0])):
        if not any(e.key == squash(value) for e in found):
            add(question[start:end], squash(value), column, start)
    for m in _NAME_RE.finditer(question):
        phrase, words_ = m.group(), m.group().split()
        opens = re.fullmatch(r"\s*", question[: m.start()]) or re.search(r"[.?!;:]\s*$", question[: m.start()])
        if opens and len(words_) == 1 and not words_[0].isupper():  # "Costs in Q1": capitalised because it
            words_ = []  # opens the sentence (but "Toad Hall is ..." opens it with a name)
        while words_ and words_[0].lower() in _LEADING_STOP:  # "Should", "What", "Tell": never names
            words_ = words_[1:]
        if _AFTER_NUMBER.search(question[: m.start()]):
            words_ = []
        if words_ and not _not_a_name(words_):
            label = re.sub(r"['’]s$", "", " ".join(words_))  # "Microsoft's price" is about Microsoft
            add(label, squash(label), "", m.start() + phrase.index(label))
    return sorted(found, key=lambda e: e.start)


def _entity_group(key: str) -> str:
    """The column whose values the entity is; entities that name columns ("Microsoft" -> MSFT) are one
    group per table, so "Microsoft vs the S&P 500" compares two of a kind."""
    concept = LEXICON[key]
    if not concept.columns:
        return ""
    if concept.value or concept.origin == "builtin":
        return concept.columns[0]
    return f"columns of {concept.table}".strip()


def _not_a_name(words_: list[str]) -> bool:
    """"C" (of "C major"), "German", "British": capitalised, but nothing to research on its own."""
    return words_[0][0].isdigit() or (len(words_) == 1 and (len(words_[0]) == 1 or words_[0].lower() in _DEMONYMS))


def _locate(text: str, value: str) -> tuple[int, int] | None:
    """Where a catalog value is written in the text (word-wise, so "Customer Support" finds "customer support")."""
    if not value.isascii():
        i = text.find(value)
        return (i, i + len(value)) if i >= 0 else None
    core = re.sub(r"\(.*?\)", " ", value)
    needle = [t for _, t, _ in words(core)]
    seq = words(text)
    for i in range(len(seq) - len(needle) + 1):
        if [t for _, t, _ in seq[i:i + len(needle)]] == needle:
            last = seq[i + len(needle) - 1]
            return seq[i][2], last[2] + len(last[0])
    return None


def compared_entities(question: str, entities: list[Entity]) -> list[Entity]:
    """The entities a comparison is about: the coordinated names ("httpx and aiosqlite"), else two or
    more of one kind, when the question compares at all."""
    if not _is_comparison(question):
        return []
    operands = coordinated_operands(question)
    if len(operands) >= 2:
        return [_operand_entity(o.label, o.start, entities) for o in operands][:4]
    groups: dict[str, list[Entity]] = {}
    for e in entities:
        groups.setdefault(e.group, []).append(e)
    for group, members in groups.items():
        if group and len(members) >= 2:
            return members[:4]
    # "Milvus or OpenSearch": an entity of unknown kind may be the same kind as the other one; but
    # "Legal ... fine-tuning" are two known, different kinds, so that is no comparison between them.
    unknown = any(not e.group for e in entities)
    return entities[:4] if len(entities) >= 2 and unknown else []


def _operand_entity(label: str, start: int, entities: list[Entity]) -> Entity:
    """A coordinated name as the entity already found there (keeping its column), else a new one."""
    for e in entities:
        if e.start <= start < e.start + len(e.label) or start <= e.start < start + len(label):
            return e
    return Entity(label, squash(label), "", start)


def _is_comparison(question: str) -> bool:
    # "recommend"/"should" alone ask for advice, not for a comparison between things.
    keys = {h.key for h in find_concepts(question)}
    return bool("compare" in keys or _COMPARE_CUE.search(question))


def _period_comparison(question: str, lang: str, entities: list[Entity], limit: int) -> tuple[list[str], str]:
    """"Costs in 2026 Q1 versus 2025 Q4": the same question asked once per period, then side by side."""
    periods = extract_time_ranges(question)
    base = question[: periods[0].span[0]] + question[periods[-1].span[1]:]
    base = re.sub(r"\s+(in|during|for|between|from|of)\s*$", "", base.strip().rstrip("?？").strip(), flags=re.I)
    labels = [_TIME_PREP.sub("", p.label).strip() for p in periods]
    if lang == "zh":  # "2025年和2026年的支出对比" -> "2025年的支出情况如何"
        base = re.sub(r"(对比|比较|相比|的?区别|的?差异)$", "", re.sub(r"^[和与及、]+", "", base))
        base += "" if _ZH_MARK.search(base) else "情况如何"
    texts = [_finish(f"{label}{base}" if lang == "zh" else base, lang, "" if lang == "zh" else p.label)
             for label, p in zip(labels, periods)][: limit - 1]
    nouns = [_phrases(a.key)[3 if lang == "zh" else 2] for a in aspects(question)]
    names = [e.label for e in entities]
    if lang == "zh":
        about = "、".join(names) + "的" if names else ""
        texts.append(_finish(f"{'与'.join(labels)}相比，{about}{'、'.join(nouns) or '情况'}有何变化", lang, ""))
    else:
        on = (f" on {_join(nouns)}" if nouns else "") + (f" for {_join(names)}" if names else "")
        texts.append(_finish(f"How do {_join(labels)} compare{on}", lang, ""))
    return _dedupe(texts), f"Comparison of periods {' vs '.join(labels)}: the question per period, plus a synthesis."


def _comparison(question: str, lang: str, entities: list[Entity], compared: list[Entity],
                limit: int) -> tuple[list[str], str]:
    found = aspects(question)
    keys: list[str | None] = [a.key for a in found] or [None]
    context = [e for e in entities if e not in compared and e.group and e.group != compared[0].group]
    ctx = _context(question, lang, context[0].label) if context else ""
    when = _time_label(question)
    zh = lang == "zh"  # Chinese puts the context after the entity, English at the end of the question
    pairs = [_finish(_phrases(k)[1 if zh else 0].format(x=e.label + ctx if zh else e.label) + ("" if zh else ctx),
                     lang, when) for k in keys for e in compared]
    extra = _independent_clauses(question, lang, compared, when)
    synthesis = _finish(_synthesis(question, lang, compared, found, ctx), lang, when)
    # Between names of unknown kind ("Arthur's Magazine or First for Women", "Leland, North Carolina")
    # the question may not be a comparison of like things at all: ask it as written first (unless it
    # says nothing beyond the names: "Compare httpx and aiosqlite" is the synthesis already).
    literal = [] if any(e.group for e in compared) or _only_names(question, compared) else [
        _finish(question, lang, "")]
    texts = [*_dedupe(literal + pairs + extra)[: limit - 1], synthesis]
    names = " vs ".join(e.label for e in compared)
    about = ", ".join(_phrases(k)[2] for k in keys)
    why = f"Comparison of {names} on {about}: one sub-question per entity and aspect, plus a synthesis."
    return _dedupe(texts), why


def _only_names(question: str, compared: list[Entity]) -> bool:
    rest = question
    for e in compared:
        rest = rest.replace(e.label, " ")
    return not [h for h in tokenize(rest) if not any(c.kind == "op" for c in find_concepts(h))]


def _context(question: str, lang: str, label: str) -> str:
    if lang == "zh":
        return f"（{label}）"
    m = re.search(rf"\b(for|in|at|within)\s+(?:the\s+)?{re.escape(label)}", question, re.IGNORECASE)
    return f" {m.group(1).lower()} {label}" if m else f" for {label}"


def _synthesis(question: str, lang: str, compared: list[Entity], found: list[ConceptHit], ctx: str) -> str:
    labels = [e.label for e in compared]
    choose = any(h.key == "choose" for h in find_concepts(question))
    nouns = [_phrases(a.key)[3 if lang == "zh" else 2] for a in found]
    if lang == "zh":
        if choose:
            return f"{ctx.strip('（）')}应该选择{'还是'.join(labels)}"
        where = f"在{'、'.join(nouns)}上" if nouns else ""
        return f"{'与'.join(labels)}{where}的主要区别是什么"
    if choose:
        return f"Which is the better choice{ctx}: {_join(labels, 'or')}"
    on = f" on {_join(nouns)}" if nouns else ""
    return f"How do {_join(labels)} compare{on}{ctx}"


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} {items[-1]}"


def _independent_clauses(question: str, lang: str, compared: list[Entity], when: str) -> list[str]:
    """Clauses about something else than the compared entities keep their own sub-question."""
    out = []
    for clause in split_clauses(question, lang):
        mentions = any(e.key in squash(clause) or squash(e.label) in squash(clause) for e in compared)
        if not mentions and not _ANAPHORA.search(clause) and len(tokenize(clause)) >= 2:
            out.append(_finish(clause, lang, when))
    return out


def split_clauses(question: str, lang: str) -> list[str]:
    """Clauses of a compound question; a conjunction splits only where a new question starts after it."""
    parts = [p.strip() for p in re.split(r"[;；?？!！。]|\.\s", question) if p.strip()]
    out: list[str] = []
    for part in parts:
        for clause in _split_zh(part) if lang == "zh" else _split_en(part):
            if _BARE_WHY.fullmatch(clause.strip(" ,，")) and out:  # "..., and why?" asks about the clause
                out[-1] += ("，" if lang == "zh" else ", and ") + re.sub(r"^and\s+", "", clause.strip(" ,，"))
            elif tokenize(clause):
                out.append(clause)
    return out


def _split_en(part: str) -> list[str]:
    """A leading piece that asks nothing ("At the 2011 census, what was ...") belongs to the question after it."""
    pieces = [p.strip(" ,") for p in _EN_SPLIT.split(part) if p.strip(" ,")]
    if len(pieces) > 1 and not _CLAUSE_START_RE.match(pieces[0]):
        pieces[:2] = [f"{pieces[0]}, {pieces[1]}"]
    return pieces


def _split_zh(part: str) -> list[str]:
    pieces: list[str] = []
    for piece in re.split(r"[，,]", part):
        for sub in _ZH_CONJ.split(piece) if len(_ZH_MARK.findall(piece)) >= 2 else [piece]:
            # A piece without a question word ("在2026年上半年") belongs to the question that follows it.
            if pieces and not _ZH_MARK.search(pieces[-1]):
                pieces[-1] += sub
            else:
                pieces.append(sub)
    if len(pieces) > 1 and not _ZH_MARK.search(pieces[-1]):
        pieces[-2] += pieces.pop()
    return [p.strip() for p in pieces if p.strip()]


def _clauses_and_follow_ups(question: str, lang: str, entities: list[Entity], limit: int) -> tuple[list[str], str]:
    when = _time_label(question)
    clauses = _resolve_pronouns(split_clauses(question, lang), lang)
    texts = _dedupe([_finish(c, lang, when) for c in clauses] or [_finish(question, lang, "")])
    n_clauses = len(texts)
    for follow in _follow_ups(question, lang, entities, when):
        if len(texts) >= 2:
            break
        texts = _dedupe([*texts, follow])
    texts = _dedupe(texts + _facts_about_other_names(texts, lang, entities, when))
    how = f"Split into {n_clauses} clause(s)" + (f", deepened with {len(texts) - n_clauses} follow-up(s)"
                                                 if len(texts) > n_clauses else "")
    return texts[:limit], how + "."


def _resolve_pronouns(clauses: list[str], lang: str) -> list[str]:
    """"Which vendors were chosen and what do they cost?" -> the second clause names "the vendors"."""
    out = clauses[:1]
    for clause in clauses[1:]:
        hits = [h for h in find_concepts(out[-1]) if h.kind in ("entity", "dimension")]
        own = [h for h in find_concepts(clause) if h.kind in ("entity", "dimension")]
        if hits and not own:
            ref = hits[0].surface if lang == "zh" or hits[0].kind == "entity" else f"the {hits[0].surface}"
            pattern = r"它们|它" if lang == "zh" else r"\b(they|them|it)\b"
            clause = re.sub(pattern, ref, clause, count=1, flags=re.IGNORECASE)
        out.append(clause)
    return out


def _sub_question(sid: str, text: str, lang: str, catalog: list[TableInfo]) -> SubQuestion:
    links = relevant_links(link_schema(text, catalog))
    columns = [f"{link.table}.{c}" for link in links for c, s in link.columns if s >= 0.6]
    kw = " ".join(k for k, _ in keywords(text, limit=6))
    queries = [text, kw] + ([english_equivalents(text)] if lang == "zh" else [])
    return SubQuestion(id=sid, question=text, needs=_needs(text, links), tables=[link.table for link in links],
                       columns=columns[:10], queries=[q for q in dict.fromkeys(queries) if q.strip()][:3])


def _needs(text: str, links: list[TableLink]) -> Needs:
    """Tables alone for a pure computation, documents alone when nothing in the catalog matches."""
    if not links:
        return "documents"
    keys = {h.key for h in find_concepts(text)}
    qualitative = keys & {"risk", "benefit", "quality", "choose", "explain"}
    quantitative = question_ops(text) & {"average", "total", "count", "top", "bottom", "trend"}
    return "tables" if quantitative and not qualitative else "both"
