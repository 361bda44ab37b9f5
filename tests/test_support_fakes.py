"""Tests of the test doubles themselves: ScriptedChatModel and OpenAIStub.

The OpenAIStub tests drive the REAL langchain_openai.ChatOpenAI / OpenAIEmbeddings over HTTP,
so they also pin down the client behaviour Dossier relies on (retries, timeouts, structured
output methods, invalid tool calls).  Async tests share the session-scoped event loop
(pyproject: asyncio_default_test_loop_scope = "session"), which langchain-openai's per-base-URL
cached async HTTP client requires.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field

from dossier.testing.openai_stub import (
    OpenAIStub,
    Reply,
    forced_tool,
    last_user_text,
    schema_name,
    stub_embedding,
    tool_names,
)
from dossier.testing.scripted_chat import (
    RecordedCall,
    ScriptedChatModel,
    ScriptExhaustedError,
    ai_tool_call,
    estimate_tokens,
)

API_KEY = "sk-test-sentinel-1234"


class Verdict(BaseModel):
    """Whether a claim is supported by the evidence."""

    claim: str = Field(description="The claim checked")
    supported: bool
    confidence: float


class SearchDocs(BaseModel):
    """Search the private knowledge base."""

    query: str
    top_k: int = 5


VERDICT = {"claim": "the sky is blue", "supported": True, "confidence": 0.9}


def default_responder(req: dict) -> Reply:
    """What a scripted 'model' answers, recognising what is asked."""
    if schema_name(req) == "Verdict" or (req.get("response_format") or {}).get("type") == "json_object":
        return Reply.json(VERDICT)
    if "SearchDocs" in tool_names(req):
        return Reply.tool_call("SearchDocs", {"query": last_user_text(req), "top_k": 3})
    return Reply.text(f"You said: {last_user_text(req)}")


@pytest.fixture
def stub():
    with OpenAIStub(default_responder, embedding_dim=48) as s:
        yield s
    assert not s.errors, s.errors


def make_llm(stub: OpenAIStub, **kw) -> ChatOpenAI:
    params = {"max_retries": 2, "timeout": 2} | kw
    return ChatOpenAI(base_url=stub.base_url, api_key=API_KEY, model="stub-model", **params)


@pytest.fixture
def llm(stub):
    return make_llm(stub)


# =============================================================================== OpenAIStub
def test_invoke_plain(stub, llm):
    msg = llm.invoke([SystemMessage("Be brief."), HumanMessage("hello stub")])
    assert msg.content == "You said: hello stub"
    assert msg.tool_calls == []
    assert msg.usage_metadata["input_tokens"] > 0
    assert msg.usage_metadata["output_tokens"] == math.ceil(len("You said: hello stub") / 4)
    assert msg.response_metadata["finish_reason"] == "stop"

    (req,) = stub.requests
    assert req.path == "/v1/chat/completions"
    assert req.json["model"] == "stub-model"
    assert [m["role"] for m in req.json["messages"]] == ["system", "user"]
    assert req.headers["authorization"] == "Bearer ****1234"
    assert all(API_KEY not in v for v in req.headers.values())


async def test_ainvoke(stub, llm):
    msg = await llm.ainvoke("async hello")
    assert msg.content == "You said: async hello"
    assert len(stub.chat_requests) == 1
    assert stub.requests[0].headers["x-stainless-async"].startswith("async")


async def test_astream_chunks(stub):
    llm = make_llm(stub, stream_usage=True)
    chunks = [c async for c in llm.astream("stream these words please")]
    text_chunks = [c for c in chunks if c.content]
    assert len(text_chunks) >= 4
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.content == "You said: stream these words please"
    assert merged.usage_metadata and merged.usage_metadata["output_tokens"] > 0
    req = stub.requests[0].json
    assert req["stream"] is True
    assert req["stream_options"] == {"include_usage": True}


def test_raw_sse_shape(stub):
    """Wire format: role first, deltas, finish_reason, usage chunk, [DONE]; chunked encoding."""
    stub.queue(Reply.text("one two three"))
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    body = {
        "model": "stub-model",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    events = [line[len("data: ") :] for line in resp.read().decode().splitlines() if line.startswith("data: ")]
    conn.close()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "one two three"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
async def test_structured_output_methods(stub, llm, method):
    structured = llm.with_structured_output(Verdict, method=method)
    result = await structured.ainvoke("Is the sky blue? Answer as JSON.")
    assert result == Verdict(**VERDICT)
    req = stub.requests[-1].json
    if method == "json_schema":
        assert req["response_format"]["type"] == "json_schema"
        assert schema_name(req) == "Verdict"
    elif method == "function_calling":
        assert tool_names(req) == ["Verdict"]
        assert forced_tool(req) == "Verdict" == schema_name(req)
    else:
        assert req["response_format"] == {"type": "json_object"}
        assert schema_name(req) is None


def test_structured_output_default_method_is_json_schema(stub, llm):
    assert llm.with_structured_output(Verdict).invoke("q") == Verdict(**VERDICT)
    assert stub.requests[-1].json["response_format"]["type"] == "json_schema"


async def test_bind_tools_tool_call_parsed(stub, llm):
    msg = await llm.bind_tools([SearchDocs]).ainvoke("revenue 2024")
    assert msg.tool_calls == [
        {"name": "SearchDocs", "args": {"query": "revenue 2024", "top_k": 3}, "id": "call_0_0", "type": "tool_call"}
    ]
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    # Streamed tool-call deltas merge back into a parsed tool call too.
    chunks = [c async for c in llm.bind_tools([SearchDocs]).astream("q2")]
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.tool_calls[0]["name"] == "SearchDocs"
    assert merged.tool_calls[0]["args"] == {"query": "q2", "top_k": 3}


def test_429_with_retry_after_then_success(stub, llm):
    stub.queue(Reply.fault(429, retry_after=0.05), Reply.text("after the rate limit"))
    t0 = time.monotonic()
    assert llm.invoke("x").content == "after the rate limit"
    assert time.monotonic() - t0 < 1.0  # Retry-After honoured (not the 0.5 s default backoff)
    assert len(stub.chat_requests) == 2
    assert [r.fault for r in stub.chat_requests] == ["429", None]
    assert stub.chat_requests[1].headers["x-stainless-retry-count"] == "1"
    assert [e.status for e in stub.fault_log] == [429]


async def test_500_then_success(stub, llm):
    stub.fail_next(1, 500)
    assert (await llm.ainvoke("x")).content == "You said: x"
    assert len(stub.chat_requests) == 2 and stub.fault_log[0].kind == "500"


@pytest.mark.parametrize("status", [502, 503])
def test_5xx_retried(stub, llm, status):
    stub.queue(Reply.fault(status, retry_after=0.01))
    assert llm.invoke("x").content == "You said: x"
    assert [r.fault for r in stub.chat_requests] == [str(status), None]


def test_fault_by_predicate_exhausts_retries(stub, llm):
    stub.inject(429, times=None, when=lambda r: "boom" in last_user_text(r), retry_after=0.01)
    assert llm.invoke("fine").content == "You said: fine"
    with pytest.raises(openai.RateLimitError):
        llm.invoke("boom")
    assert len(stub.chat_requests) == 1 + 3  # the first attempt + max_retries=2


async def test_hang_past_timeout_raises_after_retries(stub):
    # Short client timeout keeps the test fast; same client otherwise (max_retries=2).
    llm = make_llm(stub, timeout=0.5)
    stub.inject("hang", times=None, hang_s=20)
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await asyncio.wait_for(llm.ainvoke("slow"), timeout=15)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 6, elapsed  # 3 attempts x 0.5 s + backoff (~0.4 + ~0.8 s)
    assert len(stub.chat_requests) == 3
    # Hanging handlers notice the client has gone and leave.
    for _ in range(40):
        if stub.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    assert stub.in_flight == 0


def test_hang_aborts_cleanly_on_stop():
    s = OpenAIStub().start()
    s.inject("hang", hang_s=25)
    outcome: list[object] = []

    def call() -> None:
        req = urllib.request.Request(
            s.base_url + "/chat/completions",
            data=json.dumps({"model": "m", "messages": []}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=10)
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    s.stop()
    t.join(5)
    assert time.monotonic() - t0 < 2
    assert not t.is_alive() and outcome


async def test_mid_stream_close_raises(stub, llm):
    stub.queue(Reply.fault("drop", content="alpha beta gamma delta epsilon", drop_after=2))
    received = []

    async def consume() -> None:
        async for chunk in llm.astream("x"):
            received.append(chunk.content)

    with pytest.raises(openai.APIConnectionError):
        await asyncio.wait_for(consume(), timeout=10)
    assert "".join(received) == "alpha beta "
    assert len(stub.chat_requests) == 1  # no retry once a stream has started


def test_dropped_json_body_is_a_connection_error(stub):
    llm = make_llm(stub, max_retries=0)
    stub.queue(Reply.fault("drop"))
    with pytest.raises(openai.APIConnectionError):
        llm.invoke("x")


def test_malformed_json_raises(stub, llm):
    stub.queue(Reply.fault("malformed"), Reply.fault("malformed"))
    with pytest.raises((ValueError, openai.APIError)):  # json.JSONDecodeError is a ValueError
        llm.invoke("x")
    with pytest.raises((ValueError, openai.APIError)):
        list(llm.stream("x"))
    assert len(stub.chat_requests) == 2  # not retried


def test_invalid_tool_args_become_invalid_tool_calls(stub, llm):
    stub.queue(Reply.fault("invalid_tool_args", raw='{"query": "unterminated'))
    msg = llm.bind_tools([SearchDocs]).invoke("x")
    assert msg.tool_calls == []
    (bad,) = msg.invalid_tool_calls
    assert bad["name"] == "SearchDocs"  # name defaults to the offered tool
    assert bad["args"] == '{"query": "unterminated'
    assert "not valid JSON" in bad["error"]


def test_empty_completion(stub, llm):
    stub.queue(Reply.fault("empty"))
    msg = llm.invoke("x")
    assert msg.content == "" and msg.tool_calls == [] and msg.invalid_tool_calls == []


async def test_embeddings(stub):
    emb = OpenAIEmbeddings(
        base_url=stub.base_url, api_key=API_KEY, model="stub-embed", check_embedding_ctx_length=False
    )
    docs = await emb.aembed_documents(["alpha", "beta"])
    query = emb.embed_query("alpha")
    assert [len(v) for v in docs] == [48, 48]
    assert docs[0] == pytest.approx(query, abs=1e-6)
    assert docs[0] == pytest.approx(stub_embedding("alpha", 48), abs=1e-6)  # float32 over base64
    assert docs[0] != pytest.approx(docs[1], abs=1e-3)
    assert math.isclose(sum(x * x for x in docs[1]), 1.0, rel_tol=1e-5)
    assert stub.embedding_requests[0].json["encoding_format"] == "base64"


def test_embedding_faults_use_path(stub):
    stub.inject(503, path="/embeddings", retry_after=0.01)
    emb = OpenAIEmbeddings(
        base_url=stub.base_url, api_key=API_KEY, model="stub-embed", check_embedding_ctx_length=False
    )
    assert len(emb.embed_query("q")) == 48
    assert [r.fault for r in stub.embedding_requests] == ["503", None]
    assert stub.fault_log[0].path == "/v1/embeddings"


def test_embedding_float_format_and_dimensions(stub):
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    body = {"model": "e", "input": ["x"], "encoding_format": "float", "dimensions": 8}
    conn.request("POST", "/v1/embeddings", json.dumps(body), {"Content-Type": "application/json"})
    data = json.loads(conn.getresponse().read())
    conn.close()
    assert data["data"][0]["embedding"] == stub_embedding("x", 8)


def test_models_endpoint(stub):
    client = openai.OpenAI(base_url=stub.base_url, api_key=API_KEY)
    assert [m.id for m in client.models.list()] == ["stub-model"]
    client.close()


async def test_max_in_flight_counts_concurrent_requests(stub, llm):
    stub.queue(*[Reply.text(f"answer {i}", delay_s=0.3) for i in range(5)])
    results = await asyncio.gather(*(llm.ainvoke(f"q{i}") for i in range(5)))
    assert sorted(r.content for r in results) == [f"answer {i}" for i in range(5)]
    assert stub.max_in_flight == 5
    assert stub.in_flight == 0


def test_responder_bug_fails_fast(stub, llm):
    def broken(req):
        raise KeyError("oops")

    stub.responder = broken
    with pytest.raises(openai.InternalServerError, match="stub responder raised"):
        llm.invoke("x")
    assert len(stub.chat_requests) == 1  # x-should-retry: false
    assert stub.errors and "KeyError" in stub.errors[0]
    stub.errors.clear()


def test_request_helpers():
    req = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "part"}]},
        ],
        "tools": [
            {"type": "function", "function": {"name": "a"}},
            {"type": "function", "function": {"name": "b"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "b"}},
    }
    assert last_user_text(req) == "second part"
    assert tool_names(req) == ["a", "b"]
    assert schema_name(req) == "b"
    assert schema_name({"response_format": {"type": "json_schema", "json_schema": {"name": "S"}}}) == "S"
    only = [{"type": "function", "function": {"name": "only"}}]
    assert schema_name({"tools": only, "tool_choice": "required"}) == "only"
    assert schema_name({"tools": req["tools"], "tool_choice": "auto"}) is None
    assert last_user_text({}) == ""


# ======================================================================= ScriptedChatModel
def test_scripted_queue_in_order_then_exhausted():
    model = ScriptedChatModel(responses=["first", AIMessage(content="second")])
    assert model.invoke("a").content == "first"
    assert model.invoke("b").content == "second"
    with pytest.raises(ScriptExhaustedError):
        model.invoke("c")
    model.queue("third")
    assert model.invoke("d").content == "third"
    assert [c.last_user_text for c in model.calls] == ["a", "b", "c", "d"]


def test_scripted_responder_function():
    seen: list[RecordedCall] = []

    def responder(messages, tools, kwargs):
        seen.append((messages, tools, kwargs))
        return f"echo {messages[-1].content}"

    model = ScriptedChatModel(responder=responder)
    assert model.invoke([SystemMessage("sys"), HumanMessage("hi")]).content == "echo hi"
    messages, tools, kwargs = seen[0]
    assert [m.type for m in messages] == ["system", "human"] and tools is None and kwargs == {}
    # a one-argument responder works too
    assert ScriptedChatModel(responder=lambda msgs: str(len(msgs))).invoke("x").content == "1"


@pytest.mark.parametrize("method", [None, "function_calling", "json_schema", "json_mode"])
async def test_scripted_with_structured_output(method):
    model = ScriptedChatModel(responder=lambda messages, tools, kw: Verdict(**VERDICT))
    kwargs = {} if method is None else {"method": method}
    result = await model.with_structured_output(Verdict, **kwargs).ainvoke("check")
    assert isinstance(result, Verdict) and result == Verdict(**VERDICT)
    call = model.last_call
    assert call.tool_names == ["Verdict"] and call.tool_choice == "any" and call.forced_tool == "Verdict"
    raw = model.with_structured_output(Verdict, include_raw=True).invoke("again")
    assert raw["parsed"] == Verdict(**VERDICT) and raw["parsing_error"] is None
    assert raw["raw"].tool_calls[0]["name"] == "Verdict"


def test_scripted_dict_answer_calls_forced_tool():
    model = ScriptedChatModel(responses=[{"query": "q", "top_k": 1}])
    assert model.with_structured_output(SearchDocs).invoke("x") == SearchDocs(query="q", top_k=1)


def test_scripted_bind_tools_passes_tools_and_returns_tool_calls():
    def responder(messages, tools, kwargs):
        assert [t["function"]["name"] for t in tools] == ["SearchDocs"]
        assert tools[0]["function"]["parameters"]["properties"]["query"]["type"] == "string"
        return ai_tool_call("SearchDocs", {"query": messages[-1].content}, id="call_1")

    model = ScriptedChatModel(responder=responder)
    msg = model.bind_tools([SearchDocs], tool_choice="auto").invoke("revenue")
    assert msg.tool_calls == [{"name": "SearchDocs", "args": {"query": "revenue"}, "id": "call_1", "type": "tool_call"}]
    assert model.calls[0].kwargs == {"tool_choice": "auto"}
    assert model.calls[0].tools[0]["type"] == "function"


async def test_scripted_exceptions_raise_and_are_recorded():
    model = ScriptedChatModel(responses=[TimeoutError("slow upstream"), RuntimeError, "recovered"])
    with pytest.raises(TimeoutError, match="slow upstream"):
        await model.ainvoke("a")
    with pytest.raises(RuntimeError, match="scripted failure"):
        model.invoke("b")
    assert (await model.ainvoke("c")).content == "recovered"
    assert isinstance(model.calls[0].response, TimeoutError)
    assert model.calls[2].response.content == "recovered"


def test_scripted_records_calls_and_usage():
    model = ScriptedChatModel(responses=["twelve chars"])
    msg = model.invoke("x" * 40, stop=["END"])
    (call,) = model.calls
    assert call.messages[0].content == "x" * 40 and call.kwargs == {"stop": ["END"]}
    assert call.response is not None and call.finished_at is not None
    assert msg.usage_metadata == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert estimate_tokens("") == 0 and estimate_tokens("abcde") == 2


async def test_scripted_astream_chunks_merge_back():
    model = ScriptedChatModel(
        responses=["several streamed words here", ai_tool_call("SearchDocs", {"query": "z"}, content="calling")]
    )
    chunks = [c async for c in model.astream("x")]
    assert [c.content for c in chunks if c.content] == ["several ", "streamed ", "words ", "here"]
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.content == "several streamed words here" and merged.usage_metadata["output_tokens"] > 0
    merged = None
    for c in model.bind_tools([SearchDocs]).stream("y"):
        merged = c if merged is None else merged + c
    assert merged.content == "calling"
    assert merged.tool_calls[0]["name"] == "SearchDocs" and merged.tool_calls[0]["args"] == {"query": "z"}


async def test_scripted_delay_and_max_concurrency():
    model = ScriptedChatModel(responder=lambda msgs: "ok", delay_s=0.2)
    t0 = time.monotonic()
    results = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(5)))
    elapsed = time.monotonic() - t0
    assert [r.content for r in results] == ["ok"] * 5
    assert model.max_concurrency == 5 and model.in_flight == 0
    assert elapsed < 0.2 * 5 * 0.6, elapsed
    model.reset()
    await model.ainvoke("one")
    assert model.max_concurrency == 1 and len(model.calls) == 1
