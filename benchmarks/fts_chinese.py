"""Full-text tokenizer modes compared on Chinese (CMRC2018) and English (SciFact) retrieval.

Text-only: each BEIR document becomes one chunk in a real ``Corpus`` (so the shipped code path is
what gets measured), searched with ``mode="text"``. Vectors are cheap hash vectors that no query
reads. Writes benchmarks/results/fts_tokenizers.json and prints a Markdown table.

    python benchmarks/fts_chinese.py [--tokenizers jieba icu ngram] [--max-queries N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DATASETS as DATA_ROOT,
)
from common import (
    RESULTS,
    ROOT,
    K,
    load_beir,
    log,
    ndcg_at_k,
    paired,
    recall_at_k,
    to_chunk,
    write_results,
)

from tools.config import KBSettings
from tools.corpus import Corpus
from tools.embeddings import HashEmbedder

DATASETS = {
    "cmrc2018": DATA_ROOT / "cmrc2018/beir/dev",
    "scifact": DATA_ROOT / "scifact",
}
DEFAULT = "jieba"
BATCH = 1000


@dataclass
class Result:
    dataset: str
    tokenizer: str
    docs: int
    queries: int
    ndcg_at_10: float
    recall_at_10: float
    write_s: float  # add_chunks, including jieba segmentation in that mode
    index_s: float  # refresh_indexes (FTS build)
    query_ms_p50: float
    # Paired with the config default (jieba) on the same queries: mean nDCG@10 difference and a
    # bootstrap 95% interval; an interval spanning 0 means the two are not distinguishable here.
    vs_default: dict | None = None


async def run_one(name: str, tokenizer: str, data: tuple, workdir: Path) -> tuple[Result, list[float]]:
    corpus_docs, queries, qrels = data
    settings = KBSettings(kb_dir=workdir / f"{name}-{tokenizer}", embedder="hash", fts_tokenizer=tokenizer)
    embedder = HashEmbedder(dim=8)
    corpus = await Corpus.open(settings.kb_dir, embedder=embedder, settings=settings)
    chunks = [to_chunk(d) for d in corpus_docs.values()]
    t0 = time.perf_counter()
    for i in range(0, len(chunks), BATCH):
        batch = chunks[i : i + BATCH]
        await corpus.add_chunks(batch, embedder.embed_passages([c.chunk_id for c in batch]))
    t1 = time.perf_counter()
    await corpus.refresh_indexes()
    t2 = time.perf_counter()
    ndcgs, recalls, times = [], [], []
    for qid, text in queries.items():
        start = time.perf_counter()
        hits = await corpus.search(text, k=K, mode="text")
        times.append(time.perf_counter() - start)
        ranked = [h.chunk.chunk_id for h in hits]
        ndcgs.append(ndcg_at_k(ranked, qrels[qid]))
        recalls.append(recall_at_k(ranked, qrels[qid]))
    return Result(
        dataset=name, tokenizer=tokenizer, docs=len(chunks), queries=len(queries),
        ndcg_at_10=round(statistics.fmean(ndcgs), 4), recall_at_10=round(statistics.fmean(recalls), 4),
        write_s=round(t1 - t0, 2), index_s=round(t2 - t1, 2),
        query_ms_p50=round(statistics.median(times) * 1000, 2),
    ), ndcgs


def markdown(results: list[Result]) -> str:
    lines = [
        f"| dataset | tokenizer | docs | queries | nDCG@10 | recall@10 | write s | index s | query ms p50 "
        f"| nDCG vs {DEFAULT} (95% CI) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        vs = "" if r.vs_default is None else "{mean_diff:+.4f} [{ci95[0]:+.4f}, {ci95[1]:+.4f}]".format(**r.vs_default)
        lines.append(
            f"| {r.dataset} | {r.tokenizer} | {r.docs} | {r.queries} | {r.ndcg_at_10:.3f} | "
            f"{r.recall_at_10:.3f} | {r.write_s:.1f} | {r.index_s:.1f} | {r.query_ms_p50:.1f} | {vs} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dossier-fts-") as tmp:
        for name in args.datasets:
            corpus_docs, queries, qrels = load_beir(DATASETS[name])
            if args.max_queries:
                queries = dict(list(queries.items())[: args.max_queries])
            per_query: dict[str, list[float]] = {}
            for tokenizer in args.tokenizers:
                result, per_query[tokenizer] = await run_one(name, tokenizer, (corpus_docs, queries, qrels), Path(tmp))
                log(f"{name:9s} {tokenizer:6s} nDCG@10={result.ndcg_at_10:.3f}")
                if DEFAULT in per_query and tokenizer != DEFAULT:
                    result.vs_default = paired(per_query[tokenizer], per_query[DEFAULT])
                results.append(result)
    table = markdown(results)
    write_results(
        "fts_tokenizers", started=started, out=args.out,
        dataset={n: str(DATASETS[n].relative_to(ROOT.parent)) for n in args.datasets},
        parameters={"tokenizers": args.tokenizers, "max_queries": args.max_queries, "k": K,
                    "vectors": "HashEmbedder(dim=8), never read (text mode only)"},
        results=[asdict(r) for r in results], table=table,
        notes=["Text-only search through a real Corpus; one chunk per BEIR document."],
    )
    print(table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--tokenizers", nargs="+", default=["jieba", "icu", "ngram"])
    parser.add_argument("--max-queries", type=int, default=0, help="0: every query with qrels")
    parser.add_argument("--quick", action="store_true", help="first 200 queries per dataset")
    parser.add_argument("--out", type=Path, default=RESULTS / "fts_tokenizers.json")
    args = parser.parse_args()
    if args.quick and not args.max_queries:
        args.max_queries = 200
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
