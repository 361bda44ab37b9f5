"""Does the research graph fan out? Wall clock of a run with a scripted LLM that takes 0.5 s per call.

The LLM engine runs against ``dossier.testing.scripted_chat_model(script, delay_s=0.5)``, answered by a
``dossier.testing.ScriptedAnalyst`` (as tests/test_llm_engine.py wires its analyst) over the
tests' small graph knowledge base (``tests/graph_fixtures.py``: five documents and one table, hash
embedder, so no model is loaded). A subclass of the script plans N sub-questions and outlines one
section per sub-question, so both fan-outs (research branches and section writers) have N parallel jobs.

Per run the scripted model sees 4N + 3 calls: plan 1; per branch 3 (search, SQL, "done"); reflect 1
(every sub-question answered, so one round); outline 1; one writer per section. Calls within a branch
are sequential, so with enough concurrency the critical path is plan + 3 research calls + reflect +
outline + write = 7 calls (3.5 s); with ``llm_concurrency=1`` every call waits for the previous one.

For N in 2, 4, 8 and concurrency 1 vs 8 (``llm_concurrency`` and ``branch_concurrency`` set alike) we
report: LLM calls, wall-clock seconds of ``Researcher.run`` (median of the repeats), the serial bound
(calls x 0.5 s: what a strictly sequential graph would take at least), the ideal (the dependency
critical path at that concurrency, in 0.5 s steps), speed-up = serial bound / wall, overhead = wall -
ideal (the graph's own work: checkpointing, retrieval, SQL, verification), and the scripted model's
peak number of calls in flight.

    python benchmarks/research_concurrency.py            # N = 2, 4, 8; concurrency 1, 8; 3 repeats
    python benchmarks/research_concurrency.py --quick    # 1 repeat

Writes ``benchmarks/results/research_concurrency.json`` and prints a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg, log, markdown_table, write_results

from dossier.research import Researcher
from dossier.testing import ScriptedAnalyst, scripted_chat_model
from tests.graph_fixtures import COSTS_SQL, QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase

NAME = "research_concurrency"
DELAY_S = 0.5
SIZES = (2, 4, 8)
CONCURRENCY = (1, 8)
REPEATS = 3
_SUBJECTS = [
    "What does RAG cost?", "What does fine-tuning cost?", "How many people does RAG need?",
    "How many people does fine-tuning need?", "What are the risks of RAG?", "What happened in the fine-tuning pilot?",
    "What is the 2026 RAG programme budget?", "How do RAG and fine-tuning compare on cost?",
]


@dataclass
class FanOutScript(ScriptedAnalyst):
    """The scripted analyst with an N-sub-question plan and one outline section per sub-question."""

    sql: str | None = COSTS_SQL
    n: int = 2

    def plan(self, question: str) -> dict:
        subs = [{"question": _SUBJECTS[i % len(_SUBJECTS)], "needs": "both", "tables": ["costs"],
                 "queries": [_SUBJECTS[i % len(_SUBJECTS)].rstrip("?")]} for i in range(self.n)]
        return {"rationale": f"{self.n} independent sub-questions", "sub_questions": subs}

    def outline(self, prompt: str) -> dict:
        ids = self.evidence_ids(prompt)
        return {"title": "RAG versus fine-tuning", "sections": [
            {"title": f"Part {i}", "goal": _SUBJECTS[(i - 1) % len(_SUBJECTS)], "sub_question_ids": [f"q{i}"],
             "evidence_ids": ids} for i in range(1, self.n + 1)]}


def expected_calls(n: int) -> int:
    return 1 + 3 * n + 1 + 1 + n


def ideal_seconds(n: int, concurrency: int) -> float:
    """Critical path in 0.5 s steps: branches and writers run in waves of ``concurrency``."""
    waves = math.ceil(n / concurrency)
    if concurrency == 1:
        return expected_calls(n) * DELAY_S
    return (1 + 3 * waves + 1 + 1 + waves) * DELAY_S


async def one_run(kb: KnowledgeBase, n: int, concurrency: int) -> dict[str, Any]:
    script = FanOutScript(n=n)
    model = scripted_chat_model(script, delay_s=DELAY_S)
    settings = kb.settings.model_copy(update={
        "engine": "llm", "llm_concurrency": concurrency, "branch_concurrency": concurrency,
        "max_sub_questions": max(n, 2), "fallback_offline": False,
    })
    researcher = Researcher(kb, settings=settings, chat_models={"fast": model, "strong": model})
    started = time.perf_counter()
    report = await researcher.run(QUESTION)
    wall = time.perf_counter() - started
    assert len(report.plan.sub_questions) == n, report.plan
    assert not report.failures, report.failures
    return {
        "wall_s": wall, "calls": len(model.calls), "usage_calls": report.usage.llm_calls,
        "max_concurrency": model.max_concurrency, "sections": len(report.sections),
        "stop_reason": report.stop_reason, "rounds": report.rounds,
        "stage_timings": {k: round(v, 3) for k, v in report.timings.items()},
        "script_log": {k: script.log.count(k) for k in dict.fromkeys(script.log)},
    }


async def run_all(sizes: list[int], levels: list[int], repeats: int, workdir: Path) -> list[dict[str, Any]]:
    paths = write_corpus(workdir / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(workdir / "kb", engine="llm"))
    await kb.ingest(paths)
    rows = []
    try:
        await one_run(kb, 2, 8)  # warm-up: imports, graph compilation, first checkpoint file
        for n in sizes:
            for c in levels:
                runs = []
                for r in range(repeats):
                    runs.append(await one_run(kb, n, c))
                    log(f"N={n} concurrency={c} repeat {r + 1}: {runs[-1]['wall_s']:.2f} s, "
                        f"{runs[-1]['calls']} calls, peak {runs[-1]['max_concurrency']} in flight")
                walls = [x["wall_s"] for x in runs]
                calls = runs[0]["calls"]
                wall = statistics.median(walls)
                ideal = ideal_seconds(n, c)
                rows.append({
                    "sub_questions": n, "llm_concurrency": c, "branch_concurrency": c, "calls": calls,
                    "calls_expected": expected_calls(n), "wall_s": round(wall, 3),
                    "wall_s_all": [round(w, 3) for w in walls], "serial_bound_s": calls * DELAY_S,
                    "ideal_s": ideal, "speedup_vs_serial_bound": round(calls * DELAY_S / wall, 2),
                    "overhead_s": round(wall - ideal, 3), "max_concurrency": max(x["max_concurrency"] for x in runs),
                    "runs": runs,
                })
    finally:
        await kb.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["sub-questions", "concurrency (llm = branch)", "LLM calls", "wall s", "serial bound s", "speed-up",
         "ideal s", "overhead s", "peak calls in flight"],
        [[r["sub_questions"], r["llm_concurrency"], r["calls"], f"{r['wall_s']:.2f}", f"{r['serial_bound_s']:.1f}",
          f"{r['speedup_vs_serial_bound']:.2f}x", f"{r['ideal_s']:.1f}", f"{r['overhead_s']:.2f}",
          r["max_concurrency"]] for r in rows],
        "rrrrrrrrr",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat per configuration")
    ap.add_argument("--repeats", type=int, default=None, help=f"runs per configuration (default {REPEATS})")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="plan sizes (2..8)")
    ap.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    started = time.perf_counter()
    repeats = args.repeats or (1 if args.quick else REPEATS)
    sizes = [int(x) for x in args.sizes.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    if any(not 2 <= n <= 8 for n in sizes):
        ap.error("plan sizes must be 2..8 (Settings.max_sub_questions)")
    workdir = Path(tempfile.mkdtemp(prefix="dossier-concurrency-"))
    try:
        rows = asyncio.run(run_all(sizes, levels, repeats, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = table(rows)
    notes = [
        f"scripted chat model: every call sleeps {DELAY_S} s (asyncio.sleep) and answers from FanOutScript "
        "(ScriptedAnalyst with an N-sub-question plan and one section per sub-question)",
        "calls = 4N + 3: plan, 3 per research branch (search, SQL, done), reflect (one round: all answered), "
        "outline, N section writers",
        "serial bound = calls x 0.5 s; ideal = dependency critical path at that concurrency; "
        "speed-up = serial bound / wall; overhead = wall - ideal",
        f"wall = median of {repeats} run(s) after one warm-up run; knowledge base: tests/graph_fixtures.py "
        "(hash embedder)",
        "llm_concurrency bounds requests in flight per run (ChatClient semaphore); branch_concurrency is "
        "LangGraph's max_concurrency for the run",
    ]
    parameters = {"delay_s": DELAY_S, "sizes": sizes, "concurrency": levels, "repeats": repeats,
                  "question": QUESTION, "loadavg_before_end": loadavg()}
    out = write_results(NAME, started=started, dataset="tests/graph_fixtures.py (5 documents, table costs)",
                        parameters=parameters, results=rows, table=text, notes=notes, out=args.out)
    print(text)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
