"""The analyst notebooks run top to bottom: offline, and with the LLM engine against a scripted endpoint.

Each notebook is executed in a real Jupyter kernel (nbclient + ipykernel). The kernel inherits this
process's environment, so the notebooks' settings (``DOSSIER_NOTEBOOK_*``, ``DOSSIER_*``) are set with
monkeypatch before it starts. The three notebooks share one knowledge-base folder per engine, as a
reader pointing them at one ``DOSSIER_NOTEBOOK_KB`` would.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dossier.testing import OpenAIStub, stub_responder
from tests.support.analyst_script import AnalystScript

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# A cell that runs past this is stuck, not slow (the three notebooks take ~25 s in all here); on a CI
# machine that also compiles llama.cpp in the background a healthy cell must never fail on time.
CELL_TIMEOUT_S = 600
# Before a stuck cell times out, the kernel writes every thread's stack to its stderr, which pytest
# captures and prints with the failure: a hang seen once on CI can then be diagnosed from its log.
STACK_DUMP_CELL = ("import faulthandler, sys\n"
                   f"faulthandler.dump_traceback_later({CELL_TIMEOUT_S - 60}, repeat=True, file=sys.__stderr__)")


def test_notebooks_are_stored_without_outputs():
    assert [p.name for p in NOTEBOOKS][:3] == [
        "01_build_and_explore.ipynb", "02_research_question.ipynb", "03_inspect_a_run.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
            assert "outputs" not in cell or cell.cell_type == "code"


def execute(path: Path, cwd: Path) -> str:
    """Run every cell (an erroring cell raises CellExecutionError); return the text the notebook printed."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(STACK_DUMP_CELL))
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            data = output.get("data", {})
            texts.append(data.get("text/markdown", "") or data.get("text/plain", ""))
    return "\n".join(texts)


def run_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: str, **env: str) -> dict[str, str]:
    for name, value in {"DOSSIER_NOTEBOOK_ENGINE": engine, "DOSSIER_NOTEBOOK_KB": str(tmp_path),
                        "DOSSIER_EMBEDDER": "hash", **env}.items():
        monkeypatch.setenv(name, value)
    return {path.name: execute(path, tmp_path) for path in NOTEBOOKS}


def test_notebooks_run_offline(monkeypatch, tmp_path):
    out = run_all(monkeypatch, tmp_path, "offline")
    assert "refused: DROP TABLE llm_projects" in out["01_build_and_explore.ipynb"]
    assert "engine offline" in out["02_research_question.ipynb"]
    assert "## References" in out["02_research_question.ipynb"]
    assert "is now 'done'" in out["03_inspect_a_run.ipynb"]
    assert (tmp_path / "kb-notebook" / "runs.sqlite").exists()


def test_notebooks_run_with_llm_engine(monkeypatch, tmp_path):
    script = AnalystScript()
    with OpenAIStub(stub_responder(script)) as stub:
        out = run_all(monkeypatch, tmp_path, "llm", DOSSIER_BASE_URL=stub.base_url, DOSSIER_API_KEY="sk-test",
                      DOSSIER_MODEL_FAST="stub-model", DOSSIER_MODEL_STRONG="stub-model",
                      DOSSIER_LLM_MAX_RETRIES="1")
        requests = [r.json for r in stub.chat_requests]
    assert "engine llm," in out["02_research_question.ipynb"], "the report should come from the LLM engine"
    assert "fell back" not in out["02_research_question.ipynb"]
    assert {"plan", "reflect", "outline", "write"} <= set(script.log)
    assert any(r.get("tools") for r in requests) and all(r["model"] == "stub-model" for r in requests)
    assert "is now 'done'" in out["03_inspect_a_run.ipynb"]
    assert "sk-test" not in "".join(out.values())
