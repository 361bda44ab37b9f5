"""Citations checked in code, never trusted: the product's key guarantee.

Every ``[ev:ID]`` marker whose id is in the evidence store becomes a numbered reference ``[n]``
(numbered in order of first appearance across sections); any other marker is removed and counted.
Every number a sentence states must appear in the evidence that sentence cites (after normalising
1.8M = 1,800,000 = 180万); a sentence whose numbers do not is flagged in the text and in the counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tools.text.language import HAN_RE
from tools.text.numbers import claim_numbers, number_values, supported
from tools.text.sentences import sentence_spans, squash
from tools.vocabulary import Evidence, Reference, Section, Verification

FLAG = " ⚠unverified"
FLAGGED_CHARS = 200
_ONE = r"\[\s*ev\s*:[^\[\]]*\]"
MARKER_RE = re.compile(_ONE, re.IGNORECASE)  # one [ev:…] marker, before resolution
_MARKERS_RE = re.compile(rf"(?P<lead>[ \t]*)(?P<run>{_ONE}(?:\s*{_ONE})*)", re.IGNORECASE)
_LEADING_MARKERS_RE = re.compile(rf"\s*{_ONE}(?:\s*{_ONE})*", re.IGNORECASE)
# A bare "[1]" or "[2, 3]" the model typed itself is not a citation no matter how it looks: only
# resolved markers become numbers. (Not after a word or bracket: ``arr[1]``, ``x[0][1]`` stay.)
_BARE_NUMBER_RE = re.compile(r"[ \t]*(?<![\w\])])\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\](?!\()")
_CITATION_NOISE_RE = re.compile(rf"{_ONE}|\[\d+(?:\s*,\s*\d+)*\]", re.IGNORECASE)
_END_RE = re.compile(r"[.!?。！？；;]+[”’」』）)\"'*]*$")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s")
_TABLE_RE = re.compile(r"^\s*\|")
_FENCE_RE = re.compile(r"^\s*(?:```|~~~)")
_RULE_RE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_WORDY_RE = re.compile(r"[A-Za-z]|" + HAN_RE.pattern)


@dataclass
class VerifiedSections:
    sections: list[Section]
    references: list[Reference]
    verification: Verification
    cited_ids: list[str] = field(default_factory=list)


def verify_sections(sections: list[Section], evidence: Mapping[str, Evidence]) -> VerifiedSections:
    """Resolve markers and check numbers, section by section in the order given."""
    checker = _Checker(evidence)
    out = [s.model_copy(update={"markdown": checker.markdown(s.markdown)}) for s in sections]
    cited = list(checker.numbers)
    refs = [Reference(number=n, evidence_id=i, label=evidence[i].label()) for i, n in checker.numbers.items()]
    return VerifiedSections(sections=out, references=refs, verification=checker.v, cited_ids=cited)


class _Checker:
    def __init__(self, evidence: Mapping[str, Evidence]) -> None:
        self.evidence = evidence
        self.numbers: dict[str, int] = {}  # evidence id -> reference number, in first-appearance order
        self.v = Verification()
        self._values: dict[str, list[float]] = {}

    # --- markers ---

    def resolve(self, text: str, *, code: bool = False) -> tuple[str, list[str]]:
        """Markers to ``[n]`` (adjacent ones merged into ``[1, 2]``); returns the known ids cited.
        Bare numbers the model wrote are removed and counted as unknown markers (not in code)."""
        cited: list[str] = []
        if not code:
            text = _BARE_NUMBER_RE.sub(self._drop_bare, text)

        def replace(m: re.Match[str]) -> str:
            known = [k for k in (self._known(i) for i in _marker_ids(m["run"])) if k]
            cited.extend(known)
            numbers = [self.numbers.setdefault(k, len(self.numbers) + 1) for k in dict.fromkeys(known)]
            return f"{m['lead']}[{', '.join(map(str, numbers))}]" if numbers else ""
        return _MARKERS_RE.sub(replace, text), list(dict.fromkeys(cited))

    def _drop_bare(self, m: re.Match[str]) -> str:
        self.v.markers_total += 1
        self.v.unknown_markers_removed += 1
        raw = m.group(0).strip()
        if raw not in self.v.unknown_marker_ids:
            self.v.unknown_marker_ids.append(raw)
        return ""

    def _known(self, raw: str) -> str | None:
        self.v.markers_total += 1
        for candidate in (raw, raw.lower()):
            if candidate in self.evidence:
                self.v.markers_resolved += 1
                return candidate
        self.v.unknown_markers_removed += 1
        if raw not in self.v.unknown_marker_ids:
            self.v.unknown_marker_ids.append(raw)
        return None

    # --- numbers ---

    def values(self, ids: list[str]) -> list[float]:
        out: list[float] = []
        for i in ids:
            if i not in self._values:
                self._values[i] = _evidence_values(self.evidence[i])
            out += self._values[i]
        return out

    def check_numbers(self, text: str, ids: list[str]) -> bool | None:
        """None when the text states no number; else whether every number is in the cited evidence."""
        numbers = claim_numbers(_CITATION_NOISE_RE.sub(" ", text))
        if not numbers:
            return None
        self.v.numeric_claims += 1
        values = self.values(ids)
        ok = all(supported(n, values) for n in numbers)
        if ok:
            self.v.numeric_claims_supported += 1
        else:
            self.v.flagged_claims.append(_trim(text))
        return ok

    # --- markdown ---

    def markdown(self, markdown: str) -> str:
        lines, out = markdown.split("\n"), []
        lead_ids: list[str] = []  # evidence cited by the paragraph just before a table
        i, fenced = 0, False
        while i < len(lines):
            line = lines[i]
            if _FENCE_RE.match(line) or fenced:
                fenced = fenced != bool(_FENCE_RE.match(line))
                out.append(self.resolve(line, code=True)[0])
                i += 1
            elif _TABLE_RE.match(line):
                j = _run_end(lines, i, lambda s: bool(_TABLE_RE.match(s)))
                out += self.table(lines[i:j], lead_ids)
                lead_ids, i = [], j
            elif not line.strip() or _HEADING_RE.match(line) or _RULE_RE.match(line):
                if line.strip():
                    lead_ids = []
                out.append(self.resolve(line)[0])
                i += 1
            else:
                j = _run_end(lines, i, _is_prose)
                text, lead_ids = self.prose("\n".join(lines[i:j]))
                out.append(text)
                i = j
        return "\n".join(out)

    def prose(self, block: str) -> tuple[str, list[str]]:
        """Sentences of a paragraph: cited? numbers supported? Returns the new text and its citations."""
        out, pos, cited = [], 0, []
        for start, end in marked_sentence_spans(block):
            out.append(self.resolve(block[pos:start])[0])
            text, ids = self.resolve(block[start:end])
            cited += ids
            if _WORDY_RE.search(_CITATION_NOISE_RE.sub("", block[start:end])):
                self.v.sentences += 1
                self.v.uncited_sentences += not ids
                if self.check_numbers(block[start:end], ids) is False:
                    text = _flag(text)
            out.append(text)
            pos = end
        out.append(self.resolve(block[pos:])[0])
        return "".join(out), list(dict.fromkeys(cited))

    def table(self, rows: list[str], lead_ids: list[str]) -> list[str]:
        """Table rows are checked against the evidence the lead-in cites (and any in the row)."""
        out = []
        has_header = len(rows) > 1 and bool(_SEPARATOR_RE.match(rows[1]))
        for k, row in enumerate(rows):
            text, ids = self.resolve(row)
            if not (has_header and k < 2) and not _SEPARATOR_RE.match(row):
                cells = [c for c in _CITATION_NOISE_RE.sub(" ", row).strip().strip("|").split("|")]
                if self.check_numbers(" | ".join(cells), list(dict.fromkeys(lead_ids + ids))) is False:
                    text = _flag_row(text)
            out.append(text)
        return out


def _marker_ids(run: str) -> list[str]:
    inner = re.sub(r"(?i)\bev\s*:", " ", re.sub(r"[\[\]]", " ", run))
    return re.findall(r"[0-9A-Za-z_-]+", inner)


def marked_sentence_spans(block: str) -> list[tuple[int, int]]:
    """Sentence spans of text holding ``[ev:…]`` markers: a marker never splits a sentence (the ';'
    or ',' inside '[ev:a; b]' is masked), and a marker after a full stop ('… 5M. [ev:a] Next …')
    belongs to the sentence before it."""
    masked = MARKER_RE.sub(lambda m: "\ue000" * len(m.group()), block)
    out: list[tuple[int, int]] = []
    for start, end in sentence_spans(masked):
        m = _LEADING_MARKERS_RE.match(block, start, end)
        if out and m and m.end() > start:
            out[-1] = (out[-1][0], m.end())
            start = m.end()
            while start < end and block[start].isspace():
                start += 1
        if start < end:
            out.append((start, end))
    return out


def _evidence_values(ev: Evidence) -> list[float]:
    """What a claim citing ``ev`` may state: its numbers, and for SQL also the raw cells and counts."""
    values = number_values(ev.text)
    if ev.kind == "passage":  # its label is part of the citation too ('Budget 2026, § 3 Costs')
        values += number_values(f"{ev.title or ''} ; {ev.section or ''}")
    if ev.kind == "sql":
        values += number_values(ev.sql or "")
        values += [float(v) for row in ev.rows for v in row if isinstance(v, (int, float)) and not isinstance(v, bool)]
        values += [float(len(ev.rows))] + ([float(ev.row_count)] if ev.row_count is not None else [])
    return values


def _is_prose(line: str) -> bool:
    return bool(line.strip()) and not (_TABLE_RE.match(line) or _HEADING_RE.match(line)
                                       or _FENCE_RE.match(line) or _RULE_RE.match(line))


def _run_end(lines: list[str], i: int, keep: object) -> int:
    j = i + 1
    while j < len(lines) and keep(lines[j]):  # type: ignore[operator]
        j += 1
    return j


def _flag(sentence: str) -> str:
    m = _END_RE.search(sentence)
    return sentence[:m.start()] + FLAG + m.group() if m else sentence + FLAG


def _flag_row(row: str) -> str:
    body = row.rstrip()
    if body.endswith("|") and len(body) > 1:
        return body[:-1].rstrip() + FLAG + " |"
    return body + FLAG


def _trim(text: str) -> str:
    text = squash(_CITATION_NOISE_RE.sub("", text))
    text = re.sub(r"\s+([.,;:!?。，；：！？])", r"\1", text)
    return text if len(text) <= FLAGGED_CHARS else text[:FLAGGED_CHARS - 1] + "…"
