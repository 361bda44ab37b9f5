"""The LanceDB corpus: writes, the three search modes, filters, provenance and the kb.json guard."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from tools.config import KBSettings
from tools.corpus import CHUNKS, Corpus, EmbedderMismatch, TokenizerMismatch
from tools.corpus_rows import glob_sql
from tools.embeddings import E5SmallEmbedder, Embedder, HashEmbedder
from tools.fts import fts_query, fts_text
from tools.models import Chunk, DocRecord

TOKENIZERS = ["jieba", "icu", "ngram"]


def chunk(cid: str, text: str, *, source: str = "docs/a.md", language: str = "zh", page: int | None = None,
          metadata: dict[str, str] | None = None, doc_id: str | None = None) -> Chunk:
    return Chunk(
        chunk_id=cid, doc_id=doc_id or f"doc:{source}", source=source, title="标题 Title", section="S > T",
        page=page, char_start=3, char_end=3 + len(text), language=language, text=text,
        content_hash=f"h{cid}", token_count=len(text) // 2, metadata=metadata or {},
    )


CHUNKS_ZH_EN = [
    chunk("zh1", "我们对预训练模型进行微调，让它适应下游任务。", metadata={"team": "nlp", "year": "2024"}),
    chunk("zh2", "今天的天气很好，适合去公园散步。", source="docs/sub/weather.md"),
    chunk("en1", "Fine-tuning adapts a pretrained model; running evaluations is cheap.", source="notes/x_1.md",
          language="en", page=7, metadata={"team": "o'brien"}),
]


async def open_corpus(kb: Path, *, embedder: Embedder | None = None, **overrides) -> Corpus:
    settings = KBSettings(kb_dir=kb, embedder="hash", **overrides)
    return await Corpus.open(kb, embedder=embedder or HashEmbedder(), settings=settings)


async def add(corpus: Corpus, chunks: list[Chunk]) -> None:
    await corpus.add_chunks(chunks, corpus.embedder.embed_passages([c.text for c in chunks]))


@pytest.fixture
async def corpus(tmp_path: Path) -> Corpus:
    c = await open_corpus(tmp_path / "kb")
    await add(c, CHUNKS_ZH_EN)
    return c


async def test_round_trip_keeps_provenance(corpus: Corpus) -> None:
    hits = await corpus.search("running evaluations", k=3, mode="text")
    assert hits[0].chunk == CHUNKS_ZH_EN[2]  # every field, metadata dict and page included
    zh = await corpus.search("微调", k=1, mode="text")
    assert zh[0].chunk == CHUNKS_ZH_EN[0] and zh[0].chunk.page is None
    assert await corpus.delete_source("docs/a.md") == 1
    assert [h.chunk.chunk_id for h in await corpus.search("微调", k=3, mode="text")] == []
    assert await corpus.count() == 2


async def test_add_is_idempotent(corpus: Corpus) -> None:
    await add(corpus, CHUNKS_ZH_EN)
    await add(corpus, [CHUNKS_ZH_EN[0].model_copy(update={"text": "微调之后的新文本"})])
    assert await corpus.count() == 3
    hits = await corpus.search("新文本", k=1, mode="text")
    assert hits[0].chunk.chunk_id == "zh1" and hits[0].chunk.text == "微调之后的新文本"


async def test_delete_source_can_keep_the_new_version(corpus: Corpus) -> None:
    await add(corpus, [chunk("zh1-v2", "新版本的微调说明", doc_id="doc:v2")])
    assert await corpus.delete_source("docs/a.md", keep_doc_id="doc:v2") == 1
    assert [h.chunk.chunk_id for h in await corpus.search("微调", k=5, mode="text")] == ["zh1-v2"]
    assert await corpus.delete_source("missing.md") == 0


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
async def test_each_mode_ranks_and_scores(corpus: Corpus, mode: str) -> None:
    hits = await corpus.search("pretrained model fine-tuning", k=2, mode=mode)
    assert hits and hits[0].chunk.chunk_id == "en1"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    top = hits[0]
    if mode != "text":
        assert top.vector_score is not None and 0 < top.vector_score <= 1.0 + 1e-6
    if mode != "vector":
        assert top.text_score is not None and top.text_score > 0
    if mode == "hybrid":
        assert top.vector_score is not None and top.text_score is not None
    else:
        assert top.score == (top.vector_score if mode == "vector" else top.text_score)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
async def test_chinese_two_character_word_is_found(tmp_path: Path, tokenizer: str) -> None:
    corpus = await open_corpus(tmp_path / tokenizer, fts_tokenizer=tokenizer)
    await add(corpus, CHUNKS_ZH_EN)
    await corpus.refresh_indexes()
    hits = await corpus.search("微调", k=3, mode="text")
    assert hits[0].chunk.chunk_id == "zh1" and hits[0].text_score > 0
    assert "zh2" not in {h.chunk.chunk_id for h in hits}


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@pytest.mark.parametrize(
    "query", ['"unbalanced', "title:微调", "(a OR b) AND NOT c", "🙂🚀", "?!.,;", "a* b~2 c^3 [x TO y]", "   "],
)
async def test_text_mode_survives_any_query(tmp_path: Path, tokenizer: str, query: str) -> None:
    corpus = await open_corpus(tmp_path / tokenizer, fts_tokenizer=tokenizer)
    await add(corpus, CHUNKS_ZH_EN)
    for mode in ("text", "hybrid"):
        hits = await corpus.search(query, k=3, mode=mode)
        assert all(h.text_score is None or h.text_score > 0 for h in hits)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
async def test_search_on_empty_knowledge_base(tmp_path: Path, mode: str) -> None:
    corpus = await open_corpus(tmp_path / "kb")
    assert await corpus.search("anything 微调", k=5, mode=mode) == []
    assert await corpus.count() == 0 and await corpus.version() == 0
    assert await corpus.languages() == {}
    await corpus.refresh_indexes()  # nothing to index is not an error
    assert not (tmp_path / "kb" / "kb.json").exists()


async def test_source_glob_filters(corpus: Corpus) -> None:
    async def found(glob: str, mode: str = "hybrid") -> set[str]:
        return {h.chunk.chunk_id for h in await corpus.search("微调 天气 model", k=10, mode=mode, source_glob=glob)}

    assert await found("docs/*") == {"zh1", "zh2"}
    assert await found("docs/sub/*.md", "text") == {"zh2"}
    assert await found("notes/x_?.md", "vector") == {"en1"}
    assert await found("notes/x%1.md") == set()  # % and _ are literal in a glob
    assert await found("docs/[!s]*") == {"zh1"}
    assert await found("nowhere/*") == set()
    assert "ESCAPE" in glob_sql("a_b*")


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
async def test_metadata_filters(corpus: Corpus, mode: str) -> None:
    async def found(where: dict[str, str]) -> set[str]:
        return {h.chunk.chunk_id for h in await corpus.search("微调 model", k=10, mode=mode, where=where)}

    assert await found({"team": "nlp"}) == {"zh1"}
    assert await found({"team": "o'brien"}) == {"en1"}  # quotes are escaped, not injected
    assert await found({"team": "nlp", "year": "2024"}) == {"zh1"}
    assert await found({"team": "nlp", "year": "1999"}) == set()


async def test_kb_json_records_the_builder(corpus: Corpus) -> None:
    record = json.loads((corpus.kb_dir / "kb.json").read_text())
    assert record == {"embedder": "hash-256", "dim": 256, "fts_tokenizer": "jieba"}


async def test_embedder_mismatch_is_refused(corpus: Corpus) -> None:
    with pytest.raises(EmbedderMismatch) as info:
        await open_corpus(corpus.kb_dir, embedder=HashEmbedder(dim=64))
    assert str(info.value) == (
        "this knowledge base was built with hash-256 (dim 256); the configured embedder is hash-64 "
        "(dim 64). Re-ingest into a new --kb folder or set DOSSIER_EMBEDDER=hash."
    )
    with pytest.raises(EmbedderMismatch, match=r"built with hash-256 .* e5-small .* DOSSIER_EMBEDDER=hash"):
        await open_corpus(corpus.kb_dir, embedder=E5SmallEmbedder())
    with pytest.raises(TokenizerMismatch, match="DOSSIER_FTS_TOKENIZER=jieba"):
        await open_corpus(corpus.kb_dir, fts_tokenizer="icu")
    same = await open_corpus(corpus.kb_dir)
    assert await same.count() == 3


async def test_vectors_of_another_width_are_refused(tmp_path: Path) -> None:
    corpus = await open_corpus(tmp_path / "kb")
    await add(corpus, CHUNKS_ZH_EN[:1])
    with pytest.raises(EmbedderMismatch):
        await corpus.add_chunks(CHUNKS_ZH_EN[1:2], np.ones((1, 8), dtype=np.float32))


async def test_manifest_round_trip(tmp_path: Path) -> None:
    corpus = await open_corpus(tmp_path / "kb")
    assert await corpus.document_records() == {}
    rec = DocRecord(source="docs/a.md", doc_id="d1", content_hash="abc", size=10, mtime_ns=1_700_000_000_000_000_000,
                    title="A", language="zh", n_chunks=3, ingested_at="2026-01-01T00:00:00+00:00")
    other = rec.model_copy(update={"source": "docs/b.md", "doc_id": "d2"})
    await corpus.upsert_documents([rec])
    await corpus.upsert_documents([rec.model_copy(update={"content_hash": "def", "n_chunks": 4}), other])
    records = await corpus.document_records()
    assert records == {"docs/a.md": rec.model_copy(update={"content_hash": "def", "n_chunks": 4}), "docs/b.md": other}
    await corpus.delete_document("docs/a.md")
    assert list(await corpus.document_records()) == ["docs/b.md"]


async def test_version_increases_after_writes(tmp_path: Path) -> None:
    corpus = await open_corpus(tmp_path / "kb")
    await add(corpus, CHUNKS_ZH_EN[:1])
    v1 = await corpus.version()
    await add(corpus, CHUNKS_ZH_EN[1:])
    v2 = await corpus.version()
    await corpus.delete_source("docs/a.md")
    assert 0 < v1 < v2 < await corpus.version()


async def test_fts_index_is_refreshed_after_a_second_add(corpus: Corpus) -> None:
    await corpus.refresh_indexes()
    await add(corpus, [chunk("zh3", "量子计算的最新进展", source="docs/q.md")])
    # Rows written since the last refresh are already searchable (LanceDB scans them flat)...
    assert (await corpus.search("量子计算", k=1, mode="text"))[0].chunk.chunk_id == "zh3"
    await corpus.refresh_indexes()
    table = await corpus._table(CHUNKS)
    stats = await table.index_stats("fts_idx")
    assert stats.num_unindexed_rows == 0 and stats.num_indexed_rows == 4  # ...and now indexed
    assert (await corpus.search("量子计算", k=1, mode="text"))[0].chunk.chunk_id == "zh3"


async def test_languages_are_shares_and_follow_writes(corpus: Corpus) -> None:
    assert await corpus.languages() == pytest.approx({"zh": 2 / 3, "en": 1 / 3})
    await corpus.delete_source("notes/x_1.md")
    assert await corpus.languages() == {"zh": 1.0}


async def test_ann_index_past_threshold_keeps_recall_and_similarities(tmp_path: Path) -> None:
    corpus = await open_corpus(tmp_path / "kb", ann_index_threshold=1000)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta"]
    texts = [f"{words[i % 10]} {words[(i // 10) % 10]} {words[(i // 100) % 10]} item{i}" for i in range(1000)]
    await add(corpus, [chunk(f"c{i}", t, source=f"s/{i}.md", language="en") for i, t in enumerate(texts)])
    await corpus.refresh_indexes()
    table = await corpus._table(CHUNKS)
    assert any(idx.index_type == "IvfHnswSq" for idx in await table.list_indices())
    queries = [texts[i] for i in range(0, 1000, 97)]
    recalls = []
    for q in queries:
        ann = await corpus.search(q, k=10, mode="vector")
        exact = corpus.embedder.embed_passages(texts) @ corpus.embedder.embed_query(q)
        tenth = np.sort(exact)[-10]  # tie-aware: any hit as close as the 10th neighbour counts
        recalls.append(sum(exact[int(h.chunk.chunk_id[1:])] >= tenth - 1e-5 for h in ann) / 10)
        assert ann[0].vector_score == pytest.approx(1.0, abs=1e-3)  # exact cosine, not SQ's squared L2
    assert np.mean(recalls) >= 0.9


async def test_reads_during_writes_see_consistent_results(tmp_path: Path) -> None:
    corpus = await open_corpus(tmp_path / "kb")
    await add(corpus, CHUNKS_ZH_EN)
    more = [chunk(f"n{i}", f"新的段落 {i} 讨论微调", source=f"docs/n{i}.md") for i in range(20)]
    writes = [add(corpus, more[i : i + 5]) for i in range(0, 20, 5)]
    reads = [corpus.search("微调", k=30, mode=m) for m in ("hybrid", "text", "vector") for _ in range(3)]
    results = await asyncio.gather(*writes, *reads)
    for hits in results[len(writes):]:
        assert hits and len({h.chunk.chunk_id for h in hits}) == len(hits)
    assert await corpus.count() == 23


def test_fts_text_segments_chinese_and_lowercases_latin() -> None:
    assert {"我们", "模型", "进行", "微调"} <= set(fts_text("我们对模型进行微调").split())
    assert fts_text("ＧＰＴ-4 Fine-Tuning") == "gpt-4 fine-tuning"  # full-width folded, case folded
    assert set(fts_text("中华人民共和国").split()) >= {"中华", "人民", "共和国", "中华人民共和国"}


def test_fts_query_neutralises_syntax() -> None:
    assert fts_query('"微调" AND (title:GPT-4)') == "微调 and title gpt 4"
    assert fts_query("🙂 ?!") == ""


async def test_chinese_query_finds_english_passage_with_e5(tmp_path: Path) -> None:
    """Cross-lingual: BM25 cannot match, so the hybrid result rests on the multilingual vectors."""
    corpus = await open_corpus(tmp_path / "kb", embedder=E5SmallEmbedder())
    passages = [
        chunk("e1", "Fine-tuning adapts a pretrained language model to a specific downstream task.", language="en"),
        chunk("e2", "The Eiffel Tower in Paris was completed in 1889.", language="en"),
        chunk("e3", "Photosynthesis converts sunlight, water and carbon dioxide into sugar.", language="en"),
        chunk("e4", "Interest rates rose sharply as the central bank fought inflation.", language="en"),
    ]
    await add(corpus, passages)
    cases = [("如何微调预训练语言模型？", "e1"), ("埃菲尔铁塔是哪一年建成的", "e2"), ("植物如何利用阳光制造糖", "e3")]
    for query, expected in cases:
        assert (await corpus.search(query, k=2, mode="vector"))[0].chunk.chunk_id == expected
        assert (await corpus.search(query, k=2, mode="hybrid"))[0].chunk.chunk_id == expected
