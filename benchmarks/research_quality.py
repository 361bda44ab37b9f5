"""Research quality of the OFFLINE engine end to end (plan → research → reflect → outline → write → verify).

Data sets (read-only, from ``../shared/datasets``):

* **HotpotQA 100** (``multihop/hotpotqa_100*.json``) and **MuSiQue 100** (``multihop/musique_100a*.json``,
  the half of the 2x100 that ships with a corpus): one Markdown document per article / paragraph
  (``# title`` then the text) generated into ``benchmarks/.cache/<set>/docs/`` and ingested into
  ``benchmarks/.cache/<set>/kb`` with the default e5-small embedder. The knowledge base is cached: a
  fingerprint of the generated documents is stored next to it and a rerun with the same documents
  skips ingestion. The whole corpora are ingested (994 + 1,890 passages, 3,107 chunks): on this 2-core
  machine, shared with other jobs, e5-small embedded 2.7-3.6 chunks/s, so the cold run takes about
  20 minutes (16 of them embedding) and a cached rerun about 4. Where that is too slow,
  ``--distractors-per-question D`` restricts each corpus to the union, over all 100 questions of the set,
  of every supporting paragraph plus a seeded sample of D of that question's own context distractors
  (the hard negatives the data set gives each question); it is cached separately
  (``benchmarks/.cache/<set>_d<D>/``) and recorded in the JSON. Restricting inflates every figure: with
  D=4 (598 + 623 documents) recall and containment rose by 3-11 points over the full corpora.
* **TAT-QA dev**, the first 50 contexts (``tatqa/tatqa_dataset_dev.json``): every paragraph is a
  document (``docs/ctx_<n>_p<order>.md``), every context's table a CSV (``tables/ctx_<n>.csv``: the table
  JSON is a list of rows; the first row becomes the header with unique, safe column names) imported
  into DuckDB as table ``ctx_<n>``. The questions of those contexts (300) are capped at 150, a seeded
  sample kept in data-set order.

Per question, ``Researcher(kb, settings=Settings(engine="offline", ...)).run(question)``, then:

* **evidence recall** (multi-hop): the share of the question's gold supporting paragraphs (HotpotQA:
  the titles in ``supporting_facts``; MuSiQue: the paragraphs flagged ``is_supporting``, mapped to
  their generated files) whose file appears among the report's *cited* evidence (references), and
  separately among *all gathered* evidence; "all gold" = every supporting paragraph present.
* **answer containment**: the normalised gold answer (lowercase, punctuation removed, whitespace
  collapsed; MuSiQue aliases count too) appears as whole words in the rendered Markdown report
  *without its Method section* (which holds run metadata - timings, counts, the plan). Because the
  report repeats the question (title, question line, section headings), answers already written in the
  question (HotpotQA comparison questions: "Which is older, A or B?") are contained trivially, and yes/no
  answers almost never are (an extractive report does not say "yes"); "non-trivial" repeats the figure on
  the other questions only. MuSiQue aliases of one or two characters ("NO" for Norway) are ignored.
  TAT-QA: a numeric gold (arithmetic / count answers, and spans that are a number such as "$1,496.5",
  "13.0%") also matches when any number in the report equals it after removing currency signs,
  commas and percent signs, ignoring the sign (financial statements write negatives in parentheses),
  within half a unit of the gold's last decimal place, either as written or after applying the scale
  words on both sides (gold ``scale`` field; "million" etc. after the report's number). A multi-span
  gold needs every span.
* **cites SQL** (TAT-QA): the share of reports that cite at least one SQL result (and one on the
  question's own table).
* **time per run**: wall-clock seconds of ``Researcher.run`` (mean, p50, p95).

Single-shot baseline on the same knowledge base: one ``kb.search(question, k=10)`` (hybrid), and
the offline writer's extractive answer to the question from those 10 passages alone
(``agents.offline.write.extractive_answer``: the same sentence selection and citations a report
section gets). "recall cited" counts the passages that answer cites, "recall gathered" the 10
retrieved. This is the ablation of planning, several searches per sub-question and reflection.
The row "top-10 passages, whole text" is an upper bound, not a method: the answer containment of
the 10 passages concatenated, as if a reader read them all.

    python benchmarks/research_quality.py            # full: 100 + 100 + 150 questions
    python benchmarks/research_quality.py --quick    # 10 questions per set, on their own paragraphs

Writes ``benchmarks/results/research_quality.json`` and prints Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    DATASETS,
    RESULTS,
    loadavg,
    log,
    markdown_table,
    peak_rss_mb,
    percentile,
    write_results,
)

from agents.offline.write import extractive_answer
from dossier.render import render_markdown
from dossier.research import Researcher
from dossier.settings import Settings
from tools.evidence import evidence_from_hit
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Report

NAME = "research_quality"
MULTIHOP = DATASETS / "multihop"
TATQA = DATASETS / "tatqa"
BASELINE_K = 10
SEED = 0
TATQA_CONTEXTS = 50
TATQA_MAX_QUESTIONS = 150
QUICK_N = 10
QUICK_TATQA_CONTEXTS = 5
CACHE_MARKER = "bench_corpus.json"  # next to the knowledge base: fingerprint of what was ingested


# -- text normalisation and matching ------------------------------------------------------------

def normalise(text: str) -> str:
    """Lowercase, punctuation (every Unicode P* character) and symbols like $ removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if not unicodedata.category(ch).startswith(("P", "S")))
    return " ".join(text.split())


