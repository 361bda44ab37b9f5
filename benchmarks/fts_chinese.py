"""Full-text tokenizer modes compared on Chinese (CMRC2018) and English (SciFact) retrieval.

Text-only: each BEIR document becomes one chunk in a real ``Corpus`` (so the shipped code path is
what gets measured), searched with ``mode="text"``. Vectors are cheap hash vectors that no query
reads. Writes benchmarks/results/fts_tokenizers.json and prints a Markdown table.

    PYTHONPATH=. python benchmarks/fts_chinese.py [--tokenizers jieba icu ngram] [--max-queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.config import KBSettings  # noqa: E402
from tools.corpus import Corpus  # noqa: E402
from tools.embeddings import HashEmbedder  # noqa: E402
from tools.models import Chunk  # noqa: E402
from tools.textlang import detect_language  # noqa: E402

DATASETS = {
    "cmrc2018": ROOT.parent / "shared/datasets/cmrc2018/beir/dev",
    "scifact": ROOT.parent / "shared/datasets/scifact",
}
K = 10
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


def load_beir(folder: Path) -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    def jsonl(name: str) -> list[dict]:
        with open(folder / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    corpus = {d["_id"]: d for d in jsonl("corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels/test.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {q["_id"]: q["text"] for q in jsonl("queries.jsonl") if q["_id"] in qrels}
    return corpus, queries, qrels


def to_chunk(doc: dict) -> Chunk:
    text = doc.get("text", "")
    return Chunk(
        chunk_id=doc["_id"], doc_id=doc["_id"], source=f"{doc['_id']}.txt", title=doc.get("title", ""),
        char_start=0, char_end=len(text), language=detect_language(text), text=text,
        content_hash=doc["_id"], token_count=0,
    )


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int = K) -> float:
    """BEIR/pytrec_eval nDCG: gain = graded relevance, discount log2(rank + 1)."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rels.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int = K) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def paired(a: list[float], b: list[float], *, rounds: int = 2000, seed: int = 0) -> dict:
    """Mean of a - b over the same queries with a percentile-bootstrap 95% interval."""
    rng = random.Random(seed)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    lo, hi = means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]
    return {"mean_diff": round(statistics.fmean(diffs), 4), "ci95": [round(lo, 4), round(hi, 4)]}


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
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dossier-fts-") as tmp:
        for name in args.datasets:
            corpus_docs, queries, qrels = load_beir(DATASETS[name])
            if args.max_queries:
                queries = dict(list(queries.items())[: args.max_queries])
            per_query: dict[str, list[float]] = {}
            for tokenizer in args.tokenizers:
                result, per_query[tokenizer] = await run_one(name, tokenizer, (corpus_docs, queries, qrels), Path(tmp))
                print(f"{name:9s} {tokenizer:6s} nDCG@10={result.ndcg_at_10:.3f}", file=sys.stderr)
                if DEFAULT in per_query and tokenizer != DEFAULT:
                    result.vs_default = paired(per_query[tokenizer], per_query[DEFAULT])
                results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    print(markdown(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--tokenizers", nargs="+", default=["jieba", "icu", "ngram"])
    parser.add_argument("--max-queries", type=int, default=0, help="0: every query with qrels")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fts_tokenizers.json")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
