"""Every LLM endpoint fault of issue 6, injected at a chosen stage through the real ChatOpenAI client.

Each case runs ``Researcher.run`` against the scripted OpenAI-compatible stub with one fault rule:
transient faults must be retried and the run finish on the LLM engine; malformed answers must be
re-asked and the run go on; persistent faults must hand the rest of the run to the offline engine,
with a complete report whose method section says which call failed and why. No case may raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dossier.render import render_markdown
from dossier.research import Researcher
from dossier.testing import stub_responder
from dossier.testing.openai_stub import (
    OpenAIStub,
    RecordedRequest,
    Reply,
    schema_name,
    tool_names,
)
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase
from tools.vocabulary import Report

REPO = Path(__file__).resolve().parents[1]

# Which chat request belongs to which role of the LLM engine.
STAGES: dict[str, Callable[[dict], bool]] = {
    "plan": lambda r: schema_name(r) == "ResearchPlan",
    "research": lambda r: "search_documents" in tool_names(r),
    "reflect": lambda r: schema_name(r) == "EvidenceReview",
    "outline": lambda r: schema_name(r) == "ReportOutline",
    "write": lambda r: bool(r.get("stream")) and not r.get("tools") and not r.get("response_format"),
}
ORDER = list(STAGES)
# Requests per stage in a fault-free run: 2 sub-questions x 3 tool turns, covered in round 1, 2 sections.
BASELINE = {"plan": 1, "research": 6, "reflect": 1, "outline": 1, "write": 2}


@dataclass(frozen=True)
class Case:
    id: str
    stage: str
    fault: Reply
    expect: str  # "retried" | "reasked" | "fallback"
    times: int | None = 1  # None: every request of the stage fails
    reask_marker: str = ""  # text the re-ask request carries
    failure: str = ""  # text one of Report.failures must contain
    timeout_s: float = 10.0
    retries: int = 2


BROKEN_PLAN = Reply.text('{"sub_questions": [{"question": "What does RAG')  # JSON cut off mid-string
OFF_SCHEMA_REVIEW = Reply.json({"reviews": "all answered"})  # parses, but not as an EvidenceReview
SCHEMA_REASK = "did not match the schema"

CASES = [
    # Transient: the client retries and the run ends on the LLM engine.
    Case("429-retry-after", "plan", Reply.fault(429, retry_after=1), "retried"),
    Case("500", "research", Reply.fault(500), "retried"),
    Case("502", "outline", Reply.fault(502), "retried"),
    Case("503", "write", Reply.fault(503), "retried"),
    Case("hang", "reflect", Reply.fault("hang"), "retried", timeout_s=1.5),
    Case("drop-mid-stream", "write", Reply.fault("drop"), "retried"),
    Case("drop-mid-body", "plan", Reply.fault("drop"), "retried"),
    # Malformed: the model is shown the problem and asked again; the run goes on on the LLM engine.
    Case("malformed-json", "plan", BROKEN_PLAN, "reasked", reask_marker=SCHEMA_REASK),
    Case("off-schema", "reflect", OFF_SCHEMA_REVIEW, "reasked", reask_marker=SCHEMA_REASK),
    Case("malformed-body", "outline", Reply.fault("malformed"), "reasked", reask_marker=SCHEMA_REASK),
    Case("invalid-tool-args", "research", Reply.fault("invalid_tool_args"), "reasked",
         reask_marker="could not parse the arguments"),
    Case("empty-structured", "plan", Reply.fault("empty"), "reasked", reask_marker=SCHEMA_REASK),
    Case("empty-write", "write", Reply.fault("empty"), "reasked", reask_marker="Your answer was empty"),
    # Persistent: retries and re-asks run out; the rest of the run is offline and the report says why.
    Case("429-forever", "plan", Reply.fault(429, retry_after=0.1), "fallback", None,
         failure="RateLimitError: Error code: 429", retries=1),
    Case("503-forever", "outline", Reply.fault(503), "fallback", None, failure="Error code: 503",
         retries=1),
    Case("hang-forever", "reflect", Reply.fault("hang"), "fallback", None, failure="TimeoutError",
         timeout_s=1.0, retries=1),
    Case("drop-forever", "write", Reply.fault("drop"), "fallback", None, failure="StreamInterrupted", retries=1),
    Case("malformed-forever", "plan", BROKEN_PLAN, "fallback", None, failure="plan: MalformedOutput"),
    Case("invalid-args-forever", "research", Reply.fault("invalid_tool_args"), "fallback", None,
         failure="MalformedOutput: tool call arguments still unparsable"),
    Case("empty-forever", "write", Reply.fault("empty"), "fallback", None, failure="ValueError: empty section text"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_corpus(tmp_path_factory.mktemp("faults") / "corpus")


@pytest.fixture(scope="module")
async def kb(corpus, tmp_path_factory):
    """One knowledge base for every in-process case: runs only add checkpoints, under fresh run ids."""
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path_factory.mktemp("faults-kb") / "kb"))
    await kb.ingest(corpus)
    yield kb
    await kb.close()


async def run_with(kb: KnowledgeBase, stub: OpenAIStub, *, timeout_s: float = 10.0, retries: int = 2) -> Report:
    """A run of the LLM engine through the real ChatOpenAI client, pointed at the stub."""
    settings = graph_settings(
        kb.settings.kb_dir, engine="llm", base_url=stub.base_url, api_key="sk-test", model_fast="stub-fast",
        model_strong="stub-strong", llm_timeout_s=timeout_s, llm_max_retries=retries,
    )
    return await Researcher(kb, settings=settings).run(QUESTION)


def stage_of(request: RecordedRequest) -> str:
    return next(name for name, match in STAGES.items() if match(request.json))


def counts(stub: OpenAIStub) -> dict[str, int]:
    seen = {name: 0 for name in STAGES}
    for request in stub.chat_requests:
        seen[stage_of(request)] += 1
    return seen


def texts(request: RecordedRequest) -> str:
    return json.dumps(request.json["messages"], ensure_ascii=False)


def assert_complete(report: Report) -> None:
    """A usable report whatever engine wrote it: sections, references, citations that all resolve."""
    assert report.sections and all(s.markdown.strip() for s in report.sections)
    assert report.references
    v = report.verification
    assert v.markers_total > 0 and v.markers_resolved == v.markers_total


async def test_fault_free_baseline(kb):
    """The request counts the cases compare against, and that the analyst's run is sound."""
    with OpenAIStub(stub_responder(AnalystScript())) as stub:
        report = await run_with(kb, stub)
    assert counts(stub) == BASELINE and stub.errors == []
    assert report.engine == "llm" and report.failures == []
    assert_complete(report)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_fault(kb, case: Case):
    with OpenAIStub(stub_responder(AnalystScript()), max_hang_s=5) as stub:
        stub.inject(case.fault, times=case.times, when=STAGES[case.stage])
        # (d): whatever happens, the caller gets a report back, never an exception.
        report = await run_with(kb, stub, timeout_s=case.timeout_s, retries=case.retries)
    assert any(r.reply is case.fault for r in stub.chat_requests) and stub.errors == []
    assert_complete(report)
    markdown = render_markdown(report)
    if case.expect == "fallback":
        assert_fell_back(stub, case, report, markdown)
        return
    assert report.engine == "llm" and report.failures == [], report.failures
    assert "- Engine: llm (models:" in markdown and "- Failure:" not in markdown
    if case.expect == "retried":
        assert_retried(stub, case)
    else:
        assert_reasked(stub, case)


