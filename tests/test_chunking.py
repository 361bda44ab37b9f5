"""Chunking: offsets point at the exact text, structure is respected, sizes hold, ids are stable."""

from __future__ import annotations

import hashlib
import random
import time
from itertools import pairwise
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.chunking import TokenCounter, approx_token_count, chunk_document, content_hash, make_doc_id
from tools.models import Block, Chunk, ParsedDocument
from tools.parsing import parse_bytes

MB = 2**20


def parse(tmp_path: Path, name: str, data: bytes | str) -> ParsedDocument:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return parse_bytes(path.read_bytes(), suffix=path.suffix, source=name, max_bytes=64 * MB)


def chunk(
    doc: ParsedDocument,
    *,
    tokens: int = 64,
    overlap: int = 8,
    count_tokens: TokenCounter = approx_token_count,
) -> list[Chunk]:
    return chunk_document(doc, doc_id="doc1", chunk_tokens=tokens, overlap=overlap, count_tokens=count_tokens)


def assert_exact_spans(doc: ParsedDocument, chunks: list[Chunk]) -> None:
    assert chunks
    for c in chunks:
        assert doc.text[c.char_start : c.char_end] == c.text
        assert c.text == c.text.strip()
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)


def random_chinese(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n))


def sentences(n: int) -> str:
    return " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(n))


