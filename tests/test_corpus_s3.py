"""The passage store on object storage (``corpus_uri`` = s3://…, ``storage_options``), against a real
S3-compatible server on loopback (moto's server mode): ingest, search, re-ingest, replace, prune.
The warehouse, the manifest record and the ingest lock stay in ``kb_dir`` (docs/scaling.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dossier.cli import main
from tests.test_ingest_ray import ray_local  # noqa: F401  (a fixture: one local Ray for this module)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None,
    reason="moto's S3 server is not installed (pip install 'moto[server]')",
)

BUCKET = "dossier-kb"
KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket; yields (endpoint, boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


def _options(endpoint: str) -> dict[str, str]:
    return {"endpoint": endpoint, "region": "us-east-1", "allow_http": "true", **KEYS}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _objects(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


async def test_ingest_search_reingest_on_s3(s3, make_kb, tmp_path):
    endpoint, client = s3
    docs = tmp_path / "docs"
    _write(docs / "costs.md", "# Costs\n\nThe regional pipeline cut storage costs by 12% in Q3.\n")
    _write(docs / "audit.md", "# Audit\n\nThe audit found gaps in logging during the migration.\n")
    _write(docs / "sales.csv", "region,amount\nnorth,10\nsouth,20\n")
    kb = await make_kb(corpus_uri=f"s3://{BUCKET}/ingest", storage_options=_options(endpoint))

    first = await kb.ingest([docs])
    assert (first.new, first.tables_new, first.skipped) == (2, 1, [])
    assert any(k.startswith("ingest/chunks.lance/") for k in _objects(client, "ingest/"))
    assert not (kb.path / "lancedb").exists()  # nothing of the corpus lands in kb_dir
    assert (kb.path / "warehouse.duckdb").exists()  # the warehouse stays a local file
    hits = await kb.search("logging gaps", k=2)
    assert hits[0].chunk.source == "docs/audit.md"
    version = await kb.corpus.version()

    again = await kb.ingest([docs])
    assert (again.unchanged, again.tables_unchanged, again.chunks_embedded) == (2, 1, 0)
    assert await kb.corpus.version() == version

    _write(docs / "costs.md", "# Costs\n\nRewritten: the vendor renewed its contract at a lower fee.\n")
    (docs / "audit.md").unlink()
    changed = await kb.ingest([docs], prune=True)
    assert (changed.changed, changed.removed) == (1, 1)
    assert [h.chunk.source for h in await kb.search("vendor contract fee", k=5)] == ["docs/costs.md"]
    assert await kb.search("audit logging gaps", k=5, mode="text") == []
    assert (await kb.sql("SELECT SUM(amount) AS total FROM sales")).rows == [[30]]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'dossier[ray]')")
async def test_ray_ingest_into_s3(s3, ray_local, make_kb, tmp_path):
    endpoint, client = s3
    docs = tmp_path / "docs"
    for i in range(5):
        _write(docs / f"note_{i}.md", f"# Note {i}\n\nThe pipeline of region {i} reduced storage costs.\n")
    kb = await make_kb(corpus_uri=f"s3://{BUCKET}/ray", storage_options=_options(endpoint))
    summary = await kb.ingest([docs], ray=True)
    assert (summary.new, summary.skipped) == (5, [])
    assert (await kb.ingest([docs], ray=True)).unchanged == 5
    assert (await kb.search("region 3 storage", k=1))[0].chunk.source == "docs/note_3.md"
    assert _objects(client, "ray/chunks.lance/")


def test_cli_reads_the_corpus_uri_from_the_environment(s3, tmp_path, monkeypatch, capsys):
    endpoint, client = s3
    _write(tmp_path / "docs" / "note.md", "# Note\n\nObject storage holds the passage store.\n")
    monkeypatch.setenv("DOSSIER_EMBEDDER", "hash")
    monkeypatch.setenv("DOSSIER_CORPUS_URI", f"s3://{BUCKET}/cli")
    monkeypatch.setenv("DOSSIER_STORAGE_OPTIONS", json.dumps(_options(endpoint)))
    kb = str(tmp_path / "kb")
    assert main(["ingest", str(tmp_path / "docs"), "--kb", kb, "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 1
    assert main(["search", "passage store", "--kb", kb, "--json"]) == 0
    assert "docs/note.md" in capsys.readouterr().out
    assert _objects(client, "cli/chunks.lance/")


def test_a_bad_corpus_uri_is_a_setting_error():
    from pydantic import ValidationError

    from tools.config import KBSettings

    with pytest.raises(ValidationError, match="corpus_uri"):
        KBSettings(corpus_uri="/not/a/uri")
