"""CLI start-up per command against the bare interpreter, in one run on one machine (issue 14 item 5).

Each command is a fresh process, timed wall clock from spawn to exit, several repetitions taken
round-robin (so a burst of load on a shared machine hits every command alike), median and minimum:

* ``python -c pass`` and ``python -c "import duckdb"``: the floor any Python CLI over DuckDB pays;
  and the same with pydantic-settings and rich, which every command of this CLI loads (settings are
  validated, output is drawn) before its own work;
* the floors of this CLI, what a command must load before its own work to behave as it does:
  ``tables``/``sql``: DuckDB's engine (``_duckdb``, without the package's Python layer), the
  validated ``Settings`` (pydantic-settings), the result models (``tools.models``), rich and asyncio;
  ``runs``: the same and LangGraph's checkpoint reader, which the run list is read through;
* ``dossier --help``, ``tables``, ``sql "SELECT 1"``, ``runs`` and ``search`` on the demo
  knowledge base (built once into benchmarks/.cache/, with one offline run for ``runs`` to list).

Target: ``sql``, ``tables`` and ``runs`` under 1.5x the ``import duckdb`` process. ``--before REF``
also times the same commands from ``git archive REF`` (the code before a change), in the same run.
``sql`` includes its guarded worker process (a second interpreter that imports DuckDB).

    python benchmarks/cli_startup.py [--reps 7] [--embedder e5-small] [--before REF] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, ROOT, log, markdown_table, write_results

NAME = "cli_startup"
TARGET = 1.5  # x the `import duckdb` process, for sql, tables and runs
TARGETED = ("tables", "sql", "runs")
CLI_FLOOR = "import _duckdb, asyncio, rich.console, tools.models; from dossier.settings import Settings; Settings()"
BASELINES = {"python -c pass": ["-c", "pass"], 'python -c "import duckdb"': ["-c", "import duckdb"],
             # what any command of this CLI loads before its own work: settings, terminal output, DuckDB
             "floor: import duckdb, pydantic_settings, rich": ["-c", "import duckdb, pydantic_settings, rich.console"],
             # the same as this CLI loads it: the engine alone, the settings built, the result models
             "floor (tables, sql): DuckDB engine, Settings(), models, rich": ["-c", CLI_FLOOR],
             # what `runs` paid before its run index, and still pays for a store the index cannot vouch for
             "floor (runs without its index): the above + LangGraph checkpoints": [
                 "-c", CLI_FLOOR + "; import langgraph.types, langgraph.checkpoint.sqlite.aio"]}


def commands(kb: Path) -> dict[str, list[str]]:
    k = ["--kb", str(kb)]
    return {"--help": ["--help"], "tables": ["tables", *k], "sql": ["sql", "SELECT 1", *k], "runs": ["runs", *k],
            "search": ["search", "budget", *k]}


def clean_env(embedder: str) -> dict[str, str]:
    # Bytecode is written as an installed CLI's is: with PYTHONDONTWRITEBYTECODE (set in some dev
    # shells) every run compiled each changed or uncached module again, which no user pays twice.
    dropped = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_") and k not in dropped}
    env.update(DOSSIER_EMBEDDER=embedder, COLUMNS="100")
    return env


def run_once(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return seconds


def build_kb(kb: Path, env: dict[str, str]) -> None:
    """The demo's documents and tables (incremental: unchanged files are skipped) and one offline run."""
    from dossier.demo import demo_paths

    cli = [sys.executable, "-m", "dossier.cli", "--kb", str(kb)]
    log(f"building {kb} (an unchanged demo is skipped)")
    subprocess.run([*cli, "ingest", *map(str, demo_paths()), "--quiet"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    listed = subprocess.run([*cli, "runs"], env=env, check=True, cwd=ROOT, capture_output=True, text=True).stdout
    if "no runs yet" in listed:
        subprocess.run([*cli, "report", "How much did each LLM project cost?", "--offline", "-q"], env=env,
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def source_at(ref: str) -> Path:
    """The repository at ``ref`` (git archive, read-only on the repository), for the 'before' column."""
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    target = CACHE / NAME / f"src-{commit}"
    if not (target / "dossier" / "cli.py").exists():
        data = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(target, filter="data")
    return target


def measure(cases: dict[str, tuple[list[str], Path]], reps: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv, cwd in cases.values():  # one warm-up each: the page cache, .pyc files
        run_once(argv, cwd=cwd, env=env)
    for rep in range(reps):
        for name, (argv, cwd) in cases.items():
            times[name].append(run_once(argv, cwd=cwd, env=env))
        log(f"repetition {rep + 1}/{reps} done")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--embedder", default="e5-small", help="the knowledge base's embedder (search loads it)")
    parser.add_argument("--before", help="git ref of the code to compare with, e.g. HEAD~1")
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    reps = 3 if args.quick else args.reps
    env = clean_env(args.embedder)
    kb = CACHE / NAME / f"kb-{args.embedder}"
    build_kb(kb, env)

    dossier = [sys.executable, "-m", "dossier.cli"]
    cases = {name: ([sys.executable, *argv], ROOT) for name, argv in BASELINES.items()}
    cases |= {f"dossier {name}": ([*dossier, *argv], ROOT) for name, argv in commands(kb).items()}
    before = source_at(args.before) if args.before else None
    if before:
        cases |= {f"before: dossier {name}": ([*dossier, *argv], before) for name, argv in commands(kb).items()}
    times = measure(cases, reps, env)

    floor = statistics.median(times['python -c "import duckdb"'])
    floor_min = min(times['python -c "import duckdb"'])  # minima: the least disturbed runs of a shared machine
    results, rows = {}, []
    for name, seconds in times.items():
        median = statistics.median(seconds)
        results[name] = {"median_s": round(median, 3), "min_s": round(min(seconds), 3),
                         "x_duckdb": round(median / floor, 2), "x_duckdb_min": round(min(seconds) / floor_min, 2),
                         "runs_s": [round(s, 3) for s in seconds]}
    for name in [n for n in times if not n.startswith("before: ")]:
        r = results[name]
        command = name.removeprefix("dossier ")
        old = results.get(f"before: {name}") if name.startswith("dossier ") else None
        target = (("yes" if r["x_duckdb"] < TARGET else "no") + f" (< {TARGET}x)") if command in TARGETED else ""
        rows.append([f"`{name}`", f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['x_duckdb']:.2f}",
                     f"{r['x_duckdb_min']:.2f}",
                     f"{old['median_s']:.2f}" if old else "", target])
    headers = ["command", "median s", "min s", "x (python + import duckdb)", "x of minima", "before: median s",
               "target met"]
    table = markdown_table(headers, rows, align="lrrrrrl")
    commit = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() if args.before else None
    write_results(
        NAME, started=started, out=args.out,
        dataset={"knowledge_base": f"benchmarks/.cache/{NAME}/kb-{args.embedder}: the bundled demo (docs + tables) "
                                   "and one offline run"},
        parameters={"reps": reps, "embedder": args.embedder, "before": commit, "quick": args.quick,
                    "target_x_duckdb": TARGET},
        results=results, table=table,
        summary={"title": "CLI start-up per command (fresh process, wall clock)", "table": table,
                 "columns": {"median s / min s": f"over {reps} round-robin repetitions, one warm-up each",
                             "x (python + import duckdb)": "median over the median of `python -c \"import duckdb\"`",
                             "x of minima": "fastest run over the fastest `import duckdb` run (less moved by load)",
                             "before: median s": f"the same command from `git archive {commit}`" if commit else
                             "not measured in this run"}},
        notes=[
            "Every command is a fresh `python -m dossier.cli` process against the same knowledge base; stdout and "
            "stderr go to a pipe/null, so no progress display is drawn.",
            "Bytecode (.pyc) is written during the warm-up (PYTHONDONTWRITEBYTECODE is dropped), as for an "
            "installed CLI: results before 2026-12-02 07:30 included compiling the uncached modules on every run.",
            "`sql` includes its guarded worker: a second interpreter that imports DuckDB's engine and runs the "
            "query; the command starts it first, so it loads while the command loads its settings.",
            "The floor rows are what a command loads before its own work to behave as it does (validated "
            "settings, pydantic result models, rich output; LangGraph for `runs`): a command cannot start "
            "faster than its floor without changing those.",
            f"`search` embeds the query with {args.embedder}, so it loads the model: its time is mostly that.",
            "Timings on a shared machine move with other processes; the repetitions are interleaved so that load "
            "hits every command alike.",
        ],
    )
    print(table)


if __name__ == "__main__":
    main()
