"""Per-report quality of the OFFLINE engine (issue 11): does the report answer first, cite the right
sources, stay short, and say "not in the knowledge base" when it is not there?

Per question, ``Researcher(kb, settings=Settings(engine="offline")).run(question)``, then on the report
(``report_metrics.py``):

* **answer first**: the normalised gold answer appears in the Executive summary section (TAT-QA, WTQ and
  FRESH numbers also match numerically, TAT-QA with its scale, as ``research_quality`` does);
* **answer in report**: the same on the rendered Markdown without its Method section;
* **citation precision**: share of the cited documents and tables (a SQL result counts as the tables it
  reads) that hold the answer (HotpotQA/MuSiQue: the supporting paragraphs; TAT-QA: the question's own
  table and paragraphs; WTQ: its table; FRESH: the sources listed with each question); mean over the
  answerable reports that cite anything;
* **words**: body length (every section; no title, question line, References or Method; citation markers
  and table rules left out); median, and median over single-fact questions;
* **abstention**: the summary's first sentence starts "The knowledge base does not contain" / "知识库中没有",
  on unanswerable questions (higher is better) and on answerable ones (**false abstention**).

Sets (``report_sets.py``): HotpotQA and MuSiQue (answerable questions plus held-out ones whose supporting
paragraphs are left out of the corpus), TAT-QA dev (hybrid; questions of contexts left out of the
knowledge base are the unanswerable ones), WikiTableQuestions (tables only) and FRESH (package READMEs and
data files from the venv, ``benchmarks/fresh/``). Each public set is split into dev (tuning) and test
(headline) halves; FRESH is test only. Knowledge bases are cached in ``benchmarks/.cache/report_<set>``
and re-ingested incrementally (unchanged files are skipped by content hash).

    python benchmarks/report_quality.py            # ~250 questions; cached rerun ~10 minutes on 2 cores
    python benchmarks/report_quality.py --quick    # a few questions per set
    # BEFORE baseline on another tree (its code first on sys.path):
    cd /tmp/dossier-base && PYTHONPATH=/tmp/dossier-base python /work/main/benchmarks/report_quality.py \
        --out /work/main/benchmarks/results/report_quality_before.json
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(_BENCH))
if str(_BENCH.parent) not in sys.path:
    # appended, not prepended: a tree named in PYTHONPATH (the BEFORE baseline) keeps precedence, and
    # common.py then finds the repository root already on sys.path
    sys.path.append(str(_BENCH.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import report_sets as sets  # noqa: E402
from common import CACHE, RESULTS, loadavg, log, markdown_table, peak_rss_mb, write_results  # noqa: E402
from report_metrics import aggregate, measure, trivial  # noqa: E402

import agents  # noqa: E402
from dossier.render import render_markdown  # noqa: E402
from dossier.research import Researcher  # noqa: E402
from dossier.settings import Settings  # noqa: E402
from tools.knowledge_base import KnowledgeBase  # noqa: E402

NAME = "report_quality"
BEFORE = RESULTS / f"{NAME}_before.json"
FULL = {"hotpotqa": (48, 20, 2), "musique": (48, 20, 2), "tatqa": (16, 3, 10, 2), "wtq": (50,), "wtq_given": (50,),
        "fresh": (None,)}
QUICK = {"hotpotqa": (6, 3, 2), "musique": (6, 3, 2), "tatqa": (3, 2, 2, 2), "wtq": (6,), "wtq_given": (6,),
         "fresh": (8,)}
BUILDERS = {"hotpotqa": sets.hotpotqa, "musique": sets.musique, "tatqa": sets.tatqa,
            "wtq": sets.wikitablequestions, "wtq_given": sets.wikitablequestions_given, "fresh": sets.fresh}
POOLED_SETS = ("hotpotqa", "musique", "tatqa", "wtq", "fresh")  # wtq_given asks wtq's questions again
TARGETS = [  # (metric, scope, target text, value, higher is better) from issue 11
    ("answer first", "hotpotqa", ">= 60%", 0.60, True), ("answer first", "tatqa", ">= 45%", 0.45, True),
    ("answer first", "wtq", ">= 40%", 0.40, True), ("answer first, strict", "wtq", ">= 40%", 0.40, True),
    ("answer first", "wtq_given", ">= 40%", 0.40, True), ("answer first, strict", "wtq_given", ">= 40%", 0.40, True),
    ("abstention", "pooled", ">= 90%", 0.90, True),
    ("false abstention", "pooled", "<= 10%", 0.10, False), ("citation precision", "pooled", ">= 0.6", 0.6, True),
    ("median words, single-fact", "pooled", "< 600", 600, False),
]
METRIC_KEY = {"answer first": "answer_first", "answer first, strict": "answer_first_strict",
              "abstention": "abstention", "false abstention": "false_abstention",
              "citation precision": "citation_precision", "median words, single-fact": "words_median_single_fact"}


def code_origin() -> dict[str, Any]:
    """Which tree's engine ran: the agents package's folder and its git commit (+ local changes)."""
    root = Path(agents.__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""
    changed = git("status", "--porcelain", "--", "agents", "tools", "dossier").splitlines()
    return {"code_root": str(root), "commit": git("rev-parse", "--short", "HEAD"), "uncommitted_files": len(changed)}


def materialise(data: sets.SetData, root: Path) -> list[Path]:
    """Write the set's files under ``root`` (stale ones removed); the folders to ingest."""
    roots = []
    for sub in ("docs", "tables"):
        files = {k.split("/", 1)[1]: v for k, v in data.files.items() if k.startswith(sub + "/")}
        folder = root / sub
        if not files:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for stale in sorted(set(p.name for p in folder.iterdir()) - set(files)):
            (folder / stale).unlink()
        for name, text in sorted(files.items()):
            path = folder / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
        roots.append(folder)
    return roots


