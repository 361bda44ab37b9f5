"""Structure-aware chunking: blocks merge within one section and page, long blocks split with overlap."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby

from langchain_text_splitters import RecursiveCharacterTextSplitter

from tools.models import Block, Chunk, ParsedDocument
from tools.text.language import CJK_RE, detect_language

TokenCounter = Callable[[str], int]
Span = tuple[int, int, Block]  # char_start, char_end, the block that gives section and page

# Split levels, coarse to fine (regular expressions): paragraphs, lines, sentence ends, clauses,
# words, characters. Chinese punctuation shares a level with its Latin twin, so CJK text without
# spaces breaks at sentence ends before single characters, and all sentence ends weigh the same.
SEPARATORS = [r"\n\n", r"\n", r"[。！？；]|[.!?;] ", r"[，、]|, ", r" ", r""]

_WORD_RE = re.compile(r"[^\W\d_]+")
_LONG_WORD_PIECE_RE = re.compile(r"[^\W\d_]{10}")
_NUMBER_PIECE_RE = re.compile(r"\d{1,3}")
_SYMBOL_RE = re.compile(r"[^\w\s]")
_CONTENT_RE = re.compile(r"[^\W_]")  # any letter or digit, CJK included
_SENTENCE_BREAK_RE = re.compile(r"\n|[。！？；]|[.!?;]\s")
_WORD_BREAK_RE = re.compile(r"[，、,]|\s")
_MEMO_MAX_LEN = 32


def approx_token_count(text: str) -> int:
    """Estimate model tokens without a tokenizer: CJK char ~1, word ~1.3, 3 digits ~1, symbol 1.

    Long runs of letters (identifiers, base64) add a token per 10 letters, so a blob without
    spaces still counts as large and gets split.
    """
    cjk = len(CJK_RE.findall(text))
    rest = CJK_RE.sub(" ", text) if cjk else text
    words = len(_WORD_RE.findall(rest))
    long_pieces = len(_LONG_WORD_PIECE_RE.findall(rest))
    numbers = len(_NUMBER_PIECE_RE.findall(rest))
    symbols = len(_SYMBOL_RE.findall(rest))
    return cjk + math.ceil(words * 1.3) + long_pieces + numbers + symbols


def content_hash(data: bytes) -> str:
    """Full sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def make_doc_id(source: str, content_hash: str) -> str:
    """Stable document id: the same content at the same path always gets the same id."""
    return hashlib.sha256(f"{source}:{content_hash}".encode()).hexdigest()[:16]


