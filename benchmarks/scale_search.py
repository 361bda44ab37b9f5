"""Single-machine limits, and the projections docs/scaling.md makes from them.

Measured here, fresh: a synthetic corpus of ``--chunks`` (default 50,000; search_latency.py's
generator: 384-dim clustered unit vectors, 60-140 pseudo-words a chunk) written through
``Corpus.add_chunks``, compacted with no old versions kept, then: bytes on disk per chunk (rows;
full-text index), ``refresh_indexes`` time, exact hybrid/vector/text latency, and the same after
``refresh_indexes`` builds IVF_HNSW_SQ (its build time and bytes per vector).

Read from results measured by their own scripts (each figure keeps its source): search_latency.json
(1M chunks: exact and IVF_HNSW_SQ latency, FTS and ANN build times), ingest_ray.json (chunks/s per
core), research_quality.json (offline engine seconds per run), research_concurrency.json (LLM
engine fan-out). Projections to 10M and 100M chunks and 100 analysts are arithmetic on those,
written out with their formula: linear where the work is a scan or a rebuild, measured growth where
it is not. A projection is not a measurement.

    python benchmarks/scale_search.py [--chunks 50000] [--queries 100]
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

from common import CACHE, RESULTS, Stopwatch, loadavg, log, markdown_table, write_results
from search_latency import QueryVectors, Synth, time_modes

from tools.config import KBSettings
from tools.corpus import Corpus

NAME = "scale_search"
WRITE_BATCH = 5_000
SIZES = (1_000_000, 10_000_000, 100_000_000)
ANALYSTS = 100


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def disk(kb_dir: Path) -> dict[str, int]:
    table = kb_dir / "lancedb" / "chunks.lance"
    return {"total": folder_bytes(table), "indices": folder_bytes(table / "_indices")}


def settings(kb_dir: Path, *, ann: bool) -> KBSettings:
    # No old versions kept, so the sizes are one copy of the data, as a long-lived corpus settles to.
    return KBSettings(kb_dir=kb_dir, version_retention_s=0, ann_index_threshold=1_000 if ann else 10**9)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    kb_dir = CACHE / NAME / f"n{args.chunks}"
    shutil.rmtree(kb_dir, ignore_errors=True)
    synth = Synth(args.seed)
    qvecs = synth.queries(args.queries, args.seed)
    embedder = QueryVectors(qvecs)
    with Stopwatch() as gen:
        chunks, vectors = synth.chunks(args.chunks, args.seed)
    log(f"generated {args.chunks} chunks in {gen.wall:.1f}s")
    corpus = await Corpus.open(kb_dir, embedder=embedder, settings=settings(kb_dir, ann=False))
    with Stopwatch() as write:
        for i in range(0, len(chunks), WRITE_BATCH):
            await corpus.add_chunks(chunks[i : i + WRITE_BATCH], vectors[i : i + WRITE_BATCH])
    with Stopwatch() as fts:
        await corpus.refresh_indexes()
    out: dict[str, Any] = {
        "chunks": args.chunks, "write_s": round(write.wall, 2), "write_rows_per_s": round(args.chunks / write.wall),
        "refresh_fts_s": round(fts.wall, 2), "text_bytes_per_chunk": round(np.mean([len(c.text) for c in chunks])),
    }
    out["disk_fts"] = disk(kb_dir)
    log("exact search:")
    out["exact"], _ = await time_modes(corpus, list(qvecs))
    corpus.close()
    corpus = await Corpus.open(kb_dir, embedder=embedder, settings=settings(kb_dir, ann=True))
    with Stopwatch() as ann:
        await corpus.refresh_indexes()
    out["refresh_with_ann_s"] = round(ann.wall, 2)
    out["disk_ann"] = disk(kb_dir)
    log("with IVF_HNSW_SQ:")
    out["ann"], _ = await time_modes(corpus, list(qvecs))
    corpus.close()
    n = args.chunks
    out["bytes_per_chunk"] = round(out["disk_ann"]["total"] / n)
    out["fts_index_bytes_per_chunk"] = round(out["disk_fts"]["indices"] / n)
    out["ann_index_bytes_per_chunk"] = round((out["disk_ann"]["indices"] - out["disk_fts"]["indices"]) / n)
    out["loadavg"] = loadavg()
    return out


def read(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def measured_inputs() -> dict[str, Any]:
    """The figures the projections rest on, each with the result file it was read from."""
    out: dict[str, Any] = {}
    if (sl := read("search_latency")) is not None:
        big = next(s for s in sl["results"]["sizes"] if s["chunks"] == 1_000_000)
        hnsw = big["ann_variants"]["hnsw_sq"]
        exact, ann = big["exact"], hnsw["timings"]
        out["search_1m"] = {
            "source": f"search_latency.json ({sl['finished_at']})",
            "exact_hybrid_p50_ms": exact["hybrid"]["p50_ms"], "exact_vector_p50_ms": exact["vector"]["p50_ms"],
            "exact_text_p50_ms": exact["text"]["p50_ms"], "fts_refresh_s": big["refresh_fts_only_s"],
            "ann_hybrid_p50_ms": ann["hybrid"]["p50_ms"], "ann_hybrid_p95_ms": ann["hybrid"]["p95_ms"],
            "ann_vector_p50_ms": ann["vector"]["p50_ms"], "ann_recall_at_10": ann["recall_at_10"],
            "ann_build_s": hnsw["build_s"], "write_rows_per_s": big["build"]["write_rows_per_s"],
            "peak_rss_mb": big.get("peak_rss_mb"),
        }
    if (ir := read("ingest_ray")) is not None:
        r = ir["results"]
        out["ingest"] = {
            "source": f"ingest_ray.json ({ir['finished_at']})",
            "chunks_per_s_per_core": r["ray_1"]["chunks_per_s"],
            "single_process_chunks_per_s": r["single"]["chunks_per_s"],
            "ray_2_chunks_per_s": r["ray_2"]["chunks_per_s"], "ray_start_s": r["ray_2_start_s"],
        }
    if (rq := read("research_quality")) is not None:
        sets = rq["results"]
        means = {name: r["summary"]["seconds_per_run"]["mean"] for name, r in sets.items()}
        p95 = {name: r["summary"]["seconds_per_run"]["p95"] for name, r in sets.items()}
        out["offline_runs"] = {"source": f"research_quality.json ({rq['finished_at']})", "s_per_run_mean": means,
                               "s_per_run_p95": p95, "s_per_run_mean_max": max(means.values()),
                               "kb_chunks": {name: r["kb"]["total_chunks"] for name, r in sets.items()}}
    if (rc := read("research_concurrency")) is not None:
        out["llm_runs"] = {"source": f"research_concurrency.json ({rc['finished_at']})",
                           "delay_s_per_call": rc["parameters"]["delay_s"], "table": rc["table"]}
    return out


def projections(here: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    s1m, ingest = m.get("search_1m"), m.get("ingest")
    out: dict[str, Any] = {}
    for n in SIZES:
        row: dict[str, Any] = {"disk_gb": round(here["bytes_per_chunk"] * n / 1e9, 1),
                               "ann_index_gb": round(here["ann_index_bytes_per_chunk"] * n / 1e9, 1)}
        if s1m:
            scale = n / 1_000_000
            row["exact_vector_p50_s"] = round(s1m["exact_vector_p50_ms"] * scale / 1000, 1)  # a scan: linear
            row["fts_rebuild_s"] = round(s1m["fts_refresh_s"] * scale)  # refresh_indexes rebuilds it whole
            row["ann_build_s_2_cores"] = round(s1m["ann_build_s"] * scale)  # at least linear
        if ingest:
            row["embed_core_hours"] = round(n / ingest["chunks_per_s_per_core"] / 3600)
        out[str(n)] = row
    if (runs := m.get("offline_runs")) is not None:
        worst = runs["s_per_run_mean_max"]
        out["analysts_100"] = {"offline_cpu_s_for_100_runs": round(ANALYSTS * worst, 1),
                               "offline_runs_per_min_per_core": round(60 / worst, 1)}
    return out


def markdown(here: dict[str, Any], m: dict[str, Any], proj: dict[str, Any]) -> str:
    e, a = here["exact"], here["ann"]
    rows = [
        [f"measured now: {here['chunks']:,} chunks, exact hybrid / vector / text p50 ms",
         f"{e['hybrid']['p50_ms']:.1f} / {e['vector']['p50_ms']:.1f} / {e['text']['p50_ms']:.1f}"],
        ["measured now: same with IVF_HNSW_SQ", f"{a['hybrid']['p50_ms']:.1f} / {a['vector']['p50_ms']:.1f} / "
                                               f"{a['text']['p50_ms']:.1f}"],
        ["measured now: bytes on disk per chunk (FTS index; HNSW_SQ index)",
         f"{here['bytes_per_chunk']:,} ({here['fts_index_bytes_per_chunk']:,}; {here['ann_index_bytes_per_chunk']:,})"],
        ["measured now: write rows/s; FTS refresh s; refresh with ANN build s",
         f"{here['write_rows_per_s']:,}; {here['refresh_fts_s']:.1f}; {here['refresh_with_ann_s']:.1f}"],
    ]
    if s1m := m.get("search_1m"):
        rows += [["1M chunks (search_latency): hybrid p50 exact / IVF_HNSW_SQ ms (recall@10)",
                  f"{s1m['exact_hybrid_p50_ms']:.0f} / {s1m['ann_hybrid_p50_ms']:.0f} ({s1m['ann_recall_at_10']:.3f})"],
                 ["1M chunks: FTS rebuild s; IVF_HNSW_SQ build s (2 cores)",
                  f"{s1m['fts_refresh_s']:.0f}; {s1m['ann_build_s']:.0f}"]]
    if ing := m.get("ingest"):
        rows.append(["ingest chunks/s per core (Ray, 1 CPU, e5-small)", f"{ing['chunks_per_s_per_core']:.2f}"])
    if runs := m.get("offline_runs"):
        rows.append(["offline engine s/run (mean per set; runs/min per core at the slowest)",
                     f"{' / '.join(f'{x:.2f}' for x in runs['s_per_run_mean'].values())} "
                     f"({proj['analysts_100']['offline_runs_per_min_per_core']:.0f})"])
    for n in SIZES:
        p = proj[str(n)]
        what = "measured search and builds, projected sizes" if n == 1_000_000 else "projected"
        rows.append([f"{n:,} chunks ({what}): disk GB; HNSW_SQ index GB; exact vector p50 s; FTS rebuild s; "
                     "ANN build s (2 cores); embedding core-hours",
                     f"{p['disk_gb']}; {p['ann_index_gb']}; {p.get('exact_vector_p50_s')}; {p.get('fts_rebuild_s')}; "
                     f"{p.get('ann_build_s_2_cores')}; {p.get('embed_core_hours')}"])
    return markdown_table(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    started = time.perf_counter()
    here = asyncio.run(measure(args))
    inputs = measured_inputs()
    proj = projections(here, inputs)
    table = markdown(here, inputs, proj)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"synthetic": "search_latency.py's generator", "chunks": args.chunks, "seed": args.seed},
        parameters={"chunks": args.chunks, "queries": args.queries, "seed": args.seed, "write_batch": WRITE_BATCH,
                    "version_retention_s": 0, "projected_sizes": list(SIZES), "analysts": ANALYSTS},
        results={"measured": here, "inputs": inputs, "projections": proj}, table=table,
        notes=[
            "Rows marked 'projected' are arithmetic on measured figures, not measurements: disk and index sizes "
            "scale with the chunk count; an exact vector scan, the FTS rebuild and the ANN build are taken as "
            "linear in it (the ANN build is at least linear, so those are lower bounds).",
            "The 1M-chunk figures are read from search_latency.json (its own run; 1M chunks took ~30 min to "
            "generate, write and index on 2 cores, past this script's budget), the per-core ingest rate from "
            "ingest_ray.json and the offline run times from research_quality.json.",
            "Measured on a shared 2-core machine with background builds running: see loadavg in the results.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
