"""`dossier report` against a REAL model server: llama.cpp's llama-server running SmolLM2-135M-Instruct on
127.0.0.1 (built and cached by ``benchmarks/llm_server.py``), on the demo knowledge base, through the CLI.

Skipped when the binary or the model is absent (``python benchmarks/llm_server.py build`` makes them). The
model is far too small to judge answers: this checks the plumbing a real server exercises and the scripted
stub cannot (grammar-constrained JSON, token limits, a slow model, its real tool-call behaviour) and the
guarantees that must hold whatever the model does: the run ends in bounded time, every citation resolves,
every number is checked (supported, or flagged in the text), and each LLM step's outcome is recorded
(succeeded, re-asked or retried, or fell back to the offline engine with the cause). A recording
pass-through (``benchmarks/llm_proxy.py``) sees every call on the wire to check the report against.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.llm_proxy import Call, RecordingProxy, classify, judge, outcomes, step_table
from benchmarks.llm_server import bounded_env, candidate_caches, find, serve

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What does RAG cost compared with fine-tuning, in money and people?"
REPORT_BOUND_S = 300
# 2 sub-questions, 1 round, 200 tokens per completion, prompts fitted to a 3k window (the engine's context
# budget), 90 s per call at most: about 2-4 minutes when every step runs on the model, under 1 when the
# first step falls back.
BOUNDS = {"context_tokens": 3072}
MAX_TOKENS = 200
FLAG = "⚠unverified"

pytestmark = pytest.mark.real_model  # `pytest -m real_model` runs this file; the default run includes it


def _need_server() -> None:
    if find() is None:
        pytest.skip("no llama-server + SmolLM2 model in " + ", ".join(map(str, candidate_caches()))
                    + ": `python benchmarks/llm_server.py build` makes them (15-40 min on 2 cores)")


def cli(args: list[str], home: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    full = {**os.environ, "DOSSIER_EMBEDDER": "hash", "HOME": str(home), "PYTHONIOENCODING": "utf-8", **env}
    for name in ("DOSSIER_API_KEY", "DOSSIER_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        full.pop(name, None)  # nothing but the local server may be reached
    return subprocess.run([sys.executable, "-m", "dossier.cli", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_server()  # every test that runs the real server comes through here (via real_run)
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

    @property
    def body(self) -> str:
        return self.text.partition("## References")[0]


@pytest.fixture(scope="module")
def real_run(demo_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    """One `dossier report` against the real server (through the recording proxy); the tests below read it."""
    out = tmp_path_factory.mktemp("real-report") / "report.md"
    with serve() as server, RecordingProxy(server.base_url) as proxy:
        started = time.monotonic()
        proc = cli(["--kb", str(demo_kb), "report", QUESTION, "-o", str(out), "--base-url", proxy.base_url,
                    "--model", server.model, "--max-rounds", "1"], demo_kb.parent, bounded_env(BOUNDS, MAX_TOKENS),
                   REPORT_BOUND_S + 60)
        seconds = time.monotonic() - started
        calls = proxy.take()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    text = out.read_text(encoding="utf-8")
    print(f"\nreal model: {seconds:.0f} s, {len(calls)} calls; outcomes "
          f"{outcomes(method_lines(text, '- Failure:'), method_lines(text, '- LLM:'), calls)}\n"
          f"per step {step_table(calls)}\n" + "\n".join(method_lines(text, "- ")))
    return RealRun(proc, seconds, calls, server.model, text)


def test_report_finishes_in_bounded_time_with_the_real_server(real_run: RealRun) -> None:
    assert real_run.seconds < REPORT_BOUND_S, f"the report took {real_run.seconds:.0f} s"
    assert real_run.calls, "no call reached the real server"
    assert "Engine: llm" in real_run.text and real_run.model in real_run.text


def test_every_citation_resolves(real_run: RealRun) -> None:
    text, body = real_run.text, real_run.body
    resolved = re.search(r"Citations: (\d+)/(\d+) markers resolved", text)
    # (a 135M model may write a section with no marker at all: how many it cites is not what this checks)
    assert resolved and resolved[1] == resolved[2], resolved
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


# --- the recording proxy's judgement, without a server (always run, also under `-m real_model`) ---------

def _call(step: str, status: int = 200) -> "Call":
    return Call(step=step, mode="json_schema", reask=False, stream=False, started=0.0, status=status)


def test_proxy_classifies_steps_forms_and_reasks() -> None:
    plan = {"messages": [{"role": "system", "content": "You plan research over documents. Split it."},
                         {"role": "user", "content": "Question: x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "ResearchPlan", "schema": {}}}}
    assert classify(plan) == ("plan", "json_schema", False)
    reask = {**plan, "messages": [*plan["messages"], {"role": "user", "content": "did not match the schema"}]}
    assert classify(reask) == ("plan", "json_schema", True)
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