def chunk_document(
    doc: ParsedDocument,
    *,
    doc_id: str,
    chunk_tokens: int,
    overlap: int,
    count_tokens: TokenCounter = approx_token_count,
) -> list[Chunk]:
    """Cut ``doc`` into chunks that each stay inside one heading path and one page.

    Small consecutive blocks merge up to ``chunk_tokens``; a block longer than that is split
    with up to ``overlap`` tokens shared between neighbours (at most half a chunk). Every chunk
    satisfies ``doc.text[c.char_start:c.char_end] == c.text``.
    """
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    cutter = _Cutter(chunk_tokens, max(0, min(overlap, chunk_tokens // 2)), _memoized(count_tokens))
    chunks: list[Chunk] = []
    for _, group in groupby(doc.blocks, key=lambda b: (b.section, b.page)):
        for start, end, block in cutter.spans(doc.text, list(group)):
            chunk = _make_chunk(doc, doc_id, start, end, block, count_tokens)
            if chunk is not None:
                chunks.append(chunk)
    return chunks


@dataclass
class _Cutter:
    chunk_tokens: int
    overlap: int
    count: TokenCounter

    def __post_init__(self) -> None:
        # The splitter cuts disjoint pieces (so each can be located exactly) of a size that leaves
        # room for the overlap, which is added here at a sentence or word boundary.
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=max(1, self.chunk_tokens - self.overlap),
            chunk_overlap=0,
            length_function=self.count,
            separators=SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",  # "。" stays with its sentence instead of opening the next piece
            strip_whitespace=True,
        )

    def spans(self, text: str, blocks: list[Block]) -> Iterator[Span]:
        """Chunk spans for consecutive blocks that share one section and page."""
        pending: list[Block] = []
        pending_tokens = 0
        for block in blocks:
            tokens = self.count(block.text)
            # Merging must not swallow text between blocks that belongs to no block (a heading).
            adjacent = bool(pending) and not text[pending[-1].end : block.start].strip()
            fits = adjacent and pending_tokens + tokens <= self.chunk_tokens
            if pending and not fits:
                yield pending[0].start, pending[-1].end, pending[0]
                pending, pending_tokens = [], 0
            if tokens > self.chunk_tokens:
                yield from self._split(block)
            else:
                pending.append(block)
                pending_tokens += tokens + 1  # the blank line joining blocks costs about a token
        if pending:
            yield pending[0].start, pending[-1].end, pending[0]

    def _split(self, block: Block) -> Iterator[Span]:
        """Split one long block; consecutive pieces share up to ``overlap`` tokens."""
        text, cursor = block.text, 0
        previous: tuple[int, int] | None = None
        for piece in self.splitter.split_text(text):
            # Pieces come in order and the splitter drops only whitespace between them.
            start = _skip_space(text, cursor)
            if not text.startswith(piece, start):
                start = text.find(piece, cursor)
                if start < 0:
                    continue
            end = start + len(piece)
            tail = self._overlap_start(text, *previous) if previous and self.overlap else None
            if tail is not None and self.count(text[tail:end]) > self.chunk_tokens:
                tail = None  # the whitespace between the pieces made it too big
            yield block.start + (start if tail is None else tail), block.start + end, block
            previous, cursor = (start, end), end

    def _overlap_start(self, text: str, start: int, end: int) -> int | None:
        """Start of the longest tail of ``text[start:end]`` within the overlap budget that begins
        a sentence, else a word, else (CJK or a blob without spaces) any character."""
        lo, hi = start + 1, end  # a tail, never the whole previous piece
        while lo < hi:  # earliest position whose tail still fits; counts shrink as it moves right
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.count(text[mid:end]) <= self.overlap else (mid + 1, hi)
        for pattern in (_SENTENCE_BREAK_RE, _WORD_BREAK_RE):
            at = _first_break(pattern, text, lo, end)
            if at is not None:
                return _skip_space(text, at)
        return lo if lo < end else None


def _first_break(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> int | None:
    """First position in [lo, hi) right after a match of ``pattern``, if any."""
    pos = max(lo - 2, 0)  # a separator ending exactly at lo still marks a boundary there
    while (match := pattern.search(text, pos, hi)) is not None:
        if match.end() >= lo:
            return match.end() if match.end() < hi else None
        pos = match.end()
    return None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _make_chunk(
    doc: ParsedDocument, doc_id: str, start: int, end: int, block: Block, count_tokens: TokenCounter
) -> Chunk | None:
    text = doc.text[start:end]
    if not _CONTENT_RE.search(text):
        return None  # whitespace, punctuation or rules only: nothing to retrieve
    digest = content_hash(text.encode("utf-8"))
    return Chunk(
        chunk_id=hashlib.sha256(f"{doc_id}:{start}:{digest}".encode()).hexdigest()[:16],
        doc_id=doc_id,
        source=doc.source,
        title=doc.title,
        section=" > ".join(block.section),
        page=block.page,
        char_start=start,
        char_end=end,
        language=detect_language(text, default=doc.language),
        text=text,
        content_hash=digest,
        token_count=count_tokens(text),
        metadata=dict(doc.metadata),
    )


def _memoized(count_tokens: TokenCounter) -> TokenCounter:
    """Cache counts of short strings: the splitter counts the same characters and words again and
    again, and a real tokenizer call costs far more than a dict lookup."""
    cache: dict[str, int] = {}

    def count(text: str) -> int:
        if len(text) > _MEMO_MAX_LEN:
            return count_tokens(text)
        value = cache.get(text)
        if value is None:
            value = cache[text] = count_tokens(text)
        return value

    return count
