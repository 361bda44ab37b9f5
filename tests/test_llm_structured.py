"""Structured output on every kind of server, reasoning traces, bounded calls (issue 13, items 2, 4, 7, 8).

Through the real ChatOpenAI client against the OpenAI stub with a server personality: one that
refuses json_schema (llama-cpp-python), one that takes only json_object, only tools, only text.
"""

from __future__ import annotations

import json
import time

import pytest
from langchain_core.messages import HumanMessage

from agents.config import EngineSettings
from agents.llm.client import ChatClient, MalformedOutput, make_chat_model
from agents.llm.schemas import EvidenceReview, ReportOutline, ResearchPlan
from agents.llm.structured import (
    FormatUnsupported,
    extract_json,
    forget_methods,
    remembered,
    repair_json,
    strip_reasoning,
)
from agents.trace import Trace
from dossier.render import render_markdown
from dossier.research import Researcher
from dossier.testing import OpenAIStub, Personality, Reply, stub_responder
from dossier.testing.openai_stub import schema_name
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase

PLAN = {"rationale": "split", "sub_questions": [{"question": "What does RAG cost?", "needs": "both"}]}
REVIEW = {"reviews": [{"sub_question_id": "q1", "answered": True}], "contradictions": []}
OUTLINE = {"title": "Costs", "sections": [{"title": "RAG", "evidence_ids": []}]}
PAYLOADS = {"ResearchPlan": PLAN, "EvidenceReview": REVIEW, "ReportOutline": OUTLINE}
# personality -> (method remembered, requests of the first structured call with llm_max_retries=1)
EXPECTED = {
    "full": ("json_schema", 1),
    "no_json_schema": ("json_object", 3),  # HTTP 500 is retried by the SDK once before it counts as a refusal
    "json_object_only": ("json_object", 2),
    "tools_only": ("function_calling", 3),
    "text_only": ("text", 1),  # the prose answer to json_schema parses: the server ignores formats
}


@pytest.fixture(autouse=True)
def _fresh_memory():
    forget_methods()
    yield
    forget_methods()


def structured_responder(request: dict) -> Reply:
    name = schema_name(request)
    return Reply.json(PAYLOADS[name]) if name in PAYLOADS else Reply.text("Plain answer.")


def client_for(stub: OpenAIStub, **overrides) -> ChatClient:
    fields = {"llm_max_retries": 1, "llm_timeout_s": 5, **overrides}
    settings = EngineSettings(base_url=stub.base_url, api_key="sk-test-structured", model_fast="stub-fast",
                              model_strong="stub-strong", **fields)
    models = {"fast": make_chat_model(settings, "stub-fast"), "strong": make_chat_model(settings, "stub-strong")}
    return ChatClient(models, concurrency=2, stream_retries=1, settings=settings)


async def three_calls(client: ChatClient, trace: Trace) -> None:
    plan = await client.structured("fast", ResearchPlan, [HumanMessage("plan it")], trace)
    review = await client.structured("fast", EvidenceReview, [HumanMessage("review it")], trace)
    outline = await client.structured("fast", ReportOutline, [HumanMessage("outline it")], trace)
    assert plan.sub_questions[0].question == "What does RAG cost?"
    assert review.reviews[0].answered and outline.title == "Costs"


# --------------------------------------------------------------------------- parsing and repair
@pytest.mark.parametrize("text, expected", [
    ('```json\n{"a": 1, "b": [1, 2,],}\n```', {"a": 1, "b": [1, 2]}),
    ("Sure! {'a': True, 'b': None, 'c': 'it\\'s'} hope that helps", {"a": True, "b": None, "c": "it's"}),
    ('<think>draft {"x": 1}</think>\n{"a": "q\\"x"}', {"a": 'q"x'}),
    ('{"a": [1, {"b": "cut off', {"a": [1, {"b": "cut off"}]}),
    ('the template opened it</think>{"a": 1}', {"a": 1}),
    ('Here:\n```\n{"a": "} in a string", "b": 2}\n```\nDone.', {"a": "} in a string", "b": 2}),
])
def test_json_is_cut_out_of_prose_and_repaired(text, expected):
    assert extract_json(text) == expected


def test_repair_leaves_valid_json_alone_and_unclosed_thinking_yields_nothing():
    assert json.loads(repair_json('{"a": "x, ]", "b": [true, null]}')) == {"a": "x, ]", "b": [True, None]}
    with pytest.raises(json.JSONDecodeError):
        extract_json('<think>still thinking {"a": 1}')
    assert strip_reasoning("<thinking>x</thinking>Answer <reasoning>y</reasoning>done") == "Answer done"


