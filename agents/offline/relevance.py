"""Is a sentence about a (sub-)question? Key-word coverage, synonyms from the lexicon, and anchors.

A question's key words are its content words; each counts once, matched in the sentence (fully) or
only in its passage's heading (HEADING_WEIGHT), directly or through a lexicon/glossary synonym
('cost' meets 'budget', '成本' meets 'cost'). Anchors are the names and specific terms a question
is about ('PostgreSQL', 'shared_buffers', 'Microsoft'): evidence that names none of them is about
something else. The threshold is calibrated on public data, not set by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.offline.text import LEXICON, find_concepts
from tools.text.language import HAN_RE
from tools.text.terms import fold_accents, keywords, terms

# Calibrated by benchmarks/calibrate_relevance.py on the HotpotQA dev split (questions 1-50): the
# threshold and heading weight maximising F1 of "sentence is a supporting fact" over every sentence
# of each question's ten paragraphs, with the anchor rule (a name of the question in the sentence or
# its heading). The writer adds the aspect rule (on_aspect), which costs 0.002 F1 there for +0.02
# precision. Curve and figures: benchmarks/results/calibrate_relevance.json.
RELEVANCE_THRESHOLD = 0.5
HEADING_WEIGHT = 0.75  # a key word only in the passage's title or section: the sentence may be about it

_WORD_RE = re.compile(r"[`'\"“‘]([^`'\"“”‘’]{2,40})[`'\"”’]|(\^?[A-Za-z][\w.+#&'^-]*[\w+#])|(\d[\d.,]*)|(\S)")
_UNITS = frozenset("cny rmb usd eur gbp jpy gb mb kb tb pb ms km kg cm mm hz ghz mhz".split())
_SPECIFIC_RE = re.compile(r"_|\d|[a-z][A-Z]|^[A-Z]{2,}|^\^|[+#&]")


@dataclass(frozen=True)
class Query:
    """What a sentence must be about: key words (each with its synonyms) and anchors."""

    text: str
    groups: tuple[tuple[tuple[str, ...], ...], ...]  # per key word: alternatives, each a tuple of terms
    anchors: tuple[str, ...]  # names and specific terms, as written


def make_query(text: str) -> Query:
    return Query(text, tuple(_groups(text)), tuple(anchors(text)))


def relevance(query: Query, sentence: str, heading: str = "") -> float:
    """Share of the query's key words the sentence holds (a word only in the heading counts half)."""
    if not query.groups:
        return 0.0
    in_sentence, in_heading = set(terms(sentence, numbers=False)), set(terms(heading, numbers=False))
    score = 0.0
    for group in query.groups:
        if _group_hit(group, in_sentence):
            score += 1.0
        elif _group_hit(group, in_heading):
            score += HEADING_WEIGHT
    return score / len(query.groups)


def overlaps(query: Query, sentence: str) -> bool:
    """Some key word of the query is in the sentence itself."""
    found = set(terms(sentence, numbers=False))
    return any(_group_hit(g, found) for g in query.groups)


def on_aspect(query: Query, sentence: str, heading: str = "") -> bool:
    """Some key word that is not a name of the query is in the sentence (or its heading): a sentence
    naming the subject but not what is asked about it ('RAG' without 'cost') is about something else."""
    named = {t for a in anchors(query.text, compounds=True) for t in terms(a, numbers=False)}
    aspects = [g for g in query.groups if not set(g[0]) <= named]
    if not aspects:
        return True
    found = set(terms(f"{sentence} {heading}", numbers=False))
    return any(_group_hit(g, found) for g in aspects)


def names(anchor: str, text: str) -> bool:
    """The text mentions the anchor (case, '-', '_' and spaces aside; a plural 's' allowed), or one
    of its lexicon/glossary synonyms."""
    hay = _norm(text)
    return any(_mentions(alt, hay) for alt in (anchor, *_synonyms(anchor)))


def anchors(text: str, *, compounds: bool = False) -> list[str]:
    """Names and specific terms: capitalised words past the first, acronyms, identifiers
    ('shared_buffers', 'GPT-4', '^GSPC'), quoted strings; Latin words in a Chinese question; with
    ``compounds``, hyphenated words too ('fine-tuning'). Units after a figure ('64 GB') are not."""
    tokens = list(_WORD_RE.finditer(text))
    words = [m.group(2) for m in tokens if m.group(2)]
    title_case = _title_case(words)
    zh = bool(HAN_RE.search(text))
    out: list[str] = []
    run: list[str] = []
    for i, m in enumerate(tokens):
        word = m.group(2)
        if not word:
            _flush(run, out)
            out += [m.group(1).strip()] if m.group(1) else []
            continue
        lower = word.lower()
        plain = lower in _STOP or lower in _UNITS or (i > 0 and bool(tokens[i - 1].group(3)) and len(word) <= 4)
        specific = bool(_SPECIFIC_RE.search(word)) and not plain
        named = word[:1].isupper() and word != words[0] and not title_case and not plain
        if specific and not named:  # an identifier stands alone: 'PostgreSQL shared_buffers' is two
            _flush(run, out)
            out.append(word)
            continue
        if (zh and not plain) or specific or named:
            run.append(word)
            continue
        if run and lower in _PARTICLES and _next_named(tokens, i):  # 'Géza von Cziffra' is one name
            run.append(word)
            continue
        _flush(run, out)
        if compounds and "-" in word.strip("-") and not plain:
            out.append(word)
    _flush(run, out)
    out = [re.sub(r"['’]s$", "", a) for a in out]  # "Krilanovich's" is Krilanovich
    return list(dict.fromkeys(a for a in out if terms(a, numbers=False) or _SPECIFIC_RE.search(a)))


