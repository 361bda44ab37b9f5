"""Retrieval quality of Dossier against the libraries a team would otherwise assemble, same data and vectors.

nDCG@10, recall@10 and recall@100 for:

- Dossier ``vector`` / ``text`` / ``hybrid``: a real ``KnowledgeBase`` (default settings), built and
  searched exactly as ``retrieval_quality.py`` does (its knowledge bases and embeddings are reused);
- ``bm25s``: the BM25 reference (Lucene variant, k1=1.5, b=0.75; English: lower case, English stop
  words, Snowball stemmer; Chinese: jieba words, as Dossier's own full-text index);
- LangChain ``EnsembleRetriever`` of ``BM25Retriever`` + ``InMemoryVectorStore``, weights 0.5/0.5 (its
  default weighted RRF, c=60); ``BM25Retriever`` gets a jieba/lower-case word tokenizer, since its
  default ``str.split`` cannot split Chinese at all;
- LlamaIndex ``VectorStoreIndex`` (its default in-memory store) alone, and ``QueryFusionRetriever`` of
  that index + ``BM25Retriever`` (llama-index-retrievers-bm25), ``mode="reciprocal_rerank"``,
  ``num_queries=1`` (no query generation, so no LLM: ``Settings.llm`` is the MockLLM).

Every system gets one document = one chunk (no splitter: chunking cannot differ) and the same
e5-small vectors: passage and query vectors come from ``retrieval_quality.VectorCache`` (e5 with
its ``passage: `` / ``query: `` prefixes, computed once and cached in benchmarks/.cache/embeddings/),
wrapped as a LangChain ``Embeddings`` and a LlamaIndex ``BaseEmbedding``. A shared cache is fair for
quality (every system sees bit-identical vectors) but says nothing about speed; see
``peers_ingest.py`` for that. As in Dossier, the title (SciFact only) goes to the BM25 side and the
embedded text is the body alone.

Each system is asked for k=10 (nDCG@10, recall@10) and separately for k=100 (recall@100), since
hybrid retrievers size their candidate lists from k.

Sets (seeded subsets where embedding the full corpus would take hours on 2 cores; every judged
document is always kept, exact sizes land in the result file):

- scifact: 300 BEIR test queries over the 500-document subset ``retrieval_quality.py`` uses
  (``--scifact-docs 0``: all 5,183);
- cmrc2018: all 848 dev paragraphs, a seeded 1,000 of the 3,219 queries (Chinese);
- xquad-r: all 1,190 Chinese questions over the 240 English paragraphs (cross-lingual);
- vaswani: the 93 topics over every judged abstract + seeded distractors, 3,000 of 11,429
  (``--vaswani-docs 0``: all).

    python benchmarks/peers_retrieval.py [--sets scifact cmrc2018 xquad-r vaswani] [--quick]

Needs the ``bench`` extra (``pip install -e '.[bench]'``, e.g. in .venv-bench).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_quality as rq
from common import (
    DATASETS,
    RESULTS,
    Stopwatch,
    latency_summary,
    load_beir,
    load_vaswani,
    loadavg,
    log,
    markdown_table,
    ndcg_at_k,
    paired,
    peak_rss_mb,
    recall_at_k,
    to_chunk,
    write_results,
)
from common import _version as version

from tools.embeddings import E5SmallEmbedder

NAME = "peers_retrieval"
SETS = ("scifact", "cmrc2018", "xquad-r", "vaswani")
DEEP = 100  # depth for recall@100


# -- data ------------------------------------------------------------------------------------

def load_tasks(args: argparse.Namespace) -> list[rq.Task]:
    """The query sets; the SciFact subset and seed match retrieval_quality.py so its caches serve."""
    tasks: list[rq.Task] = []
    nq = args.max_queries
    if "scifact" in args.sets:
        tasks.append(rq.select("scifact", "scifact", load_beir(DATASETS / "scifact"), nq, args.scifact_docs,
                               args.seed, {"corpus": "scifact", "qrels": "scifact/qrels/test.tsv"}))
    if "cmrc2018" in args.sets:
        cq = min(q for q in (args.cmrc_queries, nq) if q) if args.cmrc_queries or nq else 0
        tasks.append(rq.select("cmrc2018", "cmrc2018", load_beir(DATASETS / "cmrc2018/beir/dev"), cq, args.max_docs,
                               args.seed, {"corpus": "cmrc2018/beir/dev", "qrels": "cmrc2018/beir/dev/qrels/test.tsv"}))
    if "xquad-r" in args.sets:
        data = load_beir(DATASETS / "xquad-r/beir/en", queries_from=DATASETS / "xquad-r/beir/zh")
        xq = min(q for q in (args.xquad_queries, nq) if q) if args.xquad_queries or nq else 0
        tasks.append(rq.select("xquad-r zh->en", "xquad-r-en", data, xq, args.max_docs, args.seed,
                               {"corpus": "xquad-r/beir/en", "queries_from": "xquad-r/beir/zh",
                                "qrels": "xquad-r/beir/zh/qrels/test.tsv"}))
    if "vaswani" in args.sets:
        vd = args.vaswani_docs if not args.max_docs else min(d for d in (args.vaswani_docs, args.max_docs) if d)
        tasks.append(rq.select("vaswani", "vaswani", load_vaswani(DATASETS / "vaswani"), nq, vd, args.seed,
                               {"corpus": "vaswani/doc-text.trec", "qrels": "vaswani/qrels"}))
    return tasks


def embed(task: rq.Task, inner: E5SmallEmbedder, batch: int) -> tuple[rq.VectorCache, float]:
    """Fill the task's vector cache (passages and queries); seconds spent this run."""
    cache = rq.VectorCache(task.cache_name, inner)
    with Stopwatch() as sw:
        cache.ensure("passage", [to_chunk(d).text for d in task.corpus.values()], batch)
        cache.ensure("query", list(task.queries.values()), batch)
    return cache, sw.wall


