"""The API key never leaves the settings (issue "Reliability and security", item 7).

Reports run with the LLM engine through the OpenAI stub with a sentinel key: in process (passed
in Settings, and from DOSSIER_API_KEY), with the endpoint failing (falling back, and with the
fallback off so the error surfaces), and through the CLI. Then every place a key could end up is
searched for it: the Markdown, the Report JSON, the CLI's stdout/stderr, every log record of the
dossier/agents/graphs/tools/langchain/openai/httpx loggers at DEBUG, the checkpoint database
(every column raw, and the checkpoints decoded), every file under the KB folder, str()/repr() of
the settings, and the exception (with its traceback) raised when the endpoint is down.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import SecretStr

from dossier.render import render_markdown
from dossier.research import Researcher
from dossier.settings import Settings
from dossier.testing import OpenAIStub, Reply, stub_responder
from graphs.state import SERIALIZED_TYPES
from tests.graph_fixtures import QUESTION, graph_settings, write_corpus
from tests.support.analyst_script import AnalystScript
from tools.knowledge_base import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
TOKEN = secrets.token_hex(8)
SENTINEL = f"sk-sentinel-{TOKEN}"
NEEDLES = (SENTINEL, TOKEN)  # the key, and its random part (a key cut short or re-prefixed)
# openai 3.x sends through httpx2/httpcore2; aiosqlite logs the checkpoint writes with their values
LOGGERS = ("dossier", "agents", "graphs", "tools", "langchain", "langchain_core", "langchain_openai",
           "langgraph", "openai", "httpx", "httpcore", "httpx2", "httpcore2", "aiosqlite")


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return [n for n in NEEDLES if n.encode() in data]


def analyst(request: dict) -> Any:
    return stub_responder(AnalystScript())(request)  # a fresh analyst per request, as before


@pytest.fixture
async def kb_dir(tmp_path) -> Path:
    paths = write_corpus(tmp_path / "corpus")
    kb = await KnowledgeBase.open(settings=graph_settings(tmp_path / "kb"))
    await kb.ingest(paths)
    await kb.close()
    kb.corpus.close()
    return tmp_path / "kb"


@pytest.fixture
def debug_logs(caplog):
    """Every logger the key could pass through, at DEBUG, captured."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def llm_settings(kb_dir: Path, base_url: str, **overrides: Any) -> Settings:
    return graph_settings(kb_dir, engine="llm", base_url=base_url, model_fast="stub-model", model_strong="stub-model",
                          llm_max_retries=1, llm_timeout_s=10, **overrides)


async def research(kb_dir: Path, settings: Settings) -> Any:
    kb = await KnowledgeBase.open(settings=settings)
    try:
        return await Researcher(kb, settings=settings).run(QUESTION)
    finally:
        await kb.close()
        kb.corpus.close()


