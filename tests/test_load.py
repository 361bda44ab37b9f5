"""Concurrency and load: many runs on one knowledge base, ingestion under readers, the LLM limit.

Numbers (wall-clock, peak RSS, reads during writes, requests in flight) are printed; run with
``pytest -s tests/test_load.py`` to see them.
"""

from __future__ import annotations

import asyncio
import re
import resource
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from dossier.demo import demo_paths
from dossier.research import Researcher
from dossier.testing import OpenAIStub, stub_responder
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.embeddings import HashEmbedder
from tools.knowledge_base import KnowledgeBase
from tools.models import Hit
from tools.vocabulary import Report

# -- helpers ----------------------------------------------------------------------------------


class RssSampler:
    """Peak resident memory of this process over a block, sampled from /proc every 20 ms.

    ``ru_maxrss`` alone is the peak since the process started (earlier tests included), so the
    block's own peak is sampled; where /proc is missing the sampler reports ``ru_maxrss``.
    """

    def __init__(self) -> None:
        self.before_mb = self.peak_mb = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, _rss_mb())


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def assert_verified(report: Report) -> None:
    v = report.verification
    assert report.sections and report.references
    assert v.markers_total > 0 and v.markers_resolved == v.markers_total
    assert v.unknown_markers_removed == 0 and not v.unknown_marker_ids
    assert "[ev:" not in "".join(s.markdown for s in report.sections)
    assert {r.evidence_id for r in report.references} <= {e.id for e in report.evidence}


# -- 1. fifty concurrent offline runs -----------------------------------------------------------

DEMO_QUESTIONS = [
    "Should we choose RAG or fine-tuning for the customer-support assistant, and what would each cost?",
    "What is the approved 2026 budget for the RAG programme, and how much had been spent by June 2026?",
    "How did actual costs compare with budgets for our 2025 LLM projects, broken down by approach?",
    "Which vendors did we choose for the RAG platform, and what do they cost per year?",
    "检索增强生成和微调的成本与团队规模有什么区别？",
    "2025 年各部门和各路线在大模型上的支出分别是多少？",
]
CONCURRENT_RUNS = 50


@pytest.fixture
async def demo_kb(tmp_path):
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(demo_paths())
    yield kb
    await kb.close()


@pytest.mark.slow
async def test_fifty_concurrent_offline_runs(demo_kb):
    researcher = Researcher(demo_kb)
    started = time.perf_counter()
    with RssSampler() as rss:
        reports = await asyncio.gather(
            *(researcher.run(DEMO_QUESTIONS[i % len(DEMO_QUESTIONS)]) for i in range(CONCURRENT_RUNS))
        )
    wall = time.perf_counter() - started
    print(f"\n{CONCURRENT_RUNS} concurrent offline runs: {wall:.1f} s wall, "
          f"RSS {rss.before_mb:.0f} MB before, peak {rss.peak_mb:.0f} MB "
          f"(+{rss.peak_mb - rss.before_mb:.0f} MB)")
    for report in reports:
        assert_verified(report)
    assert len({r.run_id for r in reports}) == CONCURRENT_RUNS
    # Same question, same knowledge base, same engine: concurrency must not change the answer.
    by_question = defaultdict(set)
    for report in reports:
        by_question[report.question].add(tuple(s.markdown for s in report.sections))
    assert all(len(texts) == 1 for texts in by_question.values())
    runs = {info.run_id: info for info in await researcher.runs()}
    assert {r.run_id for r in reports} <= set(runs)
    assert all(runs[r.run_id].status == "done" for r in reports)
    # Generous bounds: they catch a serialising lock or a leak, not a slow CI machine.
    assert wall < 300
    assert rss.peak_mb - rss.before_mb < 1500


# -- 2. ingestion while readers keep reading ----------------------------------------------------

WORD = "zebrafish"  # in every chunk of the live documents: one text query returns all of them
MARKER_RE = re.compile(r"doc(\d+)ver(\d+)part(\d+)of(\d+)")
LIVE_DOCS = 3
VERSIONS = 6


def live_document(doc: int, version: int) -> str:
    """One section per part, so each part is one chunk; the part count changes with the version."""
    parts = 2 + (doc + version) % 4
    sections = [f"## Part {i}\n\n{WORD} marker doc{doc}ver{version}part{i}of{parts} holds notes "
                f"on version {version}." for i in range(1, parts + 1)]
    return f"# Live document {doc}\n\n" + "\n\n".join(sections) + "\n"