# -- systems ---------------------------------------------------------------------------------

class DossierMode:
    """One search mode of the task's real KnowledgeBase."""

    def __init__(self, kb: Any, mode: str) -> None:
        self.kb, self.mode, self.name = kb, mode, f"Dossier {mode}"

    async def search(self, query: str, k: int) -> list[str]:
        return [h.chunk.chunk_id for h in await self.kb.search(query, k=k, mode=self.mode)]


def build_peer_systems(task: rq.Task, cache: rq.VectorCache, candidates: int) -> tuple[list[Any], float]:
    import peer_retrievers as peers  # the bench extra, imported only here

    ids = sorted(task.corpus)
    chunks = [to_chunk(task.corpus[i]) for i in ids]
    chinese = task.name.startswith("cmrc")  # the only Chinese corpus; XQuAD-R's is English
    with Stopwatch() as sw:
        systems = peers.build_peers(ids, [c.text for c in chunks], [c.title for c in chunks],
                                    peers.VectorLookup(cache), candidates=candidates, chinese=chinese)
    return systems, sw.wall


async def run_system(system: Any, task: rq.Task) -> tuple[dict, list[float]]:
    """nDCG@10 and recall@10 from a k=10 search, recall@100 from a k=100 search; per-query nDCG."""
    ndcgs, r10s, r100s, times = [], [], [], []
    for qid, text in task.queries.items():
        rels = task.qrels[qid]
        t = time.perf_counter()
        top = await _maybe_await(system.search(text, rq.K))
        times.append(time.perf_counter() - t)
        deep = await _maybe_await(system.search(text, DEEP))
        ndcgs.append(ndcg_at_k(top, rels))
        r10s.append(recall_at_k(top, rels))
        r100s.append(recall_at_k(deep, rels, DEEP))
    metrics = {"ndcg_at_10": round(statistics.fmean(ndcgs), 4), "recall_at_10": round(statistics.fmean(r10s), 4),
               "recall_at_100": round(statistics.fmean(r100s), 4), "latency_k10": latency_summary(times)}
    log(f"  {task.name:15s} {system.name:20s} nDCG@10 {metrics['ndcg_at_10']:.3f}  R@10 {metrics['recall_at_10']:.3f}"
        f"  R@100 {metrics['recall_at_100']:.3f}")
    return metrics, ndcgs


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def run_task(task: rq.Task, inner: E5SmallEmbedder, args: argparse.Namespace) -> dict:
    log(f"{task.name}: {len(task.corpus)} docs, {len(task.queries)} queries")
    cache, embed_s = embed(task, inner, args.batch)
    kb, build = await rq.open_kb(task, cache, inner)
    peers, peers_build_s = build_peer_systems(task, cache, args.candidates)
    systems = [DossierMode(kb, m) for m in rq.MODES] + peers
    metrics: dict[str, dict] = {}
    per_query: dict[str, list[float]] = {}
    try:
        for system in systems:
            metrics[system.name], per_query[system.name] = await run_system(system, task)
    finally:
        await kb.close()
    best = max((p.name for p in peers), key=lambda n: metrics[n]["ndcg_at_10"])
    best_hybrid = max(HYBRID_PEERS, key=lambda n: metrics[n]["ndcg_at_10"])
    return {
        "task": task.name, "dataset": task.dataset, "systems": metrics, "best_peer": best,
        "hybrid_vs_best_peer": paired(per_query["Dossier hybrid"], per_query[best]),
        "best_hybrid_peer": best_hybrid,
        "hybrid_vs_best_hybrid_peer": paired(per_query["Dossier hybrid"], per_query[best_hybrid]),
        "hybrid_vs_bm25s": paired(per_query["Dossier hybrid"], per_query["bm25s"]),
        "embedding_this_run_s": round(embed_s, 1), "dossier_kb": build, "peers_build_s": round(peers_build_s, 1),
        "loadavg": loadavg(),
    }


