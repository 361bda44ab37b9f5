"""The LLM engine through the graph with a scripted chat model: roles, tools, verification, fallback."""

from __future__ import annotations

import pytest

from dossier.research import Researcher
from dossier.testing import ScriptedChatModel, scripted_chat_model
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase


@pytest.fixture
async def llm_kb(tmp_path):
    paths = write_corpus(tmp_path / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb", engine="llm"))
    await kb.ingest(paths)
    yield kb
    await kb.close()


def scripted(script: AnalystScript, **kw) -> ScriptedChatModel:
    return scripted_chat_model(script, **kw)


def researcher(kb, script, **settings) -> tuple[Researcher, ScriptedChatModel]:
    model = scripted(script)
    s = kb.settings.model_copy(update={"engine": "llm", **settings})
    return Researcher(kb, settings=s, chat_models={"fast": model, "strong": model}), model


async def test_llm_engine_end_to_end(llm_kb):
    script = AnalystScript()
    r, model = researcher(llm_kb, script)
    report = await r.run(QUESTION)
    assert script.log[0] == "plan" and "reflect" in script.log and "outline" in script.log
    assert script.log.count("tool:sql") == 2 and script.log.count("write") == 2
    assert [sq.question for sq in report.plan.sub_questions] == ["What does RAG cost?", "What does fine-tuning cost?"]
    assert report.engine == "llm" and report.failures == [] and report.stop_reason == "covered"
    assert {e.kind for e in report.evidence} == {"passage", "sql"}
    assert report.verification.markers_resolved == report.verification.markers_total > 0
    assert report.usage.llm_calls == len(model.calls) and report.usage.prompt_tokens > 0
    sql_calls = [c for f in report.evidence if f.kind == "sql" for c in [f.sql]]
    assert sql_calls and all("costs" in s for s in sql_calls)


async def test_verification_removes_invented_id_and_flags_invented_number(llm_kb):
    r, _ = researcher(llm_kb, AnalystScript(invent_citation=True, invent_number=True))
    report = await r.run(QUESTION)
    v = report.verification
    assert v.unknown_markers_removed >= 1 and "deadbeef00" in v.unknown_marker_ids
    assert any("999" in claim for claim in v.flagged_claims)
    assert all("deadbeef00" not in ref.evidence_id for ref in report.references)
    assert all("[ev:" not in s.markdown for s in report.sections)


async def test_token_budget_stops_research(llm_kb):
    r, _ = researcher(llm_kb, AnalystScript(always_gap=True), token_budget=1000, max_rounds=5)
    report = await r.run(QUESTION)
    assert report.stop_reason == "token_budget"


async def test_llm_failure_falls_back_to_offline(llm_kb):
    script = AnalystScript()
    r, model = researcher(llm_kb, script)
    model.queue(RuntimeError("endpoint exploded"))  # the planner's call fails after the client's retries
    report = await r.run(QUESTION)
    assert report.failures and "plan" in report.failures[0] and "continued offline" in report.failures[0]
    assert "fell back to offline" in report.engine
    assert report.sections and report.references
    assert script.log == []  # nothing after the failure went to the model


async def test_fallback_disabled_raises(llm_kb):
    r, model = researcher(llm_kb, AnalystScript(), fallback_offline=False)
    model.queue(RuntimeError("endpoint exploded"))
    with pytest.raises(RuntimeError, match="exploded"):
        await r.run(QUESTION)


async def test_branches_run_concurrently(llm_kb):
    script = AnalystScript()
    model = scripted(script, delay_s=0.2)
    s = llm_kb.settings.model_copy(update={"engine": "llm", "llm_concurrency": 4})
    await Researcher(llm_kb, settings=s, chat_models={"fast": model, "strong": model}).run(QUESTION)
    assert model.max_concurrency >= 2  # two research branches (and two writers) overlapped


async def test_llm_concurrency_limit_is_respected(llm_kb):
    model = scripted(AnalystScript(), delay_s=0.1)
    s = llm_kb.settings.model_copy(update={"engine": "llm", "llm_concurrency": 1})
    await Researcher(llm_kb, settings=s, chat_models={"fast": model, "strong": model}).run(QUESTION)
    assert model.max_concurrency == 1


async def test_injected_drop_table_is_refused(llm_kb):
    script = AnalystScript(obey_injection=True)
    r, _ = researcher(llm_kb, script)
    report = await r.run(QUESTION)
    assert "tool:injected" in script.log
    assert (await llm_kb.sql("SELECT count(*) FROM costs")).rows[0][0] == 4
    assert report.verification.unknown_markers_removed >= 1


async def test_cost_budget_stops_research(llm_kb):
    r, _ = researcher(llm_kb, AnalystScript(always_gap=True), price_per_1k_prompt_usd=1.0,
                      cost_budget_usd=0.5, max_rounds=5)
    report = await r.run(QUESTION)
    assert report.stop_reason == "cost_budget" and report.usage.cost_usd >= 0.5


async def test_a_question_the_evidence_does_not_hold_is_abstained_in_code(llm_kb):
    """The model writes a confident summary whatever it was given; the check in code says what the offline
    engine would say (issue 11: the LLM engine gets the same abstention rule as a check, not only a prompt)."""
    r, _ = researcher(llm_kb, AnalystScript())
    report = await r.run("What is the recommended PostgreSQL shared_buffers setting for a 64 GB server?")
    summary = report.sections[0].markdown
    assert summary.startswith("The knowledge base does not contain"), summary
    assert any("abstained in code" in note for note in report.llm_notes)
    answered = await researcher(llm_kb, AnalystScript())[0].run(QUESTION)
    assert not answered.sections[0].markdown.startswith("The knowledge base does not contain")