def assert_retried(stub: OpenAIStub, case: Case) -> None:
    """The faulted request was sent again, unchanged, and nothing else in the run changed."""
    faulted = next(r for r in stub.chat_requests if r.fault)
    retry = next(r for r in stub.chat_requests if r.index > faulted.index and r.json == faulted.json)
    assert retry.fault is None and len(stub.fault_log) == 1
    assert counts(stub) == {**BASELINE, case.stage: BASELINE[case.stage] + 1}
    if case.fault.retry_after:  # Retry-After: 1 was honoured, not the SDK's own 0.5 s backoff
        assert case.fault.retry_after - 0.1 <= retry.at - faulted.at < case.fault.retry_after + 3


def assert_reasked(stub: OpenAIStub, case: Case) -> None:
    """A later request of the same stage shows the model what went wrong, and it was answered."""
    faulted = next(r for r in stub.chat_requests if r.fault or r.reply is case.fault)
    later = [r for r in stub.chat_requests if r.index > faulted.index and stage_of(r) == case.stage]
    assert any(case.reask_marker in texts(r) for r in later), [texts(r)[-300:] for r in later]
    assert case.reask_marker not in texts(faulted)


def assert_fell_back(stub: OpenAIStub, case: Case, report: Report, markdown: str) -> None:
    assert report.engine == "llm (fell back to offline)"
    assert any(case.failure in f and f.endswith("continued offline") for f in report.failures), report.failures
    assert report.failures[0].startswith(case.stage)
    assert f"- Failure: {report.failures[0]}" in markdown and "fell back to offline" in markdown
    later_stages = ORDER[ORDER.index(case.stage) + 1:]
    assert all(counts(stub)[s] == 0 for s in later_stages), counts(stub)  # the rest of the run was offline
    assert counts(stub)[case.stage] > 1  # retried or re-asked before giving up


def run_cli(args: list[str], kb_dir: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DOSSIER_EMBEDDER": "hash", "DOSSIER_CHUNK_TOKENS": "64",
                "DOSSIER_CHUNK_OVERLAP": "8", "HOME": str(kb_dir.parent), **env}
    return subprocess.run([sys.executable, "-m", "dossier.cli", "--kb", str(kb_dir), *args], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=120)


async def test_cli_report_survives_mixed_faults(corpus, tmp_path):
    """Through `dossier report --base-url`: a 429, bad tool arguments, then an outline endpoint that stays down."""
    own_kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))  # the CLI process needs its own
    await own_kb.ingest(corpus)
    await own_kb.close()
    out = tmp_path / "report.md"
    with OpenAIStub(stub_responder(AnalystScript())) as stub:
        stub.inject(Reply.fault(429, retry_after=1), when=STAGES["plan"])
        stub.inject(Reply.fault("invalid_tool_args"), when=STAGES["research"])
        stub.inject(Reply.fault(502), times=None, when=STAGES["outline"])
        proc = run_cli(["report", QUESTION, "-o", str(out), "--quiet", "--base-url", stub.base_url,
                        "--model", "stub-model"], tmp_path / "kb", DOSSIER_LLM_MAX_RETRIES="1",
                       DOSSIER_LLM_TIMEOUT_S="10", DOSSIER_API_KEY="sk-test")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    text = out.read_text()
    assert "fell back to offline" in text and "- Failure: outline:" in text and "Error code: 502" in text
    assert "## References" in text and "[1]" in text
    assert [f.kind for f in stub.fault_log] == ["429", "invalid_tool_args", "502", "502"]
