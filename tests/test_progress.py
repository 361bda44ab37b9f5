"""Issue 14 items 6 and 9: progress that moves while chunks embed (API callback, CLI in a terminal,
``progress=True`` in scripts and notebooks) and the live research display of ``run(progress=True)``."""

from __future__ import annotations

import io
import itertools
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

import tools.ingest
import tools.live
from tools.ingest_display import IngestDisplay

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "dossier" / "demo"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Recorder:
    """An IngestProgress that also counts chunks (tools.ingest.ChunkProgress)."""

    def __init__(self) -> None:
        self.files, self.steps, self.chunk_calls, self.ended = None, 0, [], False
        self.threads: set[int] = set()

    def begin(self, total: int) -> None:
        self.files = total

    def step(self, source: str, status: str) -> None:
        self.steps += 1

    def chunks(self, embedded: int, total: int) -> None:
        self.chunk_calls.append((embedded, total))
        self.threads.add(threading.get_ident())

    def end(self) -> None:
        self.ended = True


async def test_ingest_reports_chunks_embedded_up_to_the_total(make_kb, monkeypatch) -> None:
    # Small flushes and batches: several writes, each embedding several batches, while files are still
    # being read (the double buffer), as on a large folder.
    monkeypatch.setattr(tools.ingest, "FLUSH_CHUNKS", 16)
    kb = await make_kb(embedding_batch=4)
    progress = Recorder()
    summary = await kb.ingest([DEMO / "docs", DEMO / "tables"], progress=progress)

    embedded = [e for e, _ in progress.chunk_calls]
    totals = [t for _, t in progress.chunk_calls]
    assert summary.chunks_embedded > 32
    assert embedded == sorted(embedded) and totals == sorted(totals)  # never goes back
    assert all(e <= t for e, t in progress.chunk_calls)
    assert progress.chunk_calls[-1] == (summary.chunks_embedded, summary.chunks_embedded)  # reaches the total
    batch_steps = {b - a for a, b in itertools.pairwise(embedded) if b > a}
    assert len(set(embedded)) - 1 >= summary.chunks_embedded // 4 and batch_steps <= {1, 2, 3, 4}  # per batch
    assert progress.threads == {threading.get_ident()}  # called on the event loop's thread, never a worker
    assert progress.ended and progress.steps == progress.files


async def test_a_display_without_chunk_counts_still_works(make_kb) -> None:
    class FilesOnly:  # the IngestProgress of before: begin/step/end only
        def __init__(self) -> None:
            self.steps = 0

        def begin(self, total: int) -> None:
            self.total = total

        def step(self, source: str, status: str) -> None:
            self.steps += 1

        def end(self) -> None:
            pass

    progress = FilesOnly()
    kb = await make_kb()
    assert (await kb.ingest([DEMO / "docs"], progress=progress)).chunks_embedded > 0
    assert progress.steps == progress.total


async def test_progress_true_prints_files_and_chunks(make_kb, capsys) -> None:
    kb = await make_kb()
    summary = await kb.ingest([DEMO / "docs"], progress=True)
    err = capsys.readouterr().err  # not a terminal: the final state, printed once
    n = summary.chunks_embedded
    assert f"{n}/{n} chunks" in err and "files" in err and "chunks/s" in err
    assert err.count(f"{n}/{n} chunks") == 1


def test_the_display_shows_rate_and_eta_while_embedding() -> None:
    console = Console(file=io.StringIO(), width=100)
    display = IngestDisplay(console)
    display.begin(3)
    for source in ("a.md", "b.md", "c.md"):
        display.step(source, "new")
        display.chunks(0, 100)
    display.chunks(20, 100)
    display.chunks(40, 100)
    text = _text(display)
    assert "40/100 chunks" in text and "chunks/s" in text and "ETA" in text
    display.chunks(100, 100)
    assert "indexing" in _text(display)
    display.end()
    assert "indexing" not in _text(display) and "ETA" not in _text(display)


def test_the_total_is_marked_as_growing_while_files_are_read() -> None:
    display = IngestDisplay(Console(file=io.StringIO(), width=100))
    display.begin(2)
    display.step("a.md", "new")
    display.chunks(0, 50)
    assert "0/50+ chunks" in _text(display)
    display.end()


def _text(display: IngestDisplay) -> str:
    console = Console(record=True, file=io.StringIO(), width=120)
    console.print(display._progress)
    return console.export_text()


