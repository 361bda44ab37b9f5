"""The ingest progress display: files read, then chunks embedded with their rate and time left.

Embedding is most of an ingest (a 603-chunk folder: files read in 4 s, embedded in 217 s), so the
chunk row is the one that must keep moving. Used by the CLI, the demo, and ``kb.ingest(progress=True)``
in a script or a notebook (tools.live decides where it is drawn).
"""

from __future__ import annotations

import time
from collections import deque
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from tools.live import LiveView, progress_console

RATE_WINDOW_S = 30.0  # the rate is measured over the last this many seconds, so it follows slowdowns


class ClockColumn(ProgressColumn):
    """Time since the ingest began. The file row's stops when every file is read; the chunk row's
    runs on to the end (rich's elapsed column stops when a row completes, and the chunk row completes
    whenever embedding catches up with reading, so a clock that froze there looked like a hang)."""

    def render(self, task: Task) -> Text:
        started = task.start_time or time.monotonic()
        elapsed = task.finished_time if task.fields.get("stops") and task.finished else time.monotonic() - started
        return Text(str(timedelta(seconds=int(elapsed or 0))), style="progress.elapsed")


class DetailColumn(ProgressColumn):
    """The file row: the file just read. The chunk row: ``31.2 chunks/s · ETA 0:00:15``, the ETA
    counting down between updates, then ``indexing`` once every chunk is embedded."""

    def render(self, task: Task) -> Text:
        rate, eta_at = task.fields.get("rate"), task.fields.get("eta_at")
        text = Text(no_wrap=True, overflow="ellipsis")
        if rate:
            left = "" if eta_at is None else f" · ETA {timedelta(seconds=int(max(0.0, eta_at - time.monotonic())))}"
            text.append(f"{rate:.1f} chunks/s{left}", style="progress.remaining")
        if task.fields.get("detail"):
            text.append(("  " if rate else "") + task.fields["detail"], style="dim")
        return text


class IngestDisplay:
    """Implements tools.ingest's IngestProgress and ChunkProgress."""

    def __init__(self, console: Console | None = None, *, transient: bool = False) -> None:
        self.console = console or progress_console()
        self._progress = Progress(
            TextColumn("[bold]{task.description:<5}"), BarColumn(bar_width=20), TextColumn("{task.fields[count]}"),
            ClockColumn(), DetailColumn(),
            console=self.console, auto_refresh=False,  # never started itself: tools.live draws it
        )
        self._view = LiveView(self.console, transient=transient)
        self._files: TaskID | None = None
        self._chunks: TaskID | None = None
        self._files_left = 0
        self._samples: deque[tuple[float, int]] = deque()

    def begin(self, total: int) -> None:
        self._files_left = total
        self._files = self._progress.add_task("files", total=total, count=f"0/{total} files", detail="", stops=True)
        self._chunks = self._progress.add_task("embed", total=None, visible=False, count="", detail="")
        self._view.start(self._progress)

    def step(self, source: str, status: str) -> None:
        self._files_left -= 1
        files, _ = self._tasks()
        self._progress.advance(files)
        task = next(t for t in self._progress.tasks if t.id == files)
        detail = f"{status}: {source}"[-60:] if self._files_left > 0 else ""  # all read: nothing current
        self._progress.update(files, count=f"{int(task.completed)}/{int(task.total or 0)} files", detail=detail)
        self._view.update(self._progress)

    def chunks(self, embedded: int, total: int) -> None:
        # The total still grows while files are being read: shown with a "+", and no ETA, until then.
        reading = self._files_left > 0
        rate = self._rate(embedded)
        eta_at = time.monotonic() + (total - embedded) / rate if rate and not reading else None
        # Embedding starts once a batch is full or every file is read (tools.ingest's FLUSH_CHUNKS).
        detail = "embedding …" if not rate and embedded < total and (embedded or not reading) else ""
        detail = "indexing" if embedded == total and not reading else detail
        self._progress.update(self._tasks()[1], total=total, completed=embedded, visible=True, rate=rate,
                              eta_at=eta_at, count=f"{embedded}/{total}{'+' if reading else ''} chunks",
                              detail=detail)
        self._view.update(self._progress)

    def end(self) -> None:
        for task in self._tasks():
            self._progress.update(task, detail="", eta_at=None)  # the last file read, indexing: over now
        self._view.stop()

    def _tasks(self) -> tuple[TaskID, TaskID]:
        """The files and chunks rows; they exist once ``begin`` ran."""
        if self._files is None or self._chunks is None:
            raise RuntimeError("the ingest display was used before begin()")
        return self._files, self._chunks

    def _rate(self, embedded: int) -> float | None:
        """Chunks per second between embedded batches: from the first finished batch on, so the time
        spent reading files before embedding began does not count."""
        now = time.monotonic()
        if embedded > 0 and (not self._samples or embedded > self._samples[-1][1]):
            self._samples.append((now, embedded))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        if len(self._samples) < 2:
            return None
        (t0, e0), (t1, e1) = self._samples[0], self._samples[-1]
        return (e1 - e0) / (t1 - t0) if t1 > t0 else None