_PARTICLES = frozenset("von van der den de du da di del della le la bin ibn al el dos das".split())


def _next_named(tokens: list[re.Match[str]], i: int) -> bool:
    nxt = tokens[i + 1].group(2) if i + 1 < len(tokens) else None
    return bool(nxt and nxt[:1].isupper())


def _title_case(words: list[str]) -> bool:
    """A headline-style question ('What Is The Cost Of RAG For Support'): every content word past the
    first capitalised, with function words in capitals too or three content words. A question full of names ('Are King
    Vidor and Géza von Cziffra both American directors?') still writes its common words in lower
    case, so its names stay names."""
    content = [w for w in words[1:] if len(w) >= 4 and w.lower() not in _STOP]
    if not content or any(not w[:1].isupper() for w in content):
        return False  # a name may hold capitalised function words: 'The Girl Who Kicked the Hornets' Nest'
    return len(content) >= 3 or any(w[:1].isupper() and w.lower() in _STOP for w in words[1:])


def distinguishing_anchors(query_text: str, sibling_texts: list[str]) -> list[str]:
    """Anchors (compounds included) of this sub-question that not every sibling shares: the subject
    that sets its section apart ('RAG' in 'What does RAG cost for support?' among RAG and
    fine-tuning questions, not the shared 'support'); all its anchors when every sibling shares them."""
    mine = anchors(query_text, compounds=True)
    others = [t for t in sibling_texts if t != query_text]
    if not others:
        return mine
    return [a for a in mine if not all(names(a, t) for t in others)] or mine


def unique_words(query_text: str, sibling_texts: list[str]) -> list[str]:
    """Content words of this sub-question that no sibling uses: its subject when it names none
    that looks like a name ('httpx' in 'What does httpx provide?' beside 'What does aiosqlite provide?')."""
    others = [t for t in sibling_texts if t != query_text]
    if not others:
        return []
    theirs = {t for o in others for t in terms(o, numbers=False)}
    return [w for w, ts in keywords(query_text, numbers=False) if w.lower() not in _LIGHT and not set(ts) & theirs]


# --- internals -------------------------------------------------------------------------------

_STOP = frozenset("""a an the and or but if of in on at to for from by with about as into than is are was were be
what which who whom whose when where why how does do did can could should would will shall may might must has have
had its it this that these those there their our we you your i vs versus compare between among per each every any
all both either neither not no yes also only more most less least much many""".split())


# Words of the planner's own templates ("What are the key characteristics of X", "What else do the
# documents say about X"): they ask about X, and no passage needs to contain them.
_TEMPLATE = frozenset("key main characteristic characteristics fact facts else document documents say says "
                      "background".split())
_LIGHT = frozenset("need needs needed take takes taken make makes made get gets got".split())  # verbs that ask nothing


def _flush(run: list[str], out: list[str]) -> None:
    if run:
        out.append(" ".join(run))
        run.clear()


def _groups(text: str) -> list[tuple[tuple[str, ...], ...]]:
    """One group per content word: its own terms first, then each synonym's terms."""
    synonyms = _concept_spans(text)
    out: list[tuple[tuple[str, ...], ...]] = []
    pos = 0
    for surface, ts in keywords(text, numbers=False):
        if surface.lower() in _LIGHT or surface.lower() in _TEMPLATE:
            continue
        at = text.find(surface, pos)
        pos = at + len(surface) if at >= 0 else pos
        alts = [s for start, end, s in synonyms if at >= 0 and start <= at < end]
        group = (tuple(ts), *(tuple(terms(a, numbers=False)) for alt in alts for a in alt))
        group = tuple(dict.fromkeys(g for g in group if g))
        if group and group not in out:
            out.append(group)
    return out


def _group_hit(group: tuple[tuple[str, ...], ...], found: set[str]) -> bool:
    """A word is present when at least half its terms are (a Chinese word's bigrams, a compound's parts)."""
    return any(alt and sum(_has(t, found) for t in alt) * 2 >= len(alt) for alt in group)


def _has(term: str, found: set[str]) -> bool:
    """The term, or a short inflection of it ('budget' in 'budgeted', 'recommend' in 'recommended')."""
    if term in found:
        return True
    return len(term) >= 4 and term.isascii() and any(u.startswith(term) and len(u) - len(term) <= 3 for u in found)


def _concept_spans(text: str) -> list[tuple[int, int, list[str]]]:
    """Lexicon (and knowledge-base glossary) concepts in the text, each with its English and Chinese forms."""
    return [(h.start, h.end, [*LEXICON[h.key].en, *LEXICON[h.key].zh])
            for h in find_concepts(text) if h.kind != "op" and h.key in LEXICON]


def _synonyms(anchor: str) -> list[str]:
    spans = _concept_spans(anchor)
    return [s for start, end, forms in spans if end - start >= len(anchor) - 1 for s in forms]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\s_\-]+", " ", fold_accents(text).lower()).split())


def _mentions(anchor: str, hay: str) -> bool:
    needle = _norm(anchor)
    if not needle:
        return False
    if HAN_RE.search(needle):
        return needle in hay
    return re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?:s|es|'s)?(?![a-z0-9])", hay) is not None