async def run_set(data: sets.SetData, root: Path) -> dict[str, Any]:
    if data.dataset.get("per_question"):
        return await run_per_question(data, root)
    roots = materialise(data, root)
    kb_dir = root / "kb"
    kb = await KnowledgeBase.open(kb_dir, settings=Settings(kb_dir=kb_dir, engine="offline"))
    t0 = time.perf_counter()
    ingest = (await kb.ingest(roots, prune=True)).model_dump(mode="json")  # unchanged files: skipped by hash
    kb_info = {"ingest_s": round(time.perf_counter() - t0, 1), "chunks_added": ingest.get("chunks_added"),
               "tables_new": ingest.get("tables_new"), "skipped": [str(s) for s in ingest.get("skipped", [])][:10],
               "chunks_total": await kb.corpus.count(), "loadavg_after_ingest": loadavg()}
    log(f"{data.name}: knowledge base ready ({kb_info['chunks_total']} chunks, {kb_info['chunks_added']} added "
        f"in {kb_info['ingest_s']} s; skipped {len(kb_info['skipped'])})")
    for suffix in ("", "-wal", "-shm"):  # checkpoints of earlier runs: start from an empty file
        Path(str(kb.path / "runs.sqlite") + suffix).unlink(missing_ok=True)
    researcher = Researcher(kb, settings=Settings(kb_dir=kb.path, engine="offline"))
    await kb.search("warm up the embedder and the indexes", k=10)
    records, started = [], time.perf_counter()
    try:
        for i, q in enumerate(data.questions, 1):
            t1 = time.perf_counter()
            report = await researcher.run(q.question)
            seconds = time.perf_counter() - t1
            rec = {"id": q.qid, "split": q.split, "question": q.question, "unanswerable": q.unanswerable,
                   "answers": q.groups, "gold_units": q.gold_units, "single_fact": q.single_fact,
                   "trivial": trivial(q), **q.meta, **measure(q, report, render_markdown(report)),
                   "seconds": round(seconds, 3), "stop_reason": report.stop_reason}
            records.append(rec)
            if i % 10 == 0 or i == len(data.questions):
                log(f"{data.name}: {i}/{len(data.questions)} reports, {time.perf_counter() - started:.0f} s")
    finally:
        await kb.close()
    summary = {split: aggregate([r for r in records if r["split"] == split]) for split in ("dev", "test")}
    summary["all"] = aggregate(records)
    return {"dataset": data.dataset, "kb": kb_info, "summary": summary,
            "research_wall_s": round(time.perf_counter() - started, 1), "questions": records}


