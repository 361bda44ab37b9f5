"""`dossier report` against REAL model servers running SmolLM2-135M-Instruct on 127.0.0.1, on the demo
knowledge base, through the CLI: llama.cpp's llama-server, and llama-cpp-python's own server (a second,
less capable one: it refuses ``json_schema`` and makes tool calls only when ``tool_choice`` names the
function). Both are built and cached by ``benchmarks/llm_server.py``; every test runs once per server.

Each server's tests skip, with the reason, when it or the model is absent (``python
benchmarks/llm_server.py build [--kind llama-cpp-python]`` makes them). The
model is far too small to judge answers: this checks the plumbing a real server exercises and the scripted
stub cannot (grammar-constrained JSON, token limits, a slow model, its real tool-call behaviour) and the
guarantees that must hold whatever the model does: the run ends in bounded time, every citation resolves,
every number is checked (supported, or flagged in the text), and each LLM step's outcome is recorded
(succeeded, re-asked or retried, or fell back to the offline engine with the cause). A recording
pass-through (``benchmarks/llm_proxy.py``) sees every call on the wire to check the report against.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from agents.config import EngineSettings
from agents.llm.client import ChatClient, make_chat_model
from agents.llm.structured import forget_methods, remembered
from agents.llm.tools import TOOLS, tool_schemas
from agents.trace import Trace
from benchmarks.llm_proxy import JSON_STEPS, Call, RecordingProxy, classify, judge, outcomes, step_table
from benchmarks.llm_server import LLAMA_SERVER, PYTHON_SERVER, Server, bounded_env, candidate_caches, find, serve

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What does RAG cost compared with fine-tuning, in money and people?"
REPORT_BOUND_S = 300
# 2 sub-questions, 1 round, 200 tokens per completion, prompts fitted to a 3k window (the engine's context
# budget), 90 s per call at most: about 2-4 minutes when every step runs on the model, under 1 when the
# first step falls back.
BOUNDS = {"context_tokens": 3072}
MAX_TOKENS = 200
FLAG = "⚠unverified"


@dataclass(frozen=True)
class Expect:
    """What a server is known to do (what it is run with: llm_server.SERVER_SETTINGS)."""
    method: str  # the structured-output method the engine's auto probe must settle on
    named_tool_calls: bool  # returns tool calls when tool_choice names the function
    build: str  # how long `llm_server.py build` takes on 2 busy cores


SERVERS = {
    # grammar-constrained json_schema; with this model and --jinja it returns no tool call, whatever tool_choice
    LLAMA_SERVER: Expect("json_schema", False, "15-40 min"),
    # json_schema -> HTTP 500 ("Input should be 'text' or 'json_object'"); json_object takes the schema as a
    # grammar. Tool calls only for a named tool_choice, so research names search_documents on its first turn.
    PYTHON_SERVER: Expect("json_object", True, "10-20 min"),
}

pytestmark = pytest.mark.real_model  # `pytest -m real_model` runs this file; the default run includes it


def _need_server(kind: str) -> None:
    if find(kind) is None:
        pytest.skip(f"no {kind} + SmolLM2 model in " + ", ".join(map(str, candidate_caches()))
                    + f": `python benchmarks/llm_server.py build --kind {kind}` makes them "
                    f"({SERVERS[kind].build} on 2 cores)")


def cli(args: list[str], home: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    full = {**os.environ, "DOSSIER_EMBEDDER": "hash", "HOME": str(home), "PYTHONIOENCODING": "utf-8", **env}
    for name in ("DOSSIER_API_KEY", "DOSSIER_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        full.pop(name, None)  # nothing but the local server may be reached
    return subprocess.run([sys.executable, "-m", "dossier.cli", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    """Each real server in turn, started once for its tests (skipped when it is not built)."""
    _need_server(request.param)
    with serve(kind=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kb = tmp_path_factory.mktemp("real") / "kb"
    demo = REPO / "dossier" / "demo"
    done = cli(["--kb", str(kb), "ingest", str(demo / "docs"), str(demo / "tables")], kb.parent, {}, 300)
    assert done.returncode == 0, done.stderr
    return kb


def method_lines(markdown: str, prefix: str) -> list[str]:
    method = markdown.split("## Method", 1)[1] if "## Method" in markdown else ""
    return [line[len(prefix):].strip() for line in method.splitlines() if line.startswith(prefix)]


@dataclass
class RealRun:
    proc: subprocess.CompletedProcess
    seconds: float
    calls: list
    model: str
    text: str
    kind: str

    @property
    def body(self) -> str:
        return self.text.partition("## References")[0]


@pytest.fixture(scope="module")
def real_run(server: Server, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    """One `dossier report` against the real server (through the recording proxy); the tests below read it."""
    demo_kb = request.getfixturevalue("demo_kb")  # after the server: no ingest when every server is absent
    out = tmp_path_factory.mktemp("real-report") / "report.md"
    env = bounded_env(BOUNDS, MAX_TOKENS, kind=server.kind)
    with RecordingProxy(server.base_url) as proxy:
        started = time.monotonic()
        proc = cli(["--kb", str(demo_kb), "report", QUESTION, "-o", str(out), "--base-url", proxy.base_url,
                    "--model", server.model, "--max-rounds", "1"], demo_kb.parent, env, REPORT_BOUND_S + 60)
        seconds = time.monotonic() - started
        calls = proxy.take()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    text = out.read_text(encoding="utf-8")
    print(f"\n{server.kind}: {seconds:.0f} s, {len(calls)} calls; outcomes "
          f"{outcomes(method_lines(text, '- Failure:'), method_lines(text, '- LLM:'), calls)}\n"
          f"per step {step_table(calls)}\n" + "\n".join(method_lines(text, "- ")))
    return RealRun(proc, seconds, calls, server.model, text, server.kind)


def test_report_finishes_in_bounded_time_with_the_real_server(real_run: RealRun) -> None:
    assert real_run.seconds < REPORT_BOUND_S, f"the report took {real_run.seconds:.0f} s"
    assert real_run.calls, "no call reached the real server"
    assert "Engine: llm" in real_run.text and real_run.model in real_run.text


def test_every_citation_resolves(real_run: RealRun) -> None:
    text, body = real_run.text, real_run.body
    resolved = re.search(r"Citations: (\d+)/(\d+) markers resolved, (\d+) unknown removed", text)
    # Every marker the model wrote resolves to a reference or, naming no evidence (a small model writes
    # "[1]" of its own), is removed and counted: none is left for a reader. (A 135M model may write a
    # section with no marker at all: how many it cites is not what this checks.)
    assert resolved and int(resolved[1]) + int(resolved[3]) == int(resolved[2]), resolved
    references = set(re.findall(r"^(\d+)\. ", text.partition("## References")[2].split("## Method")[0], re.M))
    cited = {n for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", body) for n in re.split(r"\s*,\s*", group)}
    assert cited <= references, cited - references
    listed = re.search(r"Evidence gathered: \d+; cited: (\d+)", text.partition("## Method")[2])
    assert listed and int(listed[1]) == len(references), (listed, len(references))
    assert "[ev:" not in body  # no raw marker left in what a reader reads


def test_every_number_is_checked(real_run: RealRun) -> None:
    """Supported by the evidence its sentence cites, or flagged in the text for the reader."""
    numbers = re.search(r"numeric claims (\d+)/(\d+) supported", real_run.text)
    assert numbers, "the Method section lost its numeric-claims count"
    unsupported = int(numbers[2]) - int(numbers[1])
    assert real_run.body.count(FLAG) >= min(unsupported, 1), f"{unsupported} unsupported claims, none flagged"


def test_each_llm_step_outcome_is_recorded(real_run: RealRun) -> None:
    """Succeeded / re-asked / repaired / retried / fell back: the report's records agree with what the
    server saw (a step none of whose answers was valid as sent cannot pass for a plain success)."""
    failures, notes = method_lines(real_run.text, "- Failure:"), method_lines(real_run.text, "- LLM:")
    steps, table = outcomes(failures, notes, real_run.calls), step_table(real_run.calls)
    for line in failures:  # a fallback names its step and its cause, and says the run went on offline
        assert re.match(r"^[a-z]+(?: \S+)?: \w+", line) and "offline" in line, line
    assert bool(failures) == ("fell back to offline" in real_run.text)
    for step, row in table.items():
        unusable = not any(c.parsed for c in real_run.calls if c.step == step)
        if step in ("plan", "reflect", "outline") and unusable:
            # no answer of this step was valid as sent: whatever the engine did about it is on record
            assert steps.get(step) in ("fell back", "re-asked", "repaired"), (step, row, failures, notes)
    if not failures:  # all on the model: each step reached it
        assert {"plan", "research", "outline", "write"} <= set(table), table


def test_every_answered_call_is_counted(real_run: RealRun) -> None:
    """Calls the server answered appear in the report's LLM usage (tokens included), even when the
    answer was then rejected (cut off at max_tokens, unparsable)."""
    answered = [c for c in real_run.calls if c.status == 200 and not c.client_gone]
    usage = re.search(r"LLM usage: (\d+) calls, (\d+) prompt \+ (\d+) completion tokens", real_run.text)
    if answered:
        assert usage, f"{len(answered)} answered calls, no LLM usage line in the Method section"
        assert int(usage[1]) >= len(answered), (usage[0], len(answered))
        assert int(usage[3]) >= sum(c.completion_tokens for c in answered) * 0.9, (usage[0], len(answered))


def test_structured_output_method_fits_the_server(real_run: RealRun) -> None:
    """The JSON steps' answers came through the method this server takes, and the report names it."""
    expected = SERVERS[real_run.kind].method
    answered = {c.mode for c in real_run.calls if c.step in JSON_STEPS and c.status == 200}
    assert answered <= {expected, "text"}, answered  # text: only if the server ignored the format
    if real_run.kind == PYTHON_SERVER:  # json_schema is refused on the wire, never answered
        assert all(c.status >= 400 for c in real_run.calls if c.mode == "json_schema")
    notes = " ".join(method_lines(real_run.text, "- LLM:"))
    recorded = set(re.findall(r"structured output via (\w+)", notes))
    assert recorded <= {expected, "text"}, notes


