"""Where a display that changes goes: redrawn in place in a terminal, one updating output in Jupyter.

Rich's own Live needs ipywidgets to update in Jupyter and is silent without it; an IPython display
handle updates one output in place with nothing beyond IPython, so Jupyter gets the same rich
renderable as HTML (with a plain-text copy for consoles and saved notebooks).
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

JUPYTER_WIDTH = 100  # columns the renderable is laid out in for a notebook output
JUPYTER_MIN_INTERVAL_S = 0.25  # a notebook output is redrawn at most this often, except the last time
JUPYTER_TICK_S = 1.0  # and at least this often, so its clocks and ETAs move while nothing reports

_shared: Console | None = None


def progress_console() -> Console:
    """The stderr console every ``progress=True`` display shares: rich stacks live displays on one
    console (two runs gathered at once show one above the other), where two consoles would garble."""
    global _shared
    if _shared is None:
        _shared = Console(stderr=True, highlight=False)
    return _shared


class LiveView:
    """Shows the latest renderable given to ``update`` until ``stop``, redrawn between updates too (4
    times a second in a terminal, every second in Jupyter) so clocks and ETAs inside it keep moving.
    Renderables are drawn from another thread: they must not change while drawn (rich's Progress
    locks; tables are built anew for each update)."""

    def __init__(self, console: Console, *, transient: bool = False) -> None:
        self.console = console
        self.transient = transient
        self._live: Live | None = None
        self._handle: Any = None  # IPython DisplayHandle in Jupyter
        self._drawn_at = 0.0
        self._latest: RenderableType = ""
        self._running = False
        self._lock = threading.Lock()  # the ticker thread and update() both redraw a notebook output
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self, renderable: RenderableType) -> None:
        self._latest, self._running = renderable, True
        if self.console.is_jupyter:
            from IPython.display import display

            self._handle = display(_bundle(renderable), raw=True, display_id=True)
            self._drawn_at = time.monotonic()
            self._stopped.clear()
            self._ticker = threading.Thread(target=self._tick, name="dossier-progress", daemon=True)
            self._ticker.start()
            return
        if not self.console.is_terminal:
            return  # a file or a pipe gets the final state once, from stop(), not every redraw
        self._live = Live(renderable, console=self.console, refresh_per_second=4, transient=self.transient)
        self._live.start()

    def update(self, renderable: RenderableType) -> None:
        self._latest = renderable
        if self._live is not None:
            self._live.update(renderable)
        elif self._handle is not None and time.monotonic() - self._drawn_at >= JUPYTER_MIN_INTERVAL_S:
            self._draw_jupyter()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._live is not None:
            self._live.update(self._latest)
            self._live.stop()
            self._live = None
        elif self._handle is not None:
            self._stopped.set()
            if self._ticker is not None:
                self._ticker.join()
            self._draw_jupyter()
            self._handle = None
        elif not self.transient:
            self.console.print(self._latest)

    def _tick(self) -> None:
        while not self._stopped.wait(JUPYTER_TICK_S):
            if time.monotonic() - self._drawn_at >= JUPYTER_TICK_S:
                self._draw_jupyter()

    def _draw_jupyter(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.update(_bundle(self._latest), raw=True)
                self._drawn_at = time.monotonic()


def _bundle(renderable: RenderableType) -> dict[str, str]:
    """The renderable as a notebook output: HTML with rich's colours, and plain text."""
    console = Console(record=True, file=io.StringIO(), width=JUPYTER_WIDTH, force_terminal=True,
                      force_jupyter=False, color_system="truecolor")
    console.print(renderable)
    text = console.export_text(clear=False).rstrip()
    html = console.export_html(
        inline_styles=True,
        code_format="<pre style=\"white-space: pre; overflow-x: auto; line-height: normal; margin: 0; "
                    "font-family: Menlo, 'DejaVu Sans Mono', Consolas, 'Courier New', monospace\">{code}</pre>",
    )
    return {"text/plain": text, "text/html": html}
