"""The research graph end to end on the offline engine: report, determinism, stop rules, review, resume."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agents.offline.engine import OfflineEngine
from dossier.events import DoneEvent, EvidenceEvent, GapEvent, PlanEvent, SectionEvent, ToolCallEvent
from dossier.render import render_markdown
from dossier.research import Researcher, RunNotFound
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import SubQuestion


@pytest.fixture
async def graph_kb(tmp_path):
    paths = write_corpus(tmp_path / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(paths)
    yield kb
    await kb.close()


async def test_offline_report_cites_passages_and_sql(graph_kb):
    report = await Researcher(graph_kb).run(QUESTION)
    assert 2 <= len(report.plan.sub_questions) <= 8
    assert report.sections and report.references
    kinds = {e.kind for e in report.evidence}
    assert kinds == {"passage", "sql"}
    cited = {r.evidence_id for r in report.references}
    assert cited <= {e.id for e in report.evidence}
    assert any(e.kind == "sql" for e in report.evidence if e.id in cited)
    v = report.verification
    assert v.markers_total > 0 and v.markers_resolved == v.markers_total and v.unknown_markers_removed == 0
    markdown = render_markdown(report)
    assert "[ev:" not in "".join(s.markdown for s in report.sections)
    assert "## References" in markdown and "```sql" in markdown
    assert report.stop_reason in {"covered", "max_rounds", "no_progress"}
    assert report.engine == "offline" and report.kb_version["embedder"].startswith("hash")


async def test_offline_engine_is_deterministic(graph_kb):
    researcher = Researcher(graph_kb)
    first, second = await researcher.run(QUESTION), await researcher.run(QUESTION)
    assert [e.id for e in first.evidence] == [e.id for e in second.evidence]
    assert [s.markdown for s in first.sections] == [s.markdown for s in second.sections]
    assert first.run_id != second.run_id


async def test_chinese_question_gets_chinese_report(graph_kb):
    report = await Researcher(graph_kb).run("检索增强生成和微调的成本有什么区别？")
    assert report.language == "zh"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in report.sections[0].title)


async def test_stream_yields_typed_events_in_order(graph_kb):
    kinds = [type(e) async for e in Researcher(graph_kb).stream(QUESTION)]
    assert kinds[0] is PlanEvent and kinds[-1] is DoneEvent
    for expected in (ToolCallEvent, EvidenceEvent, GapEvent, SectionEvent):
        assert expected in kinds
    assert kinds.index(GapEvent) < kinds.index(SectionEvent)


async def test_stop_rule_max_rounds(graph_kb, monkeypatch):
    settings = graph_kb.settings.model_copy(update={"max_rounds": 1})
    from agents.offline import engine as offline_engine
    from tools.vocabulary import Gap, Reflection

    def never_covered(plan, findings, evidence, *, round):
        gaps = [Gap(sub_question_id=sq.id, description="more", follow_up_queries=[f"x {round}"])
                for sq in plan.sub_questions]
        return Reflection(covered={sq.id: False for sq in plan.sub_questions}, gaps=gaps)

    monkeypatch.setattr(offline_engine, "reflect_offline", never_covered)
    report = await Researcher(graph_kb, settings=settings).run(QUESTION)
    assert report.stop_reason == "max_rounds" and report.rounds == 1
    assert report.gaps  # the gaps that remained are reported


async def test_stop_rule_time_budget(graph_kb, monkeypatch):
    settings = graph_kb.settings.model_copy(update={"time_budget_s": 0.001, "max_rounds": 5})
    from agents.offline import engine as offline_engine
    from tools.vocabulary import Gap, Reflection

    def never_covered(plan, findings, evidence, *, round):
        return Reflection(covered={sq.id: False for sq in plan.sub_questions},
                          gaps=[Gap(sub_question_id="q1", description="more", follow_up_queries=["y"])])

    monkeypatch.setattr(offline_engine, "reflect_offline", never_covered)
    report = await Researcher(graph_kb, settings=settings).run(QUESTION)
    assert report.stop_reason == "time_budget"


async def test_stop_rule_no_progress(graph_kb, monkeypatch):
    settings = graph_kb.settings.model_copy(update={"max_rounds": 5})
    from agents.offline import engine as offline_engine
    from tools.vocabulary import Gap, Reflection

    def same_gap(plan, findings, evidence, *, round):
        # Follow-ups that were already tried bring no new evidence: the loop must stop itself.
        return Reflection(covered={sq.id: False for sq in plan.sub_questions},
                          gaps=[Gap(sub_question_id="q1", description="more", follow_up_queries=[QUESTION])])

    monkeypatch.setattr(offline_engine, "reflect_offline", same_gap)
    report = await Researcher(graph_kb, settings=settings).run(QUESTION)
    assert report.stop_reason == "no_progress" and report.rounds == 2


async def test_plan_approval_round_trip(graph_kb):
    researcher = Researcher(graph_kb, approve_plan=True)
    events = [e async for e in researcher.stream(QUESTION)]
    assert isinstance(events[-1], PlanEvent) and events[-1].awaiting_approval
    run_id = events[-1].run_id
    plan = await researcher.pending_plan(run_id)
    assert plan is not None
    edited = plan.model_copy(update={"sub_questions": [
        plan.sub_questions[0],
        SubQuestion(id="q9", question="What is the 2026 RAG programme budget?", needs="documents",
                    queries=["RAG programme budget 2026"]),
    ]})
    report = await researcher.resume(run_id, plan=edited)
    assert [sq.question for sq in report.plan.sub_questions] == [sq.question for sq in edited.sub_questions]
    assert (await researcher.runs())[0].status == "done"


async def test_run_with_review_callback(graph_kb):
    seen = []

    def review(plan):
        seen.append(plan)
        return plan.model_copy(update={"sub_questions": plan.sub_questions[:2]})

    report = await Researcher(graph_kb, approve_plan=True).run(QUESTION, review=review)
    assert seen and len(report.plan.sub_questions) == 2


async def test_resume_unknown_run(graph_kb):
    with pytest.raises(RunNotFound):
        await Researcher(graph_kb).resume("no-such-run")


KILL_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from agents.offline.engine import OfflineEngine
from dossier.research import Researcher
from tests.graph_fixtures import QUESTION, graph_settings
from tools.knowledge_base import KnowledgeBase

kb_dir, marker = Path(sys.argv[1]), Path(sys.argv[2])
original = OfflineEngine.research

async def slow_second(self, task, **kw):
    if task.sub_question.id == "q2":
        marker.write_text("q2 started")
        await asyncio.sleep(120)  # killed here
    return await original(self, task, **kw)

OfflineEngine.research = slow_second

async def main():
    kb = await KnowledgeBase.open(settings=graph_settings(kb_dir))
    await Researcher(kb).run(QUESTION, run_id="killed-run")

asyncio.run(main())
"""


