"""Crash and resume: SIGKILL real CLI processes at seeded points, then finish the work.

Research: ``dossier report`` (offline engine, the bundled demo) is killed at 22 seeded kill points
spread over planning, search and SQL tool calls, reflection, outlining, section writing,
verification, checkpoint commits and report output; ``dossier resume RUN_ID`` (or, for some,
``Researcher.resume``) must finish each run with the same sections and evidence as one run that
was never killed, re-running only the units whose work was not yet checkpointed.

Ingestion: ``dossier ingest`` of 60 files over an older knowledge base is killed after seeded
batch writes; the knowledge base must still open and show only whole documents, keep the older
version's documents, and a re-run must end exactly where a clean ingest ends.

Kill points come from tests/support/crash_hook.py (loaded by tests/support/crash_cli.py), a
test-only wrapper around the real CLI: there is no kill switch in product code.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dossier.demo import demo_paths
from dossier.research import Researcher
from tests.graph_fixtures import graph_settings
from tests.support import crash_hook
from tests.support.crash_runs import (
    KILLED,
    checkpoint_state,
    chunk_rows,
    cli_env,
    copy_kb,
    manifest,
    read_log,
    run_cli,
    run_status,
    saved_units,
    tool_calls,
    units_started,
)
from tools.knowledge_base import KnowledgeBase

pytestmark = pytest.mark.slow

# Three research rounds (so research and reflection loop), two sub-questions, four sections.
# The last clause is not in the demo, so the run goes to a second and third round: kill points in
# every stage of a multi-round run.
QUESTION = "2026 年法务合同知识库和客服知识库的预算、团队规模和上线时间分别是多少？Kubernetes 集群有多少个节点？"
SEED = 20260601
PARALLEL = 2  # subprocesses at once: CI has two cores

# Kill points per stage, drawn with SEED from the events an uninterrupted run reports.
STAGES: dict[str, tuple[tuple[str, ...], int]] = {
    "plan": (("node:plan:start", "node:plan:end", "node:review:start"), 2),
    "search": (("tool:search_documents:start", "tool:search_documents:end"), 4),
    "sql": (("tool:run_sql:start", "tool:run_sql:end"), 3),
    "research": (("node:research:start", "node:research:end"), 1),
    "reflect": (("node:reflect:start", "node:reflect:end"), 2),
    "outline": (("node:outline:start", "node:outline:end"), 1),
    "write": (("node:write:start", "node:write:end"), 3),
    "verify": (("node:verify:start", "node:verify:end"), 1),
    "finalize": (("node:finalize:start", "node:finalize:end"), 1),
    "checkpoint": (("checkpoint:put:end", "checkpoint:writes:end"), 3),
    "emit": (("emit:start",), 1),
}
API_RESUMES = 8  # of the kill points, resumed through Researcher.resume; the rest through the CLI


@dataclass(frozen=True)
class KillPoint:
    stage: str
    event: str
    n: int
    via: str  # "cli" or "api": how the killed run is resumed

    @property
    def spec(self) -> str:
        return f"{self.event}#{self.n}"


# -- kill points -------------------------------------------------------------------------------

def pick_kill_points(baseline_log: list[dict], seed: int) -> list[KillPoint]:
    """Seeded and spread: for each stage, draw its quota among that stage's events in the baseline."""
    rng = random.Random(seed)
    counts = Counter(e["event"] for e in baseline_log)
    points = []
    for stage, (events, quota) in STAGES.items():
        candidates = [(event, n) for event in events for n in range(1, counts[event] + 1)]
        assert len(candidates) >= quota, f"the baseline run has too few {stage} events: {candidates}"
        points += [KillPoint(stage, event, n, "cli") for event, n in sorted(rng.sample(candidates, quota))]
    api = set(rng.sample(range(len(points)), API_RESUMES))
    return [KillPoint(p.stage, p.event, p.n, "api") if i in api else p for i, p in enumerate(points)]


