"""A research branch's second turn sends its tool-call history back in a shape every server accepts.

Found against the real llama-cpp-python server (tests/test_real_model.py): langchain-openai sends an
assistant message that only carries tool calls as ``content: null``; that server rejects it with HTTP 500
(its request validation wants a string), and the error, naming tool messages, passed for "this server
refuses tools", so research dropped its tools after the first turn. The stub below answers exactly so.
"""

from __future__ import annotations

import pytest

from agents.config import EngineSettings
from agents.engine import ResearchTask
from agents.llm.client import ChatClient, make_chat_model
from agents.llm.research import research
from agents.toolbox import Toolbox
from agents.trace import Trace
from dossier.testing import OpenAIStub, Reply
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import SubQuestion

# What llama-cpp-python 0.3.36's server answers (abridged) to an assistant message with content null.
NULL_CONTENT_500 = ("7 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'messages', 2, "
                    "'ChatCompletionRequestAssistantMessage', 'content'), 'msg': 'Input should be a valid string', "
                    "'input': None}\n  {'type': 'literal_error', 'loc': ('body', 'messages', 2, "
                    "'ChatCompletionRequestToolMessage', 'role'), 'msg': \"Input should be 'tool'\"}")


def llama_cpp_python_like(request: dict) -> Reply:
    messages = request["messages"]
    if any(m["role"] == "assistant" and not isinstance(m.get("content"), str) for m in messages):
        return Reply.error(500, NULL_CONTENT_500)
    if any(m["role"] == "tool" for m in messages):
        return Reply.text("RAG costs less than fine-tuning, per the search results.")
    return Reply.tool_call("search_documents", {"query": "RAG cost"})


@pytest.fixture
async def kb(tmp_path):
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb", engine="llm"))
    await kb.ingest(write_corpus(tmp_path / "corpus"))
    yield kb
    await kb.close()


async def test_second_turn_keeps_its_tools_on_a_server_that_wants_string_content(kb):
    with OpenAIStub(llama_cpp_python_like) as stub:
        settings = EngineSettings(base_url=stub.base_url, api_key="sk-test-history", model_fast="stub-fast",
                                  model_strong="stub-fast", llm_max_retries=0, llm_timeout_s=10, max_tool_steps=3)
        client = ChatClient({"fast": make_chat_model(settings, "stub-fast")}, concurrency=1, settings=settings)
        sq = SubQuestion(id="q1", question="What does RAG cost?", needs="documents", queries=["RAG cost"])
        toolbox, trace = Toolbox(kb), Trace()
        finding = await research(client, settings, ResearchTask(question=QUESTION, sub_question=sq, round=1,
                                                                language="en"), toolbox=toolbox, trace=trace)
        chats = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    assert [r.reply.status if r.reply else 200 for r in chats] == [200, 200], [r.reply for r in chats]
    second = chats[1].json
    assert second.get("tools"), "the second turn lost its tools"
    replayed = [m for m in second["messages"] if m["role"] == "assistant"]
    assert replayed and replayed[0]["tool_calls"] and isinstance(replayed[0]["content"], str)
    assert toolbox.evidence and not trace.fallbacks, trace.fallbacks  # gathered by the model's own call
    assert "RAG costs less" in finding.notes