def test_research_turns_are_accepted_and_named_tool_calls_answered(real_run: RealRun) -> None:
    """Every research turn is taken by the server (a later turn sends the tool-call history back, which
    llama-cpp-python's server rejects when the assistant's content is null); where the server answers a
    named tool_choice with a tool call, the first turns got one (tool_choice_first=search_documents)."""
    research = [c for c in real_run.calls if c.step == "research"]
    answered = [c for c in research if not c.client_gone]  # (a turn the client gave up on has no answer)
    assert research and all(c.status == 200 for c in answered), [(c.status, c.mode) for c in research]
    if SERVERS[real_run.kind].named_tool_calls:
        assert any(c.tool_calls for c in research), "no research turn came back with a tool call"


# --- the engine's probes, straight against each server (no report) -------------------------------------

class Place(BaseModel):
    city: str
    country: str


def _client(server: Server, base_url: str, **settings: object) -> ChatClient:
    engine = EngineSettings(engine="llm", base_url=base_url, model_fast=server.model, model_strong=server.model,
                            llm_timeout_s=90, llm_max_retries=0, max_tokens_plan=64, max_tokens_research=160,
                            **settings)
    return ChatClient({"fast": make_chat_model(engine, server.model)}, concurrency=1, settings=engine)


def test_auto_probe_settles_on_the_method_the_server_takes(server: Server) -> None:
    """structured_output=auto: json_schema first; a server that refuses it (HTTP 5xx/4xx naming the
    format) gets json_object; the method that worked is remembered for the endpoint and recorded."""
    expected = SERVERS[server.kind].method
    forget_methods()
    with RecordingProxy(server.base_url) as proxy:
        trace = Trace()
        messages = [SystemMessage("You answer in JSON."), HumanMessage("Name a city in France and its country.")]
        value = asyncio.run(_client(server, proxy.base_url).structured("fast", Place, messages, trace, step="plan"))
        calls = proxy.take()
    assert isinstance(value, Place)
    assert remembered((proxy.base_url, server.model)) == expected
    assert f"plan: structured output via {expected} ({server.model})" in trace.llm_notes, trace.llm_notes
    wire = [(c.mode, c.status) for c in calls]
    if expected == "json_object":  # refused, on the wire and in the record, then asked with json_object
        assert wire[0][0] == "json_schema" and wire[0][1] >= 400 and wire[1] == ("json_object", 200), wire
        assert any("json_schema refused by the server" in n for n in trace.llm_notes), trace.llm_notes
    else:
        assert wire == [(expected, 200)], wire