async def run_per_question(data: sets.SetData, root: Path) -> dict[str, Any]:
    """Each question asked of its own knowledge base, which holds only the files ``q.meta['files']`` names."""
    records, started = [], time.perf_counter()
    for i, q in enumerate(data.questions, 1):
        one = sets.SetData(data.name, {k: v for k, v in data.files.items() if k in q.meta["files"]}, [q], data.dataset)
        folder = root / q.qid
        roots = materialise(one, folder)
        kb = await KnowledgeBase.open(folder / "kb", settings=Settings(kb_dir=folder / "kb", engine="offline"))
        try:
            await kb.ingest(roots, prune=True)
            for suffix in ("", "-wal", "-shm"):
                Path(str(kb.path / "runs.sqlite") + suffix).unlink(missing_ok=True)
            t1 = time.perf_counter()
            report = await Researcher(kb, settings=Settings(kb_dir=kb.path, engine="offline")).run(q.question)
            records.append({"id": q.qid, "split": q.split, "question": q.question, "unanswerable": q.unanswerable,
                            "answers": q.groups, "gold_units": q.gold_units, "single_fact": q.single_fact,
                            "trivial": trivial(q), **{k: v for k, v in q.meta.items() if k != "files"},
                            **measure(q, report, render_markdown(report)),
                            "seconds": round(time.perf_counter() - t1, 3), "stop_reason": report.stop_reason})
        finally:
            await kb.close()
        if i % 10 == 0 or i == len(data.questions):
            log(f"{data.name}: {i}/{len(data.questions)} reports, {time.perf_counter() - started:.0f} s")
    summary = {split: aggregate([r for r in records if r["split"] == split]) for split in ("dev", "test")}
    summary["all"] = aggregate(records)
    return {"dataset": data.dataset, "kb": {"per_question": True}, "summary": summary,
            "research_wall_s": round(time.perf_counter() - started, 1), "questions": records}


def pooled(results: dict[str, dict]) -> dict[str, Any]:
    """Test halves of every set pooled (FRESH is all test); wtq_given repeats wtq's questions and stays out."""
    return aggregate([r for name, res in results.items() if name in POOLED_SETS
                      for r in res["questions"] if r["split"] == "test"])


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "" if x is None else fmt.format(x)


def main_table(results: dict[str, dict]) -> str:
    rows = []
    for name, res in results.items():
        for split in ("test", "dev"):
            s = res["summary"][split]
            if not s["n_answerable"] and not s["n_unanswerable"]:
                continue
            rows.append([name, split + (" (headline)" if split == "test" else ""),
                         f"{s['n_answerable']} / {s['n_unanswerable']}", _pct(s["answer_first"]),
                         _pct(s.get("answer_first_strict")),
                         _pct(s["answer_first_non_trivial"]), _pct(s["answer_in_report"]),
                         _num(s["citation_precision"]), _num(s["words_median"], "{:.0f}"),
                         _num(s["words_median_single_fact"], "{:.0f}"), _pct(s["abstention"]),
                         _pct(s["false_abstention"]), _num(s["seconds_mean"])])
    return markdown_table(["set", "split", "n answerable / unanswerable", "answer first", "answer first, strict",
                           "answer first, non-trivial",
                           "answer in report", "citation precision", "median words", "median words single-fact",
                           "abstention", "false abstention", "s/report"], rows, "llrrrrrrrrrrr")


def _target_value(results: dict[str, dict], pool: dict, metric: str, scope: str) -> float | None:
    s = pool if scope == "pooled" else results.get(scope, {}).get("summary", {}).get("test", {})
    return s.get(METRIC_KEY[metric])


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "n/a"
    return _num(v, "{:.0f}") if "words" in metric else _num(v) if "precision" in metric else _pct(v)


def targets_table(results: dict[str, dict], pool: dict, before: dict | None) -> str:
    rows = []
    for metric, scope, text, goal, higher in TARGETS:
        now = _target_value(results, pool, metric, scope)
        met = "" if now is None else ("yes" if (now >= goal if higher else now <= goal) and not (
            "words" in metric and now >= goal) else "no")
        row = [metric, scope + (" test" if scope != "pooled" else " (test halves + fresh)"), text]
        if before is not None:
            b = _target_value(before["results"], before["results"].get("_pooled_test", {}).get("summary", {})
                              .get("test", {}), metric, scope)
            row.append(_fmt(metric, b))
        rows.append([*row, _fmt(metric, now), met])
    headers = ["target (issue 11)", "scope", "target"] + (["before"] if before else []) + ["now", "met"]
    return markdown_table(headers, rows, "lll" + "r" * (len(headers) - 3))


def headline_table(results: dict[str, dict], before: dict | None) -> str:
    """Test halves (FRESH: all), before -> now when a BEFORE file exists."""
    keys = [("answer first", "answer_first", _pct), ("answer first, strict", "answer_first_strict", _pct),
            ("answer in report", "answer_in_report", _pct),
            ("citation precision", "citation_precision", _num),
            ("median words single-fact", "words_median_single_fact", lambda v: _num(v, "{:.0f}")),
            ("abstention", "abstention", _pct), ("false abstention", "false_abstention", _pct)]
    rows = []
    for name, res in results.items():
        s = res["summary"]["test"]
        b = (before or {}).get("results", {}).get(name, {}).get("summary", {}).get("test")
        cells = [f(s.get(k)) if b is None else f"{f(b.get(k)) or '-'} → {f(s.get(k)) or '-'}" for _, k, f in keys]
        rows.append([name, f"{s['n_answerable']} / {s['n_unanswerable']}", *cells])
    return markdown_table(["set (test half)", "n ans / unans", *[k[0] for k in keys]], rows, "lr" + "r" * len(keys))


