"""Search latency (hybrid, vector-only, text-only) at 10k and 100k chunks, with and without the ANN index.

Synthetic corpus, written through ``tools.corpus.Corpus.add_chunks`` (no embedding model involved):

- vectors: 384-dim unit vectors clustered around ~100 random centroids (cosine to the centroid
  about 0.8); queries are drawn from the same distribution;
- text: 60-140 words per chunk from a 20,000-word pseudo-word vocabulary with Zipf frequencies,
  a share of each chunk's words from its cluster's own topical words; queries are 2-4 words.

A tiny embedder returns each query's pre-drawn vector from ``embed_query``, so the vector side of
``Corpus.search`` runs unchanged. For each size: the FTS index is built by ``refresh_indexes`` with
``ann_index_threshold`` above the size (exact vector search), 200 queries per mode are timed; then a
second ``Corpus`` with the threshold at its minimum (1000) calls ``refresh_indexes``, which builds
IVF_HNSW_SQ, and the same queries are timed again. recall@10 compares vector-mode top 10 with exact
numpy cosine top 10. Built knowledge bases are cached in benchmarks/.cache/search_latency/.

    python benchmarks/search_latency.py [--sizes 10000 100000] [--queries 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CACHE, RESULTS, Stopwatch, latency_summary, loadavg, log, markdown_table, peak_rss_mb, stable_hash,
    write_results,
)
from tools.config import KBSettings  # noqa: E402
from tools.corpus import Corpus  # noqa: E402
from tools.embeddings import approx_tokens, l2_normalise  # noqa: E402
from tools.models import Chunk  # noqa: E402

NAME = "search_latency"
DATA_VERSION = 1
DIM = 384
CENTROIDS = 100
SPREAD = 0.75  # norm of the noise added to a unit centroid before normalising: cos(v, centroid) ~ 0.8
VOCAB = 20_000
ZIPF_S = 1.1
TOPIC_SHARE = 0.3  # share of a chunk's words drawn from its cluster's topical words
TOPIC_WORDS = 300
STOPWORDS = 50  # the most frequent ranks, left out of queries
WRITE_BATCH = 5_000
WARMUP = 10
K = 10
MODES = ("hybrid", "vector", "text")
NO_ANN_THRESHOLD = 1_000_000_000
ANN_THRESHOLD = 1_000  # the minimum KBSettings allows


class QueryVectors:
    """Embedder whose ``embed_query`` returns the vector drawn for that query text."""

    name = f"synthetic-clustered-{DIM}"
    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed_query(self, text: str) -> np.ndarray:
        return self.table[text]

    def embed_passages(self, texts):  # never called: chunks arrive with their vectors
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


# -- synthetic data --------------------------------------------------------------------------

def vocabulary(rng: np.random.Generator) -> list[str]:
    """Distinct pronounceable pseudo-words (consonant-vowel syllables), shortest for the most frequent."""
    cons, vows = list("bdfgklmnprstvz"), list("aeiou")
    words: dict[str, None] = {}
    while len(words) < VOCAB:
        syllables = 2 + min(3, len(words) * 4 // VOCAB)
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(syllables))
        words.setdefault(w, None)
    return list(words)


def zipf_cdf(n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** ZIPF_S
    return np.cumsum(p / p.sum())


def clustered(rng: np.random.Generator, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    noise = rng.standard_normal((len(labels), DIM)).astype(np.float32) * (SPREAD / np.sqrt(DIM))
    return l2_normalise(centroids[labels] + noise)


class Synth:
    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.words = np.array(vocabulary(rng))
        self.cdf = zipf_cdf(VOCAB)
        self.centroids = l2_normalise(rng.standard_normal((CENTROIDS, DIM)).astype(np.float32))
        # Each cluster's topical words: a random slice of the vocabulary, itself Zipf-weighted.
        self.topics = np.stack([rng.choice(VOCAB, TOPIC_WORDS, replace=False) for _ in range(CENTROIDS)])
        self.topic_cdf = zipf_cdf(TOPIC_WORDS)

    def _ids(self, rng: np.random.Generator, label: int, n: int) -> np.ndarray:
        """Word ranks (0 = most frequent): global Zipf draws, a share replaced by topical words."""
        topical = rng.random(n) < TOPIC_SHARE
        ids = np.searchsorted(self.cdf, rng.random(n))
        ids[topical] = self.topics[label, np.searchsorted(self.topic_cdf, rng.random(int(topical.sum())))]
        return np.minimum(ids, VOCAB - 1)

    def chunks(self, n: int, seed: int) -> tuple[list[Chunk], np.ndarray]:
        rng = np.random.default_rng([seed, n])
        labels = rng.integers(0, CENTROIDS, n)
        vectors = clustered(rng, self.centroids, labels)
        lengths = rng.integers(60, 141, n)
        chunks = []
        for i in range(n):
            text = " ".join(self.words[self._ids(rng, int(labels[i]), int(lengths[i]))].tolist()) + "."
            doc = i // 4  # four chunks a document
            chunks.append(Chunk(
                chunk_id=f"c{i:07d}", doc_id=f"d{doc:06d}", source=f"synthetic/doc_{doc:06d}.md",
                title=f"Document {doc}", char_start=0, char_end=len(text), language="en", text=text,
                content_hash=f"h{i}", token_count=int(lengths[i] * 4 // 3),
            ))
        return chunks, vectors

    def queries(self, n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 7919])
        labels = rng.integers(0, CENTROIDS, 4 * n)
        vectors = clustered(rng, self.centroids, labels)
        out: dict[str, np.ndarray] = {}
        for label, vector in zip(labels, vectors):
            ids = self._ids(rng, int(label), 12)
            words = self.words[ids[ids >= STOPWORDS]].tolist()[: int(rng.integers(2, 5))]
            text = " ".join(words)
            if len(words) >= 2 and text not in out:
                out[text] = vector
            if len(out) == n:
                return out
        raise RuntimeError("could not draw enough distinct queries")


# -- knowledge bases -------------------------------------------------------------------------

def settings_for(kb_dir: Path, threshold: int) -> KBSettings:
    return KBSettings(kb_dir=kb_dir, ann_index_threshold=threshold)  # defaults otherwise (jieba FTS)


async def build(kb_dir: Path, synth: Synth, n: int, seed: int, embedder: QueryVectors) -> dict[str, Any]:
    """Write n synthetic chunks through Corpus.add_chunks; cached by a marker file."""
    marker = kb_dir / "built.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        info["cached"] = True
        return info
    shutil.rmtree(kb_dir, ignore_errors=True)
    with Stopwatch() as gen:
        chunks, vectors = synth.chunks(n, seed)
    log(f"  generated {n} chunks in {gen.wall:.1f}s; writing ...")
    corpus = await Corpus.open(kb_dir, embedder=embedder, settings=settings_for(kb_dir, NO_ANN_THRESHOLD))
    with Stopwatch() as write:
        for i in range(0, n, WRITE_BATCH):
            await corpus.add_chunks(chunks[i : i + WRITE_BATCH], vectors[i : i + WRITE_BATCH])
    corpus.close()
    np.save(kb_dir / "vectors.npy", vectors)
    info = {"chunks": n, "generate_s": round(gen.wall, 2), "write_s": round(write.wall, 2),
            "write_rows_per_s": round(n / write.wall, 1), "write_batch": WRITE_BATCH,
            "mean_words_per_chunk": round(float(np.mean([len(c.text.split()) for c in chunks])), 1)}
    marker.write_text(json.dumps(info, indent=2))
    info["cached"] = False
    return info


async def drop_vector_index(corpus: Corpus) -> bool:
    table = await corpus._table("chunks")  # benchmark-only peek: a cached KB may hold last run's index
    dropped = False
    for idx in await table.list_indices():
        if idx.columns == ["vector"]:
            await table.drop_index(idx.name)
            dropped = True
    return dropped


async def vector_index_type(corpus: Corpus) -> str | None:
    table = await corpus._table("chunks")
    return next((str(i.index_type) for i in await table.list_indices() if i.columns == ["vector"]), None)


async def time_modes(corpus: Corpus, queries: list[str]) -> tuple[dict, list[list[str]]]:
    out: dict[str, dict] = {}
    vector_ids: list[list[str]] = []
    for mode in MODES:
        for q in queries[:WARMUP]:
            await corpus.search(q, k=K, mode=mode)
        times = []
        for q in queries:
            t = time.perf_counter()
            hits = await corpus.search(q, k=K, mode=mode)
            times.append(time.perf_counter() - t)
            if mode == "vector":
                vector_ids.append([h.chunk.chunk_id for h in hits])
        out[mode] = latency_summary(times)
        log(f"    {mode:6s} p50 {out[mode]['p50_ms']:.1f} ms  p95 {out[mode]['p95_ms']:.1f} ms")
    return out, vector_ids


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> list[list[str]]:
    sims = queries @ vectors.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return [[f"c{i:07d}" for i in row[np.argsort(-sims[r, row])]] for r, row in enumerate(top)]


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])), 4)


async def run_size(n: int, synth: Synth, args: argparse.Namespace, qvecs: dict[str, np.ndarray]) -> dict:
    kb_dir = CACHE / NAME / f"n{n}-{stable_hash(n, args.seed, DATA_VERSION, DIM, CENTROIDS, VOCAB)}"
    embedder = QueryVectors(qvecs)
    log(f"size {n}: {kb_dir.name}")
    result: dict[str, Any] = {"chunks": n, "build": await build(kb_dir, synth, n, args.seed, embedder)}
    texts = list(qvecs)
    truth = exact_top(np.load(kb_dir / "vectors.npy"), np.stack([qvecs[t] for t in texts]))

    flat = await Corpus.open(kb_dir, embedder=embedder, settings=settings_for(kb_dir, NO_ANN_THRESHOLD))
    result["dropped_cached_vector_index"] = await drop_vector_index(flat)
    with Stopwatch() as sw:
        await flat.refresh_indexes()  # FTS rebuild + optimize; no vector index below the threshold
    result["refresh_fts_only_s"] = round(sw.wall, 2)
    assert await vector_index_type(flat) is None
    log("  exact vector search (no ANN index):")
    result["exact"], ids = await time_modes(flat, texts)
    result["exact"]["recall_at_10"] = recall(ids, truth)
    flat.close()

    ann = await Corpus.open(kb_dir, embedder=embedder, settings=settings_for(kb_dir, ANN_THRESHOLD))
    with Stopwatch() as sw:
        await ann.refresh_indexes()  # FTS rebuild + IVF_HNSW_SQ build + optimize
    result["refresh_with_ann_build_s"] = round(sw.wall, 2)
    result["ann_build_s_estimate"] = round(sw.wall - result["refresh_fts_only_s"], 2)
    result["vector_index"] = await vector_index_type(ann)
    log(f"  ANN index {result['vector_index']} built: refresh {sw.wall:.1f}s")
    result["ann"], ids = await time_modes(ann, texts)
    result["ann"]["recall_at_10"] = recall(ids, truth)
    ann.close()
    result["peak_rss_mb"] = peak_rss_mb()
    result["loadavg"] = loadavg()
    log(f"  recall@10 exact {result['exact']['recall_at_10']}, ANN {result['ann']['recall_at_10']}")
    return result


def markdown(results: list[dict]) -> str:
    rows = []
    for r in results:
        for index in ("exact", "ann"):
            part = r[index]
            label = "none (exact)" if index == "exact" else (r["vector_index"] or "?").replace("IndexType.", "")
            build = r["refresh_fts_only_s"] if index == "exact" else r["refresh_with_ann_build_s"]
            rows.append([
                f"{r['chunks']:,}", label,
                *(f"{part[m]['p50_ms']:.1f} / {part[m]['p95_ms']:.1f}" for m in MODES),
                f"{part['recall_at_10']:.3f}", f"{build:.1f}",
            ])
    return markdown_table(
        ["chunks", "vector index", *(f"{m} p50 / p95 ms" for m in MODES), "vector recall@10", "refresh_indexes s"],
        rows, align="lrrrrrr",
    )


async def main_async(args: argparse.Namespace) -> list[dict]:
    synth = Synth(args.seed)
    qvecs = synth.queries(args.queries, args.seed)
    return [await run_size(n, synth, args, qvecs) for n in args.sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 chunks, 50 queries")
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries = [2_000, 5_000], min(args.queries, 50)
    if min(args.sizes) < ANN_THRESHOLD:
        parser.error(f"sizes must be at least {ANN_THRESHOLD} (the smallest ann_index_threshold allowed)")
    started = time.perf_counter()
    results = asyncio.run(main_async(args))
    table = markdown(results)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"synthetic": True, "dim": DIM, "centroids": CENTROIDS, "spread": SPREAD, "vocabulary": VOCAB,
                 "zipf_s": ZIPF_S, "topic_share": TOPIC_SHARE, "words_per_chunk": "60-140",
                 "query_words": "2-4, top-50 ranks excluded"},
        parameters={"sizes": args.sizes, "queries": args.queries, "warmup": WARMUP, "k": K, "seed": args.seed,
                    "search_candidates": 50, "refine_factor": 4, "fts_tokenizer": "jieba",
                    "ann_threshold_on": ANN_THRESHOLD, "quick": args.quick},
        results=results, table=table,
        notes=[
            "Latency = one Corpus.search call (query embedding is a dict lookup; hybrid runs both sides "
            "concurrently and fuses), measured sequentially after 10 warm-up queries per mode.",
            "recall@10 = overlap of vector-mode top 10 with exact numpy cosine top 10 over all chunks.",
            "ann_build_s_estimate = refresh_indexes with the ANN build minus the FTS-only refresh.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
