"""Ingest orchestration through ``KnowledgeBase.ingest``: formats, provenance, incremental runs,
bad files, embedder guard and crash consistency. Parsing, chunking, corpus and warehouse details
have their own unit tests; these check what the pieces do together.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import docx
import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fpdf import FPDF

import tools.ingest
from tools.corpus import CHUNKS, Corpus, EmbedderMismatch, KBMismatch
from tools.embeddings import E5SmallEmbedder, HashEmbedder
from tools.knowledge_base import KnowledgeBase
from tools.parsing import parse_bytes

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- helpers ----------------------------------------------------------------------------------


class CountingEmbedder:
    """A HashEmbedder proxy that counts passage embedding calls (queries are not counted)."""

    def __init__(self, inner: HashEmbedder | None = None) -> None:
        self.inner = inner or HashEmbedder()
        self.name = self.inner.name
        self.dim = self.inner.dim
        self.passage_calls = 0
        self.passages = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passage_calls += 1
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def reset(self) -> None:
        self.passage_calls = self.passages = 0


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pdf_bytes(pages: list[str], *, user_password: str | None = None) -> bytes:
    pdf = FPDF()
    if user_password:
        pdf.set_encryption(owner_password="owner", user_password=user_password)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def write_docx(path: Path, heading: str, paragraphs: list[str]) -> Path:
    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


GUIDE_MD = """---
team: nlp
year: 2024
---

# Guide

## Setup

