"""A full disk during ingest (issue 12, item 15).

It surfaced as LanceDB's raw ``LanceError(IO): … No space left on device (os error 28)``, and
``--prune`` wrote new files before it deleted anything, so it could not free space on a full disk.
Now any no-space error, from LanceDB, DuckDB or Python, ends the ingest with one message naming
the knowledge-base folder and what to do, the last committed state stays readable, and a prune
deletes before it writes. The disk is filled by a stand-in writer that fails as the real one does
(a real full filesystem needs a mount these tests cannot make).
"""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest

from dossier.cli import main
from tools.corpus import Corpus
from tools.disk_space import DiskFull, is_disk_full
from tools.warehouse import Warehouse

LANCE_ENOSPC = ("LanceError(IO): Generic LocalFileSystem error: Unable to write "
                "kb/lancedb/chunks.lance/data/x.lance: No space left on device (os error 28)")


@pytest.fixture(autouse=True)
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.md").write_text("# Keep\n\nThe heron survey counted 12 birds.\n")
    (folder / "gone.md").write_text("# Gone\n\nThe pelican memo is obsolete.\n")
    (folder / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n")
    return folder


def dossier(capsys: pytest.CaptureFixture, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--kb", str(tmp_path / "kb"), *args])
    out, err = capsys.readouterr()
    return code, out, err


async def lance_no_space(self, *args, **kwargs):
    raise OSError(LANCE_ENOSPC)  # as lancedb raises it: no errno, the reason in the text


def assert_disk_full_message(code: int, err: str, kb: Path) -> None:
    assert code == 1
    text = " ".join(err.split())
    assert text.startswith(f"error: the disk holding the knowledge base {kb} is full"), err
    assert "--prune" in text and "larger disk" in text
    assert "LanceError" not in text and "Traceback" not in text


def test_lance_out_of_space_is_one_clear_error(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setattr(Corpus, "add_chunks", lance_no_space)
    code, _, err = dossier(capsys, tmp_path, "ingest", str(data), "-q")
    assert_disk_full_message(code, err, tmp_path / "kb")


def test_warehouse_copy_out_of_space_ends_the_ingest_and_keeps_the_committed_tables(tmp_path, data, capsys,
                                                                                     monkeypatch):
    code, _, err = dossier(capsys, tmp_path, "ingest", str(data), "-q")
    assert code == 0, err
    (data / "more.csv").write_text("k\n1\n")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tools.warehouse.shutil.copyfile", no_space)
        code, _, err = dossier(capsys, tmp_path, "ingest", str(data), "-q")
    assert_disk_full_message(code, err, tmp_path / "kb")  # not "more.csv skipped: No space left…"
    code, out, err = dossier(capsys, tmp_path, "sql", "SELECT sum(amount) AS s FROM sales")
    assert code == 0 and "30" in out, err
    assert not (tmp_path / "kb" / "warehouse.duckdb.staging").exists()


def test_duckdb_out_of_space_is_not_a_skipped_table(tmp_path, data):
    wh = Warehouse(tmp_path / "kb" / "warehouse.duckdb")

    def no_space(*args, **kwargs):
        raise duckdb.IOException('Could not write file "kb/warehouse.duckdb.staging": No space left on device')

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("tools.warehouse.stage_file", no_space)
            with pytest.raises(DiskFull, match=r"the disk holding the knowledge base .*kb is full"):
                wh.import_file(data / "sales.csv", source="sales.csv", source_hash="h")
        wh.import_file(data / "sales.csv", source="sales.csv", source_hash="h")  # space again: it imports
    finally:
        wh.close()
    assert [t.name for t in Warehouse(wh.path).catalog()] == ["sales"]


def test_prune_deletes_before_it_writes(tmp_path, data, capsys, monkeypatch):
    """On a full disk `ingest --prune` still removes what vanished (the deletions commit before any
    new file is written), so it can free space; the new file fails with the clear message."""
    code, _, err = dossier(capsys, tmp_path, "ingest", str(data), "-q")
    assert code == 0, err
    (data / "gone.md").unlink()
    (data / "sales.csv").unlink()
    (data / "new.md").write_text("# New\n\nThe ibis report arrived.\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Corpus, "add_chunks", lance_no_space)
        code, _, err = dossier(capsys, tmp_path, "ingest", str(data), "--prune", "-q")
    assert_disk_full_message(code, err, tmp_path / "kb")
    code, out, err = dossier(capsys, tmp_path, "search", "pelican memo", "--mode", "text", "--json")
    assert code == 0 and "gone.md" not in out, err
    code, out, err = dossier(capsys, tmp_path, "tables", "--json")
    assert code == 0 and out.strip() == "[]", err
    code, out, err = dossier(capsys, tmp_path, "ingest", str(data), "-q", "--json")  # space again
    assert code == 0 and '"new": 1' in out, err


@pytest.mark.parametrize("exc, full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (RuntimeError(LANCE_ENOSPC), True),
    (duckdb.IOException("Could not write: No space left on device"), True),
    (OSError(errno.EACCES, "Permission denied"), False),
    (RuntimeError("lance: commit conflict"), False),
])
def test_is_disk_full(exc, full):
    assert is_disk_full(exc) is full
    wrapped = RuntimeError("write failed")
    wrapped.__cause__ = exc
    assert is_disk_full(wrapped) is full
