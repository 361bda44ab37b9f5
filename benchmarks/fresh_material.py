"""The FRESH report-quality set: real material shipped inside the installed packages of the venv.

Nobody on the project wrote it: package descriptions (the long description in each ``*.dist-info/METADATA``,
i.e. the package's README as published), matplotlib's sample data tables (``mpl-data/sample_data/Stocks.csv``,
``msft.csv``) and a table of the installed distributions (name, version, licence, files, size in kB summed
from each ``RECORD``). The packages table is a snapshot committed in ``benchmarks/fresh/packages.csv`` (so
the gold answers do not move when someone installs a package); ``python benchmarks/fresh_material.py
--snapshot`` rewrites it from the current venv. The questions, with their gold answers, are data in
``benchmarks/fresh/questions.json``; they were written from the material before any report was read.
"""

from __future__ import annotations

import csv
import io
import sys
from email.parser import Parser
from pathlib import Path

FRESH = Path(__file__).resolve().parent / "fresh"
PACKAGES_CSV = FRESH / "packages.csv"
# Packages whose README (METADATA long description) becomes a document: small, unrelated to the demo.
DOC_PACKAGES = ["httpx", "aiosqlite", "anyio", "attrs", "idna", "h11", "distro", "sniffio", "iniconfig",
                "pluggy", "certifi", "tenacity", "jieba", "lancedb", "duckdb"]
SAMPLE_TABLES = {"Stocks.csv": "stocks.csv", "msft.csv": "msft.csv"}


def site_packages() -> Path:
    import matplotlib  # a dependency of the project (charts); its folder's parent is site-packages

    return Path(matplotlib.__file__).resolve().parents[1]


def _dist_infos(sp: Path) -> list[Path]:
    return sorted(sp.glob("*.dist-info"), key=lambda p: p.name.lower())


def _metadata(dist: Path) -> tuple[dict[str, str], str]:
    msg = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8", errors="replace"))
    headers = {k: str(v) for k, v in msg.items()}
    body = msg.get_payload()
    return headers, body if isinstance(body, str) else ""


def _licence(headers: dict[str, str], msg_classifiers: list[str]) -> str:
    for key in ("License-Expression", "License"):
        value = (headers.get(key) or "").strip()
        if value and len(value) < 60 and "\n" not in value:
            return value
    for c in msg_classifiers:
        if c.startswith("License :: OSI Approved :: "):
            return c.rsplit("::", 1)[1].strip()
    return ""


def packages_rows(sp: Path) -> list[list[str]]:
    """name, version, license, files, size_kb for every installed distribution (sizes from RECORD)."""
    rows = [["name", "version", "license", "files", "size_kb"]]
    for dist in _dist_infos(sp):
        if not (dist / "METADATA").exists() or not (dist / "RECORD").exists():
            continue
        text = (dist / "METADATA").read_text(encoding="utf-8", errors="replace")
        msg = Parser().parsestr(text, headersonly=True)
        classifiers = [str(c) for c in msg.get_all("Classifier") or []]
        headers = {k: str(v) for k, v in msg.items()}
        size, files = 0, 0
        for rec in csv.reader(io.StringIO((dist / "RECORD").read_text(encoding="utf-8", errors="replace"))):
            if len(rec) >= 3:
                files += 1
                size += int(rec[2]) if rec[2].isdigit() else 0
        rows.append([headers.get("Name", dist.name), headers.get("Version", ""), _licence(headers, classifiers),
                     str(files), str(round(size / 1024))])
    return rows


def documents(sp: Path) -> tuple[dict[str, str], list[str]]:
    """file name -> Markdown text of each chosen package's README; and the packages not found."""
    docs, missing = {}, []
    by_name = {}
    for dist in _dist_infos(sp):
        by_name.setdefault(dist.name.split("-", 1)[0].lower().replace("_", "-"), dist)
    for name in DOC_PACKAGES:
        dist = by_name.get(name)
        if dist is None or not (dist / "METADATA").exists():
            missing.append(name)
            continue
        headers, body = _metadata(dist)
        if not body.strip():
            missing.append(name)
            continue
        summary = headers.get("Summary", "").strip()
        head = f"# {headers.get('Name', name)} {headers.get('Version', '')}\n\n" + (f"{summary}\n\n" if summary else "")
        ext = ".md" if "markdown" in headers.get("Description-Content-Type", "").lower() else ".txt"
        docs[f"pkg_{name.replace('-', '_')}_readme{ext}"] = head + body.strip() + "\n"
    return docs, missing


def tables(sp: Path) -> tuple[dict[str, str], list[str]]:
    """file name -> CSV text: the sample tables as shipped, and the packages snapshot."""
    out, missing = {}, []
    sample = sp / "matplotlib" / "mpl-data" / "sample_data"
    for src, dst in SAMPLE_TABLES.items():
        if (sample / src).exists():
            out[dst] = (sample / src).read_text(encoding="utf-8")
        else:
            missing.append(src)
    out["packages.csv"] = PACKAGES_CSV.read_text(encoding="utf-8")
    return out, missing


def write_snapshot(sp: Path) -> None:
    FRESH.mkdir(exist_ok=True)
    with open(PACKAGES_CSV, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(packages_rows(sp))


if __name__ == "__main__":
    if "--snapshot" in sys.argv:
        write_snapshot(site_packages())
        print(f"wrote {PACKAGES_CSV}")
