"""Write constraints.txt: the exact versions of dossier[test] and its whole dependency closure, as installed.

Run it from a venv where `pip install -e '.[test]'` works and the suite passes: `python .ci/lock.py`.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("test",)
HEADER = """\
# Exact versions of the runtime + test environment (pip install -c constraints.txt -e '.[test]'), as
# tested on Linux x86_64, CPython 3.11. pyproject.toml keeps the ranges; this file pins one known-good set.
# Regenerate from a working venv with `python .ci/lock.py`.
"""


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    """Whether a dependency applies here: its marker holds for this interpreter and the extras asked for."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def project_requirements() -> list[Requirement]:
    """dossier's own requirements and those of EXTRAS, read from pyproject.toml (not from the possibly
    stale metadata of an editable install)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] + [r for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    return [Requirement(line) for line in lines]


def closure(requirements: list[Requirement]) -> dict[str, str]:
    """Installed name -> version for every distribution the requirements need, their extras included."""
    found: dict[str, tuple[str, str, set[str]]] = {}
    todo = [(r.name, set(r.extras)) for r in requirements if _wanted(r, set())]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found and extras <= found[key][2]:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is not installed: pip install -e '.[test]' first") from None
        seen = found[key][2] if key in found else set()
        found[key] = (dist.metadata["Name"], dist.version, seen | extras)
        todo += [(r.name, set(r.extras)) for r in map(Requirement, dist.requires or []) if _wanted(r, extras)]
    return {name: version for name, version, _ in found.values()}


def main() -> None:
    pins = closure(project_requirements())
    lines = [f"{name}=={pins[name]}" for name in sorted(pins, key=str.lower)]
    path = ROOT / "constraints.txt"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{path}: {len(lines)} pins")


if __name__ == "__main__":
    main()