def write_live(folder: Path, version: int) -> None:
    """Change every live document and the live table, and add a new document (doc numbers past
    LIVE_DOCS are added). The table has ``version + 2`` rows, each holding the version."""
    rows = "".join(f"{i},{version}\n" for i in range(version + 2))
    (folder / "live_metrics.csv").write_text("row,version\n" + rows, encoding="utf-8")
    for doc in range(LIVE_DOCS):
        (folder / f"live{doc}.md").write_text(live_document(doc, version), encoding="utf-8")
    new_doc = LIVE_DOCS + version
    (folder / f"live{new_doc}.md").write_text(live_document(new_doc, version), encoding="utf-8")


def snapshot_problems(hits: list[Hit]) -> tuple[list[str], dict[int, int]]:
    """Per live document: one version only, and the complete part set of that version."""
    parts: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    declared: dict[tuple[int, int], int] = {}
    for hit in hits:
        for doc, version, part, total in (map(int, m) for m in MARKER_RE.findall(hit.chunk.text)):
            parts[doc][version].add(part)
            declared[doc, version] = total
    problems, seen = [], {}
    for doc, versions in parts.items():
        if len(versions) > 1:
            problems.append(f"doc{doc} mixes versions {sorted(versions)}")
        for version, found in versions.items():
            total = declared[doc, version]
            if found != set(range(1, total + 1)):
                problems.append(f"doc{doc} ver{version} has parts {sorted(found)} of {total}")
            seen[doc] = version
    return problems, seen


async def test_ingest_never_shows_readers_a_half_written_document(tmp_path, make_kb):
    corpus = write_corpus(tmp_path / "corpus")
    live = tmp_path / "live"
    live.mkdir()
    write_live(live, 0)
    writer_kb = await make_kb()
    await writer_kb.ingest([*corpus, live])
    # A second connection reads too: the guarantee holds for other processes, not just this object.
    other_kb = await make_kb()
    writing = asyncio.Event()
    done = asyncio.Event()
    stats = {"reads": 0, "during_writes": 0, "sql_reads": 0}
    problems: list[str] = []
    versions_seen: dict[int, set[int]] = defaultdict(set)

    async def writer() -> None:
        for version in range(1, VERSIONS + 1):
            await asyncio.to_thread(write_live, live, version)
            writing.set()
            await writer_kb.ingest([live])
            writing.clear()
            await asyncio.sleep(0)
        done.set()

    async def reader(kb: KnowledgeBase, mode: str) -> None:
        while not done.is_set():
            during = writing.is_set()
            hits = await kb.search(WORD, k=200, mode=mode, source="*live*")
            found, seen = snapshot_problems(hits)
            problems.extend(f"{mode}: {p}" for p in found)
            for doc, version in seen.items():
                versions_seen[doc].add(version)
            stats["reads"] += 1
            stats["during_writes"] += during and writing.is_set()

    async def sql_reader() -> None:
        # SQL waits while an ingest holds DuckDB's write connection; it must neither fail nor
        # see a table half replaced.
        while not done.is_set():
            result = await writer_kb.sql("SELECT count(*), min(version), max(version) FROM live_metrics")
            rows, low, high = result.rows[0]
            if low != high or rows != low + 2:
                problems.append(f"sql: live_metrics has {rows} rows of versions {low}..{high}")
            stats["sql_reads"] += 1
            await asyncio.sleep(0)

    researcher = Researcher(writer_kb)
    started = time.perf_counter()
    results = await asyncio.gather(
        writer(), sql_reader(), *(reader(kb, mode) for kb in (writer_kb, other_kb) for mode in ("text", "hybrid")),
        researcher.run(QUESTION), researcher.run("What is the RAG programme budget for 2026?"),
    )
    wall = time.perf_counter() - started
    print(f"\n{VERSIONS} ingests in {wall:.1f} s; {stats['reads']} searches, {stats['during_writes']} "
          f"entirely inside an ingest, {stats['sql_reads']} SQL reads; versions seen per doc: "
          f"{ {d: sorted(v) for d, v in sorted(versions_seen.items())} }")
    assert not problems, problems[:10]
    assert stats["during_writes"] >= 10  # the readers really overlapped the writes
    assert any(len(v) >= 3 for v in versions_seen.values())  # and saw the corpus change under them
    assert stats["sql_reads"] >= 2
    for report in results[-2:]:
        assert_verified(report)
    for mode in ("text", "hybrid"):  # after the writes every reader sees the last version
        final, seen = snapshot_problems(await other_kb.search(WORD, k=200, mode=mode, source="*live*"))
        assert not final and all(v == VERSIONS for d, v in seen.items() if d < LIVE_DOCS), (mode, seen)


