"""The knowledge base's glossary as lexicon concepts: an organisation's terms beside the general language."""

from __future__ import annotations

from functools import lru_cache

from agents.offline.text import BUILTIN_LEXICON, CJK_RE, Concept
from tools.glossary import GlossaryEntry, term_key


@lru_cache(maxsize=16)
def lexicon_with(entries: tuple[GlossaryEntry, ...]) -> dict[str, Concept]:
    """Built-in lexicon plus glossary concepts; a term the lexicon already has gains the glossary's words."""
    out = dict(BUILTIN_LEXICON)
    for entry in entries:
        concept = glossary_concept(entry)
        base = out.get(concept.key)
        out[concept.key] = concept if base is None else _extend(base, concept, entry)
    return out


def glossary_concept(entry: GlossaryEntry) -> Concept:
    surfaces = [entry.term, *entry.synonyms, *([entry.value] if entry.value else [])]
    zh = tuple(dict.fromkeys(t for t in surfaces if CJK_RE.search(t)))
    en = tuple(dict.fromkeys(t.lower() for t in surfaces if not CJK_RE.search(t)))
    gloss = dict.fromkeys(zh, _english_gloss(entry))
    columns = (entry.column,) if entry.column else ()
    return Concept(term_key(entry.term), entry.resolved_kind, en, zh, columns, gloss, entry.value or "",
                   entry.table or "", "glossary", entry.description)


def _english_gloss(entry: GlossaryEntry) -> str:
    """English words for the term's Chinese forms: the canonical term, and an acronym's spelled-out form."""
    latin = [t for t in (entry.term, *entry.synonyms) if not CJK_RE.search(t)]
    if not latin:
        return ""
    head = latin[0]
    longer = [t for t in latin[1:] if len(t.split()) > len(head.split())]
    return f"{head} {longer[0]}" if head.isupper() and longer else head


def _extend(base: Concept, extra: Concept, entry: GlossaryEntry) -> Concept:
    return Concept(base.key, entry.kind or base.kind, tuple(dict.fromkeys(base.en + extra.en)),
                   tuple(dict.fromkeys(base.zh + extra.zh)), tuple(dict.fromkeys(base.columns + extra.columns)),
                   {**extra.gloss, **base.gloss}, extra.value or base.value, extra.table or base.table,
                   base.origin, extra.description or base.description)
