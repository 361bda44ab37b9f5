"""The question sets of ``report_quality.py``: answerable and unanswerable questions with their corpora.

Every public set is split deterministically into a **dev** half (for tuning) and a **test** half (the
headline): a key (the question id; TAT-QA its context; WikiTableQuestions its table) goes to dev when the
first byte of ``sha256("<set>:<key>")`` is even. The split does not depend on which questions a run
selects, so ``--quick`` and full runs agree. The FRESH set is test only (never tuned on).

Unanswerable questions are built from the public sets themselves:

* HotpotQA / MuSiQue: ``holdout`` questions whose supporting paragraphs are left out of the corpus (their
  own distractor paragraphs stay, so the knowledge base holds related material but not the answer);
  an answerable question sharing a supporting paragraph with a held-out one is dropped.
* TAT-QA: questions of contexts whose table and paragraphs are not in the knowledge base, so they are
  asked against the other contexts' (other companies') tables and text only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import DATASETS
from research_quality import _slug, safe_columns

MULTIHOP = DATASETS / "multihop"
TATQA = DATASETS / "tatqa"
WTQ = DATASETS / "wikitablequestions"
SEED = 0


@dataclass
class RQ:
    """One report question. ``groups``: every group must appear in the text, any alternative of a group."""

    qid: str
    question: str
    groups: list[list[str]]
    gold_units: list[str]  # file names and table names that hold the answer
    split: str  # dev | test
    unanswerable: bool = False
    single_fact: bool = True
    numeric: bool = False  # numbers in the gold also match numerically (TAT-QA, WTQ, fresh)
    scale: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SetData:
    name: str
    files: dict[str, str]  # relative path under the set's folder ("docs/x.md", "tables/t.csv") -> text
    questions: list[RQ]
    dataset: dict[str, Any]


def split_of(set_name: str, key: str) -> str:
    return "dev" if hashlib.sha256(f"{set_name}:{key}".encode()).digest()[0] % 2 == 0 else "test"


def _holdout(n_total: int, holdout: int) -> set[int]:
    return set(random.Random(SEED).sample(range(n_total), min(holdout, n_total)))


def _pick(pool: list, d: int, rng: random.Random) -> list:
    return rng.sample(pool, min(d, len(pool)))


def hotpotqa(answerable: int, holdout: int, distractors: int) -> SetData:
    data = json.loads((MULTIHOP / "hotpotqa_100.json").read_text(encoding="utf-8"))[: answerable + holdout]
    corpus: dict[str, list[str]] = json.loads((MULTIHOP / "hotpotqa_100_corpus.json").read_text(encoding="utf-8"))
    file_of = {t: f"h{i:04d}_{_slug(t)}.md" for i, t in enumerate(corpus)}
    held = _holdout(len(data), holdout)
    gold = [{t for t, _ in q["supporting_facts"]} for q in data]
    held_gold = set().union(*(gold[i] for i in held)) if held else set()
    rng = random.Random(SEED)
    keep: set[str] = set()
    out, dropped = [], 0
    for i, q in enumerate(data):
        pool = [t for t in dict.fromkeys(t for t, _ in q["context"]) if t not in gold[i]]
        keep |= set(_pick(pool, distractors, rng))
        if i in held:
            out.append(RQ(q["_id"], q["question"], [], [], split_of("hotpotqa", q["_id"]), unanswerable=True,
                          meta={"type": q["type"], "gold_answer": q["answer"]}))
        elif gold[i] & held_gold:
            dropped += 1
        else:
            keep |= gold[i]
            out.append(RQ(q["_id"], q["question"], [[q["answer"]]], sorted(file_of[t] for t in gold[i]),
                          split_of("hotpotqa", q["_id"]), meta={"type": q["type"]}))
    keep -= held_gold
    files = {f"docs/{file_of[t]}": f"# {t}\n\n{''.join(corpus[t]).strip()}\n" for t in corpus if t in keep}
    return SetData("hotpotqa", files, out, {
        "questions_file": "multihop/hotpotqa_100.json", "first_questions": len(data), "holdout": len(held),
        "answerable_dropped_sharing_holdout_gold": dropped, "distractors_per_question": distractors,
        "docs": len(files), "gold": "articles in supporting_facts"})


def musique(answerable: int, holdout: int, distractors: int) -> SetData:
    data = json.loads((MULTIHOP / "musique_100a.json").read_text(encoding="utf-8"))[: answerable + holdout]
    corpus = json.loads((MULTIHOP / "musique_100a_corpus.json").read_text(encoding="utf-8"))
    file_of = {(p["title"], p["text"]): f"m{i:04d}_{_slug(p['title'])}.md" for i, p in enumerate(corpus)}
    held = _holdout(len(data), holdout)
    paras = [[(p["title"], p["paragraph_text"], p["is_supporting"]) for p in q["paragraphs"]] for q in data]
    gold = [{(t, x) for t, x, s in ps if s} for ps in paras]
    held_gold = set().union(*(gold[i] for i in held)) if held else set()
    rng = random.Random(SEED)
    keep: set[tuple[str, str]] = set()
    out, dropped = [], 0
    for i, q in enumerate(data):
        pool = [(t, x) for t, x, s in paras[i] if not s and (t, x) in file_of]
        keep |= set(_pick(pool, distractors, rng))
        answers = [q["answer"], *[a for a in q.get("answer_aliases", []) if len(a.strip()) > 2]]
        if i in held:
            out.append(RQ(q["id"], q["question"], [], [], split_of("musique", q["id"]), unanswerable=True,
                          meta={"gold_answer": q["answer"]}))
        elif gold[i] & held_gold:
            dropped += 1
        else:
            keep |= gold[i]
            out.append(RQ(q["id"], q["question"], [answers], sorted(file_of[g] for g in gold[i]),
                          split_of("musique", q["id"]), meta={"hops": len(q.get("question_decomposition") or [])}))
    keep -= held_gold
    files = {f"docs/{f}": f"# {t}\n\n{x.strip()}\n" for (t, x), f in file_of.items() if (t, x) in keep}
    return SetData("musique", files, out, {
        "questions_file": "multihop/musique_100a.json", "first_questions": len(data), "holdout": len(held),
        "answerable_dropped_sharing_holdout_gold": dropped, "distractors_per_question": distractors,
        "docs": len(files), "gold": "paragraphs flagged is_supporting"})


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def tatqa(contexts: int, per_context: int, holdout_contexts: int, per_holdout: int) -> SetData:
    data = json.loads((TATQA / "tatqa_dataset_dev.json").read_text(encoding="utf-8"))[: contexts + holdout_contexts]
    rng = random.Random(SEED)
    files: dict[str, str] = {}
    out = []
    for n, ctx in enumerate(data):
        inside = n < contexts
        qs = ctx["questions"]
        qs = [qs[i] for i in sorted(rng.sample(range(len(qs)), min(per_context if inside else per_holdout, len(qs))))]
        own = [f"ctx_{n}", f"ctx_{n}.csv"] + [f"ctx_{n}_p{p['order']}.md" for p in ctx["paragraphs"]]
        split = split_of("tatqa", f"ctx{n}")
        for q in qs:
            answers = q["answer"] if isinstance(q["answer"], list) else [q["answer"]]
            spans = [str(a) for a in answers if str(a).strip()]
            out.append(RQ(q["uid"], q["question"], [[s] for s in spans] if inside else [], own if inside else [],
                          split, unanswerable=not inside, single_fact=q["answer_type"] != "multi-span",
                          numeric=True, scale=q.get("scale", ""),
                          meta={"context": n, "answer_type": q["answer_type"], "answer_from": q["answer_from"],
                                **({} if inside else {"gold_answer": spans})}))
        if not inside:
            continue
        rows = [[str(c) for c in row] for row in ctx["table"]["table"]]
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        files[f"tables/ctx_{n}.csv"] = _csv_text([safe_columns(rows[0]), *rows[1:]])
        for p in ctx["paragraphs"]:
            files[f"docs/ctx_{n}_p{p['order']}.md"] = f"# Context {n}, paragraph {p['order']}\n\n{p['text'].strip()}\n"
    return SetData("tatqa", files, out, {
        "file": "tatqa/tatqa_dataset_dev.json", "contexts_in_kb": contexts, "questions_per_context": per_context,
        "holdout_contexts": holdout_contexts, "questions_per_holdout_context": per_holdout,
        "gold": "the question's own context: its table and any of its paragraphs",
        "unanswerable": "questions of the contexts after the first contexts_in_kb, asked of a knowledge base "
                        "without their table and paragraphs"})


def _wtq_unescape(cell: str) -> str:
    return cell.replace("\\n", "\n").replace("\\p", "|").replace("\\\\", "\\")


def _clean_table(path: Path, max_rows: int, max_cols: int) -> list[list[str]] | None:
    """The table as rows when it imports cleanly: the TSV form (unambiguous escapes), a unique non-empty
    header, every row as wide as the header, 2..max_rows data rows, at most max_cols columns."""
    try:
        lines = path.with_suffix(".tsv").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    rows = [[_wtq_unescape(c).strip() for c in line.split("\t")] for line in lines]
    if len(rows) < 3 or len(rows) > max_rows + 1 or not 2 <= len(rows[0]) <= max_cols:
        return None
    header = rows[0]
    if any(not h for h in header) or len({h.lower() for h in header}) != len(header):
        return None
    if any(len(r) != len(header) for r in rows) or any("\n" in c for r in rows for c in r):
        return None
    return rows


def wikitablequestions(n: int, max_rows: int = 60, max_cols: int = 10) -> SetData:
    lines = (WTQ / "pristine-unseen-tables.tsv").read_text(encoding="utf-8").splitlines()[1:]
    files: dict[str, str] = {}
    out, seen, rejected = [], set(), 0
    for line in lines:
        if len(out) >= n:
            break
        qid, utterance, context, target = line.split("\t")
        if context in seen:
            continue  # one question per table
        seen.add(context)
        rows = _clean_table(WTQ / context, max_rows, max_cols)
        if rows is None:
            rejected += 1
            continue
        a, b = re.findall(r"\d+", context)[:2]
        table = f"wtq_{a}_{b}"
        files[f"tables/{table}.csv"] = _csv_text(rows)
        items = [_wtq_unescape(t) for t in target.split("|") if t.strip()]
        out.append(RQ(qid, utterance, [[t] for t in items], [table, f"{table}.csv"], split_of("wtq", table),
                      single_fact=len(items) == 1, numeric=True, meta={"table": context}))
    return SetData("wtq", files, out, {
        "file": "wikitablequestions/pristine-unseen-tables.tsv", "questions": len(out),
        "tables_rejected": rejected,
        "selection": f"in file order, one question per table, tables that import cleanly (TSV form, unique "
                     f"non-empty header, uniform width, no line breaks in cells, <= {max_rows} rows, "
                     f"<= {max_cols} columns), written as standard CSV with their original header"})


def wikitablequestions_given(n: int, max_rows: int = 60, max_cols: int = 10) -> SetData:
    """The same questions and tables as ``wikitablequestions``, as the dataset defines its task: each
    question is asked of a knowledge base that holds its own table only (``per_question``)."""
    data = wikitablequestions(n, max_rows, max_cols)
    questions = [RQ(q.qid, q.question, q.groups, q.gold_units, split_of("wtq", q.gold_units[0]),
                    single_fact=q.single_fact, numeric=True, meta={**q.meta, "files": [f"tables/{q.gold_units[1]}"]})
                 for q in data.questions]
    return SetData("wtq_given", data.files, questions, {**data.dataset, "per_question": True,
                   "knowledge_base": "per question: the question's own table only (the task as WTQ defines it)"})


def fresh(limit: int | None = None) -> SetData:
    import fresh_material as fm

    sp = fm.site_packages()
    docs, missing_docs = fm.documents(sp)
    tables, missing_tables = fm.tables(sp)
    spec = json.loads((fm.FRESH / "questions.json").read_text(encoding="utf-8"))["questions"][:limit]
    out = []
    for q in spec:
        units = []
        for g in q.get("gold_sources", []):
            units += [g] if "." in g else [g, f"{g}.csv"]
        out.append(RQ(q["id"], q["question"], q.get("answers", []), units, "test",
                      unanswerable=bool(q.get("unanswerable")), single_fact=q.get("single_fact", True),
                      numeric=True, meta={"kind": q["kind"]}))
    files = {f"docs/{k}": v for k, v in docs.items()} | {f"tables/{k}": v for k, v in tables.items()}
    return SetData("fresh", files, out, {
        "material": "package READMEs (METADATA long descriptions) of " + ", ".join(fm.DOC_PACKAGES)
                    + "; matplotlib sample_data Stocks.csv and msft.csv as shipped; benchmarks/fresh/packages.csv",
        "site_packages": str(sp), "missing": missing_docs + missing_tables,
        "questions_file": "benchmarks/fresh/questions.json", "split": "test only"})
