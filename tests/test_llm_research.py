"""The LLM engine against what real models do: no tool calls, small windows, summaries written last."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from pydantic import SecretStr

from agents.engine import SUMMARY_LAST, OutlineTask, ReflectTask, ResearchTask, SummaryTask, WriteTask
from agents.fallback import FallbackEngine
from agents.llm import prompts
from agents.llm.budget import (
    cut,
    estimate_tokens,
    fit_evidence,
    fit_messages,
    messages_tokens,
    prompt_budget,
)
from agents.llm.engine import LLMEngine
from agents.llm.research import research
from agents.llm.schemas import EvidenceReview, ReportOutline
from agents.llm.tools import TOOLS, dispatch, parse_text_calls, tool_schemas
from agents.offline.engine import OfflineEngine
from agents.toolbox import Toolbox
from agents.trace import Trace
from dossier.research import Researcher
from dossier.testing import ScriptedChatModel, Turn, ai_tool_call, scripted_chat_model
from graphs.config import ResearchSettings
from graphs.context import default_context, settings_key
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Evidence, Plan, Section, SectionPlan, SubQuestion

EV = re.compile(r"\[ev:([0-9a-f]{10})\]")


@pytest.fixture
async def llm_kb(tmp_path):
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb", engine="llm"))
    await kb.ingest(write_corpus(tmp_path / "corpus"))
    yield kb
    await kb.close()


def analyst(script: AnalystScript, research_reply=None) -> ScriptedChatModel:
    """The analyst for every role; ``research_reply(messages)`` replaces its research turns."""
    def answer(turn: Turn):
        if research_reply is not None and "search_documents" in turn.tools:
            return research_reply(turn.messages)
        return script(turn)
    return scripted_chat_model(answer)


def run_with(kb, model, **settings) -> Researcher:
    s = kb.settings.model_copy(update={"engine": "llm", **settings})
    return Researcher(kb, settings=s, chat_models={"fast": model, "strong": model})


def task(question="What does RAG cost?", needs="both") -> ResearchTask:
    sq = SubQuestion(id="q1", question=question, needs=needs, tables=["costs"], queries=["RAG cost"])
    return ResearchTask(question=QUESTION, sub_question=sq, round=1, language="en")


# -- tools defined once -----------------------------------------------------------------------------

def test_tool_names_in_prompt_schema_and_dispatch_are_one():
    offered = [t["function"]["name"] for t in tool_schemas()]
    assert offered == list(TOOLS) == ["search_documents", "list_tables", "describe_table", "run_sql"]
    system = prompts.RESEARCH.messages[0].prompt.template
    assert all(name in system for name in offered)
    assert not re.search(r"SearchDocuments|RunSql|ListTables|DescribeTable", system)
    manual = tool_schemas()[0]["function"]
    assert manual["description"].startswith("Search the document corpus")
    assert "query" in manual["parameters"]["required"]


async def test_research_offers_the_named_tools_and_honours_tool_search_k(llm_kb):
    model = analyst(AnalystScript(), research_reply=lambda m: (
        ai_tool_call("search_documents", {"query": "RAG cost"}) if len(m) == 2 else "Done."))
    report = await run_with(llm_kb, model, tool_search_k=2).run(QUESTION)
    research_calls = [c for c in model.calls if "search_documents" in c.tool_names]
    assert research_calls and all(c.tool_names == list(TOOLS) for c in research_calls)
    results = [m.content for c in research_calls for m in c.messages if isinstance(m, ToolMessage)]
    assert results and all(0 < len(EV.findall(r)) <= 2 for r in results)  # tool_search_k passages at most
    assert report.failures == [] and report.engine == "llm"


class _CountingKB:
    def __init__(self):
        self.ks = []

    async def search(self, query, k, source=None):
        self.ks.append(k)
        return []


async def test_dispatch_defaults_k_to_the_setting_and_reports_bad_arguments():
    kb = _CountingKB()
    toolbox = Toolbox(kb, search_k=3)
    await dispatch("search_documents", {"query": "budget"}, toolbox)
    await dispatch("search_documents", {"query": "budget", "k": 5}, toolbox)
    assert kb.ks == [3, 5] and toolbox.calls[0].arguments["k"] == 3
    assert "bad arguments for search_documents: query" in await dispatch("search_documents", {}, toolbox)
    assert "unknown tool 'SearchDocuments'" in await dispatch("SearchDocuments", {"query": "x"}, toolbox)


# -- research without tool calls ----------------------------------------------------------------------

@pytest.mark.parametrize("reply, expected", [
    ("search_documents: RAG cost 2026", [("search_documents", {"query": "RAG cost 2026"})]),
    ("I will look.\nrun_sql(SELECT * FROM costs)\nlist_tables", [("run_sql", {"sql": "SELECT * FROM costs"}),
                                                                ("list_tables", {})]),
    ('<tool_call>\n[{"name": "search_documents", "arguments": {"query": "fine-tuning"}}]\n</tool_call>',
     [("search_documents", {"query": "fine-tuning"})]),
    ('```json\n{"tool": "describe_table", "args": {"name": "costs"}}\n```', [("describe_table", {"name": "costs"})]),
    ("RAG costs less than fine-tuning; the search documents show it.", []),
])
def test_plain_text_tool_protocol(reply, expected):
    assert [(c["name"], c["args"]) for c in parse_text_calls(reply)] == expected


async def test_a_model_that_never_calls_tools_still_gathers_evidence(llm_kb):
    model = analyst(AnalystScript(), research_reply=lambda m: "RAG is probably cheaper.")
    report = await run_with(llm_kb, model).run(QUESTION)
    assert report.engine == "llm" and report.failures == []  # a recovery, not a fall back to offline
    assert {e.kind for e in report.evidence} == {"passage", "sql"}
    assert report.verification.markers_resolved == report.verification.markers_total > 0
    assert any("made no tool call" in note for note in report.llm_notes)  # the Method section says so


async def test_the_no_tool_fallback_runs_planned_queries_and_is_recorded(llm_kb):
    engine = LLMEngine(llm_kb.settings, chat_models={"fast": ScriptedChatModel(responder=lambda m: "No tools.")})
    toolbox, trace = Toolbox(llm_kb, search_k=2), Trace()
    finding = await research(engine.client, llm_kb.settings, task(), toolbox=toolbox, trace=trace)
    assert {c.tool for c in toolbox.calls} == {"search_documents", "run_sql"}
    assert toolbox.calls[0].arguments == {"query": "RAG cost", "k": 2, "source": None}
    assert any(e.kind == "sql" for e in toolbox.evidence.values())
    assert trace.fallbacks and "made no tool call" in trace.fallbacks[0] and "planned queries" in finding.notes
    assert trace.failures == []


async def test_text_protocol_calls_are_run_without_the_fallback(llm_kb):
    replies = iter(["search_documents: fine-tuning cost", "Found it."])
    model = ScriptedChatModel(responder=lambda m: next(replies))
    engine = LLMEngine(llm_kb.settings, chat_models={"fast": model})
    toolbox, trace = Toolbox(llm_kb), Trace()
    await research(engine.client, llm_kb.settings, task(), toolbox=toolbox, trace=trace)
    assert [c.arguments["query"] for c in toolbox.calls] == ["fine-tuning cost"] and toolbox.evidence
    assert "[ev:" in model.calls[1].last_user_text  # the results went back to the model
    assert trace.fallbacks == ["research q1: the model wrote its tool calls as text (1 turn(s)); they were run"]


async def test_first_turn_can_name_the_function(llm_kb):
    model = ScriptedChatModel(responses=[ai_tool_call("search_documents", {"query": "RAG"}), "Done."])
    s = llm_kb.settings.model_copy(update={"tool_choice_first": "search_documents"})
    engine = LLMEngine(s, chat_models={"fast": model})
    await research(engine.client, s, task(), toolbox=Toolbox(llm_kb), trace=Trace())
    assert model.calls[0].forced_tool == "search_documents" and model.calls[1].tool_choice is None


# -- context budgeting -------------------------------------------------------------------------------

def _evidence(n: int) -> dict[str, Evidence]:
    filler = "The committee met on Tuesday and discussed the catering for the annual staff event. " * 8
    evs = {f"{i:010x}": Evidence(id=f"{i:010x}", kind="passage", title=f"minutes {i}", text=filler)
           for i in range(1, n)}
    key = "abcdef0123"  # the one passage about the question, last in id order
    evs[key] = Evidence(id=key, kind="passage", title="Budget",
                        text="The RAG programme budget for 2026 is 1.8M CNY. It covers five engineers.")
    return evs


@pytest.mark.parametrize("window", [4096, 131072])
async def test_every_role_fits_the_window_and_keeps_the_best_evidence(window):
    evidence = _evidence(400)
    s = ResearchSettings(context_tokens=window)
    plan = Plan(question="What is the RAG programme budget?", sub_questions=[
        SubQuestion(id="q1", question="What is the RAG programme budget for 2026?")])
    from tools.vocabulary import Finding
    findings = [Finding(sub_question_id="q1", round=1, evidence_ids=sorted(evidence))]
    model = ScriptedChatModel(responder=_answer_any)
    engine = LLMEngine(s, chat_models={"fast": model, "strong": model})
    kw = dict(question=plan.question, plan=plan, evidence=evidence)
    trace = Trace()
    await engine.reflect(ReflectTask(findings=findings, round=1, **kw), trace=trace)
    outline = await engine.outline(OutlineTask(findings=findings, language="en", reflection=None, **kw), trace=trace)
    body = outline.sections[1]
    written = await engine.write(WriteTask(section=body, language="en", reflection=None, outline=outline, **kw),
                                 trace=trace)
    await engine.summarize(SummaryTask(section=outline.sections[0], language="en", reflection=None,
                                       sections=[written.model_copy(update={"order": 1})], **kw), trace=trace)
    for call, role in zip(model.calls, ["reflect", "outline", "write", "write"]):
        assert messages_tokens(call.messages) <= prompt_budget(s, role), role
        assert "[ev:abcdef0123]" in "".join(m.content for m in call.messages), role
        shown = len(EV.findall(call.messages[-1].content))
        assert (shown < 100) if window == 4096 else (shown >= 100), (role, shown)


def _answer_any(messages, tools, kwargs):
    names = [t["function"]["name"] for t in tools or []]
    if "EvidenceReview" in names:
        return EvidenceReview(reviews=[])
    if "ReportOutline" in names:
        return ReportOutline(title="Budget", sections=[
            {"title": "Executive summary", "goal": "answer"},
            {"title": "Budget", "goal": "the 2026 budget"},  # no ids: the writer sees all the evidence
        ])
    return "The budget is 1.8M CNY [ev:abcdef0123]."


@pytest.mark.parametrize("window", [4096, 131072])
def test_plan_and_research_prompts_fit(window):
    s = ResearchSettings(context_tokens=window)
    results = [ToolMessage("\n\n".join(f"[ev:{i:010x}] doc\n" + "word " * 120 for i in range(k * 6, k * 6 + 6)),
                           tool_call_id=f"c{k}") for k in range(6)]
    conversation = [SystemMessage("research"), HumanMessage("q1"), *[m for r in results for m in
                                                                     (ai_tool_call("search_documents", {}), r)]]
    fitted = fit_messages(conversation, prompt_budget(s, "research"))
    assert messages_tokens(fitted) <= prompt_budget(s, "research")
    assert set(EV.findall(" ".join(m.content for m in fitted))) == set(EV.findall(" ".join(
        m.content for m in conversation)))  # shortened results keep their evidence ids
    assert fitted[-1].content == conversation[-1].content  # the newest result is shown whole


def test_passages_are_cut_at_sentence_boundaries_only():
    text = "First sentence has 1.5 million. Second one is here. Third sentence runs on and on."
    assert cut(text, 40) == "First sentence has 1.5 million."
    assert cut(text, 10) == ""
    assert estimate_tokens("预算为一百八十万元") == 9 and estimate_tokens("abcdefgh") == 2
    fitted = fit_evidence(_evidence(3), ["0000000001", "abcdef0123"], focus="RAG programme budget", budget=60)
    assert fitted.kept[0] == "abcdef0123"  # ranked first although listed last
    assert all(part.startswith("[ev:") for part in fitted.text.split("\n\n"))


# -- synthesis --------------------------------------------------------------------------------------

class _Outliner(AnalystScript):
    def outline(self, prompt: str) -> dict:
        ids = list(dict.fromkeys(EV.findall(prompt)))
        return {"title": "RAG versus fine-tuning", "sections": [
            {"title": "Executive summary", "goal": "answer", "evidence_ids": ids},
            {"title": "RAG cost", "goal": "what RAG costs", "sub_question_ids": ["q1"], "evidence_ids": ids},
            {"title": "Fine-tuning cost", "goal": "what fine-tuning costs", "sub_question_ids": ["q2"],
             "evidence_ids": ids},
        ]}


async def test_summary_is_written_last_from_the_sections_and_verified(llm_kb):
    model = analyst(_Outliner(invent_citation=True))
    report = await run_with(llm_kb, model).run(QUESTION)
    kinds = ["summary" if c.messages[0].content.startswith("You write the executive summary") else "write"
             for c in model.calls if c.messages[0].content.startswith("You write")]
    assert kinds == ["write", "write", "summary"]
    summary_call = next(c for c in model.calls if c.messages[0].content.startswith("You write the executive"))
    assert "## RAG cost" in summary_call.last_user_text and "## Fine-tuning cost" in summary_call.last_user_text
    assert next(s.title for s in report.sections) == "Executive summary"
    assert [s.title for s in report.sections].count("Executive summary") == 1  # the model's own was dropped
    assert all("deadbeef00" not in s.markdown for s in report.sections)
    assert "deadbeef00" in report.verification.unknown_marker_ids  # the summary's invented id went too
    writer = next(c for c in model.calls if "Section: RAG cost" in c.last_user_text)
    assert "- Fine-tuning cost: what fine-tuning costs" in writer.last_user_text
    assert "- RAG cost:" not in writer.last_user_text and "Executive summary" not in writer.last_user_text


async def test_a_failed_summary_is_written_by_the_offline_engine(llm_kb):
    plan = Plan(question=QUESTION, sub_questions=[SubQuestion(id="q1", question="What does RAG cost?")])
    toolbox = Toolbox(llm_kb)
    await toolbox.search_documents("RAG cost")
    broken = ScriptedChatModel(responses=[RuntimeError("down")] * 10)
    engine = FallbackEngine(LLMEngine(llm_kb.settings, chat_models={"fast": broken, "strong": broken}),
                            OfflineEngine(llm_kb))
    planned = SectionPlan(id=SUMMARY_LAST, title="Executive summary", sub_question_ids=["q1"],
                          evidence_ids=sorted(toolbox.evidence))
    trace = Trace()
    task = SummaryTask(section=planned, question=QUESTION, plan=plan, evidence=toolbox.evidence, language="en",
                       reflection=None, sections=[Section(id="s1", title="Cost", markdown="x", order=1)])
    section = await engine.summarize(task, trace=trace)
    assert section.id == SUMMARY_LAST and "[ev:" in section.markdown
    assert trace.failures and "continued offline" in trace.failures[0]


# -- the engine cache --------------------------------------------------------------------------------

async def test_engine_cache_is_keyed_on_the_real_secret(tmp_path, capsys):
    base = graph_settings(tmp_path / "kb", engine="llm", base_url="http://127.0.0.1:9/v1")
    one, two = (base.model_copy(update={"api_key": SecretStr(k)}) for k in ("sk-secret-one", "sk-secret-two"))
    assert one.model_dump_json() == two.model_dump_json()  # why the dump alone was not a key
    assert settings_key(one) != settings_key(two) and settings_key(one) == settings_key(one.model_copy())
    assert "sk-secret" not in settings_key(one)
    a, b, a2 = [await default_context(settings=s) for s in (one, two, one.model_copy())]
    assert a.engine.primary is not b.engine.primary and a.engine.primary is a2.engine.primary
    assert "sk-secret" not in capsys.readouterr().out
    await a.kb.close()
    await b.kb.close()
