"""Issue 14 item 1: every command line of the README's "Using it" block runs as written (in a
scratch folder holding the demo's docs/ and tables/), so README and CLI cannot drift apart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def using_it_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Using it\s+```bash\n(.*?)```", readme, re.S)
    assert block, "README lost its 'Using it' command block"
    return [line for line in block[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_using_it_command_runs(tmp_path: Path) -> None:
    shutil.copytree(REPO / "dossier" / "demo" / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "dossier" / "demo" / "tables", tmp_path / "tables")
    bin_dir = str(Path(sys.executable).parent)  # the `dossier` entry point of this environment
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}, "DOSSIER_EMBEDDER": "hash",
           "DOSSIER_CHUNK_TOKENS": "64", "DOSSIER_CHUNK_OVERLAP": "8", "HOME": str(tmp_path),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    lines = using_it_lines()
    assert len(lines) >= 7
    for line in lines:
        if "RUN_ID" in line:
            runs = subprocess.run(["dossier", "runs", "--kb", "kb"], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120)
            line = line.replace("RUN_ID", runs.stdout.split()[0])
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stdout[-1000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "report.md").stat().st_size > 1000
