"""Hardening figures (issue 12): hostile SQL through the CLI, and an ingest of a folder of bombs.

1. **Hostile SQL.** Each statement of the growth set that DuckDB's own limits cannot stop (constant
   folding of nested ``replace()``, ``list_reduce`` doubling and tripling, ``approx_quantile`` +
   ``histogram`` over ``range(50M)``, a cross join; ``tests/test_sql_limits.GROWTH`` plus a deeper
   ``replace()`` nest) runs as ``python -m dossier.cli sql`` on a small knowledge base at the default
   limits (``sql_timeout_s`` 10 s, ``sql_memory_limit`` 1 GB). Recorded per statement: wall time of
   the whole command, exit code, the first line of its error, and the peak resident memory of the
   whole process tree (the CLI and its SQL worker, summed) and of the worker alone, sampled every
   10 ms with psutil.
2. **Bomb folder.** ``python -m dossier.cli ingest`` of a folder holding the table and document bombs
   of ``tests/test_table_bombs`` (8 KB SQLite with a ``zeroblob(900000000)`` column, a 10,000-column
   CSV, a 2 MB xlsx of 3M rows, a docx whose zip header lies and inflates to 210 MB, ragged and
   unbalanced-quote CSVs) plus a good table and a good document, at the default table limits with
   the hash embedder (no model load, so the figure is the bombs' cost): wall, peak tree RSS, each
   skipped file's reason, and whether the good table answers and the document is found.

    python benchmarks/hardening.py [--only sql|bombs]

Writes benchmarks/results/hardening.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, log, markdown_table, write_results

from tests.test_sql_limits import GROWTH, _nested_replace
from tests.test_table_bombs import lying_docx, wide_csv, write, xlsx_bytes, zeroblob_sqlite

SQL_CASES = {
    "nested replace() x8": GROWTH[0],
    "nested replace() x12": _nested_replace(12),
    "list_reduce doubling": GROWTH[1],
    "approx_quantile + histogram, range(50M)": GROWTH[2],
    "list_reduce tripling": GROWTH[3],
    "cross join 10^10 rows": GROWTH[4],
}
SAMPLE_S = 0.01


class TreePeak:
    """Peak resident memory of a process and all its descendants (summed), and of its largest child."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak_tree = self.peak_child = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            sizes = []
            for proc in procs:
                try:
                    sizes.append(proc.memory_info().rss)
                except psutil.Error:
                    sizes.append(0)
            self.peak_tree = max(self.peak_tree, sum(sizes))
            self.peak_child = max([self.peak_child, *sizes[1:]])
            self._stop.wait(SAMPLE_S)

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return round(self.peak_tree / 2**20, 1), round(self.peak_child / 2**20, 1)


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    out.update(DOSSIER_EMBEDDER="hash", HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               PYTHONPATH=str(ROOT), COLUMNS="200")
    return out


