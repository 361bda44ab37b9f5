"""Nasty files (issue "Reliability and security", item 4).

A generated corpus of bad files sits next to good ones: the ingest completes, every bad file is in
``summary.skipped`` with its own reason, every good (or merely odd) file is searchable, a 50 MB
text file ingests under the default size limit and is skipped under a lower one, and the peak
memory of a whole ingest, measured in a child process, stays under ``RSS_BOUND_MB``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
from fpdf import FPDF

import tools.ingest
from tools.discover import discover as real_discover

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
BIG_MB = 50
RSS_BOUND_MB = 1536
BAD_NAME = os.fsencode("bad") + b"\xff" + os.fsencode("name.txt")  # not UTF-8 (a GBK-era archive)

# file -> the word only it holds; each must be found by search after the ingest
GOOD_WORDS = {
    "good.md": "aardvark", "good.txt": "pangolin", "good.html": "narwhal", "good.pdf": "quokka",
    "good.docx": "axolotl", "gbk.txt": "芯片短缺", "invalid_utf8.txt": "caracal", "nested.html": "tapir",
    "utf16.txt": "urial", "deep_quotes.md": "quagga",
}
# file -> its skip reason ("…" at the end: a prefix, the rest names the parser's complaint)
BAD_REASONS = {
    "empty.txt": "empty file",
    "blank.md": "empty file",
    "empty.csv": "empty file",
    "binary.txt": "binary content in a .txt file",
    "truncated.pdf": "corrupt PDF: …",
    "not_a_pdf.pdf": "corrupt PDF: …",
    "encrypted.pdf": "encrypted PDF",
    "bomb.docx": "zip bomb guard: .docx would unpack to more than 200 MB",  # counted while inflating
    "ratio_bomb.docx": "zip bomb guard: .docx compression ratio over 100",
    "not_a_zip.docx": "not a valid .docx (zip) file",
    "loop_a.md": "broken or looping symlink",
    "loop_b.md": "broken or looping symlink",
    "dangling.md": "broken or looping symlink",
    "fifo.txt": "not a regular file",
    "bad\\xffname.txt": "file name is not valid UTF-8; rename the file",
}
# these go wrong only while the ingest runs (see vanishing_discover)
RACE_REASONS = {
    "vanish.txt": "file disappeared during ingestion",
    "swapped.txt": "not a regular file (it changed during ingestion)",
}


def pdf_bytes(text: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def encrypted_pdf(text: str) -> bytes:
    writer = pypdf.PdfWriter()
    writer.append(pypdf.PdfReader(io.BytesIO(pdf_bytes(text))))
    writer.encrypt(user_password="let-me-in", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zipped_docx(payload_mb: int) -> bytes:
    """A .docx-shaped zip whose document.xml is ``payload_mb`` MB of zeros (a few hundred KB packed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * 2**20
            for _ in range(payload_mb):
                member.write(block)
    return out.getvalue()


def write_good(root: Path) -> None:
    (root / "good.md").write_text("# Guide\n\nThe aardvark lives in markdown.\n")
    (root / "good.txt").write_text("Notes\n\nThe pangolin lives in plain text.\n")
    (root / "good.html").write_text("<html><body><h1>Page</h1><p>The narwhal swims in html.</p></body></html>")
    (root / "good.pdf").write_bytes(pdf_bytes("The quokka lives in a PDF."))
    document = docx.Document()
    document.add_heading("Memo", level=1)
    document.add_paragraph("The axolotl lives in a docx file.")
    document.save(str(root / "good.docx"))
    # odd but valid: each must still be ingested and found
    gbk = "供应链报告\n\n本季度的供应链风险主要来自芯片短缺和物流延误。麒麟项目的预算为三百万元。\n"
    (root / "gbk.txt").write_bytes(gbk.encode("gbk"))
    (root / "invalid_utf8.txt").write_bytes(
        b"Field notes\n\nThe caracal \xff\xfe\xc3\x28 left bytes \x80\x81 behind.\n")
    depth = 10_000
    (root / "nested.html").write_text(
        "<html><body>" + "<div>" * depth + "<p>The deeply nested tapir.</p>" + "</div>" * depth + "</body></html>")
    (root / "utf16.txt").write_bytes("Notes\n\nThe urial speaks UTF-16.\n".encode("utf-16"))
    (root / "deep_quotes.md").write_text("# Quotes\n\n" + ">" * 10_000 + " The quoted quagga.\n")


def write_bad(root: Path) -> None:
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text(" \n\t\n   \n")
    (root / "empty.csv").write_bytes(b"")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (root / "truncated.pdf").write_bytes(pdf_bytes("The truncated okapi.")[:300])
    (root / "not_a_pdf.pdf").write_text("<html>the fake fossa</html>")
    (root / "encrypted.pdf").write_bytes(encrypted_pdf("The locked ocelot."))
    (root / "bomb.docx").write_bytes(zipped_docx(210))
    (root / "ratio_bomb.docx").write_bytes(zipped_docx(20))
    (root / "not_a_zip.docx").write_text("the numbat is not a zip")
    os.symlink("loop_b.md", root / "loop_a.md")
    os.symlink("loop_a.md", root / "loop_b.md")
    os.symlink("missing.md", root / "dangling.md")
    os.mkfifo(root / "fifo.txt")
    fd = os.open(os.path.join(os.fsencode(root), BAD_NAME), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"The badly named bongo.\n")
    os.close(fd)


def write_races(root: Path) -> None:
    (root / "vanish.txt").write_text("The vanishing vicuna.\n")
    (root / "swapped.txt").write_text("The swapped saola.\n")
    (root / "locked.txt").write_text("Notes\n\nThe locked lynx.\n")
    os.chmod(root / "locked.txt", 0)


def vanishing_discover(root: Path):
    """tools.ingest.discover, then, before any file is read: vanish.txt is deleted and swapped.txt
    becomes a FIFO (a reader that trusted discovery would block on it forever)."""

    def discover(paths):
        found = list(real_discover(paths))
        (root / "vanish.txt").unlink()
        (root / "swapped.txt").unlink()
        os.mkfifo(root / "swapped.txt")
        return iter(found)

    return discover


def expected_reason(reason: str, got: str) -> bool:
    return got.startswith(reason[:-1]) if reason.endswith("…") else got == reason


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """A 50 MB English text: a first and a last paragraph with their own words, varied ones between."""
    path = tmp_path_factory.mktemp("big") / "big.txt"
    words = "alpha beta gamma delta report budget river mountain signal cost team quarter".split()
    variants = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(120)) for i in range(64)]
    with path.open("w", encoding="utf-8") as out:
        out.write("The big file about the zebu.\n\n")
        written, i = 0, 0
        while written < BIG_MB * 2**20:
            paragraph = f"Paragraph {i}: {variants[i % len(variants)]}.\n\n"
            written += out.write(paragraph)
            i += 1
        out.write("The final paragraph mentions the wapiti.\n")
    return path


