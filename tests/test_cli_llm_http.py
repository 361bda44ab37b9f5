"""`dossier report` through the real ChatOpenAI client against a scripted OpenAI-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dossier.testing import OpenAIStub, Reply, stub_responder
from tests.graph_fixtures import graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
SENTINEL_KEY = "sk-sentinel-DO-NOT-LEAK-4242"


@pytest.fixture
async def built_kb(tmp_path):
    paths = write_corpus(tmp_path / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(paths)
    await kb.close()
    return tmp_path / "kb"


def run_cli(args: list[str], kb_dir: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DOSSIER_EMBEDDER": "hash", "DOSSIER_CHUNK_TOKENS": "64",
                "DOSSIER_CHUNK_OVERLAP": "8", "HOME": str(kb_dir.parent), **env}
    return subprocess.run([sys.executable, "-m", "dossier.cli", "--kb", str(kb_dir), *args], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=120)


def test_report_over_http_with_real_client(built_kb, tmp_path):
    script = AnalystScript()
    out = tmp_path / "report.md"
    with OpenAIStub(stub_responder(script)) as stub:
        proc = run_cli(["report", "What does RAG cost compared with fine-tuning?", "-o", str(out),
                        "--base-url", stub.base_url, "--model", "stub-model"], built_kb,
                       DOSSIER_API_KEY=SENTINEL_KEY, DOSSIER_LLM_MAX_RETRIES="1")
        requests = [r.json for r in stub.chat_requests]
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "## References" in text and "[1]" in text and "```sql" in text
    assert "Engine: llm" in text and "stub-model" in text
    assert any(r.get("response_format", {}).get("type") == "json_schema" for r in requests)
    assert any(r.get("tools") for r in requests)
    assert any(r.get("stream") for r in requests)
    assert any(m.get("role") == "tool" for r in requests for m in r["messages"])
    for blob in (text, proc.stdout, proc.stderr):
        assert SENTINEL_KEY not in blob


def test_report_survives_endpoint_down(built_kb, tmp_path):
    out = tmp_path / "report.md"
    with OpenAIStub(lambda request: Reply.fault(503)) as stub:
        proc = run_cli(["report", "What does RAG cost compared with fine-tuning?", "-o", str(out),
                        "--base-url", stub.base_url, "--model", "stub-model"], built_kb,
                       DOSSIER_LLM_MAX_RETRIES="1")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "fell back to offline" in text and "Failure: plan" in text and "[1]" in text


def test_runs_and_resume_commands(built_kb, tmp_path):
    first = run_cli(["report", "What does RAG cost?", "--offline", "-o", str(tmp_path / "a.md")], built_kb)
    assert first.returncode == 0, first.stderr
    runs = run_cli(["runs"], built_kb)
    assert runs.returncode == 0 and "done" in runs.stdout
    run_id = runs.stdout.split()[0]
    again = run_cli(["resume", run_id, "-o", str(tmp_path / "b.md")], built_kb)
    assert again.returncode == 0, again.stderr
    before_method = [(tmp_path / name).read_text().split("## Method")[0] for name in ("a.md", "b.md")]
    assert before_method[0] == before_method[1]
    missing = run_cli(["resume", "nope"], built_kb)
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr


def test_report_review_edits_the_plan_interactively(built_kb, tmp_path):
    out = tmp_path / "reviewed.md"
    full_env = {**os.environ, "DOSSIER_EMBEDDER": "hash", "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8"}
    proc = subprocess.run(
        [sys.executable, "-m", "dossier.cli", "--kb", str(built_kb), "report",
         "What does RAG cost compared with fine-tuning?", "--offline", "--review", "-o", str(out)],
        cwd=REPO, env=full_env, input="+ What is the 2026 RAG programme budget?\n-1\nnonsense\n\n",
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    plan = out.read_text().split("### Plan", 1)[1]
    assert "What is the 2026 RAG programme budget?" in plan
    assert "not understood" in proc.stderr
    assert plan.count("\n1. ") == 1
