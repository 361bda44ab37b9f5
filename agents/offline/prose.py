"""Is a piece of extracted text a prose sentence a report may quote?

Documents carry markup, code, directives and tables whose rows the sentence splitter sees as lines of
text. None of that reads as a sentence in a report (tables stay tables), so it is filtered here, once,
before any scoring. Rules look at the shape of the text only, never at its topic.
"""

from __future__ import annotations

import re

from tools.text.language import HAN_RE
from tools.text.sentences import squash

_LINK_RE = re.compile(r"(?<!!)\[([^\[\]]{1,200})\]\((?:[^()\s]|\([^()\s]*\))+\)")  # [text](url) -> text
_BADGE_RE = re.compile(r"!\[[^\]]*\]\(|\[!\[")
_RST_RE = re.compile(r"(?:^|\s)\.\.\s+[\w-]+::|(?:^|\s):(?:param|type|returns?|rtype|raises?|var|ivar|cvar|meta)\b"
                     r"|:(?:class|func|meth|mod|attr|ref|doc|obj|data|exc|term|py:\w+):`")
_HTML_RE = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>|&(?:nbsp|lt|gt|amp|quot|#\d+);")
_CODE_START_RE = re.compile(r"^\s*(?:>>>|\.\.\.\s|\$\s|#!|%\s|In \[\d+\]:|import\s+[\w.]+|from\s+[\w.]+\s+import\b"
                            r"|def\s+\w+\s*\(|class\s+\w+\s*[(:]|async\s+def\b|return\b|if\s+__name__"
                            r"|(?:pip|npm|conda|apt(?:-get)?|brew|git|docker|cd|ls|curl)\s+[-\w])")
_CODE_BITS_RE = re.compile(r"\w+\([^()]*\)\s*[:{]|==|!=|=>|->|::|\w+\.\w+\(|[{};]\s*$|\b\w+\s*=\s*[\w'\"\[{(]")
_SYMBOLS = set("{}[]<>=_\\|#@$*~^`;")
_SYMBOL_SHARE = 0.06  # prose rarely has more than one such symbol in 16 characters; code does
MAX_LABEL_WORDS = 9  # 'Fine-tuned model at launch on 1 September 2025: 71% accuracy' is still a field
_MIN_SYMBOLS = 3  # an identifier or two ('shared_buffers') is prose
_CELL_RE = re.compile(r"\s\|\s|\|\s*$|^\s*\|")
_NUMERIC_RE = re.compile(r"^[-+(]?[\d.,%$€£¥]+[)%kKMB]?$")
_FINITE_RE = re.compile(r"\b(?:is|are|was|were|has|have|had|do|does|did|can|could|will|would|shall|should|may|might|"
                        r"must|we|they|it|he|she|i|you|this|these|there)\b", re.IGNORECASE)
_VERB_RE = re.compile(r"\b(?:is|are|was|were|be|been|being|has|have|had|do|does|did|can|could|will|would|shall|"
                      r"should|may|might|must|\w{3,}ed|\w{3,}(?:es|ts|ds|ks|ns|rs|ls|ps|ys))\b", re.IGNORECASE)


_RST_LINK_RE = re.compile(r"`([^`<>]{1,200}?)\s*<[^<>\s]+>`__?|\s*<(?:https?://|mailto:)[^<>\s]+>_?")  # RST


def tidy_links(text: str) -> str:
    """A link reads as its text: '[the guide](https://…)' and RST's '`the guide <https://…>`_' ->
    'the guide'; a bare RST target '<https://…>_' goes."""
    return _RST_LINK_RE.sub(lambda m: m.group(1) or "", _LINK_RE.sub(r"\1", text))


def is_prose(text: str) -> bool:
    """True for a sentence of running prose; False for markup, code, directives and table rows."""
    text = squash(text)
    if not text or _BADGE_RE.search(text) or _RST_RE.search(text) or _HTML_RE.search(text):
        return False
    if _CODE_START_RE.match(text) or len(_CODE_BITS_RE.findall(text)) >= 2:
        return False
    if len(_CELL_RE.findall(text)) >= 2 or text.count("|") >= 3:
        return False  # a table row flattened into a line
    if _symbol_share(text) > _SYMBOL_SHARE:
        return False
    return not _cell_run(text) and not _label_fragment(text)


def _symbol_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    symbols = sum(c in _SYMBOLS for c in chars)
    return symbols / (len(chars) or 1) if symbols >= _MIN_SYMBOLS else 0.0


def _cell_run(text: str) -> bool:
    """Cells without a sentence: most tokens are figures, or no English verb among many capitalised cells."""
    if HAN_RE.search(text):
        tokens = re.findall(r"[\d.,%]+|" + HAN_RE.pattern + "+", text)
        return len(tokens) >= 6 and sum(bool(_NUMERIC_RE.match(t)) for t in tokens) * 2 > len(tokens)
    tokens = text.split()
    numeric = sum(bool(_NUMERIC_RE.match(t.strip(".,;:"))) for t in tokens)
    return len(tokens) >= 4 and numeric * 5 >= len(tokens) * 2 and not _VERB_RE.search(text)


def _label_fragment(text: str) -> bool:
    """'Average score from support: 2.8 out of 5' is a field of a list, not a statement: a short label,
    a colon, and no finite verb or subject pronoun on either side."""
    if HAN_RE.search(text):
        return False
    head, sep, _ = text.partition(": ")
    return bool(sep) and len(head.split()) <= MAX_LABEL_WORDS and not _FINITE_RE.search(text)