def test_a_bare_non_ascii_word_is_a_json_error_not_a_crash():
    # It used to raise AttributeError (no ASCII word to match); callers handle only JSONDecodeError.
    with pytest.raises(json.JSONDecodeError):
        extract_json('{"a": café}')


# --------------------------------------------------------------------------- probe and remember
@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_each_server_gets_a_method_that_works_and_it_is_remembered(kind):
    method, first_call_requests = EXPECTED[kind]
    personality = Personality(kind, tools=kind != "json_object_only", think=True, sloppy=True)
    with OpenAIStub(structured_responder, personality=personality) as stub:
        client, trace = client_for(stub), Trace()
        await three_calls(client, trace)
        assert len(stub.chat_requests) == first_call_requests + 2  # later calls do not probe again
        assert remembered((stub.base_url, "stub-fast")) == method
        # every later call asks with that method only
        assert all(_method_of(r.json) == method for r in stub.chat_requests[first_call_requests:])
    assert f"reflect: structured output via {method} (stub-fast)" in trace.llm_notes
    assert stub.errors == []


def _method_of(request: dict) -> str:
    fmt = (request.get("response_format") or {}).get("type")
    return fmt or ("function_calling" if request.get("tools") else "text")


async def test_the_refusal_and_the_fallback_are_recorded():
    with OpenAIStub(structured_responder, personality=Personality("tools_only")) as stub:
        trace = Trace()
        await client_for(stub).structured("fast", ResearchPlan, [HumanMessage("plan it")], trace)
    assert trace.llm_notes[0].startswith("plan: json_schema refused by the server (Error code: 400")
    assert trace.llm_notes[0].endswith("; trying json_object")
    assert trace.llm_notes[-1] == "plan: structured output via function_calling (stub-fast)"


async def test_json_object_carries_the_schema_in_request_and_prompt():
    with OpenAIStub(structured_responder, personality=Personality("no_json_schema")) as stub:
        await client_for(stub, structured_output="json_object").structured(
            "fast", ResearchPlan, [HumanMessage("plan it")], Trace())
    (request,) = stub.chat_requests  # an explicit method: no probing
    assert request.json["response_format"]["type"] == "json_object"
    assert request.json["response_format"]["schema"]["title"] == "ResearchPlan"
    assert "follow the JSON schema `ResearchPlan`" in request.json["messages"][-1]["content"]


async def test_an_explicit_method_the_server_refuses_fails_clearly():
    with OpenAIStub(structured_responder, personality=Personality("json_object_only")) as stub:
        with pytest.raises(FormatUnsupported, match="json_schema refused by the server"):
            await client_for(stub, structured_output="json_schema").structured(
                "fast", ResearchPlan, [HumanMessage("plan it")], Trace())
        assert len(stub.chat_requests) == 1


async def test_text_mode_reasks_once_with_the_validation_error_then_fails():
    with OpenAIStub(lambda r: Reply.text("```json\n{\"rationale\": \"no sub-questions key\"}\n```")) as stub:
        with pytest.raises(MalformedOutput, match="ResearchPlan"):
            await client_for(stub, structured_output="text").structured(
                "fast", ResearchPlan, [HumanMessage("plan it")], Trace())
    assert len(stub.chat_requests) == 2
    assert "did not match the schema" in json.dumps(stub.chat_requests[1].json["messages"])


async def test_a_tool_call_the_server_does_not_make_moves_on_to_text():
    """A server that takes tools but answers without calling one (llama-server --jinja with a small model)."""
    def responder(request: dict) -> Reply:
        if request.get("response_format"):
            return Reply.error(400, "response_format is not supported")
        return Reply.text("```json\n" + json.dumps(PLAN) + "\n```")

    with OpenAIStub(responder) as stub:
        trace = Trace()
        plan = await client_for(stub).structured("fast", ResearchPlan, [HumanMessage("plan it")], trace)
        assert plan.rationale == "split" and remembered((stub.base_url, "stub-fast")) == "text"
    assert "plan: the server ignored function_calling and answered in prose; using text" in trace.llm_notes


# --------------------------------------------------------------------------- reasoning traces
async def test_reasoning_is_stripped_from_text_and_streamed_answers():
    with OpenAIStub(lambda r: Reply.text("The answer [ev:0123456789]."),
                    personality=Personality("full", think=True)) as stub:
        client, trace = client_for(stub), Trace()
        reply = await client.invoke("fast", [HumanMessage("hi")], trace)
        streamed = await client.stream_text("strong", [HumanMessage("write")], trace)
        assert all(r.reply.reasoning for r in stub.chat_requests)  # sent as reasoning_content, too
    assert reply.content == streamed == "The answer [ev:0123456789]."
    assert "Reasoning the client must not show" not in json.dumps(reply.model_dump(), default=str)