def test_tool_calls_follow_the_servers_tool_choice(server: Server) -> None:
    """A named tool_choice gets a tool call with valid arguments where the server enforces it (the setting
    tool_choice_first=search_documents sends it), and none with auto; llama-server with this model calls no
    tool either way, so research must gather evidence without (the report run above goes that way)."""
    client = _client(server, server.base_url)
    messages = [SystemMessage("You research one sub-question with tools."),
                HumanMessage("What does RAG cost compared with fine-tuning? Search the documents.")]

    async def both() -> tuple:  # one event loop: the client's HTTP connections belong to it
        return (await client.invoke("fast", messages, Trace(), tools=tool_schemas(), tool_choice="search_documents"),
                await client.invoke("fast", messages, Trace(), tools=tool_schemas()))

    named, auto = asyncio.run(both())
    if SERVERS[server.kind].named_tool_calls:  # enforced by the server (a grammar), whatever the model
        assert [c["name"] for c in named.tool_calls] == ["search_documents"], named
        TOOLS["search_documents"].args.model_validate(named.tool_calls[0]["args"])  # the dispatch would take it
        assert not auto.tool_calls  # it parses no tool call unless one is named
    else:  # llama-server leaves it to the model, and this one writes prose: an answer, never an error
        assert named.content or named.tool_calls