@dataclass
class Baseline:
    log: list[dict]
    report: Any
    findings: Counter

    @property
    def units(self) -> set[str]:
        return set(units_started(self.log))


def findings_signature(values: dict) -> Counter:
    """Each branch's recorded tool calls, as the checkpointed state holds them (duplicates show)."""
    return Counter((f.sub_question_id, f.round, tuple((c.tool, json.dumps(c.arguments, sort_keys=True))
                                                      for c in f.tool_calls)) for f in values["findings"])


async def baseline_run(template: Path, work: Path, slots: asyncio.Semaphore) -> Baseline:
    kb_dir = copy_kb(template, work / "kb")
    rc, out = await run_cli(slots, ["--kb", kb_dir, "report", "--offline", "-q", QUESTION, "-o", work / "report.md"],
                            cli_env(log=work / "events.log"))
    assert rc == 0, out
    run_id, status = await run_status(kb_dir)
    assert status == "done"
    state = await checkpoint_state(kb_dir, run_id)
    return Baseline(read_log(work / "events.log"), state.values["report"], findings_signature(state.values))


async def resume_api(kb_dir: Path, run_id: str, log: Path, lock: asyncio.Lock) -> None:
    # One at a time: the hook patches this process's graph nodes and tools while it runs.
    async with lock:
        kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
        with pytest.MonkeyPatch.context() as mp:
            crash_hook.install(log, setter=mp.setattr)
            try:
                await Researcher(kb).resume(run_id)
            finally:
                await kb.close()
                kb.corpus.close()


@dataclass
class Outcome:
    problems: list[str]
    saved: set[str] = field(default_factory=set)  # units checkpointed when the process died
    rerun: set[str] = field(default_factory=set)  # units started before the kill and again on resume


async def crash_and_resume(point: KillPoint, template: Path, work: Path, baseline: Baseline,
                           slots: asyncio.Semaphore, api_lock: asyncio.Lock, *, list_via_cli: bool) -> Outcome:
    """Kill a run at one point, resume it, and say what differs from the baseline (no problems: all good)."""
    try:
        return await _crash_and_resume(point, template, work, baseline, slots, api_lock, list_via_cli)
    except Exception as exc:  # reported with the kill point; the other points still finish
        return Outcome([f"{type(exc).__name__}: {exc}"])


async def _crash_and_resume(point: KillPoint, template: Path, work: Path, baseline: Baseline,
                            slots: asyncio.Semaphore, api_lock: asyncio.Lock, list_via_cli: bool) -> Outcome:
    kb_dir = copy_kb(template, work / "kb")
    rc, out = await run_cli(slots, ["--kb", kb_dir, "report", "--offline", "-q", QUESTION, "-o", work / "killed.md"],
                            cli_env(log=work / "killed.log", kill_at=point.spec))
    if rc != KILLED:
        return Outcome([f"the run was not killed (exit {rc}): {out[-300:]}"])
    run_id, status = await run_status(kb_dir)
    saved = await saved_units(kb_dir, run_id)
    if status != ("done" if "finalize" in saved else "interrupted") or (point.stage == "emit" and status != "done"):
        return Outcome([f"status after the kill is {status!r}; checkpointed: {sorted(saved)}"])
    if list_via_cli:  # `dossier runs` is how a user finds the id of a killed run
        rc, out = await run_cli(slots, ["--kb", kb_dir, "runs"], cli_env())
        if rc != 0 or f"{run_id}  {status}" not in out:
            return Outcome([f"`dossier runs` does not list {run_id} as {status}: {out[-300:]}"])
    if point.via == "cli":
        rc, out = await run_cli(slots, ["--kb", kb_dir, "resume", run_id, "-q", "-o", work / "resumed.md"],
                                cli_env(log=work / "resumed.log"))
        if rc != 0:
            return Outcome([f"`dossier resume {run_id}` failed (exit {rc}): {out[-400:]}"], saved)
    else:
        await resume_api(kb_dir, run_id, work / "resumed.log", api_lock)
    final = await checkpoint_state(kb_dir, run_id)
    killed_log, resumed_log = read_log(work / "killed.log"), read_log(work / "resumed.log")
    problems = compare(point, baseline, saved, killed_log, resumed_log, final.values, work / "resumed.md")
    return Outcome(problems, saved, set(units_started(killed_log)) & set(units_started(resumed_log)))


