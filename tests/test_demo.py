"""The Quickstart's main job, as a user runs it: ``dossier demo`` on a fresh folder writes the
English and Chinese reports in every format, and the excerpt the README shows is what the demo
really writes (so the README cannot drift from the product)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXCERPT_RE = re.compile(r"<!-- demo-excerpt:start -->\n```markdown\n(.*?)```\n<!-- demo-excerpt:end -->", re.S)


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kb = tmp_path_factory.mktemp("demo") / "kb-demo"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "120"}
    env.pop("DOSSIER_BASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "dossier.cli", "demo", "--kb", str(kb), "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return kb / "reports"


def test_demo_writes_every_report(demo_reports: Path) -> None:
    for lang in ("en", "zh"):
        for ext in ("md", "html", "pdf"):
            path = demo_reports / f"demo-report-{lang}.{ext}"
            assert path.stat().st_size > 2_000, path
    en = (demo_reports / "demo-report-en.md").read_text(encoding="utf-8")
    zh = (demo_reports / "demo-report-zh.md").read_text(encoding="utf-8")
    assert "## References" in en and "## Method" in en
    assert "## 参考资料" in zh
    assert re.search(r"Citations: (\d+)/\1 markers resolved", en)


def test_readme_excerpt_is_from_the_real_demo_report(demo_reports: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = EXCERPT_RE.search(readme)
    assert match, "README lost its demo excerpt markers"
    report = (demo_reports / "demo-report-en.md").read_text(encoding="utf-8")
    # a line cut short ends in " …"; what precedes it must be in the report as written
    lines = [line.removesuffix(" …") for line in match[1].splitlines() if line.strip() not in ("", "…")]
    assert len(lines) >= 8
    missing = [line for line in lines if line not in report]
    assert not missing, f"README excerpt lines not in the demo report: {missing}"