# -- tests --------------------------------------------------------------------------------------


async def test_nasty_corpus_skips_each_bad_file_with_its_reason(make_kb, tmp_path, monkeypatch) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_good(corpus)
    write_bad(corpus)
    write_races(corpus)
    monkeypatch.setattr(tools.ingest, "discover", vanishing_discover(corpus))
    kb = await make_kb()

    summary = await kb.ingest([corpus])

    got = {s.path.removeprefix("corpus/"): s.reason for s in summary.skipped}
    expected = {**BAD_REASONS, **RACE_REASONS}
    if not IS_ROOT:  # root reads a chmod 000 file anyway; the FIFO above stands in for it there
        expected["locked.txt"] = "permission denied"
    assert set(got) == set(expected), (sorted(set(got) ^ set(expected)), got)
    for name, reason in expected.items():
        assert expected_reason(reason, got[name]), (name, got[name])
    good = set(GOOD_WORDS) | ({"locked.txt"} if IS_ROOT else set())
    assert summary.new == len(good)
    for name, word in GOOD_WORDS.items():
        sources = {h.chunk.source for h in await kb.search(word, k=20, mode="text")}
        assert f"corpus/{name}" in sources, (name, word, sources)
    hybrid = {h.chunk.source for h in await kb.search("麒麟项目的预算", k=5)}
    assert "corpus/gbk.txt" in hybrid  # GBK bytes became searchable Chinese


