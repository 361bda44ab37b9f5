"""Schema linking: which tables, columns and sample values a question talks about.

A question word links to a column through the column's name, its sample values, its description (a name
the question writes, "Microsoft" or "S&P 500", found in "Microsoft closing price") and the measure words
of ``sql_intent`` ("disk space" -> ``size_kb``). Candidate SQL is built in ``agents.offline.sql_build``;
``question_ops`` stays importable from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from agents.offline.sql_intent import ADJECTIVE_WEIGHT, implied_tokens, question_ops
from agents.offline.text import (
    LEXICON,
    abbreviates,
    concept_terms_en,
    find_concepts,
    squash,
    stem,
    tokenize,
    words,
)
from tools.models import ColumnInfo, TableInfo

__all__ = ["QuestionTerms", "TableLink", "link_schema", "question_ops", "question_terms", "relevant_links"]

NUMERIC_TYPES = frozenset("TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT FLOAT REAL "
                          "DOUBLE DECIMAL NUMERIC INT".split())
# How much a column-name token counts when a lexicon concept (not the word itself) points at it.
_KIND_WEIGHT = {"measure": 0.8, "dimension": 0.8, "entity": 0.8, "topic": 0.6, "aspect": 0.6, "op": 0.3}
_GLOSS_WEIGHT = 0.9  # the English gloss of a Chinese term: nearly the user's own word
_VALUE_SCORE = 2.0  # a sample value named in the question is the strongest link there is
_STRONG = 0.6  # a column linked at least this well (or by a value) makes its table count
# Category values that are also everyday words ("low cost" must not filter compute_need = 'low').
_STOP_VALUES = frozenset("low medium high none other yes no true false all any unknown n/a total totals".split())
# Labels of a row that sums the rows above it ("Total", "Totals (21 nations)"): never ranked, counted or summed again.
TOTAL_LABELS = ("total", "totals", "grand total")
_EXTRA_WORD_SCORE, _MAX_EXTRA_WORDS = 0.3, 5  # per word of a linked value beyond its first
_NAME_SCORE = 1.0  # a name the question writes, found in one column's description: as good as its own name
# Names as written: capitalised words and what follows them ("S&P 500", "O'Reilly AI"), tickers ("^GSPC").
_NAME_RE = re.compile(r"(?:[A-Z][\w&'.^-]*|[\^$][A-Za-z]+)(?:[ \t]+(?:[A-Z0-9][\w&'.-]*))*")
# British and American spellings meet: "licence" links to a column named "license".
_SPELLINGS = [("ence", "ense"), ("our", "or"), ("ise", "ize"), ("isation", "ization"), ("yse", "yze"), ("tre", "ter")]


@dataclass
class TableLink:
    table: str
    score: float
    columns: list[tuple[str, float]] = field(default_factory=list)  # best first
    values: list[tuple[str, str]] = field(default_factory=list)  # (column, sample value) named in the text


@dataclass
class QuestionTerms:
    """A question reduced to what linking needs: weighted English-side terms, concepts, word sequence."""
    weights: dict[str, float]  # term -> how strongly the question asks for it (1.0: its own word)
    groups: list[dict[str, float]]  # one per concept or loose word: the terms that would cover it
    concepts: list[str]
    sequence: list[str]  # every word's term, stopwords kept, for matching multi-word values
    text: str
    implied: dict[str, float] = field(default_factory=dict)  # column tokens that superlatives point at
    names: list[str] = field(default_factory=list)  # names as written, for matching descriptions


def question_terms(text: str) -> QuestionTerms:
    hits = find_concepts(text)
    groups: dict[str, dict[str, float]] = {}
    for hit in hits:
        group = groups.setdefault(hit.key, dict.fromkeys(concept_terms_en(hit.key), _KIND_WEIGHT[hit.kind]))
        group.update(dict.fromkeys(tokenize(hit.gloss), _GLOSS_WEIGHT))
        group.update(dict.fromkeys(tokenize(hit.surface), 1.0))
    loose = " ".join(s for s, _, pos in words(text) if not any(h.start <= pos < h.end for h in hits))
    for term in tokenize(loose):  # words outside any concept each count on their own
        groups.setdefault(term, {term: 1.0})
    implied = implied_tokens(text)
    nouns = {t: w for t, w in implied.items() if w > ADJECTIVE_WEIGHT}
    if nouns:  # "disk space", "MB": one asked-for measure, covered by any of its column tokens
        groups.setdefault("~measure", {}).update(nouns)
    weights: dict[str, float] = {}
    for group in groups.values():
        for term, w in group.items():
            for form in _spelling_forms(term):
                weights[form] = max(weights.get(form, 0.0), w)
    seq = [term for _, term, _ in words(text)]
    return QuestionTerms(weights, list(groups.values()), list(dict.fromkeys(h.key for h in hits)), seq, text,
                         {t: w for t, w in implied.items() if w <= ADJECTIVE_WEIGHT}, question_names(text))


def _spelling_forms(term: str) -> list[str]:
    # The light stem cuts "closing" to "clos" but leaves a column's "close": both forms link.
    forms = [term, term + "e"] if len(term) >= 3 and term[-1] not in "aeiouy" else [term]
    for uk, us in _SPELLINGS:
        for a, b in ((uk, us), (us, uk)):
            if term.endswith(a) and len(term) > len(a) + 2:
                forms.append(term[: -len(a)] + b)
    return forms


def question_names(text: str) -> list[str]:
    """Proper names and codes the question writes ("Microsoft", "S&P 500", "MSFT"); question words dropped."""
    out = []
    for m in _NAME_RE.finditer(text):
        parts = [p for p in re.findall(r"[A-Za-z0-9]+", m.group()) if p.lower() not in _NAME_STOP]
        if parts and any(len(p) > 1 for p in parts):
            out.append(" ".join(parts))
    return list(dict.fromkeys(out))


_NAME_STOP = frozenset("how what which who whom whose when where why is are was were do does did can could should "
                       "would will the a an in on of for and or vs versus compare between from to i we our".split())


@lru_cache(maxsize=512)
def _name_regex(name: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in re.findall(r"[a-z0-9]+", name.lower())]
    return re.compile(r"(?<![a-z0-9])" + r"[^a-z0-9]{0,3}".join(parts) + r"(?![a-z0-9])")


def _described_names(q: QuestionTerms, table: TableInfo) -> dict[str, float]:
    """Columns whose description holds a name the question writes (or whose name is its code: 'MSFT'
    for "Microsoft"), when no other column's does."""
    hits: dict[str, list[str]] = {}
    for name in q.names:
        cols = [c.name for c in table.columns if c.description and _name_regex(name).search(c.description.lower())]
        cols = cols or [c.name for c in table.columns if abbreviates(c.name, name)]  # 'MSFT' for "Microsoft"
        if len(cols) == 1:  # a name in every description ("USD") distinguishes nothing
            hits.setdefault(cols[0], []).append(name)
    return {col: _NAME_SCORE for col in hits}