def test_cli_ingest_in_a_terminal_shows_chunk_counts(tmp_path: Path) -> None:
    """`dossier ingest` with stderr on a terminal (a pty), as a user runs it."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}, "DOSSIER_EMBEDDER": "hash",
           "COLUMNS": "100", "TERM": "xterm-256color", "HOME": str(tmp_path)}
    env.pop("NO_COLOR", None)
    parent, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dossier.cli", "ingest", str(DEMO / "docs"), "--kb",
                             str(tmp_path / "kb")], stdout=subprocess.PIPE, stderr=child, env=env, cwd=tmp_path)
    os.close(child)
    screen = _read_all(parent)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0, out + screen
    n = int(re.search(r"chunks: (\d+) added \((\d+) embedded\)", out)[2])
    assert n > 0 and f"{n}/{n} chunks" in screen and "files" in screen


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return ANSI.sub("", b"".join(chunks).decode(errors="replace"))


# -- research runs (item 9) -------------------------------------------------------------------


@pytest.fixture
async def demo_kb(make_kb):
    kb = await make_kb()
    await kb.ingest([DEMO / "docs", DEMO / "tables"])
    return kb


async def test_run_with_progress_shows_the_stages(demo_kb, kb_settings, capsys) -> None:
    from dossier.research import Researcher

    report = await Researcher(demo_kb, settings=kb_settings).run(
        "What does RAG cost compared with fine-tuning?", progress=True)
    err = capsys.readouterr().err
    assert "What does RAG cost compared with fine-tuning?" in err
    for sq in report.plan.sub_questions:
        assert sq.id in err
    assert f"done: {len(report.sections)} sections, {len(report.references)} references" in err


async def test_plan_approval_then_resume_with_progress(demo_kb, kb_settings, capsys) -> None:
    from dossier.events import PlanEvent
    from dossier.research import Researcher

    researcher = Researcher(demo_kb, settings=kb_settings, approve_plan=True)
    events = [e async for e in researcher.stream("How big are the RAG teams?", progress=True)]
    paused = events[-1]
    assert isinstance(paused, PlanEvent) and paused.awaiting_approval
    assert "waiting for plan approval" in capsys.readouterr().err
    report = await researcher.resume(paused.run_id, progress=True)
    err = capsys.readouterr().err
    assert "How big are the RAG teams?" in err and "done:" in err and report.sections


def test_stages_follow_the_events() -> None:
    from dossier.events import EvidenceEvent, GapEvent, PlanEvent
    from dossier.progress import RunDisplay
    from tools.vocabulary import Gap, Plan, SubQuestion

    plan = Plan(question="q", sub_questions=[SubQuestion(id="q1", question="a"), SubQuestion(id="q2", question="b")])
    display = RunDisplay(Console(file=io.StringIO()), question="q")
    assert display.stage == "planning"
    display.handle(PlanEvent(run_id="r", plan=plan))
    assert display.stage == "researching, round 1"
    display.handle(EvidenceEvent(sub_question_id="q1", round=1, evidence_ids=["e1"]))
    assert display.stage == "researching, round 1"
    display.handle(EvidenceEvent(sub_question_id="q2", round=1, evidence_ids=[]))
    assert display.stage == "reflecting"
    display.handle(GapEvent(round=1, covered={"q1": True, "q2": False},
                            gaps=[Gap(sub_question_id="q2", description="no figures")]))
    assert display.stage == "researching the gaps, round 2" and display.status["q2"] == "gap: no figures"
    display.handle(EvidenceEvent(sub_question_id="q2", round=2, evidence_ids=["e2"]))
    assert display.stage == "reflecting"
    display.handle(GapEvent(round=2, covered={"q1": True, "q2": True}, gaps=[], stop_reason="covered"))
    assert display.stage.startswith("writing")


def test_jupyter_gets_one_output_updated_in_place(monkeypatch) -> None:
    """In a notebook the display is one output (IPython display handle) redrawn in place, as HTML with
    a plain-text copy; ipywidgets is not needed."""
    import IPython.display

    shown: list[dict] = []

    class Handle:
        def update(self, bundle, raw=False):
            assert raw
            shown.append(bundle)

    def display(bundle, raw=False, display_id=False):
        assert raw and display_id
        shown.append(bundle)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(tools.live, "JUPYTER_TICK_S", 0.05)
    console = Console(force_jupyter=True)
    ingest = IngestDisplay(console)
    ingest.begin(1)
    ingest.step("a.md", "new")
    ingest.chunks(4, 10)
    drawn = len(shown)
    deadline = time.monotonic() + 30
    while len(shown) == drawn and time.monotonic() < deadline:  # no update: the clock is redrawn anyway
        time.sleep(0.05)
    assert len(shown) > drawn and "4/10 chunks" in shown[-1]["text/plain"]
    ingest.chunks(10, 10)
    ingest.end()
    after_end = len(shown)
    assert "10/10 chunks" in shown[-1]["text/plain"] and "<pre" in shown[-1]["text/html"]
    time.sleep(0.2)
    assert len(shown) == after_end  # stopped: nothing redraws it any more