class GatedEmbedder(HashEmbedder):
    """Once armed, the next query embedding waits for ``release``: a test can commit a write
    between the text side of a hybrid search (already read) and its vector side."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_query(self, text: str):
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(30)
        return super().embed_query(text)


async def test_hybrid_search_reads_one_version_when_a_write_lands_between_its_sides(tmp_path, make_kb):
    live = tmp_path / "live"
    live.mkdir()
    write_live(live, 0)
    embedder = GatedEmbedder()
    kb = await make_kb(embedder=embedder)
    await kb.ingest([live])
    write_live(live, 1)
    embedder.armed = True
    search = asyncio.create_task(kb.search(WORD, k=200, mode="hybrid", source="*live*"))
    await asyncio.to_thread(embedder.entered.wait, 30)
    try:
        await kb.ingest([live])  # commits version 1 while the search's vector side waits
    finally:
        embedder.release.set()
    problems, seen = snapshot_problems(await search)
    assert not problems and set(seen.values()) == {0}  # the version the search started on
    _, seen = snapshot_problems(await kb.search(WORD, k=200, mode="hybrid", source="*live*"))
    assert {seen[doc] for doc in range(LIVE_DOCS)} == {1} and seen[LIVE_DOCS + 1] == 1  # the next one is new


# -- 3. the LLM concurrency limit, counted by the server -----------------------------------------

LLM_DELAY_S = 0.3


class FourWayAnalyst(AnalystScript):
    """The scripted analyst with a four-sub-question plan, so four research branches run at once."""

    def plan(self, question: str) -> dict:
        topics = ["RAG cost", "fine-tuning cost", "RAG team size", "fine-tuning team size"]
        return {"rationale": "one sub-question per topic", "sub_questions": [
            {"question": f"What is the {t}?", "needs": "both", "tables": ["costs"], "queries": [t]}
            for t in topics]}


def slow_responder(script: AnalystScript):
    return stub_responder(script, delay_s=LLM_DELAY_S)


@pytest.fixture
async def llm_kb(tmp_path):
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(write_corpus(tmp_path / "corpus"))
    yield kb
    await kb.close()


def llm_researcher(kb: KnowledgeBase, stub: OpenAIStub, limit: int) -> Researcher:
    settings = kb.settings.model_copy(update={
        "engine": "llm", "base_url": stub.base_url, "api_key": "sk-test", "model_fast": "stub-model",
        "model_strong": "stub-model", "llm_concurrency": limit, "llm_max_retries": 0,
        "fallback_offline": False, "branch_concurrency": 4,
    })
    return Researcher(kb, settings=settings)


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_llm_requests_in_flight_never_exceed_the_limit(llm_kb, limit):
    with OpenAIStub(slow_responder(FourWayAnalyst())) as stub:
        started = time.perf_counter()
        report = await llm_researcher(llm_kb, stub, limit).run(QUESTION)
        wall = time.perf_counter() - started
        calls, peak = len(stub.chat_requests), stub.max_in_flight
    print(f"\nllm_concurrency={limit}: {calls} requests, at most {peak} in flight, {wall:.1f} s")
    assert report.engine == "llm" and len(report.plan.sub_questions) == 4
    assert_verified(report)
    # Both ways: never above the limit, and the limit is reached (four branches want more).
    assert peak == limit


async def test_llm_limit_is_per_run(llm_kb):
    with OpenAIStub(slow_responder(FourWayAnalyst())) as stub:
        researcher = llm_researcher(llm_kb, stub, 1)
        reports = await asyncio.gather(researcher.run(QUESTION), researcher.run(QUESTION))
        peak = stub.max_in_flight
    print(f"\ntwo runs at llm_concurrency=1: at most {peak} in flight")
    assert all(r.engine == "llm" for r in reports)
    assert peak == 2