# --------------------------------------------------------------------------- bounded calls
async def test_max_tokens_is_sent_per_step_as_max_tokens():
    with OpenAIStub(structured_responder) as stub:
        client = client_for(stub, max_tokens_plan=301, max_tokens_research=302, max_tokens_reflect=303,
                            max_tokens_outline=304, max_tokens_write=305)
        await three_calls(client, Trace())
        await client.invoke("fast", [HumanMessage("search")], Trace(), tools=[ResearchPlan])
        await client.stream_text("strong", [HumanMessage("write")], Trace())
    sent = [r.json.get("max_tokens") for r in stub.chat_requests]
    assert sent == [301, 303, 304, 302, 305]
    assert all("max_completion_tokens" not in r.json for r in stub.chat_requests)


async def test_a_hanging_stream_times_out_in_bounded_time():
    with OpenAIStub(max_hang_s=10) as stub:
        stub.inject("hang", times=None)
        client = client_for(stub, llm_timeout_s=0.5, llm_max_retries=0)
        started = time.monotonic()
        with pytest.raises(Exception, match=r"[Tt]imed? ?out"):
            await client.stream_text("strong", [HumanMessage("write")], Trace())
        assert time.monotonic() - started < 5


async def test_a_call_that_succeeded_after_a_retry_is_recorded():
    with OpenAIStub(structured_responder) as stub:
        stub.inject(Reply.fault(503))
        trace = Trace()
        await client_for(stub).structured("fast", ResearchPlan, [HumanMessage("plan it")], trace)
    assert "plan: succeeded after 1 retry (HTTP 503)" in trace.llm_notes


# --------------------------------------------------------------------------- a whole run per server
@pytest.fixture(scope="module")
async def kb(tmp_path_factory):
    corpus = write_corpus(tmp_path_factory.mktemp("structured") / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path_factory.mktemp("structured-kb") / "kb"))
    await kb.ingest(corpus)
    yield kb
    await kb.close()


@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_a_run_on_each_server_ends_with_verified_citations(kb, kind):
    method = EXPECTED[kind][0]
    with OpenAIStub(stub_responder(AnalystScript()), personality=Personality(kind, think=True, sloppy=True)) as stub:
        settings = graph_settings(kb.settings.kb_dir, engine="llm", base_url=stub.base_url, api_key="sk-test",
                                  model_fast="stub-fast", model_strong="stub-strong", llm_max_retries=1,
                                  llm_timeout_s=10)
        report = await Researcher(kb, settings=settings).run(QUESTION)
    assert stub.errors == []
    assert report.engine == "llm" and report.failures == [], report.failures
    v = report.verification
    assert report.references and v.markers_total > 0 and v.markers_resolved == v.markers_total
    assert all("<think>" not in s.markdown and "Reasoning the client" not in s.markdown for s in report.sections)
    markdown = render_markdown(report)
    assert f"- LLM: plan: structured output via {method} (stub-fast)" in markdown
    assert f"outline: structured output via {method} (stub-strong)" in " ".join(report.llm_notes)
    sent = {r.json.get("max_tokens") for r in stub.chat_requests}
    assert sent <= {1024, 512, 1500} and None not in sent


async def test_a_run_on_a_server_without_tools(kb):
    with OpenAIStub(stub_responder(AnalystScript()), personality=Personality("json_object_only", tools=False)) as stub:
        settings = graph_settings(kb.settings.kb_dir, engine="llm", base_url=stub.base_url, api_key="sk-test",
                                  model_fast="stub-fast", model_strong="stub-strong", llm_max_retries=1)
        report = await Researcher(kb, settings=settings).run(QUESTION)
    assert report.engine == "llm" and report.failures == [], report.failures
    assert any("the server refuses tools" in note for note in report.llm_notes)


async def test_an_answer_cut_off_at_the_token_limit_is_repaired_and_counted():
    cut = '{"rationale": "split", "sub_questions": [{"question": "What does RAG cost?", "needs": "both"'
    with OpenAIStub(lambda r: Reply.text(cut, finish_reason="length", usage={"prompt_tokens": 40,
                                                                             "completion_tokens": 16})) as stub:
        trace = Trace()
        plan = await client_for(stub).structured("fast", ResearchPlan, [HumanMessage("plan it")], trace)
    assert plan.sub_questions[0].needs == "both" and len(stub.chat_requests) == 1
    assert "plan: the answer was cut off at max_tokens_plan; its JSON was repaired" in trace.llm_notes
    assert trace.usage.llm_calls == 1 and trace.usage.completion_tokens == 16
