"""Test-only crash hook: log what a run does, and SIGKILL the process at the Nth event of a kind.

Nothing here is product code. ``install`` patches, in the running process only, the graph's node
functions (before they are compiled into a graph), the research tools, the checkpointer's writes,
the CLI's report output and the ingest writer, so that each of them reports an *event*:

    node:<name>:start|end        a graph node (plan, review, research, reflect, outline, write, ...)
    tool:<name>:start|end        a research tool call (search_documents, run_sql, ...)
    checkpoint:put|writes:end    LangGraph committed a checkpoint / a task's pending writes
    emit:start                   the CLI is about to print or write the finished report
    ingest:<step>:end            one ingest batch's add_chunks / delete_stale / upsert_documents

Every event is appended as one JSON line to the log (an O_APPEND descriptor: each line reaches the
kernel at once, so it survives SIGKILL). ``kill_at="tool:run_sql:end#2"`` kills the process at the
second ``tool:run_sql:end``: counts are per kind, so a kill point means the same thing in every run
even where parallel branches interleave differently.

Events inside a node carry its *unit*: ``research:q2:r1`` (sub-question q2, round 1), ``write:3``
(section 3), ``reflect:r2``, or the node name. A unit is what LangGraph checkpoints as one piece.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import signal
import typing
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV_LOG = "CRASH_HOOK_LOG"
ENV_KILL_AT = "CRASH_HOOK_KILL_AT"
ENV_FLUSH_CHUNKS = "CRASH_HOOK_FLUSH_CHUNKS"

NODES = ("plan", "review", "research", "reflect", "outline", "write", "verify", "finalize")
TOOLS = ("search_documents", "run_sql", "describe_table", "list_tables")
INGEST_STEPS = ("add_chunks", "delete_stale", "upsert_documents")

_unit: contextvars.ContextVar[str | None] = contextvars.ContextVar("crash_hook_unit", default=None)
Setter = Callable[[Any, str, Any], None]


class Recorder:
    """Appends events to the log and pulls the trigger at the chosen one."""

    def __init__(self, log_path: Path, kill_at: str | None) -> None:
        self.fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.counts: Counter[str] = Counter()
        self.kill_event, self.kill_n = parse_kill_at(kill_at)

    def event(self, kind: str, **fields: Any) -> None:
        self.counts[kind] += 1
        n = self.counts[kind]
        doomed = kind == self.kill_event and n == self.kill_n
        record = {"event": kind, "n": n, "unit": _unit.get(), "pid": os.getpid(), **fields}
        if doomed:
            record["kill"] = True
        os.write(self.fd, (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode())
        if doomed:
            os.kill(os.getpid(), signal.SIGKILL)


def parse_kill_at(spec: str | None) -> tuple[str | None, int]:
    if not spec:
        return None, 0
    kind, sep, n = spec.rpartition("#")
    if not sep or not kind or not n.isdigit() or int(n) < 1:
        raise ValueError(f"kill point must look like 'tool:run_sql:end#2', got {spec!r}")
    return kind, int(n)


def unit_of(node: str, state: Any) -> str:
    """The checkpointed piece a node call is: one branch, one section, one reflection round, or the node."""
    if node == "research":
        return f"research:{state['sub_question'].id}:r{state['round']}"
    if node == "write":
        return f"write:{state['order']}"
    if node == "reflect":
        return f"reflect:r{state['round']}"
    return node


def install(log_path: Path, kill_at: str | None = None, *, setter: Setter = setattr) -> Recorder:
    """Patch the process; ``setter`` is ``monkeypatch.setattr`` in a test process, so it is undone."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    import agents.toolbox
    import dossier.cli_report
    import graphs.research
    import tools.corpus

    recorder = Recorder(Path(log_path), kill_at)
    for node in NODES:
        name = f"{node}_node"
        setter(graphs.research, name, _wrap_node(node, getattr(graphs.research, name), recorder))
    for tool in TOOLS:
        setter(agents.toolbox.Toolbox, tool, _wrap_tool(tool, getattr(agents.toolbox.Toolbox, tool), recorder))
    for method, kind in (("aput", "put"), ("aput_writes", "writes")):
        setter(AsyncSqliteSaver, method, _wrap_after(f"checkpoint:{kind}:end", getattr(AsyncSqliteSaver, method),
                                                     recorder))
    for step in INGEST_STEPS:
        setter(tools.corpus.Corpus, step, _wrap_after(f"ingest:{step}:end", getattr(tools.corpus.Corpus, step),
                                                      recorder))
    setter(dossier.cli_report, "_emit", _wrap_emit(dossier.cli_report._emit, recorder))
    return recorder


def install_from_env() -> Recorder | None:
    """For the subprocess launcher: the log path and kill point come from the environment."""
    if flush := os.environ.get(ENV_FLUSH_CHUNKS):
        import tools.ingest

        tools.ingest.FLUSH_CHUNKS = int(flush)  # small batches: a 60-file ingest writes several
    log = os.environ.get(ENV_LOG)
    return install(Path(log), os.environ.get(ENV_KILL_AT)) if log else None


def _wrap_node(node: str, fn: Callable, recorder: Recorder) -> Callable:
    async def wrapper(state, runtime):
        token = _unit.set(unit_of(node, state))
        try:
            recorder.event(f"node:{node}:start")
            update = await fn(state, runtime)
            recorder.event(f"node:{node}:end")
            return update
        finally:
            _unit.reset(token)

    # LangGraph reads the first parameter's type (a Send branch's input schema) from the hints;
    # resolved here because the node modules use postponed (string) annotations.
    wrapper.__annotations__ = typing.get_type_hints(fn)
    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    return wrapper


def _wrap_tool(tool: str, fn: Callable, recorder: Recorder) -> Callable:
    @functools.wraps(fn)
    async def wrapper(self, *args, **kwargs):
        arg = args[0] if args else next(iter(kwargs.values()), None)
        recorder.event(f"tool:{tool}:start", arg=arg)
        outcome = await fn(self, *args, **kwargs)
        recorder.event(f"tool:{tool}:end", arg=arg, ok=outcome.ok, evidence=[e.id for e in outcome.evidence])
        return outcome

    return wrapper


def _wrap_after(kind: str, fn: Callable, recorder: Recorder) -> Callable:
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        result = await fn(*args, **kwargs)
        recorder.event(kind)
        return result

    return wrapper


def _wrap_emit(fn: Callable, recorder: Recorder) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        recorder.event("emit:start")
        return fn(*args, **kwargs)

    return wrapper