# -- output ----------------------------------------------------------------------------------

HYBRID_PEERS = ("LangChain Ensemble", "LlamaIndex fusion")
SYSTEM_ORDER = ["Dossier hybrid", "Dossier vector", "Dossier text", "bm25s", "LangChain Ensemble",
                "LlamaIndex vector", "LlamaIndex fusion"]


def _ci(p: dict) -> str:
    return "{mean_diff:+.3f} [{ci95[0]:+.3f}, {ci95[1]:+.3f}]".format(**p)


def markdown(results: list[dict]) -> str:
    """Full table: one row per set and system."""
    rows = []
    for r in results:
        d = r["dataset"]
        for name in SYSTEM_ORDER:
            m = r["systems"][name]
            rows.append([r["task"], f"{d['docs']:,}", f"{d['queries']:,}", name, f"{m['ndcg_at_10']:.3f}",
                         f"{m['recall_at_10']:.3f}", f"{m['recall_at_100']:.3f}",
                         f"{m['latency_k10']['p50_ms']:.1f}"])
    table = markdown_table(["set", "docs", "queries", "system", "nDCG@10", "R@10", "R@100", "ms p50 (k=10)"],
                           rows, align="lrrlrrrr")
    diffs = markdown_table(
        ["set", "best peer (nDCG@10)", "Dossier hybrid - best peer (95% CI)", "best hybrid peer",
         "Dossier hybrid - best hybrid peer (95% CI)", "Dossier hybrid - bm25s (95% CI)"],
        [[r["task"], r["best_peer"], _ci(r["hybrid_vs_best_peer"]), r["best_hybrid_peer"],
          _ci(r["hybrid_vs_best_hybrid_peer"]), _ci(r["hybrid_vs_bm25s"])] for r in results],
        align="llrlrr")
    return table + "\n\n" + diffs


def summary(results: list[dict]) -> dict:
    """The compact README table: nDCG@10 per set and system, plus the paired difference."""
    headers = ["set (docs / queries)", *SYSTEM_ORDER, "hybrid - best peer (95% CI)",
               "hybrid - best hybrid peer (95% CI)"]
    rows = [[f"{r['task']} ({r['dataset']['docs']:,} / {r['dataset']['queries']:,})",
             *(f"{r['systems'][n]['ndcg_at_10']:.3f}" for n in SYSTEM_ORDER),
             f"{_ci(r['hybrid_vs_best_peer'])} vs {r['best_peer']}",
             f"{_ci(r['hybrid_vs_best_hybrid_peer'])} vs {r['best_hybrid_peer']}"] for r in results]
    columns = {
        "set (docs / queries)": "data set, with the corpus size and the number of judged queries searched",
        "Dossier hybrid / vector / text": "Dossier's KnowledgeBase.search modes (RRF fusion / e5-small / BM25)",
        "bm25s": "BM25 reference (bm25s, Lucene variant)",
        "LangChain Ensemble": "EnsembleRetriever: BM25Retriever + InMemoryVectorStore, weights 0.5/0.5",
        "LlamaIndex vector / fusion": "VectorStoreIndex alone / QueryFusionRetriever of it + BM25Retriever (RRF)",
        "hybrid - best peer": "paired nDCG@10 difference, Dossier hybrid minus the best peer on that set, "
                              "bootstrap 95% interval (an interval above 0 means hybrid is better)",
        "hybrid - best hybrid peer": "the same against the better of the two hybrid peers "
                                     "(LangChain, LlamaIndex fusion)",
    }
    return {"title": "Retrieval quality against peers: nDCG@10 (higher is better), same e5-small vectors",
            "table": markdown_table(headers, rows, align="l" + "r" * (len(headers) - 1)), "columns": columns}