def name_tokens(name: str) -> list[str]:
    """Identifier words, stemmed: "actual_cost_cny" -> ["actual", "cost", "cny"]; camelCase is split too."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return list(dict.fromkeys(stem(w) for w in re.split(r"[^A-Za-z0-9]+", spaced) if w))


def is_numeric(col: ColumnInfo) -> bool:
    return col.type.upper().split("(")[0].strip() in NUMERIC_TYPES


def is_date(col: ColumnInfo) -> bool:
    kind = col.type.upper()
    if kind.startswith(("DATE", "TIMESTAMP")):
        return True
    tokens = col.name.lower().split("_")
    return not is_numeric(col) and (tokens[-1] in ("date", "month", "day") or tokens[0] == "date")


def is_text(col: ColumnInfo) -> bool:
    return col.type.upper().startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "ENUM")) and not is_date(col)


def is_id(col: ColumnInfo) -> bool:
    return name_tokens(col.name)[-1:] in (["id"], ["key"], ["code"]) or col.name.lower() == "id"


def mentioned_values(q: QuestionTerms, col: ColumnInfo) -> list[str]:
    """Sample values of a text column that the question names, directly or through a lexicon concept."""
    if not is_text(col):
        return []
    concept_forms = {squash(f) for key in q.concepts for f in (key, *LEXICON[key].en)}
    found = []
    for sample in col.samples:
        core = re.sub(r"\(.*?\)", " ", sample).strip()  # "Milvus (self-hosted)" is named as "Milvus"
        bare = re.sub(r"[\W_]+", "", core)  # '?', '-', '[[]]': no value a question names
        if len(bare) < 2 or len(sample) > 60 or squash(core).isdigit() or core.lower() in _STOP_VALUES:
            continue  # long samples are prose (notes), not categories
        seq = [term for _, term, _ in words(core)]
        n = len(seq)
        said = n > 0 and any(s[i:i + n] == seq for s in _sequences(q) for i in range(len(s) - n + 1))
        if squash(core) in concept_forms or said or (not core.isascii() and len(core) >= 2 and core in q.text):
            found.append(sample)
    # "total liabilities" names the row "Total liabilities", not also the section row "Liabilities"
    spans = {v: f" {' '.join(t for _, t, _ in words(re.sub(r'[(].*?[)]', ' ', v)))} " for v in found}
    # equal once footnotes are dropped ("Free cash flow", "Free cash flow (pre-spectrum)"): the bare one
    return [v for v in found if not any(w != v and ((spans[v] in spans[w] and spans[v] != spans[w])
                                                    or (spans[v] == spans[w] and len(w) < len(v))) for w in found)]


def is_list_column(col: ColumnInfo) -> bool:
    """A text column whose cells list items ("United, Continental", "5th, Western", "Athens, Greece"):
    a question names one item, which is a value of the column too."""
    return is_text(col) and any(isinstance(v, str) and "," in v for v in col.samples)


ORDINALS = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th",
            "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th"}


_DETERMINERS = frozenset("the a an his her its their our my your this that".split())
_PLACE_NOUNS = frozenset("place places position positions spot finish finishes round rank".split())
_ORDER_VERBS = frozenset({form for w in "listed named mentioned shown written entered appears appeared given"
                          .split() for form in (w, stem(w))})


_PLACE_WORDS = frozenset(stem(w) for w in "place placing placed position pos rank ranking finish finished".split())
_ORDINAL_NUMBERS = {w: i for i, w in enumerate(ORDINALS, 1)}
_ORDINAL = r"(?:(\d{1,2})(?:st|nd|rd|th)|(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth))"
_PLACE_RE = re.compile(rf"\b{_ORDINAL}\s+(?:place|position|spot)\b|"
                       rf"\b(?:finish(?:ed)?|came(?:\s+in)?|placed|ranked)\s+{_ORDINAL}\b", re.I)


def asked_place(text: str) -> int | None:
    """The place a question asks about ("1st place", "finished third", "came in first"), as a number."""
    m = _PLACE_RE.search(text)
    return None if m is None else _place_number(m)


def _place_number(m: re.Match[str]) -> int:
    digits, word = m.group(1) or m.group(3), (m.group(2) or m.group(4) or "").lower()
    return int(digits) if digits else _ORDINAL_NUMBERS[word]


def place_phrase_picked(text: str, sql: str) -> str | None:
    """The question's place phrase ("came in first") when ``sql`` keeps only that place's rows
    ("Pos" = '1'): those rows are what the phrase asks about, though they hold none of its words."""
    m = _PLACE_RE.search(text)
    if m is None or " WHERE " not in sql:
        return None
    for col, value in re.findall(r'"((?:[^"]|"")+)" = \'?(\d+)\'?(?![\d.])', sql.split(" WHERE ", 1)[1]):
        if int(value) == _place_number(m) and {stem(t) for t in name_tokens(col)} & _PLACE_WORDS:
            return m.group(0)
    return None


def place_column(table: TableInfo) -> ColumnInfo | None:
    """The column holding finishing places: named so ("Pos", "Placing") and holding numbers, as numbers or
    as text with a few non-finishers ("Ret", "DNF") among them."""
    for c in table.columns:
        if not {stem(t) for t in name_tokens(c.name)} & _PLACE_WORDS:
            continue
        digits = sum(s.strip().isdigit() for s in c.samples)
        if is_numeric(c) or (is_text(c) and c.samples and digits * 2 > len(c.samples)):
            return c
    return None


def is_place(tokens: list[str], i: int) -> bool:
    """The ordinal at ``tokens[i]`` names a place ("finished first", "first place"), not an order of
    things ("the first interval", "his first record")."""
    if tokens[i] not in ORDINALS:
        return False
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    if i and tokens[i - 1] in _ORDER_VERBS:  # "listed first", "mentioned first": an order of rows, not a place
        return after in _PLACE_NOUNS
    return after in _PLACE_NOUNS or i == 0 or tokens[i - 1] not in _DETERMINERS


def _sequences(q: QuestionTerms) -> list[list[str]]:
    """The question's words, and with ordinals as tables write them ("finished first" names '1st')."""
    seq = q.sequence
    alt = [w for i, t in enumerate(seq)
           for w in ([term for _, term, _ in words(ORDINALS[t])] if is_place(seq, i) else [t])]
    return [q.sequence, alt] if alt != q.sequence else [q.sequence]