# --- the recording proxy's judgement, without a server (always run, also under `-m real_model`) ---------

def _call(step: str, status: int = 200) -> Call:
    return Call(step=step, mode="json_schema", reask=False, stream=False, started=0.0, status=status)


def test_proxy_classifies_steps_forms_and_reasks() -> None:
    plan = {"messages": [{"role": "system", "content": "You plan research over documents. Split it."},
                         {"role": "user", "content": "Question: x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "ResearchPlan", "schema": {}}}}
    assert classify(plan) == ("plan", "json_schema", False)
    reask = {**plan, "messages": [*plan["messages"], {"role": "user", "content": "did not match the schema"}]}
    assert classify(reask) == ("plan", "json_schema", True)
    with_schema = {"messages": [*plan["messages"], {"role": "user", "content": "Reply with one JSON object"}],
                   "response_format": {"type": "json_object", "schema": {}}}
    assert classify(with_schema) == ("plan", "json_object", False)  # the schema's own turn: not a re-ask
    research = {"messages": [{"role": "system", "content": "You research one sub-question with tools."},
                             {"role": "user", "content": "q"}, {"role": "assistant", "content": ""},
                             {"role": "tool", "content": "r"}], "tools": [{"type": "function"}]}
    assert classify(research) == ("research", "tools", False)
    write = {"messages": [{"role": "system", "content": "You write one section of a research report."}]}
    assert classify(write)[0:2] == ("write", "text")


def test_proxy_judges_answers_as_the_step_needs() -> None:
    schema = {"response_format": {"type": "json_schema", "json_schema": {"schema": {"required": ["sub_questions"]}}}}
    assert judge(_call("plan"), schema, '```json\n{"sub_questions": []}\n```', [])
    assert not judge(_call("plan"), schema, '{"sub_questions": [{"question": "cut off', [])
    assert not judge(_call("plan"), schema, '{"rationale": "no required key"}', [])
    assert judge(_call("research"), {}, "", ['{"query": "rag cost"}'])
    assert not judge(_call("write"), {}, "<think>only thoughts</think>", [])
    assert not judge(_call("write", status=500), {}, "text", [])


def test_outcomes_follow_the_reports_records() -> None:
    calls = [_call("plan"), _call("research"), _call("reflect")]
    got = outcomes(["reflect: OpenAITimeoutError: Request timed out.; continued offline"],
                   ["plan: the answer was cut off at max_tokens_plan; its JSON was repaired"], calls)
    assert got == {"plan": "repaired", "research": "succeeded", "reflect": "fell back", "outline": "offline",
                   "write": "offline", "summary": "offline"}
    assert outcomes([], ["plan: parsed after a re-ask (1 validation error)"], calls[:1]) == {"plan": "re-asked"}


def test_bounded_env_uses_only_settings_the_engine_has() -> None:
    env = bounded_env({"context_tokens": 10}, max_tokens=5)
    assert env["DOSSIER_LLM_MAX_RETRIES"] == "0"
    assert "DOSSIER_NOT_A_SETTING" not in bounded_env({"not_a_setting": 1})
    if "DOSSIER_CONTEXT_TOKENS" in env:  # clamped to the field's own lower bound
        assert int(env["DOSSIER_CONTEXT_TOKENS"]) >= 2048
    assert all(int(v) >= 16 for k, v in env.items() if "MAX_TOKENS" in k)


def test_each_server_kind_gets_its_settings_and_command_line() -> None:
    """llama-cpp-python's server: tool_choice names the function on research's first turn, one request
    at a time, and it serves the model under the same name on loopback with one thread."""
    from benchmarks.llm_server import MODEL_NAME, Found, server_command

    assert "DOSSIER_TOOL_CHOICE_FIRST" not in bounded_env()
    python = bounded_env(kind=PYTHON_SERVER)
    assert python["DOSSIER_TOOL_CHOICE_FIRST"] == "search_documents" and python["DOSSIER_LLM_CONCURRENCY"] == "1"
    cmd = server_command(Found(Path("/venv/bin/python"), Path("/cache/m.gguf"), PYTHON_SERVER), 8123)
    assert cmd[:3] == ["/venv/bin/python", "-m", "llama_cpp.server"]
    flags = dict(zip(cmd[3::2], cmd[4::2]))
    assert flags["--model"] == "/cache/m.gguf" and flags["--model_alias"] == MODEL_NAME
    assert (flags["--host"], flags["--port"], flags["--n_threads"]) == ("127.0.0.1", "8123", "1")
    llama = server_command(Found(Path("/cache/llama-server"), Path("/cache/m.gguf")), 8123)
    assert llama[0] == "/cache/llama-server" and "--jinja" in llama and "127.0.0.1" in llama
