"""Ingestion throughput end to end (``KnowledgeBase.ingest``) against the embedder alone.

A folder of N generated Markdown files (headings, paragraphs, the odd list; about two chunks each at
the default 256-token chunks) is written deterministically into benchmarks/.cache/. Then:

1. the default e5-small embedder is loaded and warmed (load time reported separately);
2. ``KnowledgeBase.ingest`` runs on the folder into a fresh knowledge base (parse, chunk, embed,
   LanceDB writes, FTS index) - chunks/s end to end;
3. ``embed_passages`` runs alone on exactly the chunk texts the ingest stored, in the same flush
   batches (tools.ingest.FLUSH_CHUNKS) and the same slices of ``embedding_batch`` - chunks/s;
4. pipeline overhead = (ingest seconds - embedder seconds) / embedder seconds (target < 15%);
5. the unchanged folder is ingested again: seconds, and chunks_embedded must be 0.

The embedder is wrapped (same name, same model) only to time where ingest spends its time; corpus
methods are timed the same way. Peak RSS comes from ``resource.getrusage``.

    python benchmarks/ingest_throughput.py [--files 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import lancedb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    RESULTS,
    Stopwatch,
    loadavg,
    log,
    markdown_table,
    peak_rss_mb,
    stable_hash,
    write_results,
)

from tools.chunking import chunk_document
from tools.config import KBSettings
from tools.embeddings import E5SmallEmbedder
from tools.ingest import FLUSH_CHUNKS
from tools.knowledge_base import KnowledgeBase
from tools.parsing import parse_bytes

NAME = "ingest_throughput"
GENERATOR_VERSION = 1
TARGET_OVERHEAD_PCT = 15.0

# -- document generator ------------------------------------------------------------------------

SUBJECTS = """team platform customer model pipeline service dataset report budget vendor contract
region index cluster workflow pilot project committee supplier warehouse forecast policy audit
network release migration benchmark prototype survey analysis strategy roadmap""".split()
ADJ = """quarterly regional internal external reliable costly critical measurable gradual new
existing shared private public early late larger smaller manual automated secure scalable
multilingual structured incremental annual weekly""".split()
VERBS = """reduced increased reviewed delivered replaced measured approved delayed expanded
documented tested evaluated migrated simplified funded scheduled rejected improved monitored
prioritised""".split()
OBJECTS = """latency|costs|throughput|accuracy|coverage|the backlog|the error rate|storage usage|
response times|onboarding time|the retention rate|support tickets|license fees|the review cycle|
search quality|data freshness|the failure rate""".replace("\n", "").split("|")
CONNECT = """because after although while since unless before whereas""".split()
CLAUSES = """the vendor renewed its contract|the steering group asked for evidence|two regions shared
one cluster|the pilot ran for six weeks|the data was incomplete|costs were tracked monthly|users
reported slower searches|the audit found gaps in logging|the roadmap changed in March|the index was
rebuilt nightly""".replace("\n", " ").split("|")
TOPICS = """Retrieval Infrastructure Procurement Onboarding Compliance Forecasting Operations
Evaluation Security Migration Analytics Support""".split()


def sentence(rng: random.Random) -> str:
    subject = f"the {rng.choice(ADJ)} {rng.choice(SUBJECTS)}"
    body = f"{subject} {rng.choice(VERBS)} {rng.choice(OBJECTS).strip()}"
    if rng.random() < 0.4:
        body += f" by {rng.randint(2, 48)}% in Q{rng.randint(1, 4)} {rng.randint(2021, 2026)}"
    if rng.random() < 0.5:
        body += f" {rng.choice(CONNECT)} {rng.choice(CLAUSES).strip()}"
    return body[0].upper() + body[1:] + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def make_document(rng: random.Random, index: int) -> str:
    """Mostly two sections of ~150-250 e5 tokens: one chunk per section, about 2 chunks a file."""
    topic = rng.choice(TOPICS)
    lines = [f"# {topic} note {index:04d}: {rng.choice(ADJ)} {rng.choice(SUBJECTS)}", ""]
    if rng.random() < 0.2:  # a short lead paragraph under the title is a chunk of its own
        lines += [paragraph(rng, rng.randint(1, 2)), ""]
    sections = rng.choices([1, 2, 3], weights=[1, 8, 1])[0]
    for s in range(sections):
        lines += [f"## {s + 1}. {rng.choice(ADJ).capitalize()} {rng.choice(SUBJECTS)} {rng.choice(VERBS)}", ""]
        for _ in range(2):
            lines += [paragraph(rng, rng.randint(3, 5)), ""]
        if rng.random() < 0.25:
            lines += [f"- {sentence(rng)}" for _ in range(rng.randint(2, 4))] + [""]
    return "\n".join(lines)


def generate_folder(files: int, seed: int) -> Path:
    """Write the corpus once per (files, seed, generator version); a ``.done`` marker makes it reusable."""
    folder = CACHE / NAME / f"docs-{files}-s{seed}-v{GENERATOR_VERSION}" / "notes"
    marker = folder.parent / ".done"
    if marker.exists():
        return folder
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    for i in range(files):
        (folder / f"note_{i:05d}.md").write_text(make_document(rng, i), encoding="utf-8")
    marker.write_text("ok\n")
    return folder


# -- instrumentation -------------------------------------------------------------------------

class Timers:
    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.wall[key] += seconds
            self.calls[key] += 1

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {k: {"seconds": round(v, 3), "calls": self.calls[k]} for k, v in sorted(self.wall.items())}


class TimedEmbedder:
    """The real e5-small embedder with call timers; same ``name`` so the KB record is unchanged.

    ``count_tokens`` time includes waiting for the model lock that ``embed_passages`` holds.
    """

    def __init__(self, inner: E5SmallEmbedder, timers: Timers) -> None:
        self.inner, self.timers = inner, timers
        self.name, self.dim = inner.name, inner.dim

    def embed_passages(self, texts):
        t = time.perf_counter()
        try:
            return self.inner.embed_passages(texts)
        finally:
            self.timers.add("embedder.embed_passages", time.perf_counter() - t)

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def count_tokens(self, text):
        t = time.perf_counter()
        try:
            return self.inner.count_tokens(text)
        finally:
            self.timers.add("embedder.count_tokens", time.perf_counter() - t)


def time_corpus_methods(corpus: Any, timers: Timers) -> None:
    """Shadow a few async Corpus methods on this instance with timed versions (no code change)."""
    for name in ("document_records", "add_chunks", "delete_source", "upsert_documents", "refresh_indexes"):
        original = getattr(corpus, name)

        async def timed(*args, __original=original, __key=f"corpus.{name}", **kwargs):
            t = time.perf_counter()
            try:
                return await __original(*args, **kwargs)
            finally:
                timers.add(__key, time.perf_counter() - t)

        setattr(corpus, name, timed)


def stored_chunks(kb_dir: Path) -> list[tuple[str, int, str]]:
    """(source, char_start, text) of every stored chunk, in ingest (source, position) order."""
    db = lancedb.connect(str(kb_dir / "lancedb"))
    rows = db.open_table("chunks").to_arrow().select(["source", "char_start", "text"]).to_pylist()
    return sorted((r["source"], r["char_start"], r["text"]) for r in rows)


def chunk_folder(folder: Path, settings: KBSettings, embedder: E5SmallEmbedder) -> list[tuple[str, int, str]]:
    """The chunks ingest will make, cut here with the same parse and chunk functions and settings
    (checked against the stored chunks afterwards), so the embedder can run before the ingest too."""
    out = []
    for path in sorted(folder.iterdir()):
        source = f"{folder.name}/{path.name}"
        doc = parse_bytes(path.read_bytes(), suffix=path.suffix, source=source, max_bytes=2**26)
        for c in chunk_document(doc, doc_id="x", chunk_tokens=settings.chunk_tokens,
                                overlap=settings.chunk_overlap, count_tokens=embedder.count_tokens):
            out.append((source, c.char_start, c.text))
    return sorted(out)


def embed_alone(embedder: E5SmallEmbedder, calls: list[list[str]]) -> dict[str, float]:
    with Stopwatch() as sw:
        for texts in calls:
            vectors = embedder.embed_passages(texts)
            assert vectors.shape == (len(texts), embedder.dim) and np.isfinite(vectors).all()
    return {"seconds": round(sw.wall, 2), "cpu_s": round(sw.cpu, 2), "loadavg": loadavg()}


def ingest_batches(chunks: list[tuple[str, int, str]], batch: int) -> list[list[str]]:
    """The embedder calls ingest makes: documents gather until FLUSH_CHUNKS, then slices of ``batch``."""
    calls: list[list[str]] = []
    flush: list[str] = []

    def drain() -> None:
        calls.extend(flush[i : i + batch] for i in range(0, len(flush), batch))
        flush.clear()

    by_source: dict[str, list[str]] = defaultdict(list)
    for source, _, text in chunks:
        by_source[source].append(text)
    for source in sorted(by_source):
        flush.extend(by_source[source])
        if len(flush) >= FLUSH_CHUNKS:
            drain()
    drain()
    return calls


# -- run -------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> dict:
    folder = generate_folder(args.files, args.seed)
    n_bytes = sum(p.stat().st_size for p in folder.iterdir())
    kb_dir = CACHE / NAME / f"kb-{stable_hash(args.files, args.seed, GENERATOR_VERSION)}"
    shutil.rmtree(kb_dir, ignore_errors=True)
    settings = KBSettings(kb_dir=kb_dir)  # defaults: e5-small, 256-token chunks, batch 32, jieba FTS
    out: dict[str, Any] = {"folder_mb": round(n_bytes / 2**20, 2), "loadavg": {"start": loadavg()}}

    inner = E5SmallEmbedder()
    with Stopwatch() as sw:
        inner.embed_passages(["warm up"])
    out["model_load_s"] = round(sw.wall, 2)
    out["rss_mb_after_model_load"] = peak_rss_mb()

    with Stopwatch() as sw:
        planned = chunk_folder(folder, settings, inner)
    out["parse_and_chunk_alone_s"] = round(sw.wall, 2)
    calls = ingest_batches(planned, settings.embedding_batch)
    n_tokens = sum(inner.count_tokens(t) for _, _, t in planned)
    passes = []
    log(f"embedder alone (before ingest): {len(planned)} chunks, {len(calls)} calls ...")
    passes.append(embed_alone(inner, calls))
    log(f"  {passes[-1]['seconds']:.1f}s")

    timers = Timers()
    kb = await KnowledgeBase.open(kb_dir, settings=settings, embedder=TimedEmbedder(inner, timers))
    time_corpus_methods(kb.corpus, timers)
    log(f"ingest {args.files} files ({out['folder_mb']} MB) ...")
    with Stopwatch() as sw:
        first = await kb.ingest([folder])
    chunks = first.chunks_embedded
    out["ingest"] = {
        "seconds": round(sw.wall, 2), "cpu_s": round(sw.cpu, 2), "summary_seconds": first.seconds,
        "files_new": first.new, "skipped": len(first.skipped), "chunks": chunks,
        "chunks_per_file": round(chunks / max(1, first.new), 2),
        "chunks_per_s": round(chunks / sw.wall, 2), "stages": timers.snapshot(), "loadavg": loadavg(),
    }
    out["rss_mb_after_ingest"] = peak_rss_mb()
    log(f"ingest: {chunks} chunks in {sw.wall:.1f}s ({chunks / sw.wall:.2f}/s)")
    stored = stored_chunks(kb_dir)
    out["stored_chunks_match_planned"] = [t for *_, t in stored] == [t for *_, t in planned]
    assert sorted(t for *_, t in stored) == sorted(t for *_, t in planned), "chunking differs from ingest"

    log("embedder alone (after ingest) ...")
    passes.append(embed_alone(inner, calls))
    log(f"  {passes[-1]['seconds']:.1f}s")
    embed_s = round(sum(p["seconds"] for p in passes) / len(passes), 2)
    embed_cpu = sum(p["cpu_s"] for p in passes) / len(passes)
    out["embedder_alone"] = {
        "seconds": embed_s, "cpu_s": round(embed_cpu, 2), "passes": passes, "chunks": len(planned),
        "calls": len(calls), "chunks_per_s": round(len(planned) / embed_s, 2), "tokens": n_tokens,
        "tokens_per_chunk": round(n_tokens / len(planned), 1), "tokens_per_s": round(n_tokens / embed_s, 1),
    }
    ingest_s = out["ingest"]["seconds"]
    out["overhead_pct"] = round(100 * (ingest_s - embed_s) / embed_s, 1)
    out["overhead_pct_range"] = sorted(round(100 * (ingest_s - p["seconds"]) / p["seconds"], 1) for p in passes)
    out["overhead_cpu_pct"] = round(100 * (out["ingest"]["cpu_s"] - embed_cpu) / embed_cpu, 1)
    inside = out["ingest"]["stages"].get("embedder.embed_passages", {}).get("seconds", 0.0)
    # Wall time of the ingest during which no embedding ran: the part of the pipeline that does
    # not overlap the model (parse/chunk before the first batch, writes after the last, indexes).
    out["ingest_wall_outside_embed_s"] = round(ingest_s - inside, 2)
    out["ingest_outside_embed_pct"] = round(100 * (ingest_s - inside) / inside, 1) if inside else None
    # Embedding calls inside the ingest vs the same calls alone: >0 means the model ran slower while
    # the pipeline's other threads (parsing, LanceDB) competed with it for the 2 cores.
    out["embed_inside_vs_alone_pct"] = round(100 * (inside - embed_s) / embed_s, 1)
    out["overhead_target_pct"] = TARGET_OVERHEAD_PCT
    out["overhead_within_target"] = out["overhead_pct"] < TARGET_OVERHEAD_PCT
    log(f"embedder alone: {embed_s:.1f}s; overhead {out['overhead_pct']:+.1f}%")

    reingest_timers = Timers()
    kb.embedder.timers = reingest_timers  # count any embedding the second run does
    time_corpus_methods(kb.corpus, reingest_timers)
    with Stopwatch() as sw:
        second = await kb.ingest([folder])
    out["reingest"] = {
        "seconds": round(sw.wall, 2), "cpu_s": round(sw.cpu, 2), "unchanged": second.unchanged,
        "new": second.new, "changed": second.changed, "chunks_embedded": second.chunks_embedded,
        "chunks_embedded_is_zero": second.chunks_embedded == 0, "stages": reingest_timers.snapshot(),
    }
    await kb.close()
    out["peak_rss_mb"] = peak_rss_mb()
    out["loadavg"]["end"] = loadavg()
    log(f"re-ingest: {sw.wall:.2f}s, chunks_embedded={second.chunks_embedded}")
    return out


def markdown(r: dict, files: int) -> str:
    ing, emb, re_ = r["ingest"], r["embedder_alone"], r["reingest"]
    passes = " / ".join(f"{p['seconds']:.1f}" for p in emb["passes"])
    rows = [
        ["files / chunks / tokens per chunk", f"{files} / {ing['chunks']} / {emb['tokens_per_chunk']}"],
        ["ingest end to end (s)", f"{ing['seconds']:.1f}"],
        ["ingest chunks/s", f"{ing['chunks_per_s']:.2f}"],
        ["embedder alone, same texts and batches (s): mean of before / after",
         f"{emb['seconds']:.1f} ({passes})"],
        ["embedder alone chunks/s (tokens/s)", f"{emb['chunks_per_s']:.2f} ({emb['tokens_per_s']:.0f})"],
        ["pipeline overhead, wall (target < 15%); vs each pass",
         f"{r['overhead_pct']:+.1f}% ({'met' if r['overhead_within_target'] else 'NOT met'}); "
         f"{' / '.join(f'{x:+.1f}%' for x in r['overhead_pct_range'])}"],
        ["pipeline overhead, process CPU", f"{r['overhead_cpu_pct']:+.1f}%"],
        ["time inside embed_passages during ingest (s)", _stage(ing, "embedder.embed_passages")],
        ["  same calls, inside ingest vs alone", f"{r['embed_inside_vs_alone_pct']:+.1f}%"],
        ["ingest wall time with no embedding running (s)",
         f"{r['ingest_wall_outside_embed_s']:.1f} ({r['ingest_outside_embed_pct']:+.1f}% of embedding)"],
        ["time inside count_tokens during ingest (s), vs parse + chunk alone",
         f"{_stage(ing, 'embedder.count_tokens')} vs {r['parse_and_chunk_alone_s']:.1f}"],
        ["time inside add_chunks / refresh_indexes (s)",
         f"{_stage(ing, 'corpus.add_chunks')} / {_stage(ing, 'corpus.refresh_indexes')}"],
        ["re-ingest unchanged folder (s)", f"{re_['seconds']:.2f}"],
        ["re-ingest chunks_embedded (unchanged files)", f"{re_['chunks_embedded']} ({re_['unchanged']})"],
        ["model load (s)", f"{r['model_load_s']:.2f}"],
        ["peak RSS (MB)", f"{r['peak_rss_mb']:.0f}"],
    ]
    return markdown_table(["measure", "value"], rows)


def _stage(part: dict, key: str) -> str:
    stage = part["stages"].get(key)
    return "0" if stage is None else f"{stage['seconds']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="generated Markdown files (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="30 files")
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    if args.quick:
        args.files = min(args.files, 30)
    started = time.perf_counter()
    result = asyncio.run(run(args))
    table = markdown(result, args.files)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"generated_markdown": f"benchmarks/.cache/{NAME}/docs-{args.files}-s{args.seed}-v{GENERATOR_VERSION}",
                 "files": args.files, "seed": args.seed},
        parameters={"files": args.files, "seed": args.seed, "embedder": "e5-small", "embedding_batch": 32,
                    "chunk_tokens": 256, "chunk_overlap": 32, "fts_tokenizer": "jieba",
                    "flush_chunks": FLUSH_CHUNKS, "quick": args.quick,
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
        results=result, table=table,
        notes=[
            "overhead = (ingest wall - embedder-alone wall) / embedder-alone wall, the embedder-alone wall being "
            "the mean of one pass before and one after the ingest, on the same chunk texts (checked against "
            "the stored chunks) in the same flush batches and batch slices as the ingest.",
            "'ingest wall time with no embedding running' is the pipeline's serial cost, unaffected by how fast "
            "the model happens to run; 'inside ingest vs alone' is how much slower the same embedding calls ran "
            "while the pipeline's other threads shared the cores.",
            "Stage seconds are time inside those calls; they overlap (ingest parses the next files while a "
            "batch embeds), and count_tokens includes waiting for the model lock held by embed_passages.",
            "Timings on a shared 2-core machine move with other processes: see loadavg.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