def _desc_score(q: QuestionTerms, description: str, *, per_word: float, cap: float) -> float:
    # Only the question's own words count here: lexicon expansions match prose far too easily.
    desc_terms = {stem(w) for w in re.findall(r"[A-Za-z]+", description)}
    return min(cap, per_word * sum(1 for t, w in q.weights.items() if w >= 1.0 and t in desc_terms))


def _link_table(q: QuestionTerms, table: TableInfo) -> TableLink | None:
    columns: list[tuple[str, float]] = []
    values: list[tuple[str, str]] = []
    strong = implied = False
    described = _described_names(q, table)
    placed, place_col = asked_place(q.text) is not None, place_column(table)
    for col in table.columns:
        tokens = name_tokens(col.name)
        name = sum(q.weights.get(t, 0.0) for t in tokens) + described.get(col.name, 0.0)
        hint = max((q.implied.get(t, 0.0) for t in tokens), default=0.0) if is_numeric(col) else 0.0
        if placed and col is place_col:  # "who came in first": the place column is what is asked of
            name = max(name, 1.0)
        vals = mentioned_values(q, col)
        score = name + hint + _desc_score(q, col.description, per_word=0.15, cap=0.45) + (_VALUE_SCORE if vals else 0.0)
        strong = strong or name >= _STRONG or bool(vals)
        implied = implied or hint > 0
        values += [(col.name, v) for v in vals]
        if score > 0:
            columns.append((col.name, round(score, 3)))
    # A table the question names ("packages") links through a column a superlative points at ("largest").
    named_table = any(q.weights.get(t, 0.0) >= 1.0 for t in name_tokens(table.name))
    if not (strong or (implied and named_table)):  # a table name or description alone ("LLM") is too weak
        return None
    columns.sort(key=lambda c: -c[1])
    # Coverage: each concept of the question counts once, by its best column or the table name, so a
    # table with five cost-like columns does not outrank one that covers more of what was asked.
    token_sets = [name_tokens(table.name)] + [name_tokens(c.name) for c in table.columns]
    coverage = sum(max((g.get(t, 0.0) for tokens in token_sets for t in tokens), default=0.0) for g in q.groups)
    named = {name for name, _ in values}
    desc = _desc_score(q, table.description, per_word=0.2, cap=0.6)
    written = all(q.weights.get(t, 0.0) >= 1.0 for t in name_tokens(table.name))  # "in the msft table"
    # a longer name matched is the stronger link: "Value added tax receivables" over "Receivables"
    extra_words = sum(min(_MAX_EXTRA_WORDS, max(0, len(words(v)) - 1)) for _, v in values)
    score = coverage + _VALUE_SCORE * len(named) + _EXTRA_WORD_SCORE * extra_words + desc \
        + _NAME_SCORE * (len(described) + written)
    return TableLink(table.name, round(score, 3), columns, values)


def link_schema(text: str, catalog: list[TableInfo]) -> list[TableLink]:
    """Tables the text is about, best first; a table needs a column or sample value linked to appear."""
    q = question_terms(text)
    links = [link for t in catalog if (link := _link_table(q, t)) is not None]
    return sorted(links, key=lambda link: (-link.score, link.table))


def relevant_links(links: list[TableLink], *, ratio: float = 0.5, limit: int = 3) -> list[TableLink]:
    """The links worth acting on: those within ``ratio`` of the best one."""
    if not links:
        return []
    return [link for link in links if link.score >= ratio * links[0].score][:limit]