def compare(point: KillPoint, baseline: Baseline, saved: set[str], killed_log: list[dict],
            resumed_log: list[dict], values: dict, resumed_md: Path) -> list[str]:
    problems = []
    report = values.get("report")
    if report is None:
        return ["the resumed run has no report"]
    base = baseline.report
    if [(s.title, s.markdown) for s in report.sections] != [(s.title, s.markdown) for s in base.sections]:
        problems.append(f"sections differ: {[s.title for s in report.sections]} vs {[s.title for s in base.sections]}")
    if [e.id for e in report.evidence] != [e.id for e in base.evidence]:
        problems.append("evidence ids differ")
    if [r.evidence_id for r in report.references] != [r.evidence_id for r in base.references]:
        problems.append("references differ")
    if findings_signature(values) != baseline.findings:
        problems.append("the checkpointed findings' tool calls differ (a branch recorded twice or lost)")
    resumed = units_started(resumed_log)
    if again := saved & set(resumed):
        problems.append(f"units checkpointed before the kill ran again: {sorted(again)}")
    if len(resumed) != len(set(resumed)):
        problems.append(f"a unit ran twice within the resume: {resumed}")
    if (done := saved | set(resumed)) != baseline.units:
        problems.append(f"units done {sorted(done)} != baseline {sorted(baseline.units)}")
    # Every tool call of the finished run executed exactly once among the kept executions: those of
    # checkpointed units before the kill, and those of the resume. Only unsaved units' calls repeat.
    kept = tool_calls(killed_log, saved) + tool_calls(resumed_log)
    if kept != tool_calls(baseline.log):
        problems.append(f"tool executions differ from the baseline: {sorted((kept - tool_calls(baseline.log)).items())}"
                        f" extra, {sorted((tool_calls(baseline.log) - kept).items())} missing")
    if point.via == "cli":
        text = resumed_md.read_text(encoding="utf-8") if resumed_md.exists() else ""
        if not all(s.title in text for s in base.sections):
            problems.append("the resumed CLI report file lacks section titles")
    return problems


@pytest.fixture
async def demo_template(tmp_path: Path) -> Path:
    """The bundled demo, ingested once with the hash embedder; each run gets a copy of it."""
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "template"))
    await kb.ingest(demo_paths())
    await kb.close()
    kb.corpus.close()
    return tmp_path / "template"


async def test_killed_report_runs_resume_to_the_uninterrupted_result(demo_template: Path, tmp_path: Path):
    slots, api_lock = asyncio.Semaphore(PARALLEL), asyncio.Lock()
    baseline = await baseline_run(demo_template, tmp_path / "baseline", slots)
    assert baseline.units >= {"plan", "research:q1:r1", "reflect:r2", "outline", "write:0", "verify", "finalize"}
    points = pick_kill_points(baseline.log, SEED)
    assert len(points) >= 20 and {p.via for p in points} == {"cli", "api"}
    first_cli = next(p for p in points if p.via == "cli" and p.stage != "emit")
    outcomes = await asyncio.gather(*(
        crash_and_resume(p, demo_template, tmp_path / f"kill{i:02d}", baseline, slots, api_lock,
                         list_via_cli=p is first_cli)
        for i, p in enumerate(points)
    ))
    for p, o in zip(points, outcomes):  # shown when the test fails (or with -s)
        print(f"{p.spec:<34} {p.via}  checkpointed {len(o.saved):>2} units, re-ran {sorted(o.rerun)}")
    failures = [f"{p.spec} (resume via {p.via}): {'; '.join(o.problems)}" for p, o in zip(points, outcomes)
                if o.problems]
    assert not failures, "\n".join(failures)
    # Not vacuous: some kills left finished units to skip, and some left a unit in flight to redo.
    assert sum(bool(o.saved) for o in outcomes) >= len(points) // 2
    assert sum(bool(o.rerun) for o in outcomes) >= 5
    assert any(o.saved and o.rerun for o in outcomes)