def run_cli(args: list[str], kb_dir: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")},
                "DOSSIER_EMBEDDER": "hash", "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8",
                "DOSSIER_LLM_MAX_RETRIES": "1", "HOME": str(kb_dir.parent), **env}
    return subprocess.run([sys.executable, "-m", "dossier.cli", "--kb", str(kb_dir), *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=180)


def record_texts(caplog) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out = []
    for record in caplog.records:
        out += [formatter.format(record), repr(record.args), repr(getattr(record, "__dict__", {}))]
    return out


def checkpoint_texts(db: Path) -> tuple[list[bytes], list[str]]:
    """Every column of every row of runs.sqlite as raw bytes, and the checkpoints decoded."""
    raw: list[bytes] = []
    decoded: list[str] = []
    serde = JsonPlusSerializer(allowed_msgpack_modules=SERIALIZED_TYPES)
    con = sqlite3.connect(db)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = con.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                raw += [v if isinstance(v, bytes) else str(v).encode() for v in row]
                values = dict(zip(columns, row))
                for blob_column in ("checkpoint", "value"):
                    if isinstance(values.get(blob_column), bytes) and values.get("type"):
                        decoded.append(repr(serde.loads_typed((values["type"], values[blob_column]))))
    finally:
        con.close()
    return raw, decoded


def scan_kb_folder(kb_dir: Path) -> dict[str, Any]:
    """Leaks in every file under the KB folder and in runs.sqlite; counts what was searched."""
    files = [p for p in kb_dir.rglob("*") if p.is_file()]
    found = {str(p.relative_to(kb_dir)): leaks(p.read_bytes()) for p in files}
    raw, decoded = checkpoint_texts(kb_dir / "runs.sqlite")
    found["runs.sqlite (columns)"] = [n for v in raw for n in leaks(v)]
    found["runs.sqlite (decoded)"] = [n for v in decoded for n in leaks(v)]
    return {"files": len(files), "cells": len(raw), "decoded": len(decoded),
            "leaks": {k: v for k, v in found.items() if v}}


# -- tests ---------------------------------------------------------------------------------------


def test_settings_never_show_the_key(monkeypatch) -> None:
    passed = Settings(api_key=SENTINEL, base_url="http://127.0.0.1:9/v1", embedder="hash")
    monkeypatch.setenv("DOSSIER_API_KEY", SENTINEL)
    from_env = Settings(embedder="hash")
    for settings in (passed, from_env):
        assert isinstance(settings.api_key, SecretStr) and settings.api_key.get_secret_value() == SENTINEL
        assert settings.uses_llm()
        for text in (str(settings), repr(settings), settings.model_dump_json(), repr(settings.model_dump()),
                     repr(settings.model_dump(mode="json")), str(settings.api_key), repr(settings.api_key),
                     f"{settings}", f"{settings!r}", repr(settings.model_copy(update={"engine": "llm"}))):
            assert not leaks(text), text
    from graphs.report import settings_hash

    assert settings_hash(passed) == settings_hash(passed.model_copy(update={"api_key": SecretStr("other")}))


async def test_in_process_runs_leak_nothing(kb_dir, debug_logs, monkeypatch) -> None:
    """A good run (key in Settings), a failing run that falls back (key from DOSSIER_API_KEY), and a
    failing run with the fallback off: the exception and its traceback are searched too."""
    with OpenAIStub(analyst) as stub:
        report = await research(kb_dir, llm_settings(kb_dir, stub.base_url, api_key=SENTINEL))
        auth = [r.headers.get("authorization", "") for r in stub.chat_requests]
    assert report.engine == "llm" and report.references and not report.failures
    # the key did reach the endpoint (the stub keeps only its last 4 characters)
    assert auth and all(a == f"Bearer ****{SENTINEL[-4:]}" for a in auth)

    monkeypatch.setenv("DOSSIER_API_KEY", SENTINEL)
    with OpenAIStub(lambda request: Reply.fault(503)) as down:
        fell_back = await research(kb_dir, llm_settings(kb_dir, down.base_url))
        assert fell_back.failures and "fell back to offline" in fell_back.engine
        with pytest.raises(Exception) as caught:
            await research(kb_dir, llm_settings(kb_dir, down.base_url, fallback_offline=False))
        assert down.chat_requests[-1].headers["authorization"].endswith(SENTINEL[-4:])
    error = caught.value
    response = getattr(error, "response", None)  # openai's APIStatusError keeps the HTTP exchange
    assert response is not None and SENTINEL in response.request.headers["authorization"]  # it is in there…
    error_texts = [str(error), repr(error), "".join(traceback.format_exception(error)),
                   repr(response.request.headers), repr(response.request), repr(response)]  # …but never shown
    assert "503" in error_texts[0] or "Service Unavailable" in error_texts[2]

    texts = {"markdown": render_markdown(report) + render_markdown(fell_back),
             "report json": report.model_dump_json() + fell_back.model_dump_json(),
             "failures": "\n".join(fell_back.failures), "exception": "\n".join(error_texts),
             "log records": "\n".join(record_texts(debug_logs)), "caplog text": debug_logs.text}
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
    names = {r.name.split(".")[0] for r in debug_logs.records}
    assert "openai" in names and names & {"httpx", "httpx2"}, names  # the search above saw their records
    scanned = scan_kb_folder(kb_dir)
    assert scanned["leaks"] == {} and scanned["decoded"] > 0
    print(f"\nsecrets (in process): {len(debug_logs.records)} log records, {scanned['files']} KB files, "
          f"{scanned['cells']} checkpoint cells, {scanned['decoded']} decoded checkpoints: 0 leaks")


def test_cli_runs_leak_nothing(kb_dir, tmp_path) -> None:
    """The CLI with DOSSIER_API_KEY: a good run, and a failure with --debug (a full traceback); the
    fallback's failure messages are the same code path as in process, searched above."""
    out = tmp_path / "reports"
    with OpenAIStub(analyst) as stub:
        good = run_cli(["report", QUESTION, "-o", str(out / "good.md"), "--base-url", stub.base_url,
                        "--model", "stub-model"], kb_dir, DOSSIER_API_KEY=SENTINEL)
        assert stub.chat_requests and stub.chat_requests[0].headers["authorization"].endswith(SENTINEL[-4:])
    with OpenAIStub(lambda request: Reply.fault(503)) as down:
        failed = run_cli(["--debug", "report", QUESTION, "--base-url", down.base_url, "--model", "stub-model"],
                         kb_dir, DOSSIER_API_KEY=SENTINEL, DOSSIER_FALLBACK_OFFLINE="false")
    assert good.returncode == 0, good.stderr[-2000:]
    assert failed.returncode != 0 and "Traceback" in failed.stderr and "503" in failed.stderr
    for proc in (good, failed):
        assert not leaks(proc.stdout) and not leaks(proc.stderr), proc.args
    for report in out.iterdir():
        assert not leaks(report.read_bytes()), report
    scanned = scan_kb_folder(kb_dir)
    assert scanned["leaks"] == {} and scanned["decoded"] > 0
    print(f"\nsecrets (CLI): 2 runs, {scanned['files']} KB files, {scanned['cells']} checkpoint cells: 0 leaks")


def echoing(request: dict) -> Reply:
    """A server that quotes the key it was sent in its error, as OpenAI's 401 does."""
    return Reply.error(401, f"Incorrect API key provided: {SENTINEL}. You can find your API key at https://x/keys.")


async def test_echoed_key_is_redacted_everywhere(kb_dir, debug_logs, monkeypatch) -> None:
    """Issue 12 item 9: the key echoed by the server reaches no failure line, report, exception,
    traceback, log record or checkpoint (fallback on and off)."""
    monkeypatch.setenv("DOSSIER_API_KEY", SENTINEL)
    with OpenAIStub(echoing) as stub:
        fell_back = await research(kb_dir, llm_settings(kb_dir, stub.base_url))
        with pytest.raises(Exception) as caught:
            await research(kb_dir, llm_settings(kb_dir, stub.base_url, fallback_offline=False))
        assert stub.chat_requests, "the stub was never asked"
    assert fell_back.failures and "Incorrect API key provided" in fell_back.failures[0]
    error = caught.value
    texts = {"failures": "\n".join(fell_back.failures), "markdown": render_markdown(fell_back),
             "report json": fell_back.model_dump_json(),
             "exception": "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))]),
             "log records": "\n".join(record_texts(debug_logs)), "caplog text": debug_logs.text}
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
    assert "401" in texts["exception"] or "Incorrect API key" in texts["exception"]
    assert scan_kb_folder(kb_dir)["leaks"] == {}


def test_cli_echoed_key_is_redacted(kb_dir) -> None:
    with OpenAIStub(echoing) as stub:
        failed = run_cli(["report", QUESTION, "--base-url", stub.base_url, "--model", "stub-model"],
                         kb_dir, DOSSIER_API_KEY=SENTINEL, DOSSIER_FALLBACK_OFFLINE="false")
        debug = run_cli(["--debug", "report", QUESTION, "--base-url", stub.base_url, "--model", "stub-model"],
                        kb_dir, DOSSIER_API_KEY=SENTINEL, DOSSIER_FALLBACK_OFFLINE="false")
    assert failed.returncode != 0 and "Incorrect API key" in failed.stderr, failed.stderr[-2000:]
    assert "Traceback" in debug.stderr
    for proc in (failed, debug):
        assert not leaks(proc.stdout) and not leaks(proc.stderr), proc.stderr[-2000:]
    assert scan_kb_folder(kb_dir)["leaks"] == {}
