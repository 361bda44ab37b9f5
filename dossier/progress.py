"""Live progress of a research run: the stage (plan, research, reflect, write), each sub-question's
status, tool calls, evidence and elapsed time, redrawn in place in a terminal or a notebook."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from dossier.events import (
    DoneEvent,
    Event,
    EvidenceEvent,
    FailureEvent,
    GapEvent,
    PlanEvent,
    SectionEvent,
    ToolCallEvent,
    VerificationEvent,
)
from tools.live import LiveView, progress_console
from tools.vocabulary import Plan


class _StatusLine:
    """The status line, rendered anew at each redraw so its clock moves while a stage runs long."""

    def __init__(self, display: RunDisplay) -> None:
        self.display = display

    def __rich__(self) -> Text:
        d = self.display
        return Text(f"{d.stage} · {d.total_calls} tool calls · {len(d.sections)} sections written · "
                    f"{time.monotonic() - d.started:.0f} s", style="dim")


class RunDisplay:
    """Consumes a run's events (``handle``) and shows them live; a context manager."""

    def __init__(self, console: Console | None = None, *, question: str | None = None,
                 plan: Plan | None = None) -> None:
        self.console = console or progress_console()
        self.started = time.monotonic()
        self.question = question
        self.stage = "planning"
        self.questions: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.total_calls = 0  # kept apart: the status line is drawn from another thread, mid-update
        self.evidence: dict[str, set[str]] = {}
        self.sections: list[str] = []
        self.notes: list[str] = []
        self._waiting: set[str] = set()  # sub-questions whose research this round has not reported yet
        self._view = LiveView(self.console)
        if plan is not None:
            self._set_plan(plan, "researching")

    def __enter__(self) -> RunDisplay:
        self._view.start(self._render())
        return self

    def __exit__(self, *exc) -> None:
        self._view.update(self._render())
        self._view.stop()

    def handle(self, event: Event) -> None:
        if isinstance(event, PlanEvent):
            self._set_plan(event.plan, "waiting for plan approval" if event.awaiting_approval else "researching")
        elif isinstance(event, ToolCallEvent):
            self.calls[event.sub_question_id] = self.calls.get(event.sub_question_id, 0) + 1
            self.total_calls += 1
        elif isinstance(event, EvidenceEvent):
            self._researched(event)
        elif isinstance(event, GapEvent):
            self._reflected(event)
        elif isinstance(event, SectionEvent):
            self.sections.append(event.title)
        elif isinstance(event, VerificationEvent):
            v = event.verification
            self.stage = f"verified: {v.markers_resolved}/{v.markers_total} citations resolved"
        elif isinstance(event, FailureEvent):
            self.notes.append(event.message)
        elif isinstance(event, DoneEvent):
            r = event.report
            self.stage = f"done: {len(r.sections)} sections, {len(r.references)} references, stop rule {r.stop_reason}"
        self._view.update(self._render())

    def _set_plan(self, plan: Plan, stage: str) -> None:
        self.questions = {sq.id: sq.question for sq in plan.sub_questions}
        self.status = {sq_id: self.status.get(sq_id, "queued") for sq_id in self.questions}
        self._waiting = set(self.questions)
        self.stage = stage if stage != "researching" else "researching, round 1"

    def _researched(self, event: EvidenceEvent) -> None:
        self.evidence.setdefault(event.sub_question_id, set()).update(event.evidence_ids)
        self.status[event.sub_question_id] = f"researched (round {event.round})"
        self._waiting.discard(event.sub_question_id)
        # Branches report one by one; once all have, the reflection is what runs.
        self.stage = "reflecting" if not self._waiting else f"researching, round {event.round}"

    def _reflected(self, event: GapEvent) -> None:
        gaps = {g.sub_question_id: g.description for g in event.gaps}
        for sq_id, covered in event.covered.items():
            self.status[sq_id] = "covered" if covered else f"gap: {gaps.get(sq_id, 'not covered yet')}"
        if event.stop_reason or not gaps:
            self.stage = f"writing (stop rule {event.stop_reason or 'covered'})"
        else:
            self._waiting = set(gaps) & set(self.questions)
            self.stage = f"researching the gaps, round {event.round + 1}"

    def _render(self) -> Group:
        table = Table(show_header=True, header_style="bold", expand=False)
        table.add_column("#")
        table.add_column("sub-question", overflow="fold", max_width=60)
        table.add_column("status", overflow="fold", max_width=40)
        table.add_column("calls", justify="right")
        table.add_column("evidence", justify="right")
        for sq_id, text in self.questions.items():
            table.add_row(sq_id, text, self.status.get(sq_id, ""), str(self.calls.get(sq_id, 0)),
                          str(len(self.evidence.get(sq_id, ()))))
        head = [Text(self.question, style="bold")] if self.question else []
        body = [table] if self.questions else []
        return Group(*head, *body, _StatusLine(self), *[Text(n, style="yellow") for n in self.notes[-3:]])


@contextmanager
def live_progress(enabled: bool, *, question: str | None = None,
                  plan: Plan | None = None) -> Iterator[Callable[[Event], None]]:
    """``show(event)`` for each event of a run: drawn live when ``enabled`` (the API's
    ``progress=True``), nothing otherwise."""
    if not enabled:
        yield lambda event: None
        return
    with RunDisplay(question=question, plan=plan) as display:
        yield display.handle