# -- ingestion killed mid-way --------------------------------------------------------------------

OLD_DOCS, NEW_DOCS, CHANGED_DOCS = 20, 40, 5  # the older version, files added to it, files edited
FLUSH_CHUNKS = 64  # chunks per ingest batch in the killed runs (and the reference), so 60 files make several
INGEST_STEPS = ("ingest:add_chunks:end", "ingest:delete_stale:end", "ingest:upsert_documents:end")
WORDS = ("budget retrieval index vendor pilot latency contract support review schedule staffing "
         "compliance tokenizer embedding cluster rollout quarter forecast approval audit").split()


def doc_text(i: int, edition: int) -> str:
    """A deterministic document of ~10 small chunks; ``marker{i}`` occurs in it and nowhere else."""
    rng = random.Random(i * 1000 + edition)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(45)) + "." for _ in range(8)]
    return f"# Note {i} edition {edition}\n\nmarker{i} edition{edition}.\n\n" + "\n\n".join(paragraphs) + "\n"


def write_docs(root: Path, numbers: range, edition: int) -> None:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    for i in numbers:
        (root / "docs" / f"note_{i:02d}.md").write_text(doc_text(i, edition), encoding="utf-8")


def write_table(root: Path, name: str, rows: int) -> None:
    (root / "tables").mkdir(parents=True, exist_ok=True)
    lines = ["id,amount"] + [f"{i},{i * 100}" for i in range(rows)]
    (root / "tables" / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


async def ingest_in_process(kb_dir: Path, corpus: Path) -> None:
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    await kb.ingest([corpus])
    await kb.close()
    kb.corpus.close()


async def check_consistent_after_kill(kb_dir: Path, old: dict, final: dict) -> list[str]:
    """Whole documents only, the older version's documents all readable, search and tables working."""
    problems = []
    expected = {r.doc_id: r.n_chunks for r in [*old.values(), *final.values()]}
    per_doc = Counter(r["doc_id"] for r in await chunk_rows(kb_dir))
    if partial := {d: n for d, n in per_doc.items() if expected.get(d) != n}:
        problems.append(f"documents with missing or unknown chunks: {partial}")
    written = {r.doc_id for r in final.values()} - {r.doc_id for r in old.values()}
    print(f"{kb_dir.parent.name}: {len(written & set(per_doc))} of {len(written)} new versions written when killed")
    if not 0 < len(written & set(per_doc)) < len(written):
        problems.append("the ingest was not killed mid-way")
    versions_of = {r.source: set() for r in old.values()}
    for row in await chunk_rows(kb_dir):
        versions_of.setdefault(row["source"], set()).add(row["doc_id"])
    if lost := sorted(s for s in old if not versions_of[s]):
        problems.append(f"documents of the older version are gone: {lost}")
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    try:
        if missing := set(old) - set(await kb.corpus.document_records()):
            problems.append(f"the manifest lost older documents: {sorted(missing)}")
        for i in (0, OLD_DOCS - 1, OLD_DOCS + NEW_DOCS - 1):  # unchanged old, last old, last new
            hits = await kb.search(f"marker{i}", k=3, mode="text")
            if any(h.chunk.doc_id not in expected for h in hits):
                problems.append(f"search for marker{i} returned a chunk of no known version")
            if i < OLD_DOCS and not any(h.chunk.source.endswith(f"note_{i:02d}.md") for h in hits):
                problems.append(f"the older document note_{i:02d}.md is not found by search")
        if "old_costs" not in {t.name for t in await kb.tables()}:
            problems.append("the older version's table is gone")
    finally:
        await kb.close()
        kb.corpus.close()
    return problems


async def test_killed_ingest_leaves_kb_consistent_and_rerun_completes_it(tmp_path: Path, monkeypatch):
    corpus = tmp_path / "corpus"
    write_docs(corpus, range(OLD_DOCS), edition=1)
    write_table(corpus, "old_costs", 5)
    await ingest_in_process(tmp_path / "old", corpus)  # the previous version every kill starts from
    old = await manifest(tmp_path / "old")
    write_docs(corpus, range(CHANGED_DOCS), edition=2)  # edited files
    write_docs(corpus, range(OLD_DOCS, OLD_DOCS + NEW_DOCS), edition=1)  # new files
    write_table(corpus, "new_costs", 7)

    await ingest_in_process(tmp_path / "clean", corpus)  # a clean ingest of the final folder
    final = await manifest(tmp_path / "clean")
    clean_chunks = sorted(r["chunk_id"] for r in await chunk_rows(tmp_path / "clean"))
    assert len(final) == OLD_DOCS + NEW_DOCS

    # The uninterrupted update, with the hook logging its batches: the kill points are drawn from it.
    import tools.ingest
    monkeypatch.setattr(tools.ingest, "FLUSH_CHUNKS", FLUSH_CHUNKS)
    reference = copy_kb(tmp_path / "old", tmp_path / "reference")
    with pytest.MonkeyPatch.context() as mp:
        crash_hook.install(tmp_path / "reference.log", setter=mp.setattr)
        await ingest_in_process(reference, corpus)
    assert sorted(r["chunk_id"] for r in await chunk_rows(reference)) == clean_chunks
    counts = Counter(e["event"] for e in read_log(tmp_path / "reference.log"))
    assert counts["ingest:add_chunks:end"] >= 5, counts  # several batches to die between
    rng = random.Random(SEED)
    points = [f"{step}#{rng.randint(1, counts[step] - 1)}" for step in INGEST_STEPS]

    slots = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(
        kill_and_rerun_ingest(point, tmp_path / "old", tmp_path / f"ingest{i}", corpus, old, final, slots)
        for i, point in enumerate(points)
    ))
    failures = [f"{point}: {'; '.join(problems)}" for point, problems in zip(points, results) if problems]
    assert not failures, "\n".join(failures)
    for i in range(len(points)):
        assert sorted(r["chunk_id"] for r in await chunk_rows(tmp_path / f"ingest{i}" / "kb")) == clean_chunks


async def kill_and_rerun_ingest(point: str, old_kb: Path, work: Path, corpus: Path, old: dict, final: dict,
                                slots: asyncio.Semaphore) -> list[str]:
    kb_dir = copy_kb(old_kb, work / "kb")
    env = cli_env(log=work / "killed.log", kill_at=point, flush_chunks=FLUSH_CHUNKS)
    rc, out = await run_cli(slots, ["--kb", kb_dir, "ingest", "-q", corpus], env)
    if rc != KILLED:
        return [f"the ingest was not killed (exit {rc}): {out[-300:]}"]
    if problems := await check_consistent_after_kill(kb_dir, old, final):
        return problems
    rc, out = await run_cli(slots, ["--kb", kb_dir, "ingest", "-q", "--json", corpus], cli_env())
    if rc != 0:
        return [f"the re-run failed (exit {rc}): {out[-300:]}"]
    done = await manifest(kb_dir)
    if {s: r.doc_id for s, r in done.items()} != {s: r.doc_id for s, r in final.items()}:
        return ["after the re-run the manifest differs from a clean ingest's"]
    return []
