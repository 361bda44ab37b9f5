"""One entry point for every benchmark: ``python -m benchmarks run [--quick] [--only a,b] [--skip a,b]``.

Each benchmark script runs in its own process (a crash or a leak in one cannot skew the next, and
each records its own peak memory), in the order below, with ``--quick`` passed through. Full runs
write ``benchmarks/results/<name>.json``; quick runs write ``benchmarks/results/quick/<name>.json``
so they never overwrite reference figures. Afterwards ``report.py`` regenerates the results section
of benchmarks/README.md, RESULTS.md and the table in the top-level README.md.

Run it with the interpreter that has the ``bench`` extra (e.g. ``. .venv-bench/bin/activate``):
the peers (bm25s, LangChain, LlamaIndex) are never installed at run time. ``python -m benchmarks
list`` shows the benchmarks; ``report`` only regenerates the tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

# name -> (script, result file stem, what it measures); the order is the run order.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "peers_retrieval": ("peers_retrieval.py", "peers_retrieval",
                        "nDCG@10, recall@10/@100: Dossier vs bm25s, LangChain, LlamaIndex"),
    "peers_ingest": ("peers_ingest.py", "peers_ingest", "ingestion chunks/s and peak memory vs LangChain, LlamaIndex"),
    "ingest_throughput": ("ingest_throughput.py", "ingest_throughput", "Dossier ingest vs the embedder alone"),
    "search_latency": ("search_latency.py", "search_latency", "hybrid search p50/p95, exact vs ANN, ANN recall"),
    "retrieval_quality": ("retrieval_quality.py", "retrieval_quality", "Dossier vector/text/hybrid nDCG@10"),
    "research_quality": ("research_quality.py", "research_quality", "offline research vs single-shot search"),
    "research_concurrency": ("research_concurrency.py", "research_concurrency", "research run time vs concurrency"),
    "report_quality": ("report_quality.py", "report_quality",
                       "per report: answer first, citation precision, words, abstention (issue 11)"),
    "llm_real": ("llm_real.py", "llm_real",
                 "LLM engine on a real llama.cpp server, per step, vs offline (skipped without the server)"),
}


def parse_names(value: str | None) -> list[str]:
    """``a,b`` -> ``["a", "b"]``, rejecting unknown names with the list of known ones."""
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    return names


def selected(only: list[str], skip: list[str]) -> list[str]:
    return [n for n in BENCHMARKS if (not only or n in only) and n not in skip]


def command(name: str, quick: bool) -> list[str] | None:
    """The subprocess command line, or None when the script does not exist (yet)."""
    script = BENCH / BENCHMARKS[name][0]
    if not script.exists():
        return None
    out = (RESULTS / "quick" if quick else RESULTS) / f"{BENCHMARKS[name][1]}.json"
    quick_flag = ["--quick"] if quick else []
    return [sys.executable, str(script.relative_to(ROOT)), *quick_flag, "--out", str(out.relative_to(ROOT))]


def run_one(name: str, quick: bool, timeout: float | None) -> dict:
    cmd = command(name, quick)
    if cmd is None:
        print(f"[bench] {name}: {BENCHMARKS[name][0]} not found, skipped", file=sys.stderr, flush=True)
        return {"name": name, "status": "missing"}
    print(f"[bench] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        # stdout (the script's Markdown table) and stderr (progress) pass straight through
        rc = subprocess.run(cmd, cwd=ROOT, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = time.perf_counter() - started
    status = "ok" if rc == 0 else f"failed ({rc})"
    print(f"[bench] {name}: {status} in {wall:.0f} s", file=sys.stderr, flush=True)
    return {"name": name, "status": status, "wall_s": round(wall, 1)}


def regenerate_report() -> int:
    report = str((BENCH / "report.py").relative_to(ROOT))
    return subprocess.run([sys.executable, report], cwd=ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run the benchmarks, then regenerate the tables")
    run.add_argument("--quick", action="store_true", help="small subsets; results go to results/quick/")
    run.add_argument("--only", help="comma-separated benchmarks to run (default: all)")
    run.add_argument("--skip", help="comma-separated benchmarks to leave out")
    run.add_argument("--timeout", type=float, default=None, help="seconds allowed per benchmark")
    run.add_argument("--no-report", action="store_true", help="do not regenerate the tables")
    sub.add_parser("list", help="list the benchmarks in run order")
    sub.add_parser("report", help="only regenerate the tables from the result files")
    args = parser.parse_args(argv)
    if args.action == "list":
        for name, (script, _, what) in BENCHMARKS.items():
            print(f"{name:22s} {what}" + ("" if (BENCH / script).exists() else "  (script missing)"))
        return 0
    if args.action == "report":
        return regenerate_report()
    names = selected(parse_names(args.only), parse_names(args.skip))
    started = time.perf_counter()
    outcomes = [run_one(n, args.quick, args.timeout) for n in names]
    print(f"[bench] {len(names)} benchmark(s) in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{o['name']} {o['status']}" for o in outcomes), file=sys.stderr, flush=True)
    rc = 0 if args.no_report else regenerate_report()
    failed = [o for o in outcomes if o["status"] not in ("ok", "missing")]
    return 1 if failed or rc else 0


if __name__ == "__main__":
    sys.exit(main())