def make_pdf(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


MARKDOWN = """---
title: Handbook
team: search
---

# Retrieval

Dense retrieval embeds passages.

Sparse retrieval counts words.

## Fusion

Reciprocal rank fusion merges ranked lists.

# 中文部分

混合检索结合了向量检索和全文检索。它在中文和英文语料上都表现良好。
"""


def test_approx_token_count() -> None:
    assert approx_token_count("") == 0
    assert approx_token_count("中文检索") == 4
    assert approx_token_count("hello world") == 3
    assert approx_token_count("12345") == 2
    assert approx_token_count("a, b.") == 5
    english = "Hybrid search combines vector search with full-text ranking, fused by reciprocal rank fusion."
    assert 15 <= approx_token_count(english) <= 25
    assert approx_token_count("x" * 10_000) >= 1000  # a blob without spaces is not one token


def test_ids_and_hashes() -> None:
    digest = content_hash(b"abc")
    assert digest == hashlib.sha256(b"abc").hexdigest()
    doc_id = make_doc_id("docs/a.md", digest)
    assert doc_id == hashlib.sha256(f"docs/a.md:{digest}".encode()).hexdigest()[:16]
    assert doc_id == make_doc_id("docs/a.md", digest)
    assert doc_id != make_doc_id("docs/b.md", digest)


def test_markdown_chunks_follow_sections(tmp_path: Path) -> None:
    doc = parse(tmp_path, "handbook.md", MARKDOWN)
    chunks = chunk(doc)
    assert_exact_spans(doc, chunks)
    assert [c.section for c in chunks] == ["Retrieval", "Retrieval > Fusion", "中文部分"]
    # The two short paragraphs of one section merge; nothing crosses a heading.
    assert chunks[0].text == "Dense retrieval embeds passages.\n\nSparse retrieval counts words."
    assert all("#" not in c.text for c in chunks)
    assert [c.language for c in chunks] == ["en", "en", "zh"]
    first = chunks[0]
    assert (first.title, first.source, first.doc_id, first.page) == ("Handbook", "handbook.md", "doc1", None)
    assert first.metadata == {"title": "Handbook", "team": "search"}
    assert first.token_count == approx_token_count(first.text)
    assert first.content_hash == hashlib.sha256(first.text.encode()).hexdigest()
    expected_id = hashlib.sha256(f"doc1:{first.char_start}:{first.content_hash}".encode()).hexdigest()[:16]
    assert first.chunk_id == expected_id


def test_repeated_heading_is_not_swallowed(tmp_path: Path) -> None:
    doc = parse(tmp_path, "r.md", "# Notes\n\nfirst part\n\n# Notes\n\nsecond part\n")
    chunks = chunk(doc)
    assert [c.text for c in chunks] == ["first part", "second part"]


def test_html_chunks(tmp_path: Path) -> None:
    html = (
        "<html><head><title>Report</title></head><body><h1>Summary</h1><p>Short intro.</p>"
        f"<h2>Body</h2><p>{sentences(40)}</p><table><tr><td>a</td><td>1</td></tr></table></body></html>"
    )
    doc = parse(tmp_path, "report.html", html)
    chunks = chunk(doc, tokens=48, overlap=8)
    assert_exact_spans(doc, chunks)
    assert chunks[0].section == "Summary" and chunks[0].text == "Short intro."
    assert all(c.section == "Summary > Body" for c in chunks[1:])
    assert all(c.token_count <= 48 + 3 for c in chunks)


def test_pdf_chunks_never_cross_pages(tmp_path: Path) -> None:
    doc = parse(tmp_path, "paper.pdf", make_pdf(["Short page one.", sentences(60), "Short page three."]))
    chunks = chunk(doc, tokens=64, overlap=8)
    assert_exact_spans(doc, chunks)
    assert chunks[0].page == 1 and chunks[-1].page == 3
    assert {c.page for c in chunks} == {1, 2, 3}
    pages = [c.page for c in chunks]
    assert pages == sorted(pages)
    for c in chunks:
        assert ("page one" in c.text) == (c.page == 1)
        assert ("page three" in c.text) == (c.page == 3)


def test_docx_chunks(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Scope", level=1)
    document.add_paragraph(sentences(30))
    document.add_heading("Limits", level=2)
    document.add_paragraph("One short paragraph.")
    path = tmp_path / "spec.docx"
    document.save(str(path))
    doc = parse_bytes(path.read_bytes(), suffix=".docx", source="spec.docx", max_bytes=MB)
    chunks = chunk(doc, tokens=40)
    assert_exact_spans(doc, chunks)
    assert chunks[-1].section == "Scope > Limits" and chunks[-1].text == "One short paragraph."


def test_giant_chinese_paragraph_without_punctuation(tmp_path: Path) -> None:
    text = random_chinese(20_000)
    doc = parse(tmp_path, "wall.txt", text)
    chunks = chunk(doc, tokens=256, overlap=32)
    assert_exact_spans(doc, chunks)
    assert max(c.token_count for c in chunks) <= 256 + 3
    assert len(chunks) >= 20_000 // 256
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(doc.text)
    for prev, nxt in pairwise(chunks):
        shared = prev.char_end - nxt.char_start
        assert 0 < shared <= 32 + 2  # overlap present and about the requested size
        assert prev.text[-shared:] == nxt.text[:shared]
    assert all(c.language == "zh" for c in chunks)


def test_chinese_text_splits_at_sentence_ends(tmp_path: Path) -> None:
    text = "".join(f"第{i}句话讲述检索系统的一个细节。" for i in range(300))
    doc = parse(tmp_path, "zh.md", f"# 标题\n\n{text}\n")
    chunks = chunk(doc, tokens=100, overlap=20)
    assert_exact_spans(doc, chunks)
    assert len(chunks) > 10
    assert all(c.text.endswith("。") and not c.text.startswith("。") for c in chunks)
    assert all(c.token_count <= 100 + 3 and c.section == "标题" for c in chunks)


def test_overlap_between_chunks_of_a_long_paragraph(tmp_path: Path) -> None:
    doc = parse(tmp_path, "long.txt", "Long Paragraph\n\n" + sentences(200))
    chunks = chunk(doc, tokens=80, overlap=20)
    assert_exact_spans(doc, chunks)
    body = [c for c in chunks if c.text != "Long Paragraph"]
    assert len(body) > 5
    for prev, nxt in pairwise(body):
        assert nxt.char_start < prev.char_end
        shared = doc.text[nxt.char_start : prev.char_end]
        assert prev.text.endswith(shared) and nxt.text.startswith(shared)
        assert approx_token_count(shared) <= 20 + 2
    assert body[-1].char_end == len(doc.text)


def test_no_overlap_requested(tmp_path: Path) -> None:
    doc = parse(tmp_path, "long.txt", sentences(100))
    chunks = chunk(doc, tokens=50, overlap=0)
    assert_exact_spans(doc, chunks)
    assert all(nxt.char_start >= prev.char_end for prev, nxt in pairwise(chunks))


def test_punctuation_only_chunks_are_dropped(tmp_path: Path) -> None:
    doc = parse(tmp_path, "p.txt", "Real text.\n\n* * *\n\n......\n\nMore text.")
    assert [c.text for c in chunk(doc, tokens=4, overlap=0)] == ["Real text.", "More text."]


def test_deterministic_ids(tmp_path: Path) -> None:
    doc = parse(tmp_path, "handbook.md", MARKDOWN)
    first = [c.chunk_id for c in chunk(doc)]
    again = [c.chunk_id for c in chunk(parse(tmp_path, "handbook.md", MARKDOWN))]
    assert first == again
    assert len(set(first)) == len(first)
    other = [c.chunk_id for c in chunk_document(doc, doc_id="doc2", chunk_tokens=64, overlap=8)]
    assert not set(first) & set(other)


def test_custom_token_counter(tmp_path: Path) -> None:
    doc = parse(tmp_path, "long.txt", sentences(50))
    chunks = chunk(doc, tokens=100, overlap=10, count_tokens=len)
    assert_exact_spans(doc, chunks)
    assert all(len(c.text) <= 100 and c.token_count == len(c.text) for c in chunks)


def test_overlap_larger_than_chunk_is_clamped() -> None:
    text = sentences(30)
    doc = ParsedDocument("x.txt", "x", text, [Block(text, 0, len(text))], "en")
    chunks = chunk_document(doc, doc_id="d", chunk_tokens=32, overlap=500)
    assert_exact_spans(doc, chunks)
    with pytest.raises(ValueError):
        chunk_document(doc, doc_id="d", chunk_tokens=0, overlap=0)


def test_chunking_is_fast(tmp_path: Path) -> None:
    docs = []
    for i in range(1000):
        text = f"# Doc {i}\n\nIntro {i}.\n\n## Part\n\n{sentences(6)}\n\n## 中文\n\n混合检索第{i}号文档。"
        docs.append(parse(tmp_path, f"d{i}.md", text))
    started = time.perf_counter()
    total = 0
    for i, doc in enumerate(docs):
        total += len(chunk_document(doc, doc_id=f"d{i}", chunk_tokens=256, overlap=32))
    elapsed = time.perf_counter() - started
    assert total == 3000
    assert elapsed < 5.0, f"chunking 1000 small documents took {elapsed:.2f}s"


_PIECES = ["检", "索", "中", "文", "alpha", "beta", "internationalization", "42", "3.14", "x" * 30]
_PIECES += [" ", "\n", "\n\n", "\t", "\u3000", "\xa0", "。", "，", "、", "；", ". ", ", ", "!", "? "]


@settings(max_examples=300, deadline=None, database=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=300),
    tokens=st.integers(2, 60),
    overlap=st.integers(0, 30),
    by_chars=st.booleans(),
)
def test_spans_are_exact_for_any_text(pieces: list[str], tokens: int, overlap: int, by_chars: bool) -> None:
    text = "".join(pieces).strip()
    doc = ParsedDocument("h.txt", "h", text, [Block(text, 0, len(text))] if text else [], "zh")
    counter = len if by_chars else approx_token_count
    chunks = chunk_document(doc, doc_id="h", chunk_tokens=tokens, overlap=overlap, count_tokens=counter)
    covered: set[int] = set()
    for prev, c in pairwise([None, *chunks]):
        assert doc.text[c.char_start : c.char_end] == c.text
        assert c.token_count <= tokens + 3
        if prev is not None:  # overlap never swallows a whole neighbour
            assert c.char_start > prev.char_start and c.char_end > prev.char_end
        covered.update(range(c.char_start, c.char_end))
    # Every letter or digit lands in some chunk: splitting loses nothing.
    assert all(i in covered for i, ch in enumerate(text) if ch.isalnum())
