"""Issue 15 item 6: the README's "Testing your own pipeline" example runs as written: saved as a test
file beside the demo's docs/, then run by pytest in a scratch folder, offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"## Testing your own pipeline\n(.*?)\n## ", readme, re.S)
    assert section, "README lost its 'Testing your own pipeline' section"
    (block,) = re.findall(r"```python\n(.*?)```", section[1], re.S)
    return block


def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    shutil.copytree(REPO / "dossier" / "demo" / "docs", tmp_path / "docs")
    (tmp_path / "test_my_pipeline.py").write_text(readme_example(), encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_pipeline.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