def dossier(work: Path, *args: str) -> dict:
    """One CLI command, measured; returns wall, exit code, stdout, stderr and peak memory."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dossier.cli", "--kb", "kb", *args], cwd=work,
                            env=env(work / "home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = TreePeak(proc.pid)
    out, err = proc.communicate(timeout=1800)
    tree, child = peak.stop()
    return {"wall_s": round(time.perf_counter() - started, 2), "exit_code": proc.returncode, "stdout": out,
            "stderr": err, "peak_tree_mb": tree, "peak_child_mb": child}


def run_sql(work: Path) -> list[dict]:
    data = work / "sqldata"
    write(data / "sales.csv", "id,region,amount,day\n1,north,10.5,2024-01-05\n2,south,4,2024-02-01\n")
    built = dossier(work, "ingest", str(data), "-q")
    assert built["exit_code"] == 0, built["stderr"]
    baseline = dossier(work, "sql", "SELECT count(*) AS n FROM sales")
    rows = [{"case": "baseline: SELECT count(*) FROM sales", **_sql_row(baseline)}]
    for name, sql in SQL_CASES.items():
        log(f"sql: {name}")
        rows.append({"case": name, "sql_chars": len(sql), **_sql_row(dossier(work, "sql", sql))})
    return rows


def _sql_row(result: dict) -> dict:
    lines = result["stderr"].strip().splitlines()
    return {"wall_s": result["wall_s"], "exit_code": result["exit_code"], "peak_tree_mb": result["peak_tree_mb"],
            "peak_worker_mb": result["peak_child_mb"], "message": lines[-1] if lines else ""}


def run_bombs(work: Path) -> dict:
    root = work / "bombs"
    root.mkdir(parents=True)
    zeroblob_sqlite(root / "parts.sqlite")
    wide_csv(root / "wide.csv", 10_000)
    (root / "rows.xlsx").write_bytes(xlsx_bytes(3_000_000))
    (root / "memo.docx").write_bytes(lying_docx(210))
    write(root / "ragged.csv", "a,b,c\n1,2,3\n4,5\n")
    write(root / "unbalanced.csv", 'name,city\n"Ann,Paris\nBo,Rome\nCy,Oslo\n')
    write(root / "packages.csv", "name,version,license,size_kb\nnumpy,2.1,BSD,9000\nrequests,2.32,Apache,120\n")
    write(root / "notes.md", "# Notes\n\nThe tapir survey is fine.\n")
    sizes = {p.name: p.stat().st_size for p in sorted(root.iterdir())}
    log("bombs: ingest")
    result = dossier(work, "ingest", str(root), "-q", "--json")
    summary = json.loads(result["stdout"]) if result["exit_code"] == 0 else {}
    good_sql = dossier(work, "sql", "SELECT sum(size_kb) AS s FROM packages", "--json")
    found = dossier(work, "search", "tapir", "--mode", "text", "--json")
    return {
        "wall_s": result["wall_s"], "exit_code": result["exit_code"], "peak_tree_mb": result["peak_tree_mb"],
        "file_bytes": sizes,
        "skipped": {s["path"].removeprefix("bombs/"): s["reason"] for s in summary.get("skipped", [])},
        "tables_new": summary.get("tables_new"), "documents_new": summary.get("new"),
        "good_table_answers": good_sql["exit_code"] == 0 and json.loads(good_sql["stdout"])["rows"] == [[9120]],
        "document_found": found["exit_code"] == 0 and "bombs/notes.md" in found["stdout"],
    }


def tables(sql_rows: list[dict], bombs: dict | None) -> str:
    parts = []
    if sql_rows:
        parts.append(markdown_table(
            ["statement (through `dossier sql`)", "wall s", "exit", "peak tree MB", "peak worker MB", "message"],
            [[r["case"], r["wall_s"], r["exit_code"], r["peak_tree_mb"], r["peak_worker_mb"], r["message"][:70]]
             for r in sql_rows], align="lrrrrl"))
    if bombs:
        parts.append(markdown_table(
            ["bomb folder ingest", "wall s", "peak tree MB", "good table answers", "document found"],
            [[f"{len(bombs['file_bytes'])} files ({len(bombs['file_bytes']) - 2} hostile)", bombs["wall_s"],
              bombs["peak_tree_mb"], bombs["good_table_answers"], bombs["document_found"]]], align="lrrll"))
        parts.append(markdown_table(["skipped file", "reason"], sorted(bombs["skipped"].items()), align="ll"))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["sql", "bombs"], help="run one half")
    args = parser.parse_args()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="dossier-hardening-"))
    try:
        for half in ("sql", "bombs"):
            (work / half / "home").mkdir(parents=True)
        sql_rows = run_sql(work / "sql") if args.only in (None, "sql") else []
        bombs = run_bombs(work / "bombs") if args.only in (None, "bombs") else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hostile = [r for r in sql_rows if not r["case"].startswith("baseline")]
    worst = {"wall_s": max((r["wall_s"] for r in hostile), default=None),
             "peak_tree_mb": max((r["peak_tree_mb"] for r in hostile), default=None),
             "peak_worker_mb": max((r["peak_worker_mb"] for r in hostile), default=None)}
    results = {"sql": sql_rows, "sql_worst": worst, "bombs": bombs}
    out = write_results(
        "hardening", started=started, dataset="generated: hostile SQL statements and a folder of table/document bombs",
        parameters={"only": args.only, "sql_timeout_s": 10, "sql_memory_limit": "1GB", "embedder": "hash",
                    "table_limits": "defaults"},
        results=results, table=tables(sql_rows, bombs),
        notes=["Peak memory is the whole process tree (the CLI and its SQL worker), sampled every 10 ms.",
               "Wall times include the CLI's start (imports, about 1-2 s on a loaded 2-core machine)."])
    log(f"wrote {out}")
    log(json.dumps(worst))


if __name__ == "__main__":
    main()
