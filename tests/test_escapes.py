"""File escapes (issue 12, items 1-2): every path is read literally, and nothing outside the
ingested folder is read, whether a document, a table or a sidecar links out of it.

Fixtures are topic-neutral (construction budgets, Python packages) and built in tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tools.confined
from tools.confined import LEAVES_ROOT, ConfinedReadError, open_confined
from tools.warehouse import Warehouse

PRIVATE = "project,budget\nsecret_tower,999\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def table_rows(kb, name: str) -> list[list]:
    return (await kb.sql(f'SELECT * FROM "{name}" ORDER BY 1')).rows


def imported_rows(tmp_path: Path, path: Path, source: str) -> list[tuple]:
    """Import one table file into a fresh warehouse and read back every row it holds."""
    wh = Warehouse(tmp_path / "kb" / "warehouse.duckdb")
    try:
        [info] = wh.import_file(path, source=source, source_hash="h")
        return wh._connect().execute(f'SELECT * FROM "{info.name}"').fetchall()
    finally:
        wh.close()


# -- item 1: glob characters in names reach the reader literally -------------------------------


def test_bracket_name_imports_its_own_rows_not_the_glob_match(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "private_x.csv", PRIVATE)
    own = write(data / "[p]rivate_x.csv", "project,budget\nbridge,10\n")
    assert imported_rows(tmp_path, own, "data/[p]rivate_x.csv") == [("bridge", 10)]


def test_star_name_imports_only_itself(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "private_a.csv", "package,size_kb\nnumpy,100\n")
    write(data / "private_b.csv", "package,size_kb\nscipy,200\n")
    star = write(data / "private_*.csv", "package,size_kb\nrequests,3\n")
    assert imported_rows(tmp_path, star, "data/private_*.csv") == [("requests", 3)]


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl", ".sqlite"])
def test_question_mark_names_of_other_formats_are_literal(tmp_path: Path, suffix: str) -> None:
    import sqlite3

    import pyarrow as pa
    import pyarrow.parquet as pq

    def make(path: Path, value: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            pq.write_table(pa.table({"k": [value]}), path)
        elif suffix == ".sqlite":
            with sqlite3.connect(path) as con:
                con.execute("CREATE TABLE t (k TEXT)")
                con.execute("INSERT INTO t VALUES (?)", [value])
            con.close()
        else:
            path.write_text(f'{{"k": "{value}"}}\n' if suffix == ".jsonl" else f'[{{"k": "{value}"}}]')

    make(tmp_path / "d" / f"ab{suffix}", "outside")
    make(tmp_path / "d" / f"a?{suffix}", "inside")
    assert imported_rows(tmp_path, tmp_path / "d" / f"a?{suffix}", f"d/a?{suffix}") == [("inside",)]


async def test_folder_named_star_beside_a_symlinked_folder_pulls_nothing_in(make_kb, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "costs.csv", PRIVATE)
    root = tmp_path / "ingested"
    (root).mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    write(root / "*" / "costs.csv", "project,budget\npier,5\n")
    kb = await make_kb()
    summary = await kb.ingest([root])
    reasons = {s.path: s.reason for s in summary.skipped}
    assert reasons == {"ingested/linked": "symlinked folder not followed"}
    [table] = await kb.tables()
    assert await table_rows(kb, table.name) == [["pier", 5]]


# -- item 2: one link policy for documents, tables and sidecars -------------------------------


async def test_links_leaving_the_folder_are_refused_and_inner_links_kept(make_kb, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "The confidential okapi budget.\n")
    write(outside / "private.csv", PRIVATE)
    write(outside / "notes.meta.yaml", "description: the confidential okapi sidecar\n")
    root = tmp_path / "docs"
    write(root / "plan.md", "# Plan\n\nThe harbour pier budget.\n")
    write(root / "notes.csv", "project,budget\npier,5\n")
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    (root / "hostname.txt").symlink_to("/etc/hostname")
    (root / "private.csv").symlink_to("../outside/private.csv")
    (root / "notes.meta.yaml").symlink_to(outside / "notes.meta.yaml")
    (root / "alias.md").symlink_to("plan.md")  # stays inside: fine
    kb = await make_kb()

    summary = await kb.ingest([root])

    reasons = {s.path: s.reason for s in summary.skipped}
    leaving = {"docs/secret.txt", "docs/hostname.txt", "docs/private.csv", "docs/notes.meta.yaml"}
    assert {p: r for p, r in reasons.items() if r == LEAVES_ROOT} == {p: LEAVES_ROOT for p in leaving}
    # The table whose sidecar links out is refused too, naming the sidecar.
    assert reasons["docs/notes.csv"] == f"sidecar notes.meta.yaml: {LEAVES_ROOT}"
    assert set(reasons) == leaving | {"docs/notes.csv"}
    assert summary.new == 2  # plan.md and the inner alias
    assert not await kb.search("okapi", k=5, mode="text")
    assert await kb.tables() == []


async def test_sidecar_read_is_checked_again_when_swapped_after_discovery(make_kb, tmp_path, monkeypatch) -> None:
    """TOCTOU: a sidecar that was a plain file at discovery and a link out at read time."""
    import tools.ingest
    from tools.discover import discover as real_discover

    outside = write(tmp_path / "outside" / "x.meta.yaml", "description: the confidential okapi\n")
    root = tmp_path / "docs"
    write(root / "budget.csv", "project,budget\npier,5\n")
    write(root / "budget.meta.yaml", "description: pier budgets\n")

    def swapping(paths):
        found = list(real_discover(paths))
        (root / "budget.meta.yaml").unlink()
        (root / "budget.meta.yaml").symlink_to(outside)
        return iter(found)

    monkeypatch.setattr(tools.ingest, "discover", swapping)
    kb = await make_kb()
    summary = await kb.ingest([root])
    assert {s.path: s.reason for s in summary.skipped} == {
        "docs/budget.csv": f"sidecar budget.meta.yaml: {LEAVES_ROOT}"}
    assert await kb.tables() == []


def test_open_confined_checks_the_opened_file_not_the_name(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    inside = write(root / "a.txt", "inside")
    outside = write(tmp_path / "b.txt", "outside")
    real = os.path.realpath(root)
    with open_confined(inside, real) as handle:
        assert handle.read() == b"inside"
    link = root / "link.txt"
    link.symlink_to(outside)
    with pytest.raises(ConfinedReadError, match=LEAVES_ROOT):
        with open_confined(link, real):
            pass
    # Without /proc the resolved path is checked instead; the verdict is the same.
    monkeypatch.setattr(tools.confined, "_PROC_FD", tmp_path / "no-proc")
    with pytest.raises(ConfinedReadError, match=LEAVES_ROOT):
        with open_confined(link, real):
            pass