def contains(haystack_norm: str, answer: str) -> bool:
    """Whole-word containment of a normalised answer in an already normalised text."""
    needle = normalise(answer)
    return bool(needle) and f" {needle} " in f" {haystack_norm} "


def strip_method(markdown: str) -> str:
    """The rendered report without its trailing Method section (run metadata, timings, the plan)."""
    cut = markdown.rfind("\n## Method\n")
    return markdown[:cut] if cut >= 0 else markdown


_NUM_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d])")
_SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "millions": 1e6, "billion": 1e9, "billions": 1e9, "bn": 1e9,
                "m": 1e6, "k": 1e3}
_GOLD_SCALE = {"": 1.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "percent": 1.0}
_AFTER_RE = re.compile(r"\s*(%|[a-z]+)?", re.IGNORECASE)


def report_numbers(text: str) -> list[tuple[float, float]]:
    """(value as written, multiplier of a scale word right after it) for every number in the text."""
    out = []
    for m in _NUM_RE.finditer(text):
        value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
        after = _AFTER_RE.match(text, m.end())
        word = (after.group(1) or "").lower() if after else ""
        out.append((value, _SCALE_WORDS.get(word, 1.0)))
    return out


def gold_number(answer: Any) -> tuple[float, int] | None:
    """(absolute value, decimals written) when the gold is a number ("$1,496.5", "(9.8)", "13.0%", -12.6)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, float)):
        text = repr(float(answer)) if isinstance(answer, float) else str(answer)
    else:
        text = str(answer).strip()
        text = re.sub(r"(?i)\b(thousand|million|billion|percent)\b", "", text)
        text = re.sub(r"[\s$€£¥%()]", "", text).lstrip("-")
        if not re.fullmatch(r"(\d{1,3}(,\d{3})+|\d+)(\.\d+)?", text):
            return None
    text = text.replace(",", "").lstrip("-")
    if "e" in text.lower():
        return abs(float(text)), 4
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    if text.endswith(".0"):
        decimals = 1
    return abs(float(text)), min(decimals, 4)


def numeric_match(gold: tuple[float, int], scale: str, numbers: list[tuple[float, float]]) -> bool:
    value, decimals = gold
    tol = 0.5 * 10 ** (-decimals) + 1e-9
    gold_mult = _GOLD_SCALE.get(scale or "", 1.0)
    for written, mult in numbers:
        if abs(written - value) <= tol:
            return True
        if mult != 1.0 and abs(written * mult - value * gold_mult) <= tol * gold_mult:
            return True
    return False


# -- data sets -------------------------------------------------------------------------------------

@dataclass
class Question:
    qid: str
    question: str
    answers: list[str]  # the answer and its aliases (multi-hop); the spans (TAT-QA)
    gold_sources: list[str] = field(default_factory=list)  # generated files of the supporting paragraphs
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    name: str
    docs: dict[str, str]  # file name -> Markdown text
    tables: dict[str, list[list[str]]]  # file name -> CSV rows (header first)
    questions: list[Question]
    dataset: dict[str, Any]


def _slug(text: str, limit: int = 40, empty: str = "doc") -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_.lower()).strip("_")[:limit].strip("_") or empty


def _sample_distractors(candidates: list[str], gold: set[str], d: int | None, rng: random.Random) -> list[str]:
    pool = [c for c in dict.fromkeys(candidates) if c not in gold]
    return pool if d is None else rng.sample(pool, min(d, len(pool)))


def prepare_hotpotqa(distractors: int | None, only_first: int | None = None) -> Prepared:
    questions = json.loads((MULTIHOP / "hotpotqa_100.json").read_text(encoding="utf-8"))[:only_first]
    corpus: dict[str, list[str]] = json.loads((MULTIHOP / "hotpotqa_100_corpus.json").read_text(encoding="utf-8"))
    file_of = {title: f"h{i:04d}_{_slug(title)}.md" for i, title in enumerate(corpus)}
    rng = random.Random(SEED)
    keep: set[str] = set()
    out = []
    for q in questions:
        gold = {t for t, _ in q["supporting_facts"]}
        keep |= gold | set(_sample_distractors([t for t, _ in q["context"]], gold, distractors, rng))
        out.append(Question(q["_id"], q["question"], [q["answer"]], sorted(file_of[t] for t in gold),
                            {"type": q["type"], "level": q["level"]}))
    if distractors is None:
        keep = set(corpus)
    docs = {file_of[t]: f"# {t}\n\n{''.join(corpus[t]).strip()}\n" for t in corpus if t in keep}
    gold_total = len({s for q in out for s in q.gold_sources})
    return Prepared("hotpotqa", docs, {}, out, {
        "questions_file": "multihop/hotpotqa_100.json", "corpus_file": "multihop/hotpotqa_100_corpus.json",
        "corpus_articles": len(corpus), "docs_ingested": len(docs), "gold_paragraphs": gold_total,
        "full_corpus": distractors is None, "distractors_per_question": distractors, "questions_kept": len(out),
        "gold": "titles in supporting_facts (sentence-level facts -> their article)",
    })


def prepare_musique(distractors: int | None, only_first: int | None = None) -> Prepared:
    questions = json.loads((MULTIHOP / "musique_100a.json").read_text(encoding="utf-8"))[:only_first]
    corpus = json.loads((MULTIHOP / "musique_100a_corpus.json").read_text(encoding="utf-8"))
    # Titles repeat (85 titles have several paragraphs): a paragraph is its (title, text).
    file_of = {(p["title"], p["text"]): f"m{i:04d}_{_slug(p['title'])}.md" for i, p in enumerate(corpus)}
    rng = random.Random(SEED)
    keep: set[tuple[str, str]] = set()
    out = []
    for q in questions:
        paras = [(p["title"], p["paragraph_text"]) for p in q["paragraphs"]]
        gold = {(p["title"], p["paragraph_text"]) for p in q["paragraphs"] if p["is_supporting"]}
        missing = [g for g in gold if g not in file_of]
        if missing:
            raise ValueError(f"{q['id']}: supporting paragraph not in the corpus: {missing[0][0]!r}")
        keep |= gold | set(_sample_distractors(paras, gold, distractors, rng))
        hops = len(q.get("question_decomposition") or [])
        out.append(Question(q["id"], q["question"], [q["answer"], *q.get("answer_aliases", [])],
                            sorted(file_of[g] for g in gold), {"hops": hops}))
    if distractors is None:
        keep = set(file_of)
    docs = {f: f"# {t}\n\n{text.strip()}\n" for (t, text), f in file_of.items() if (t, text) in keep}
    gold_total = len({s for q in out for s in q.gold_sources})
    return Prepared("musique", docs, {}, out, {
        "questions_file": "multihop/musique_100a.json", "corpus_file": "multihop/musique_100a_corpus.json",
        "corpus_paragraphs": len(corpus), "docs_ingested": len(docs), "gold_paragraphs": gold_total,
        "full_corpus": distractors is None, "distractors_per_question": distractors, "questions_kept": len(out),
        "gold": "paragraphs flagged is_supporting, matched to the corpus by (title, text)",
        "note": "musique_100b.json ships without a corpus file, so the 100a half is used",
    })


def safe_columns(header: list[str]) -> list[str]:
    """Unique identifiers [a-z_][a-z0-9_]*: empty -> col_<i>, leading digit -> c_<name>, repeats -> _2, _3."""
    names: list[str] = []
    for i, raw in enumerate(header, 1):
        name = _slug(str(raw), 60, empty=f"col_{i}")
        if name[0].isdigit():
            name = f"c_{name}"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def prepare_tatqa(contexts: int, max_questions: int) -> Prepared:
    data = json.loads((TATQA / "tatqa_dataset_dev.json").read_text(encoding="utf-8"))[:contexts]
    docs: dict[str, str] = {}
    tables: dict[str, list[list[str]]] = {}
    pool = []
    for n, ctx in enumerate(data):
        rows = [[str(c) for c in row] for row in ctx["table"]["table"]]
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        tables[f"ctx_{n}.csv"] = [safe_columns(rows[0]), *rows[1:]]
        for p in ctx["paragraphs"]:
            docs[f"ctx_{n}_p{p['order']}.md"] = f"# Context {n}, paragraph {p['order']}\n\n{p['text'].strip()}\n"
        for q in ctx["questions"]:
            answers = q["answer"] if isinstance(q["answer"], list) else [q["answer"]]
            answers = [a for a in answers if str(a).strip()]  # a multi-span list can hold ""
            pool.append(Question(q["uid"], q["question"], answers, [], {
                "context": n, "table": f"ctx_{n}", "answer_type": q["answer_type"],
                "answer_from": q["answer_from"], "scale": q.get("scale", ""),
                "rel_paragraphs": [f"docs/ctx_{n}_p{r}.md" for r in q.get("rel_paragraphs", [])],
            }))
    chosen = pool
    if len(pool) > max_questions:
        keep = set(random.Random(SEED).sample(range(len(pool)), max_questions))
        chosen = [q for i, q in enumerate(pool) if i in keep]
    return Prepared("tatqa", docs, tables, chosen, {
        "file": "tatqa/tatqa_dataset_dev.json", "contexts": len(data), "paragraph_docs": len(docs),
        "tables": len(tables), "questions_in_contexts": len(pool), "questions_sampled": len(chosen),
        "sample": f"random.Random({SEED}).sample of {max_questions} question positions, kept in data-set order"
                  if len(pool) > max_questions else "all",
        "table_header": "first table row -> header (unique safe names); other rows as data, cells verbatim",
    })


# -- knowledge base (cached) ----------------------------------------------------------------------

def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def materialise(prep: Prepared, root: Path) -> tuple[list[Path], str]:
    """Write docs/ (and tables/) under ``root``; stale files are removed. Returns the ingest roots and a
    fingerprint of their content."""
    digest = hashlib.sha256()
    roots = []
    for sub, files in (("docs", prep.docs),
                       ("tables", {k: _csv_text(v) for k, v in prep.tables.items()})):
        if not files:
            continue
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in folder.iterdir()) - set(files):
            (folder / stale).unlink()
        for fname in sorted(files):
            _write_if_changed(folder / fname, files[fname])
            digest.update(f"{sub}/{fname}\x00{files[fname]}\x00".encode())
        roots.append(folder)
    return roots, digest.hexdigest()[:16]


async def open_kb(prep: Prepared, root: Path, *, rebuild: bool) -> tuple[KnowledgeBase, dict[str, Any]]:
    roots, fingerprint = materialise(prep, root)
    kb_dir = root / "kb"
    if rebuild and kb_dir.exists():
        shutil.rmtree(kb_dir)
    marker = kb_dir / CACHE_MARKER
    settings = Settings(kb_dir=kb_dir, engine="offline")
    kb = await KnowledgeBase.open(kb_dir, settings=settings)
    cached = json.loads(marker.read_text()) if marker.exists() else {}
    if cached.get("fingerprint") == fingerprint and cached.get("embedder") == kb.embedder.name:
        log(f"{prep.name}: knowledge base cached ({cached['ingest']['chunks_added']} chunks), ingestion skipped")
        return kb, {**cached, "cached": True}
    log(f"{prep.name}: ingesting {len(prep.docs)} documents and {len(prep.tables)} tables into {kb_dir} ...")
    started = time.perf_counter()
    summary = await kb.ingest(roots, prune=True)
    seconds = time.perf_counter() - started
    stats = summary.model_dump(mode="json")
    chunks = await kb.corpus.count()
    info = {
        "fingerprint": fingerprint, "embedder": kb.embedder.name,
        "ingest": {"seconds": round(seconds, 1), "chunks_added": stats.get("chunks_added"),
                   "chunks_per_s": round((stats.get("chunks_added") or 0) / seconds, 2) if seconds else None,
                   "new": stats.get("new"), "changed": stats.get("changed"), "removed": stats.get("removed"),
                   "tables_new": stats.get("tables_new"), "skipped": [str(s) for s in stats.get("skipped", [])][:10],
                   "loadavg_after": loadavg()},
        "total_chunks": chunks,
    }
    if stats.get("skipped"):
        log(f"{prep.name}: WARNING skipped {len(stats['skipped'])} files: {stats['skipped'][:3]}")
    marker.write_text(json.dumps(info, indent=2) + "\n")
    log(f"{prep.name}: ingested {stats.get('chunks_added')} chunks in {seconds:.0f} s")
    return kb, {**info, "cached": False}


# -- one set -----------------------------------------------------------------------------------------

def _sources(report: Report, cited: bool) -> set[str]:
    by_id = report.evidence_by_id()
    evs = [by_id[r.evidence_id] for r in report.references if r.evidence_id in by_id] if cited else report.evidence
    return {_file(e.source) for e in evs if e.kind == "passage" and e.source}


def _file(source: str) -> str:
    return source.rsplit("/", 1)[-1]


def _recall(gold: list[str], found: set[str]) -> float:
    return sum(g in found for g in gold) / len(gold) if gold else 0.0


def _trivial(q: Question) -> bool:
    """Yes/no answers, and answers the question itself already spells out (the report repeats it)."""
    qn = normalise(q.question)
    spans = [str(a) for a in q.answers] if "answer_type" in q.meta else [str(q.answers[0])]  # TAT-QA: every span
    return normalise(spans[0]) in ("yes", "no") or all(contains(qn, a) for a in spans)


def answer_found(q: Question, text: str, tatqa: bool) -> bool:
    norm = normalise(text)
    if not tatqa:  # the answer or an alias; aliases of 1-2 characters ("NO" for Norway) would match any text
        return any(contains(norm, a) for i, a in enumerate(q.answers) if i == 0 or len(normalise(a)) > 2)
    if not q.answers:
        return False
    numbers = report_numbers(text)
    scale = q.meta.get("scale", "")
    for a in q.answers:  # every span of a multi-span answer
        num = gold_number(a)
        if not (contains(norm, str(a)) or (num is not None and numeric_match(num, scale, numbers))):
            return False
    return True


def _summ(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"mean": round(statistics.fmean(values), 3), "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3), "max": round(max(values), 3)}


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


async def run_set(prep: Prepared, n: int | None, *, rebuild: bool) -> dict[str, Any]:
    tatqa = prep.name == "tatqa"
    d = prep.dataset.get("distractors_per_question")
    kept = prep.dataset.get("questions_kept")
    contexts = prep.dataset.get("contexts")  # TAT-QA: a smaller sample must not prune the full one's cache
    root = CACHE / ((prep.name if d is None else f"{prep.name}_d{d}") + (f"_q{kept}" if kept and kept < 100 else "")
                    + (f"_c{contexts}" if contexts and contexts != TATQA_CONTEXTS else ""))
    kb, kb_info = await open_kb(prep, root, rebuild=rebuild)
    runs_db = kb.path / "runs.sqlite"  # checkpoints of earlier benchmark runs: start from an empty file
    for suffix in ("", "-wal", "-shm"):
        Path(str(runs_db) + suffix).unlink(missing_ok=True)
    settings = Settings(kb_dir=kb.path, engine="offline")
    researcher = Researcher(kb, settings=settings)
    questions = prep.questions[:n] if n else prep.questions
    await kb.search("warm up the embedder and the indexes", k=BASELINE_K)
    records = []
    started = time.perf_counter()
    try:
        for i, q in enumerate(questions, 1):
            t0 = time.perf_counter()
            report = await researcher.run(q.question)
            seconds = time.perf_counter() - t0
            md = render_markdown(report)
            body = strip_method(md)
            t1 = time.perf_counter()
            hits = await kb.search(q.question, k=BASELINE_K)
            search_s = time.perf_counter() - t1
            concat = "\n\n".join(h.chunk.text for h in hits)
            base_sources = {_file(h.chunk.source) for h in hits}
            hit_evidence = [evidence_from_hit(h) for h in hits]
            answer = extractive_answer(q.question, hit_evidence, report.language)
            answer_sources = {_file(e.source) for e in hit_evidence if f"[ev:{e.id}]" in answer}
            cited, gathered = _sources(report, True), _sources(report, False)
            by_id = report.evidence_by_id()
            cited_sql = [by_id[r.evidence_id] for r in report.references
                         if r.evidence_id in by_id and by_id[r.evidence_id].kind == "sql"]
            rec: dict[str, Any] = {
                "id": q.qid, "question": q.question, "answers": q.answers, **q.meta,
                "trivial": _trivial(q), "seconds": round(seconds, 3), "rounds": report.rounds,
                "stop_reason": report.stop_reason, "sub_questions": [sq.question for sq in report.plan.sub_questions],
                "evidence": len(report.evidence), "cited": len(report.references), "report_chars": len(body),
                "contained": answer_found(q, body, tatqa),
                "baseline": {"contained": answer_found(q, concat, tatqa), "search_s": round(search_s, 4),
                             "chars": len(concat)},
                "single_shot": {"contained": answer_found(q, answer, tatqa), "chars": len(answer)},
            }
            if tatqa:
                table = q.meta["table"]
                rec.update(
                    cites_sql=bool(cited_sql), cites_sql_own_table=any(table in e.tables for e in cited_sql),
                    gathered_sql=any(e.kind == "sql" for e in report.evidence),
                    sql=[e.sql for e in cited_sql][:3],
                    rel_paragraph_cited=_recall([_file(s) for s in q.meta["rel_paragraphs"]], cited)
                    if q.meta["rel_paragraphs"] else None,
                )
            else:
                rec.update(
                    gold=q.gold_sources, recall_cited=_recall(q.gold_sources, cited),
                    recall_gathered=_recall(q.gold_sources, gathered),
                    all_gold_cited=all(g in cited for g in q.gold_sources),
                    all_gold_gathered=all(g in gathered for g in q.gold_sources),
                )
                rec["baseline"].update(recall=_recall(q.gold_sources, base_sources),
                                       all_gold=all(g in base_sources for g in q.gold_sources))
                rec["single_shot"].update(recall=_recall(q.gold_sources, answer_sources),
                                          all_gold=all(g in answer_sources for g in q.gold_sources))
            records.append(rec)
            if i % 10 == 0 or i == len(questions):
                log(f"{prep.name}: {i}/{len(questions)} runs, {time.perf_counter() - started:.0f} s, "
                    f"contained {sum(r['contained'] for r in records)}/{len(records)}")
    finally:
        await kb.close()
    return {"kb": kb_info, "dataset": prep.dataset, "summary": summarise(records, tatqa),
            "research_wall_s": round(time.perf_counter() - started, 1), "questions": records}


def summarise(records: list[dict], tatqa: bool) -> dict[str, Any]:
    nontriv = [r for r in records if not r["trivial"]]
    s: dict[str, Any] = {
        "n": len(records), "n_non_trivial": len(nontriv),
        "contained": _share([r["contained"] for r in records]),
        "contained_non_trivial": _share([r["contained"] for r in nontriv]),
        "seconds_per_run": _summ([r["seconds"] for r in records]),
        "rounds_mean": round(statistics.fmean(r["rounds"] for r in records), 2) if records else None,
        "stop_reasons": {k: sum(r["stop_reason"] == k for r in records)
                         for k in sorted({r["stop_reason"] for r in records})},
        "evidence_mean": round(statistics.fmean(r["evidence"] for r in records), 1) if records else None,
        "cited_mean": round(statistics.fmean(r["cited"] for r in records), 1) if records else None,
        "report_chars_mean": round(statistics.fmean(r["report_chars"] for r in records)) if records else None,
        "baseline": {
            "contained": _share([r["baseline"]["contained"] for r in records]),
            "contained_non_trivial": _share([r["baseline"]["contained"] for r in nontriv]),
            "search_seconds": _summ([r["baseline"]["search_s"] for r in records]),
            "chars_mean": round(statistics.fmean(r["baseline"]["chars"] for r in records)) if records else None,
        },
        "single_shot": {
            "contained": _share([r["single_shot"]["contained"] for r in records]),
            "contained_non_trivial": _share([r["single_shot"]["contained"] for r in nontriv]),
            "chars_mean": round(statistics.fmean(r["single_shot"]["chars"] for r in records)) if records else None,
        },
    }
    if tatqa:
        s.update(cites_sql=_share([r["cites_sql"] for r in records]),
                 cites_sql_own_table=_share([r["cites_sql_own_table"] for r in records]),
                 gathered_sql=_share([r["gathered_sql"] for r in records]))
        for key in ("answer_from", "answer_type"):
            groups: dict[str, list[dict]] = {}
            for r in records:
                groups.setdefault(r[key], []).append(r)
            s[f"by_{key}"] = {k: {"n": len(v), "contained": _share([r["contained"] for r in v]),
                                  "baseline_contained": _share([r["baseline"]["contained"] for r in v]),
                                  "cites_sql": _share([r["cites_sql"] for r in v])}
                              for k, v in sorted(groups.items())}
    else:
        s.update(
            recall_cited=round(statistics.fmean(r["recall_cited"] for r in records), 3),
            recall_gathered=round(statistics.fmean(r["recall_gathered"] for r in records), 3),
            all_gold_cited=_share([r["all_gold_cited"] for r in records]),
            all_gold_gathered=_share([r["all_gold_gathered"] for r in records]),
        )
        s["baseline"].update(recall=round(statistics.fmean(r["baseline"]["recall"] for r in records), 3),
                             all_gold=_share([r["baseline"]["all_gold"] for r in records]))
        s["single_shot"].update(recall=round(statistics.fmean(r["single_shot"]["recall"] for r in records), 3),
                                all_gold=_share([r["single_shot"]["all_gold"] for r in records]))
    return s


# -- output ----------------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def tables(results: dict[str, dict]) -> str:
    multi_rows, tat_rows = [], []
    for name, res in results.items():
        s = res["summary"]
        docs = res["dataset"].get("docs_ingested") or res["dataset"].get("paragraph_docs")
        t = s["seconds_per_run"]
        b = s["baseline"]
        if name == "tatqa":
            tat_rows.append([name, "offline research", s["n"], _pct(s["contained"]),
                             f"{_pct(s['contained_non_trivial'])} ({s['n_non_trivial']})",
                             _pct(s["cites_sql"]), _pct(s["cites_sql_own_table"]),
                             f"{t['mean']:.2f}", f"{t['p50']:.2f}", f"{t['p95']:.2f}"])
            x = s["single_shot"]
            tat_rows.append([name, f"single shot (search k={BASELINE_K} + extractive answer)", s["n"],
                             _pct(x["contained"]), f"{_pct(x['contained_non_trivial'])} ({s['n_non_trivial']})",
                             "-", "-", "-", "-", "-"])
            tat_rows.append([name, f"top-{BASELINE_K} passages, whole text", s["n"], _pct(b["contained"]),
                             f"{_pct(b['contained_non_trivial'])} ({s['n_non_trivial']})", "-", "-",
                             f"{b['search_seconds']['mean']:.3f}", f"{b['search_seconds']['p50']:.3f}",
                             f"{b['search_seconds']['p95']:.3f}"])
            continue
        multi_rows.append([name, "offline research", s["n"], docs, _pct(s["recall_cited"]), _pct(s["all_gold_cited"]),
                           _pct(s["recall_gathered"]), _pct(s["all_gold_gathered"]), _pct(s["contained"]),
                           f"{_pct(s['contained_non_trivial'])} ({s['n_non_trivial']})",
                           f"{t['mean']:.2f}", f"{t['p50']:.2f}", f"{t['p95']:.2f}"])
        x = s["single_shot"]
        multi_rows.append([name, f"single shot (search k={BASELINE_K} + extractive answer)", s["n"], docs,
                           _pct(x["recall"]), _pct(x["all_gold"]), _pct(b["recall"]), _pct(b["all_gold"]),
                           _pct(x["contained"]), f"{_pct(x['contained_non_trivial'])} ({s['n_non_trivial']})",
                           "-", "-", "-"])
        multi_rows.append([name, f"top-{BASELINE_K} passages, whole text", s["n"], docs, _pct(b["recall"]),
                           _pct(b["all_gold"]),
                           "-", "-", _pct(b["contained"]),
                           f"{_pct(b['contained_non_trivial'])} ({s['n_non_trivial']})",
                           f"{b['search_seconds']['mean']:.3f}", f"{b['search_seconds']['p50']:.3f}",
                           f"{b['search_seconds']['p95']:.3f}"])
    out = []
    if multi_rows:
        out.append(markdown_table(
            ["set", "method", "n", "docs", "recall cited", "all gold cited", "recall gathered", "all gold gathered",
             "answer in report", "non-trivial (n)", "s/run mean", "p50", "p95"],
            multi_rows, "llrrrrrrrrrrr"))
    if tat_rows:
        out.append(markdown_table(
            ["set", "method", "n", "answer in report", "non-trivial (n)", "cites SQL", "SQL on own table",
             "s/run mean", "p50", "p95"], tat_rows, "llrrrrrrrr"))
    return "\n\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_N} questions per set")
    ap.add_argument("--sets", default="hotpotqa,musique,tatqa", help="comma-separated subset of the three sets")
    ap.add_argument("--n", type=int, default=None, help="questions per set (default: all; --quick: 10)")
    ap.add_argument("--distractors-per-question", type=int, default=None, metavar="D",
                    help="restrict the multi-hop corpora to the supporting paragraphs plus D seeded distractors "
                         "per question from its own context (default: whole corpora)")
    ap.add_argument("--tatqa-contexts", type=int, default=TATQA_CONTEXTS)
    ap.add_argument("--tatqa-max-questions", type=int, default=TATQA_MAX_QUESTIONS)
    ap.add_argument("--rebuild", action="store_true", help="delete the cached knowledge bases first")
    ap.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    args = ap.parse_args()
    started = time.perf_counter()
    n = args.n or (QUICK_N if args.quick else None)
    distractors = args.distractors_per_question
    # --quick: a corpus of the asked questions' own paragraphs (4 distractors each) and 5 TAT-QA contexts,
    # so a fresh checkout embeds a few hundred passages, not thousands
    only_first = QUICK_N if args.quick else None
    if args.quick:
        distractors = 4 if distractors is None else distractors
        args.tatqa_contexts = min(args.tatqa_contexts, QUICK_TATQA_CONTEXTS)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    prepare = {"hotpotqa": lambda: prepare_hotpotqa(distractors, only_first),
               "musique": lambda: prepare_musique(distractors, only_first),
               "tatqa": lambda: prepare_tatqa(args.tatqa_contexts, args.tatqa_max_questions)}
    unknown = set(sets) - set(prepare)
    if unknown:
        ap.error(f"unknown sets: {sorted(unknown)}")
    results: dict[str, dict] = {}
    for name in sets:
        prep = prepare[name]()
        log(f"{name}: {len(prep.docs)} documents, {len(prep.tables)} tables, "
            f"{min(n or len(prep.questions), len(prep.questions))} questions")
        results[name] = asyncio.run(run_set(prep, n, rebuild=args.rebuild))
    table = tables(results)
    corpus = ("full corpora" if distractors is None else
              f"restricted multi-hop corpora: every supporting paragraph of the 100 questions plus "
              f"{distractors} distractors per question sampled (random.Random({SEED})) from its own context")
    notes = [
        corpus,
        "evidence recall is per question (share of its gold paragraphs found), averaged; documents are matched by "
        "generated file name, so a paragraph split into several chunks counts once",
        "answer containment: normalised (lowercase, punctuation and symbols removed, whitespace collapsed) whole-word "
        "match in render_markdown(report) without its Method section; MuSiQue aliases count; TAT-QA numbers match "
        "with tolerance (see the module docstring)",
        "non-trivial = not a yes/no answer and not already written in the question: the report repeats the question "
        "in its title, question line and section headings, so answers written in it are always 'contained', while an "
        "extractive report or passage list almost never says 'yes' or 'no'",
        "single shot = one kb.search(question, k=10) in hybrid mode + extractive_answer over those passages; "
        "'top-10 passages, whole text' = the 10 passages concatenated (an upper bound for containment)",
        "runs are sequential; time per run is the wall clock of Researcher.run (checkpointing included) on a "
        "shared 2-core machine - see machine.loadavg_at_end",
        f"quick mode: first {QUICK_N} questions per set" if args.quick else "all selected questions",
    ]
    parameters = {
        "engine": "offline", "embedder": "e5-small (KBSettings default)", "quick": args.quick, "n_per_set": n,
        "sets": sets, "distractors_per_question": distractors, "full_corpus": distractors is None, "seed": SEED,
        "baseline_k": BASELINE_K, "tatqa_contexts": args.tatqa_contexts,
        "tatqa_max_questions": args.tatqa_max_questions,
        "settings": Settings(kb_dir=CACHE / "x", engine="offline").model_dump(
            mode="json", include={"max_rounds", "max_sub_questions", "branch_concurrency", "tool_search_k",
                                  "search_k", "search_mode", "chunk_tokens", "chunk_overlap", "embedder",
                                  "fts_tokenizer", "sql_row_limit"}),
        "dossier_env": {k: v for k, v in os.environ.items() if k.startswith("DOSSIER_") and "KEY" not in k},
        "peak_rss_mb": peak_rss_mb(),
    }
    dataset = {name: res["dataset"] for name, res in results.items()}
    write_results(NAME, started=started, dataset=dataset, parameters=parameters, results=results,
                  table=table, notes=notes, out=args.out)
    print(table)
    log(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