async def test_resume_after_kill_matches_uninterrupted_run(graph_kb, tmp_path, monkeypatch):
    script = tmp_path / "kill_me.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    marker = tmp_path / "marker"
    await graph_kb.close()  # the child opens the same knowledge base
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(script), str(graph_kb.path), str(marker)], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        await asyncio.sleep(0.1)
    assert marker.exists(), "the child never reached the second research branch"
    await asyncio.sleep(1.0)  # let the first branch finish and its writes be checkpointed
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    calls: list[tuple[str, int]] = []
    original = OfflineEngine.research

    async def counting(self, task, **kw):
        calls.append((task.sub_question.id, task.round))
        return await original(self, task, **kw)

    monkeypatch.setattr(OfflineEngine, "research", counting)
    researcher = Researcher(graph_kb)
    runs = {r.run_id: r for r in await researcher.runs()}
    assert runs["killed-run"].status == "interrupted"
    resumed = await researcher.resume("killed-run")
    assert ("q1", 1) not in calls, "a branch that finished before the kill was run again"
    assert ("q2", 1) in calls
    fresh = await researcher.run(QUESTION)
    assert [e.id for e in resumed.evidence] == [e.id for e in fresh.evidence]
    assert [s.markdown for s in resumed.sections] == [s.markdown for s in fresh.sections]