def load_before(out: Path) -> dict | None:
    if out.resolve() == BEFORE.resolve() or not BEFORE.exists():
        return None
    return json.loads(BEFORE.read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few questions per set (own cache folders)")
    ap.add_argument("--sets", default=",".join(BUILDERS), help="comma-separated subset of " + ",".join(BUILDERS))
    ap.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = ap.parse_args()
    started = time.perf_counter()
    chosen = [s.strip() for s in args.sets.split(",") if s.strip()]
    if unknown := sorted(set(chosen) - set(BUILDERS)):
        ap.error(f"unknown sets: {unknown}")
    origin = code_origin()
    log(f"engine code from {origin['code_root']} (commit {origin['commit']}, "
        f"{origin['uncommitted_files']} changed files)")
    sizes = QUICK if args.quick else FULL
    results: dict[str, dict] = {}
    for name in chosen:
        data = BUILDERS[name](*sizes[name])
        log(f"{name}: {len(data.files)} files, {len(data.questions)} questions")
        # FRESH holds the same material in both modes (quick only asks fewer questions): one cache
        folder = CACHE / (f"report_{name}" + ("_quick" if args.quick and name != "fresh" else ""))
        results[name] = asyncio.run(run_set(data, folder))
    pool = pooled(results)
    before = load_before(args.out)
    table = "\n\n".join([main_table(results), targets_table(results, pool, before)])
    notes = [
        "test = headline half, dev = tuning half: a question goes to dev when the first byte of "
        "sha256('<set>:<key>') is even (key: question id; TAT-QA its context; WTQ its table). FRESH is test only.",
        "answer first = gold answer in the Executive summary; strict = in its first sentence, parentheses left out "
        "(a one-digit gold is not credited to '(1)' or to a later figure); answer in report = in the Markdown "
        "without Method; "
        "non-trivial leaves out yes/no answers and answers written in the question",
        "citation precision = share of cited documents/tables that hold the answer, mean over answerable reports "
        "that cite anything; words = body words without References/Method/citation markers",
        "abstention = summary's first sentence starts 'The knowledge base does not contain' / '知识库中没有'; "
        "unanswerable: HotpotQA/MuSiQue questions whose supporting paragraphs were left out of the corpus, TAT-QA "
        "questions of contexts not in the knowledge base, 5 FRESH questions the material does not answer",
        "restricted corpora: multi-hop = supporting paragraphs of the answerable questions + 2 seeded distractors "
        "per question from its own context; TAT-QA = 16 contexts (3 questions each); WTQ = 50 tables, one "
        "question each, all in one knowledge base (so the table must be found too: the tables carry no titles and "
        "the questions are lower case); WTQ_GIVEN = the same 50 questions, each asked of a knowledge base holding "
        "its own table only, the task as WikiTableQuestions defines it; figures on such small corpora are "
        "flattering for retrieval",
        "caveat: a TAT-QA question asked of other companies' tables can find a same-named line item; abstaining "
        "there is still what the report should do, since the asked company is not in the knowledge base",
        f"engine: {origin['code_root']} at {origin['commit']} ({origin['uncommitted_files']} uncommitted files)",
    ]
    parameters = {"engine": "offline", "quick": args.quick, "sets": chosen, "sizes": {k: sizes[k] for k in chosen},
                  "seed": sets.SEED, "code": origin, "peak_rss_mb": peak_rss_mb()}
    summary = None if args.out.resolve() == BEFORE.resolve() else {
        "title": "Report quality (offline engine, issue 11): test halves" + (", before → now" if before else ""),
        "table": headline_table(results, before) + "\n\n" + targets_table(results, pool, before),
        "columns": {"answer first": "gold answer in the Executive summary",
                    "answer first, strict": "in the summary's first sentence, parentheses left out (so a one-digit "
                                            "gold is not credited to '(1)'); multi-hop answers often need two",
                    "citation precision": "share of cited documents/tables that hold the answer",
                    "abstention / false abstention": "summary opens 'The knowledge base does not contain' on "
                                                     "unanswerable / answerable questions"}}
    results_out = {**results, "_pooled_test": {"summary": {"test": pool}}}
    write_results(NAME, started=started, dataset={k: v["dataset"] for k, v in results.items()},
                  parameters=parameters, results=results_out, table=table, notes=notes, out=args.out,
                  summary=summary)
    print(summary["table"] if summary else table)
    log(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