NOTES = [
    "Same unit for every system: one document = one chunk (no splitter), so chunking cannot differ.",
    "Same vectors for every system: e5-small passage/query vectors computed once (e5 prefixes applied) "
    "and served from a cache through each library's own embedding interface (LangChain Embeddings, "
    "LlamaIndex BaseEmbedding). Fair for quality; says nothing about embedding speed (see peers_ingest).",
    "Titles (SciFact only) reach the BM25 side of every system and are left out of the embedded text.",
    "BM25 tokenization: bm25s and LangChain's BM25Retriever get one tokenizer (lower case; Chinese split by "
    "jieba, as Dossier's own index; other words English-stop-listed and Snowball-stemmed). LangChain's default "
    "str.split cannot split Chinese. LlamaIndex's BM25Retriever only accepts a token regex: its defaults on "
    "English corpora, single CJK characters + words on CMRC2018.",
    "Hybrid peers ask each side for max(k, 50) candidates, as Dossier does, then cut the fused list to k. "
    "LangChain: EnsembleRetriever weights 0.5/0.5 (weighted RRF, c=60). LlamaIndex: QueryFusionRetriever "
    "reciprocal_rerank, num_queries=1, MockLLM (nothing reaches a network). Vector stores: LangChain "
    "InMemoryVectorStore and LlamaIndex's default SimpleVectorStore "
    "(exact cosine, as Dossier below its ANN threshold).",
    "Each system is queried at k=10 (nDCG@10, R@10) and at k=100 (R@100). Latency: k=10, query vector from the cache.",
    "Subsets: every judged document is kept, distractors are a seeded sample; sizes are in 'dataset'. Smaller "
    "corpora flatter every system alike. Vaswani queries are lower-cased (the corpus is all lower case).",
    "Differences: paired mean nDCG@10 difference over the same queries, percentile bootstrap 95% interval; "
    "'best peer' is the peer with the highest mean nDCG@10 on that set; 'best hybrid peer' the better of "
    "LangChain Ensemble and LlamaIndex fusion. Latency is indicative only: a shared 2-core machine (see loadavg).",
]


PEER_DISTS = ("bm25s", "PyStemmer", "jieba", "rank-bm25", "langchain-core", "langchain-classic", "langchain-community",
              "llama-index-core", "llama-index-retrievers-bm25")


def peer_versions() -> dict[str, str | None]:
    return {d: version(d) for d in PEER_DISTS}


async def run(args: argparse.Namespace) -> list[dict]:
    inner = E5SmallEmbedder()
    return [await run_task(task, inner, args) for task in load_tasks(args)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--scifact-docs", type=int, default=500, help="judged + seeded distractors (0: all 5,183)")
    parser.add_argument("--cmrc-queries", type=int, default=1000, help="seeded CMRC2018 query sample (0: all 3,219)")
    parser.add_argument("--xquad-queries", type=int, default=0, help="seeded XQuAD-R zh query sample (0: all 1,190)")
    parser.add_argument("--vaswani-docs", type=int, default=3000, help="judged + seeded distractors (0: all 11,429)")
    parser.add_argument("--max-queries", type=int, default=0, help="cap every query set (seeded sample)")
    parser.add_argument("--max-docs", type=int, default=0, help="cap CMRC2018, XQuAD-R and Vaswani corpora")
    parser.add_argument("--candidates", type=int, default=50, help="per-side candidates of the hybrid peers")
    parser.add_argument("--batch", type=int, default=32, help="texts per e5 call while filling the cache")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true", help="20 queries per set over 40 docs (+ judged ones)")
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    if args.quick:
        args.scifact_docs = args.max_docs = 40
        args.max_queries = 20
    started = time.perf_counter()
    results = asyncio.run(run(args))
    table = markdown(results)
    params = {k: v for k, v in vars(args).items() if k != "out"}
    write_results(
        NAME, started=started, out=args.out, dataset=[r["dataset"] | {"task": r["task"]} for r in results],
        parameters=params | {"k": rq.K, "deep_k": DEEP, "embedder": "e5-small", "peer_versions": peer_versions(),
                             "dossier_settings": "KBSettings defaults (jieba FTS, search_candidates 50, rrf_k 60)"},
        results={"tasks": results, "peak_rss_mb": peak_rss_mb()}, table=table, notes=NOTES,
        summary=summary(results),
    )
    print(table)


if __name__ == "__main__":
    main()