async def test_rerun_after_the_bad_files_are_fixed_picks_them_up(make_kb, tmp_path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_good(corpus)
    write_bad(corpus)
    kb = await make_kb()
    first = await kb.ingest([corpus])
    assert {s.path.removeprefix("corpus/") for s in first.skipped} == set(BAD_REASONS)
    (corpus / "empty.txt").write_text("Now the emu is here.\n")
    (corpus / "loop_a.md").unlink()
    (corpus / "loop_a.md").write_text("# Fixed\n\nThe loop is now a lemur.\n")
    second = await kb.ingest([corpus])
    fixed = {"empty.txt", "loop_a.md", "loop_b.md"}  # loop_b.md points at loop_a.md, now a real file
    assert second.new == len(fixed) and second.unchanged == len(GOOD_WORDS)
    assert {s.path.removeprefix("corpus/") for s in second.skipped} == set(BAD_REASONS) - fixed
    for word, name in (("emu", "empty.txt"), ("lemur", "loop_a.md"), ("lemur", "loop_b.md")):
        assert f"corpus/{name}" in {h.chunk.source for h in await kb.search(word, k=5, mode="text")}


async def test_big_file_over_the_limit_is_skipped_with_the_limit_named(make_kb, tmp_path, big_file) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.link(big_file, corpus / "big.txt")  # same 50 MB, no copy
    (corpus / "small.txt").write_text("The small shrew.\n")
    kb = await make_kb(max_file_mb=10)
    summary = await kb.ingest([corpus])
    assert [(s.path, s.reason) for s in summary.skipped] == [("corpus/big.txt", "file larger than 10 MB limit")]
    assert summary.new == 1


CHILD = r"""
import asyncio, json, resource, sys, time
from pathlib import Path
from dossier.settings import Settings
from tools.embeddings import HashEmbedder
from tools.knowledge_base import KnowledgeBase

def vm_hwm_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

async def main(corpus, kb_dir):
    settings = Settings(kb_dir=kb_dir, embedder="hash", engine="offline", chunk_tokens=2048, chunk_overlap=0)
    kb = await KnowledgeBase.open(settings=settings, embedder=HashEmbedder())
    before = vm_hwm_mb()
    started = time.perf_counter()
    summary = await kb.ingest([Path(corpus)])
    seconds = time.perf_counter() - started
    found = {w: sorted({h.chunk.source for h in await kb.search(w, k=20, mode="text")})
             for w in sys.argv[3:]}
    await kb.close()
    kb.corpus.close()
    print(json.dumps({"skipped": {s.path: s.reason for s in summary.skipped}, "new": summary.new,
                      "chunks": summary.chunks_added, "seconds": round(seconds, 1), "found": found,
                      "rss_after_imports_mb": before, "peak_rss_mb": vm_hwm_mb(), "max_file_mb": settings.max_file_mb}))

asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
"""


@pytest.mark.slow
def test_whole_nasty_corpus_with_a_50_mb_file_in_bounded_memory(tmp_path, big_file) -> None:
    """Default limits (max_file_mb 64): the 50 MB file ingests; the child's peak RSS is the bound."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_good(corpus)
    write_bad(corpus)
    os.link(big_file, corpus / "big.txt")
    words = ["zebu", "wapiti", *GOOD_WORDS.values()]
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(tmp_path / "kb"), *words], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n50 MB + nasty corpus: {report['seconds']} s, {report['chunks']} chunks, peak RSS "
          f"{report['peak_rss_mb']} MB (after imports {report['rss_after_imports_mb']} MB), bound {RSS_BOUND_MB} MB")
    assert report["max_file_mb"] == 64
    assert {k.removeprefix("corpus/") for k in report["skipped"]} == set(BAD_REASONS)
    assert report["new"] == len(GOOD_WORDS) + 1
    for word in ("zebu", "wapiti"):  # the first and the last paragraph of the big file
        assert "corpus/big.txt" in report["found"][word]
    for name, word in GOOD_WORDS.items():
        assert f"corpus/{name}" in report["found"][word], (name, report["found"][word])
    assert report["peak_rss_mb"] < RSS_BOUND_MB
