"""Live progress of a research run in a terminal: plan, sub-question status, evidence, elapsed time."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dossier.events import (
    DoneEvent, EvidenceEvent, Event, FailureEvent, GapEvent, PlanEvent, SectionEvent, ToolCallEvent,
)


class RunDisplay:
    """Consumes events; renders a compact table that updates in place."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.questions: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.evidence: dict[str, set[str]] = {}
        self.calls = 0
        self.sections: list[str] = []
        self.notes: list[str] = []
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> "RunDisplay":
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.update(self._render())
        self._live.__exit__(*exc)

    def handle(self, event: Event) -> None:
        if isinstance(event, PlanEvent):
            self.questions = {sq.id: sq.question for sq in event.plan.sub_questions}
            self.status = {sq_id: "researching" for sq_id in self.questions}
        elif isinstance(event, ToolCallEvent):
            self.calls += 1
        elif isinstance(event, EvidenceEvent):
            self.evidence.setdefault(event.sub_question_id, set()).update(event.evidence_ids)
        elif isinstance(event, GapEvent):
            for sq_id, ok in event.covered.items():
                self.status[sq_id] = "covered" if ok else f"gap (round {event.round})"
        elif isinstance(event, SectionEvent):
            self.sections.append(event.title)
        elif isinstance(event, FailureEvent):
            self.notes.append(event.message)
        elif isinstance(event, DoneEvent):
            self.notes.append(f"done: stop rule {event.report.stop_reason}")
        self._live.update(self._render())

    def _render(self) -> Group:
        table = Table(show_header=True, header_style="bold", expand=False)
        table.add_column("#")
        table.add_column("sub-question", overflow="fold", max_width=70)
        table.add_column("status")
        table.add_column("evidence", justify="right")
        for sq_id, text in self.questions.items():
            table.add_row(sq_id, text, self.status.get(sq_id, ""), str(len(self.evidence.get(sq_id, ()))))
        elapsed = time.monotonic() - self.started
        line = Text(f"{self.calls} tool calls · {len(self.sections)} sections written · {elapsed:.1f} s", style="dim")
        return Group(table, line, *[Text(n, style="yellow") for n in self.notes[-3:]])
