"""Text preparation for the full-text (BM25) side of search.

LanceDB's built-in tokenizers cannot split Chinese into words offline (``simple`` sees a whole
Han run as one token; its ``jieba/*`` tokenizer needs a model folder that is not shipped), so in
the ``jieba`` mode we segment here and store the words space-separated in a token column that a
plain ``simple`` tokenizer (with English stemming) indexes. Queries go through the same code, so
both sides agree on what a word is.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

from lancedb.index import FTS

from tools.config import FtsTokenizer
from tools.text.language import HAN

# jieba's dictionary covers Han only; kana and Hangul runs pass through as written.
_HAN_RUN = re.compile(f"([{HAN}]+)")
# Anything that is not a letter, digit or space may be query syntax somewhere (quotes, colons,
# parentheses, +/-, ~, ^, *) and is never part of an indexed token, so queries drop it.
_NOT_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# The chunk column the BM25 index covers: title, section and text (segmented in the jieba mode).
FTS_COLUMN = "fts"

_jieba: Any = None
_jieba_lock = threading.Lock()


def _segmenter() -> Any:
    """jieba, initialised once; it loads a 20 MB dictionary (~1 s) and logs to stderr."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII, as users type them) and lowercase."""
    return unicodedata.normalize("NFKC", text).lower()


def _words(text: str) -> Iterator[str]:
    for part in _HAN_RUN.split(text):
        if not part:
            continue
        if _HAN_RUN.fullmatch(part):
            # Search mode also emits the shorter words inside long compounds
            # (中华人民共和国 → 中华, 人民, 共和国, …), so a query for a part still matches.
            yield from (w for w in _segmenter().cut_for_search(part) if w.strip())
        else:
            yield part


def fts_text(text: str) -> str:
    """Token-column content for the ``jieba`` mode: Chinese words space-separated, Latin lowercased."""
    return _SPACES.sub(" ", " ".join(_words(normalise(text)))).strip()


def safe_query(text: str) -> str:
    """``text`` with every non-word character replaced by a space: safe as any FTS query."""
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", normalise(text))).strip()


def fts_query(text: str) -> str:
    """A query for the ``jieba`` token column: segmented like the documents, syntax removed.

    An empty result means the query has no searchable word (only punctuation or emoji).
    """
    return fts_text(safe_query(text))


def fts_index(tokenizer: FtsTokenizer) -> tuple[str, FTS]:
    """The column the full-text index covers and its LanceDB configuration, per tokenizer mode."""
    if tokenizer == "jieba":
        # The column holds fts_text() output; "simple" splits it on spaces and punctuation.
        return FTS_COLUMN, FTS(base_tokenizer="simple", language="English", stem=True)
    if tokenizer == "icu":
        return FTS_COLUMN, FTS(base_tokenizer="icu", language="English", stem=True)
    # LanceDB's n-gram minimum defaults to 3, which misses 2-character Chinese words (微调).
    return FTS_COLUMN, FTS(
        base_tokenizer="ngram", ngram_min_length=2, ngram_max_length=3,
        stem=False, remove_stop_words=False,
    )