The aardvark configuration lives in the setup section.
"""


def write_documents(root: Path) -> Path:
    """One document of every type, each with a word no other document has."""
    docs = root / "docs"
    write(docs / "guide.md", GUIDE_MD)
    write(docs / "notes.txt", "Plain notes\n\nThe pangolin appears only in plain text.\n")
    write(docs / "page.html", "<html><head><title>Web page</title></head><body><h1>Heading One</h1>"
                              "<h2>Animals</h2><p>The narwhal swims through html.</p></body></html>")
    (docs / "report.pdf").write_bytes(pdf_bytes(["Page one is about the quokka.", "Page two is about the wombat."]))
    write_docx(docs / "memo.docx", "Memo", ["The axolotl lives in a docx file."])
    return docs


def write_tables(root: Path) -> Path:
    """One table file of every type; the SQLite file holds two tables."""
    tables = root / "tables"
    write(tables / "sales.csv", "region,amount\nnorth,10\nsouth,20\n")
    write(tables / "people.tsv", "name\tage\nann\t31\nbob\t42\n")
    tables.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"metric": ["a", "b", "c"], "value": [1.5, 2.5, 3.0]}), tables / "metrics.parquet")
    write(tables / "items.json", json.dumps([{"id": 1, "name": "pen"}, {"id": 2, "name": "cup"}]))
    write(tables / "events.jsonl", '{"kind": "click", "n": 3}\n{"kind": "view", "n": 5}\n')
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget"
    for row in (["item", "cost"], ["gpu", 100], ["cpu", 40]):
        sheet.append(row)
    book.save(tables / "budget.xlsx")
    with sqlite3.connect(tables / "shop.sqlite") as con:
        con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        con.execute("CREATE TABLE orders (id INTEGER, customer_id INTEGER, total REAL)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "ann"), (2, "bob")])
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(1, 1, 9.5), (2, 1, 3.0), (3, 2, 7.25)])
    con.close()
    return tables


ALL_TABLES = {"sales", "people", "metrics", "items", "events", "budget", "shop__customers", "shop__orders"}


async def chunk_rows(kb: KnowledgeBase, source: str | None = None) -> list[dict]:
    """Every stored chunk row (or one source's), straight from LanceDB."""
    table = await kb.corpus._table(CHUNKS)
    if table is None:
        return []
    query = table.query().select(["chunk_id", "doc_id", "source", "text"])
    if source is not None:
        query = query.where(f"source = '{source}'")
    return (await query.to_arrow()).to_pylist()


async def sources_found(kb: KnowledgeBase, query: str, mode: str = "text") -> set[str]:
    return {h.chunk.source for h in await kb.search(query, k=50, mode=mode)}


def bump(path: Path, text: str) -> None:
    """Rewrite a file and make sure its mtime moves even on coarse-mtime file systems."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


# -- every format -----------------------------------------------------------------------------


async def test_every_document_and_table_type_ingests(make_kb, tmp_path: Path) -> None:
    docs, tables = write_documents(tmp_path), write_tables(tmp_path)
    kb = await make_kb()
    summary = await kb.ingest([docs, tables])

    assert summary.skipped == []
    assert (summary.new, summary.changed, summary.unchanged, summary.removed) == (5, 0, 0, 0)
    tables_counts = (summary.tables_new, summary.tables_changed, summary.tables_unchanged, summary.tables_removed)
    assert tables_counts == (7, 0, 0, 0)
    rows = await chunk_rows(kb)
    assert summary.chunks_added == summary.chunks_embedded == len(rows) >= 5
    assert summary.chunks_deleted == 0
    assert {r["source"] for r in rows} == {f"docs/{n}" for n in
                                            ("guide.md", "notes.txt", "page.html", "report.pdf", "memo.docx")}
    manifest = await kb.corpus.document_records()
    assert sum(r.n_chunks for r in manifest.values()) == len(rows)

    catalog = {t.name: t for t in await kb.tables()}
    assert set(catalog) == ALL_TABLES
    assert catalog["shop__orders"].source == "tables/shop.sqlite" and catalog["shop__orders"].row_count == 3
    assert catalog["budget"].source == "tables/budget.xlsx" and catalog["metrics"].row_count == 3
    result = await kb.sql("SELECT sum(amount) AS total FROM sales")
    assert result.rows == [[30]]
    result = await kb.sql("SELECT c.name, sum(o.total) FROM shop__orders o JOIN shop__customers c "
                          "ON c.id = o.customer_id GROUP BY 1 ORDER BY 1")
    assert result.rows == [["ann", 12.5], ["bob", 7.25]]


@pytest.mark.parametrize("mode", ["text", "hybrid"])
async def test_chunks_are_searchable_with_full_provenance(make_kb, tmp_path: Path, mode: str) -> None:
    docs = write_documents(tmp_path)
    kb = await make_kb()
    await kb.ingest([docs])

    expected = {  # word → (source, title, section, page)
        "aardvark": ("docs/guide.md", "Guide", "Guide > Setup", None),
        "pangolin": ("docs/notes.txt", "Plain notes", "", None),
        "narwhal": ("docs/page.html", "Web page", "Heading One > Animals", None),
        "wombat": ("docs/report.pdf", "report", "", 2),
        "quokka": ("docs/report.pdf", "report", "", 1),
        "axolotl": ("docs/memo.docx", "Memo", "Memo", None),
    }
    for word, (source, title, section, page) in expected.items():
        hits = await kb.search(word, k=3, mode=mode)
        top = hits[0].chunk
        assert (top.source, top.title, top.section, top.page) == (source, title, section, page), word
        assert word in top.text
        # The stored offsets point back at the exact text of the parsed source file.
        path = tmp_path / top.source
        parsed = parse_bytes(path.read_bytes(), suffix=path.suffix, source=top.source, max_bytes=2**26)
        assert parsed.text[top.char_start : top.char_end] == top.text
        assert top.doc_id and top.content_hash and top.token_count > 0
    guide = (await kb.search("aardvark", k=1, mode=mode))[0].chunk
    assert guide.metadata == {"team": "nlp", "year": "2024"}


async def test_progress_sees_every_file(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    write(docs / "picture.png", "not really a picture")

    class Recorder:
        def __init__(self) -> None:
            self.total, self.steps, self.ended = None, [], False

        def begin(self, total: int) -> None:
            self.total = total

        def step(self, source: str, status: str) -> None:
            self.steps.append((source, status))

        def end(self) -> None:
            self.ended = True

    progress = Recorder()
    kb = await make_kb()
    await kb.ingest([docs], progress=progress)
    assert progress.total == len(progress.steps) == 6 and progress.ended
    assert dict(progress.steps)["docs/picture.png"] == "skipped"
    assert Counter(s for _, s in progress.steps) == {"new": 5, "skipped": 1}


# -- incremental runs -------------------------------------------------------------------------


async def test_second_ingest_embeds_nothing(make_kb, tmp_path: Path) -> None:
    docs, tables = write_documents(tmp_path), write_tables(tmp_path)
    embedder = CountingEmbedder()
    kb = await make_kb(embedder=embedder)
    first = await kb.ingest([docs, tables])
    assert embedder.passages == first.chunks_embedded > 0
    rows_before = sorted(r["chunk_id"] for r in await chunk_rows(kb))

    embedder.reset()
    second = await kb.ingest([docs, tables], prune=True)
    assert embedder.passage_calls == 0
    assert (second.new, second.changed, second.unchanged, second.removed) == (0, 0, 5, 0)
    assert (second.tables_new, second.tables_changed, second.tables_unchanged, second.tables_removed) == (0, 0, 7, 0)
    assert (second.chunks_added, second.chunks_embedded, second.chunks_deleted) == (0, 0, 0)
    assert sorted(r["chunk_id"] for r in await chunk_rows(kb)) == rows_before


async def test_touched_but_identical_file_is_unchanged(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    embedder = CountingEmbedder()
    kb = await make_kb(embedder=embedder)
    await kb.ingest([docs])
    embedder.reset()
    bump(docs / "guide.md", GUIDE_MD)  # same bytes, new mtime: the content hash decides
    summary = await kb.ingest([docs])
    assert (summary.unchanged, summary.changed, embedder.passage_calls) == (5, 0, 0)


async def test_changed_file_replaces_its_chunks(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    embedder = CountingEmbedder()
    kb = await make_kb(embedder=embedder)
    await kb.ingest([docs])
    old_rows = await chunk_rows(kb, "docs/guide.md")
    assert await sources_found(kb, "aardvark") == {"docs/guide.md"}

    embedder.reset()
    bump(docs / "guide.md", "# Guide\n\n## Setup\n\nThe giraffe configuration replaced the old one.\n")
    summary = await kb.ingest([docs])
    assert (summary.new, summary.changed, summary.unchanged) == (0, 1, 4)
    assert summary.chunks_deleted == len(old_rows)
    assert summary.chunks_embedded == embedder.passages == summary.chunks_added > 0

    for mode in ("text", "hybrid"):
        assert "docs/guide.md" not in {h.chunk.source for h in await kb.search("aardvark", k=10, mode=mode)
                                       if "aardvark" in h.chunk.text}
    assert await sources_found(kb, "aardvark") == set()
    assert await sources_found(kb, "giraffe") == {"docs/guide.md"}
    new_rows = await chunk_rows(kb, "docs/guide.md")
    assert {r["doc_id"] for r in new_rows}.isdisjoint({r["doc_id"] for r in old_rows})
    manifest = await kb.corpus.document_records()
    assert manifest["docs/guide.md"].n_chunks == len(new_rows)
    assert manifest["docs/guide.md"].doc_id == new_rows[0]["doc_id"]


async def test_deleted_file_stays_without_prune_and_goes_with_it(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    kb = await make_kb()
    await kb.ingest([docs])
    (docs / "notes.txt").unlink()

    kept = await kb.ingest([docs])
    assert (kept.removed, kept.unchanged, kept.chunks_deleted) == (0, 4, 0)
    assert await sources_found(kb, "pangolin") == {"docs/notes.txt"}

    pruned = await kb.ingest([docs], prune=True)
    assert (pruned.removed, pruned.unchanged) == (1, 4)
    assert pruned.chunks_deleted >= 1
    assert await sources_found(kb, "pangolin") == set()
    assert "docs/notes.txt" not in await sources_found(kb, "pangolin", "hybrid")
    assert await chunk_rows(kb, "docs/notes.txt") == []
    assert "docs/notes.txt" not in await kb.corpus.document_records()


async def test_prune_only_touches_the_folders_given(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    other = tmp_path / "other"
    write(other / "keep.md", "# Keep\n\nThe okapi lives elsewhere.\n")
    kb = await make_kb()
    await kb.ingest([docs, other])
    summary = await kb.ingest([docs], prune=True)  # "other" not named: its files are not vanished
    assert summary.removed == 0
    assert await sources_found(kb, "okapi") == {"other/keep.md"}


async def test_changed_table_reimports_and_deleted_table_is_pruned(make_kb, tmp_path: Path) -> None:
    tables = write_tables(tmp_path)
    kb = await make_kb()
    await kb.ingest([tables])

    bump(tables / "sales.csv", "region,amount\nnorth,10\nsouth,20\neast,70\n")
    changed = await kb.ingest([tables])
    assert (changed.tables_changed, changed.tables_unchanged, changed.tables_new) == (1, 6, 0)
    assert (await kb.sql("SELECT sum(amount) FROM sales")).rows == [[100]]

    # An edited sidecar alone is a new version of the table too.
    write(tables / "sales.meta.yaml", "description: Regional sales figures\n")
    described = await kb.ingest([tables])
    assert described.tables_changed == 1
    assert (await kb.describe_table("sales")).description == "Regional sales figures"

    (tables / "shop.sqlite").unlink()
    kept = await kb.ingest([tables])
    assert kept.tables_removed == 0 and {"shop__orders", "shop__customers"} <= {t.name for t in await kb.tables()}

    pruned = await kb.ingest([tables], prune=True)
    assert (pruned.tables_removed, pruned.tables_unchanged) == (1, 6)
    assert {t.name for t in await kb.tables()} == ALL_TABLES - {"shop__orders", "shop__customers"}
    with pytest.raises(Exception, match="shop__orders"):
        await kb.sql("SELECT * FROM shop__orders")


async def test_thousand_small_files_then_no_work_on_reingest(make_kb, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "many"
    for i in range(1000):
        write(root / f"d{i // 100:02d}" / f"note{i:04d}.md", f"# Note {i}\n\nmarker{i} tiny.\n")
    embedder = CountingEmbedder()
    kb = await make_kb(embedder=embedder)
    first = await kb.ingest([root])
    assert (first.new, first.skipped, first.chunks_added) == (1000, [], 1000)
    assert embedder.passages == 1000
    assert (await kb.search("marker737", k=1, mode="text"))[0].chunk.source == "many/d07/note0737.md"

    parsed = []
    real_parse = tools.ingest.parse_bytes
    monkeypatch.setattr(tools.ingest, "parse_bytes", lambda *a, **k: parsed.append(k) or real_parse(*a, **k))
    embedder.reset()
    second = await kb.ingest([root], prune=True)
    assert (second.unchanged, second.new, second.changed, second.removed) == (1000, 0, 0, 0)
    assert embedder.passage_calls == 0 and parsed == [] and second.chunks_embedded == 0
    assert len(await chunk_rows(kb)) == 1000


# -- bad files --------------------------------------------------------------------------------


async def test_bad_files_are_skipped_with_reasons_and_good_ones_ingested(make_kb, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    write(mixed / "good.md", "# Good\n\nThe ocelot is a good document.\n")
    write(mixed / "sub" / "also_good.txt", "The tapir is fine too.\n")
    write(mixed / "good.csv", "k,v\na,1\nb,2\n")
    expected = {
        "mixed/empty.md": "empty file",
        "mixed/binary.txt": "binary content in a .txt file",
        "mixed/truncated.pdf": "corrupt PDF",
        "mixed/encrypted.pdf": "encrypted PDF",
        "mixed/fake.docx": "not a valid .docx (zip) file",
        "mixed/picture.png": "unsupported file type '.png'",
        "mixed/broken.md": "broken or looping symlink",
        "mixed/loop_a.md": "broken or looping symlink",
        "mixed/loop_b.md": "broken or looping symlink",
        "mixed/loopdir/back": "symlinked folder not followed",
        "mixed/corrupt.csv": "binary data, not a text table",
        "mixed/empty.csv": "empty file",
        "mixed/header_only.csv": "no data rows",
    }
    (mixed / "empty.md").write_bytes(b"")
    (mixed / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (mixed / "truncated.pdf").write_bytes(pdf_bytes(["Truncated text here."])[:300])
    (mixed / "encrypted.pdf").write_bytes(pdf_bytes(["Secret text."], user_password="s3cret"))
    (mixed / "fake.docx").write_bytes(b"this is not a zip archive at all")
    (mixed / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (mixed / "broken.md").symlink_to(mixed / "does-not-exist.md")
    (mixed / "loop_a.md").symlink_to(mixed / "loop_b.md")
    (mixed / "loop_b.md").symlink_to(mixed / "loop_a.md")
    (mixed / "loopdir").mkdir()
    (mixed / "loopdir" / "back").symlink_to(mixed, target_is_directory=True)
    (mixed / "corrupt.csv").write_bytes(b"\x00\x01\x02\xff\xfe\x00garbage\x00" * 10)
    (mixed / "empty.csv").write_bytes(b"")
    write(mixed / "header_only.csv", "a,b\n")
    if not IS_ROOT:  # root reads through any permission bits
        write(mixed / "secret.md", "# Secret\n\nunreadable\n").chmod(0)
        expected["mixed/secret.md"] = "permission denied"

    kb = await make_kb()
    summary = await kb.ingest([mixed])

    reasons = {s.path: s.reason for s in summary.skipped}
    assert set(reasons) == set(expected)
    for path, reason in expected.items():
        assert reasons[path].startswith(reason), (path, reasons[path])
    assert (summary.new, summary.tables_new) == (2, 1)
    assert await sources_found(kb, "ocelot") == {"mixed/good.md"}
    assert await sources_found(kb, "tapir", "hybrid") >= {"mixed/sub/also_good.txt"}
    assert {r["source"] for r in await chunk_rows(kb)} == {"mixed/good.md", "mixed/sub/also_good.txt"}
    assert [t.name for t in await kb.tables()] == ["good"]
    assert (await kb.sql("SELECT sum(v) FROM good")).rows == [[3]]

    # Nothing bad was remembered as ingested: a second run reports the same problems again.
    again = await kb.ingest([mixed])
    assert {s.path for s in again.skipped} == set(expected)
    assert (again.unchanged, again.tables_unchanged, again.new) == (2, 1, 0)
    if not IS_ROOT:
        (mixed / "secret.md").chmod(0o644)


async def test_missing_root_is_reported_not_fatal(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    kb = await make_kb()
    summary = await kb.ingest([docs, tmp_path / "nope"])
    assert summary.new == 5
    assert [(s.path, s.reason) for s in summary.skipped] == [(str(tmp_path / "nope"), "path does not exist")]


async def test_file_that_breaks_later_keeps_its_previous_chunks(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    tables = write_tables(tmp_path)
    kb = await make_kb()
    await kb.ingest([docs, tables])
    before = sorted(r["chunk_id"] for r in await chunk_rows(kb, "docs/report.pdf"))
    record = (await kb.corpus.document_records())["docs/report.pdf"]

    data = (docs / "report.pdf").read_bytes()
    (docs / "report.pdf").write_bytes(data[: len(data) // 3])  # truncated in place
    (docs / "guide.md").write_bytes(b"")  # emptied
    (tables / "sales.csv").write_bytes(b"\x00\x01\x02\xff\xfe\x00garbage\x00" * 10)  # corrupted table

    summary = await kb.ingest([docs, tables], prune=True)
    reasons = {s.path: s.reason for s in summary.skipped}
    assert reasons["docs/report.pdf"].startswith("corrupt PDF")
    assert reasons["docs/guide.md"] == "empty file"
    assert reasons["tables/sales.csv"] == "binary data, not a text table"
    assert (summary.removed, summary.tables_removed, summary.chunks_deleted) == (0, 0, 0)

    assert sorted(r["chunk_id"] for r in await chunk_rows(kb, "docs/report.pdf")) == before
    assert (await kb.corpus.document_records())["docs/report.pdf"] == record
    assert await sources_found(kb, "wombat") == {"docs/report.pdf"}
    assert await sources_found(kb, "aardvark") == {"docs/guide.md"}
    assert (await kb.sql("SELECT sum(amount) FROM sales")).rows == [[30]]


# -- guards -----------------------------------------------------------------------------------


async def test_embedder_mismatch_is_refused_with_a_clear_message(make_kb, tmp_path: Path) -> None:
    docs = write_documents(tmp_path)
    kb = await make_kb()
    await kb.ingest([docs])

    with pytest.raises(EmbedderMismatch) as info:
        await make_kb(embedder=HashEmbedder(dim=64))
    message = str(info.value)
    assert isinstance(info.value, KBMismatch)
    assert "hash-256 (dim 256)" in message and "hash-64 (dim 64)" in message
    assert "--kb" in message and "\n" not in message

    e5 = E5SmallEmbedder()
    with pytest.raises(EmbedderMismatch, match=r"built with hash-256 .* configured embedder is e5-small"):
        await make_kb(embedder=e5)
    assert e5._model is None  # refused before any model was loaded

    # The refused opens changed nothing: the original embedder still reads the KB.
    reopened = await make_kb()
    assert await sources_found(reopened, "wombat") == {"docs/report.pdf"}


async def test_chinese_two_character_word_is_found(make_kb, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "zh.md", "# 模型训练\n\n我们对预训练模型进行微调，让它适应下游任务。\n")
    write(docs / "weather_zh.txt", "今天的天气很好，适合去公园散步。\n")
    write(docs / "en.md", "# Notes\n\nFine-tuning adapts a pretrained model.\n")
    kb = await make_kb()
    await kb.ingest([docs])
    text_hits = await kb.search("微调", k=5, mode="text")
    assert [h.chunk.source for h in text_hits] == ["docs/zh.md"]
    assert text_hits[0].chunk.section == "模型训练" and text_hits[0].chunk.language == "zh"
    hybrid = await kb.search("微调", k=5, mode="hybrid")
    assert hybrid[0].chunk.source == "docs/zh.md"


# -- crash consistency ------------------------------------------------------------------------


def long_doc(version: str, bird: str, paragraphs: int) -> str:
    """A document several chunks long (chunk_tokens=64) where every chunk names ``bird``."""
    return "# Topic\n\n" + "\n\n".join(
        f"Paragraph {i} of the {version} version mentions the {bird} and lists several more words to fill it up."
        for i in range(paragraphs)
    )


LONG_V1 = long_doc("first", "heron", 8)
LONG_V2 = long_doc("second", "pelican", 9)


def crash_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the next Corpus.upsert_documents raise, as if the process died right before it."""
    real = Corpus.upsert_documents
    calls: list[int] = []

    async def flaky(self, records):
        calls.append(len(records))
        if len(calls) == 1:
            raise RuntimeError("simulated crash before the manifest update")
        return await real(self, records)

    monkeypatch.setattr(Corpus, "upsert_documents", flaky)
    return calls


async def assert_exactly_one_version(kb: KnowledgeBase, source: str, word: str, gone: str | None) -> None:
    rows = await chunk_rows(kb, source)
    ids = [r["chunk_id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate chunk rows"
    assert len({r["doc_id"] for r in rows}) == 1, "chunks of more than one version"
    record = (await kb.corpus.document_records())[source]
    assert record.doc_id == rows[0]["doc_id"] and record.n_chunks == len(rows)
    assert all(word in r["text"] for r in rows)
    if gone is not None:
        assert await sources_found(kb, gone) == set()
    assert await sources_found(kb, word) == {source}


async def test_crash_before_manifest_update_of_a_changed_file(make_kb, tmp_path: Path, monkeypatch) -> None:
    docs = tmp_path / "docs"
    write(docs / "topic.md", LONG_V1)
    write(docs / "other.md", "# Other\n\nAn unrelated ibis.\n")
    kb = await make_kb()
    await kb.ingest([docs])
    assert len(await chunk_rows(kb, "docs/topic.md")) > 1
    old_record = (await kb.corpus.document_records())["docs/topic.md"]

    bump(docs / "topic.md", LONG_V2)
    crash_once(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await kb.ingest([docs])
    await kb.close()
    # The crash left the manifest on the old version while the new chunks are already written.
    kb = await make_kb()
    assert (await kb.corpus.document_records())["docs/topic.md"] == old_record
    assert any("pelican" in r["text"] for r in await chunk_rows(kb, "docs/topic.md"))

    summary = await kb.ingest([docs])
    assert (summary.changed, summary.unchanged) == (1, 1)
    await assert_exactly_one_version(kb, "docs/topic.md", "pelican", gone="heron")
    assert (await kb.ingest([docs])).unchanged == 2  # and it has settled


async def test_crash_before_manifest_update_of_a_new_file(make_kb, tmp_path: Path, monkeypatch) -> None:
    docs = tmp_path / "docs"
    write(docs / "topic.md", LONG_V1)
    kb = await make_kb()
    calls = crash_once(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await kb.ingest([docs])
    await kb.close()
    kb = await make_kb()
    assert await kb.corpus.document_records() == {}
    written = len(await chunk_rows(kb, "docs/topic.md"))
    assert written > 1

    summary = await kb.ingest([docs])
    assert summary.new == 1 and len(calls) == 2
    await assert_exactly_one_version(kb, "docs/topic.md", "heron", gone=None)
    assert len(await chunk_rows(kb, "docs/topic.md")) == written


# Known gap (see the report): chunks written before a crash are only cleaned up when the same file
# comes back unchanged. Strict, so the marker must go once the ingest sweeps stale doc_ids.


@pytest.mark.parametrize("then", ["edited", "deleted"])
async def test_crash_then_file_edited_or_deleted_leaves_no_orphans(make_kb, tmp_path: Path, monkeypatch,
                                                                    then: str) -> None:
    docs = tmp_path / "docs"
    write(docs / "topic.md", LONG_V1)
    write(docs / "other.md", "# Other\n\nAn unrelated ibis.\n")
    kb = await make_kb()
    crash_once(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await kb.ingest([docs])
    await kb.close()
    if then == "edited":
        write(docs / "topic.md", LONG_V2)
    else:
        (docs / "topic.md").unlink()

    kb = await make_kb()
    await kb.ingest([docs], prune=True)
    assert await sources_found(kb, "heron") == set()  # the crashed version is gone
    if then == "edited":
        await assert_exactly_one_version(kb, "docs/topic.md", "pelican", gone="heron")
    else:
        assert await chunk_rows(kb, "docs/topic.md") == []


async def test_two_folders_with_the_same_name_do_not_collide(tmp_path, make_kb):
    for parent in ("a", "b"):
        folder = tmp_path / parent / "docs"
        folder.mkdir(parents=True)
        (folder / "x.md").write_text(f"# X\n\nText from folder {parent}.\n")
    kb = await make_kb()
    summary = await kb.ingest([tmp_path / "a" / "docs", tmp_path / "b" / "docs"])
    assert summary.new == 1
    assert next(s.reason for s in summary.skipped if s.path == "docs/x.md").startswith("same source name")
