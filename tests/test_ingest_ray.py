"""``ingest --ray``: the Ray path (tools/ingest_ray.py) stores what the single-process path stores and
keeps its incremental semantics (unchanged files untouched, changed ones replaced, prune, bad files
skipped with their reason). One small local Ray, bound to loopback, serves the whole module."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import lancedb
import pytest

import tools.ingest_ray
from dossier.cli import main
from tools.corpus import CHUNKS, DOCUMENTS
from tools.embeddings import E5SmallEmbedder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'dossier[ray]')"
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """A 2-CPU local Ray with an 80 MB object store, shut down after the module."""
    with pytest.MonkeyPatch.context() as mp:
        # Set before Ray is imported: its node then binds 127.0.0.1, not the machine's address.
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # Ray writes ~/.ray/auth_token; one folder for the session, as a later ray.init in this process
        # reads the token it cached the first time.
        mp.setenv("HOME", str(tmp_path_factory.getbasetemp() / "ray-home"))
        import ray

        ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False,
                 logging_level=logging.WARNING)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    for i in range(9):
        body = "\n\n".join(f"Paragraph {p} of note {i}: the regional pipeline reduced latency by {i + p}%."
                           for p in range(12))
        _write(docs / f"note_{i}.md", f"# Note {i}\n\n{body}\n")
    _write(docs / "plain.txt", "A plain text file about the procurement budget. " * 40)
    _write(docs / "page.html", "<html><head><title>Page</title></head><body><h1>Audit</h1><p>"
                               + "The audit found gaps in logging. " * 30 + "</p></body></html>")
    _write(docs / "zh.md", "# 说明\n\n" + "知识库的检索质量在第三季度提高了。" * 30)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    _write(docs / "sales.csv", "region,amount\nnorth,10\nsouth,20\n")
    return docs


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _chunks(kb_dir: Path) -> list[tuple]:
    table = lancedb.connect(str(kb_dir / "lancedb")).open_table(CHUNKS).to_arrow()
    rows = table.drop_columns(["vector"]).to_pylist()
    vectors = table["vector"].to_pylist()
    return sorted((json.dumps(r, sort_keys=True), tuple(v)) for r, v in zip(rows, vectors))


def _manifest(kb_dir: Path) -> dict[str, dict]:
    rows = lancedb.connect(str(kb_dir / "lancedb")).open_table(DOCUMENTS).to_arrow().to_pylist()
    return {r["source"]: {k: v for k, v in r.items() if k != "ingested_at"} for r in rows}


async def test_ray_path_stores_what_one_process_stores(ray_local, make_kb, tmp_path, folder, monkeypatch):
    # Small tasks and commits, so several of each happen on a small folder.
    monkeypatch.setattr(tools.ingest_ray, "TASK_FILES", 3)
    monkeypatch.setattr(tools.ingest_ray, "FLUSH_CHUNKS", 8)
    single = await make_kb(kb_dir=tmp_path / "kb-single")
    on_ray = await make_kb(kb_dir=tmp_path / "kb-ray")
    one = await single.ingest([folder])
    fanned = await on_ray.ingest([folder], ray=True)

    assert _chunks(on_ray.path) == _chunks(single.path)
    assert _manifest(on_ray.path) == _manifest(single.path)
    same = ("new", "changed", "unchanged", "tables_new", "chunks_added", "chunks_embedded", "chunks_deleted")
    assert {k: getattr(fanned, k) for k in same} == {k: getattr(one, k) for k in same}
    assert fanned.new == 12 and fanned.tables_new == 1
    assert sorted(fanned.skipped, key=lambda s: s.path) == sorted(one.skipped, key=lambda s: s.path)
    assert [s.path for s in fanned.skipped] == ["docs/broken.pdf"] and fanned.skipped[0].reason
    assert [t.name for t in await on_ray.tables()] == [t.name for t in await single.tables()]
    hits = await on_ray.search("audit logging gaps", k=3)
    assert hits and hits[0].chunk.source == "docs/page.html"


async def test_unchanged_changed_and_pruned_files(ray_local, make_kb, folder):
    kb = await make_kb()
    await kb.ingest([folder], ray=True)
    version = await kb.corpus.version()

    again = await kb.ingest([folder], ray=True)
    assert (again.unchanged, again.new, again.changed, again.chunks_embedded) == (12, 0, 0, 0)
    assert await kb.corpus.version() == version  # nothing was written, not even an index refresh

    _write(folder / "note_3.md", "# Note 3\n\nRewritten: the committee approved the migration budget.\n")
    (folder / "note_5.md").unlink()
    changed = await kb.ingest([folder], ray=True, prune=True)
    assert (changed.changed, changed.removed, changed.unchanged, changed.new) == (1, 1, 10, 0)
    rows = [json.loads(r) for r, _ in _chunks(kb.path)]
    note3 = [r for r in rows if r["source"] == "docs/note_3.md"]
    assert len(note3) == 1 and "committee approved" in note3[0]["text"]  # the old version's chunks are gone
    assert not any(r["source"] == "docs/note_5.md" for r in rows)
    assert "docs/note_5.md" not in _manifest(kb.path)


async def test_a_corrupt_file_is_skipped_with_its_reason(ray_local, make_kb, tmp_path):
    docs = tmp_path / "bad"
    _write(docs / "good.md", "# Good\n\nA readable note about quarterly costs.\n")
    (docs / "broken.docx").write_bytes(b"PK\x03\x04 not a zip at all")
    _write(docs / "empty.md", "   \n\n")
    summary = await (await make_kb()).ingest([docs], ray=True)
    reasons = {s.path: s.reason for s in summary.skipped}
    assert summary.new == 1 and set(reasons) == {"bad/broken.docx", "bad/empty.md"}
    assert all(reasons.values())
    expected = await (await make_kb(kb_dir=tmp_path / "kb-single")).ingest([docs])
    assert reasons == {s.path: s.reason for s in expected.skipped}


async def test_another_embedder_than_the_settings_one_is_refused(make_kb, folder):
    kb = await make_kb(embedder=E5SmallEmbedder())  # settings say hash; Ray workers would embed with that
    with pytest.raises(ValueError, match="ingest --ray embeds with the settings' embedder"):
        await kb.ingest([folder], ray=True)


def test_cli_ingest_with_ray(ray_local, tmp_path, folder, monkeypatch, capsys):
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    assert main(["ingest", str(folder), "--kb", str(tmp_path / "kb"), "--quiet", "--json", "--ray"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["new"] == 12 and summary["tables_new"] == 1


def test_ray_is_imported_only_with_the_flag(tmp_path, folder):
    code = (f"import sys; from dossier.cli import main; "
            f"main(['ingest', {str(folder)!r}, '--kb', {str(tmp_path / 'kb')!r}, '-q']); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DOSSIER_EMBEDDER": "hash"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
