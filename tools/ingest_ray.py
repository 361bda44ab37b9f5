"""Ingestion fanned out over Ray (``dossier ingest --ray [ADDRESS]``): parsing, chunking and
embedding run as Ray tasks, on a local Ray or a cluster; everything that decides what to write stays
here on the driver and is tools.ingest's own code.

The driver discovers files, reads and hashes them against the manifest (an unchanged file never
becomes a task), and ships the bytes of new and changed documents, a few per task, through Ray's
object store, so workers need no view of the driver's disk. A task parses, chunks and embeds with
tools.ingest's per-document functions and an embedder built from the settings once per worker process.
Results come back as whole documents and are committed with ``Ingestor._commit`` in batches of
``FLUSH_CHUNKS``: the same merge, version replacement, manifest update, prune, index refresh and
ingest lock as the single-process path, so a run killed anywhere is redone by the next one.
Tables and glossaries are read here, as before. Ray is imported only when this path is taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tools.config import KBSettings
from tools.embeddings import Embedder, make_embedder
from tools.ingest import (
    FLUSH_CHUNKS,
    Ingestor,
    PreparedDoc,
    ReadFile,
    _reason,
    embed_texts,
    prepare_document,
    read_if_changed,
)
from tools.models import IngestSummary, SkippedFile
from tools.parsing import ParseError

TASK_FILES = 16  # documents per task: enough to fill an embedding batch, few enough to spread work
TASK_BYTES = 4 << 20  # ...or fewer when they are large, so one task's arguments stay small
IN_FLIGHT_PER_CPU = 2  # tasks queued per Ray CPU: workers never idle, the object store stays small


class RayUnavailable(RuntimeError):
    """``--ray`` was asked for but Ray is not installed or cannot be reached."""


@dataclass
class Outcome:
    """One document as a task returns it: prepared with its vectors, or the reason it was skipped."""

    source: str
    prepared: PreparedDoc | None = None
    vectors: np.ndarray | None = None
    reason: str | None = None


_WORKER_EMBEDDERS: dict[str, Embedder] = {}  # per worker process: a model loads once, not once per task


def prepare_and_embed(files: list[tuple[ReadFile, bool]], settings: KBSettings) -> list[Outcome]:
    """The Ray task: parse, chunk and embed ``(file, replaces)`` pairs; a file that cannot be parsed
    comes back with its reason, as the single-process path records it."""
    embedder = _worker_embedder(settings)
    outcomes: list[Outcome] = []
    for file, replaces in files:
        try:
            prepared = prepare_document(file, settings=settings, count_tokens=embedder.count_tokens,
                                        replaces=replaces)
        except ParseError as exc:
            outcomes.append(Outcome(file.source, reason=_reason(exc)))
            continue
        outcomes.append(Outcome(file.source, prepared=prepared))
    done = [(o, o.prepared) for o in outcomes if o.prepared is not None]
    texts = [c.text for _, prepared in done for c in prepared.chunks]
    if texts:  # one embedding pass over the task's chunks batches short documents together
        vectors = embed_texts(embedder, texts, batch=settings.embedding_batch)
        start = 0
        for outcome, prepared in done:
            outcome.vectors = vectors[start : start + len(prepared.chunks)]
            start += len(prepared.chunks)
    return outcomes


def _worker_embedder(settings: KBSettings) -> Embedder:
    key = f"{settings.embedder}:{settings.embedding_model}:{settings.embedding_base_url}"
    if key not in _WORKER_EMBEDDERS:
        _WORKER_EMBEDDERS[key] = make_embedder(settings)
    return _WORKER_EMBEDDERS[key]


def worker_settings(settings: KBSettings) -> KBSettings:
    """The knowledge-base layer's settings alone: workers never import the engine or research layers."""
    return KBSettings(**{name: getattr(settings, name) for name in KBSettings.model_fields})


def import_ray(*, local: bool = False) -> Any:
    """Ray, imported on first use. ``local``: a Ray about to be started here binds 127.0.0.1 (this
    variable, read when Ray is imported, stops it from taking the machine's network address)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable("ingest --ray needs Ray: pip install 'dossier[ray]'") from exc
    return ray


@dataclass
class RayIngestor(Ingestor):
    """``Ingestor`` with document preparation and embedding on Ray. ``address`` None starts a local Ray
    (``ray_num_cpus``, ``ray_object_store_mb``) for the run; an address ("auto", "ray://host:10001")
    joins a cluster. A Ray already initialised in this process is used as it is, and left running."""

    address: str | None = None
    _pending: list[Any] = field(default_factory=list, init=False, repr=False)
    _ready: list[tuple[PreparedDoc, np.ndarray]] = field(default_factory=list, init=False, repr=False)

    async def run(self, paths: list[Path], *, prune: bool = False) -> IngestSummary:
        self._check_embedder()
        ray = import_ray(local=self.address is None)
        started_here = not ray.is_initialized()
        if started_here:
            # On this thread, not a worker one: Ray installs its SIGTERM handler only from the main thread.
            self._start(ray)
        try:
            return await super().run(paths, prune=prune)
        finally:
            if self._pending:  # an error or Ctrl-C: no task of this run may outlive it
                for ref in self._pending:
                    ray.cancel(ref, force=True)
                self._pending.clear()
            if started_here:
                ray.shutdown()

    def _check_embedder(self) -> None:
        """Workers build the embedder from the settings, so the one this ingest holds must be that one."""
        expected = make_embedder(self.settings).name
        if self.embedder.name != expected:
            raise ValueError(f"ingest --ray embeds with the settings' embedder ({expected}) on every worker, but "
                             f"this knowledge base was opened with {self.embedder.name}; open it with the settings' "
                             "embedder or ingest without --ray")

    def _start(self, ray: Any) -> None:
        # log_to_driver off: workers' output stays in Ray's logs, so `ingest --json` prints only the summary.
        # LanceDB warns on every fork; Ray's fork of its own daemons is followed at once by exec, which is safe.
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
                if self.address is None:
                    ray.init(num_cpus=self.settings.ray_num_cpus, include_dashboard=False,
                             object_store_memory=self.settings.ray_object_store_mb * 2**20,
                             logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local Ray"
            raise RayUnavailable(f"could not start or reach {where}: {str(exc).splitlines()[0]}") from exc

    async def _process(self, found, manifest, table_hashes, seen, summary) -> None:
        ray = import_ray()
        task = ray.remote(num_cpus=1)(prepare_and_embed)
        settings_ref = ray.put(worker_settings(self.settings))
        limit = IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
        group: list[tuple[ReadFile, bool]] = []
        for item in found:
            if self._skipped(item, summary):
                continue
            seen.add(item.source)
            if item.kind != "document":  # tables, sidecars, unsupported files: as in one process
                self._step(item.source, await self._handle(item, manifest, table_hashes, summary, []))
                continue
            if (entry := await self._read(item, manifest.get(item.source), summary)) is not None:
                group.append(entry)
            if len(group) >= TASK_FILES or sum(len(f.data) for f, _ in group) >= TASK_BYTES:
                self._pending.append(task.remote(group, settings_ref))
                group = []
                while len(self._pending) >= limit:
                    await self._collect(summary)
        if group:
            self._pending.append(task.remote(group, settings_ref))
        while self._pending:
            await self._collect(summary)
        await self._flush(summary)

    async def _read(self, item, previous, summary) -> tuple[ReadFile, bool] | None:
        """Read and hash on the driver: an unchanged file never costs a task."""
        try:
            file = await asyncio.to_thread(read_if_changed, item, previous, self.settings)
        except (ParseError, OSError) as exc:
            summary.skipped.append(SkippedFile(path=item.source, reason=_reason(exc)))
            self._step(item.source, "skipped")
            return None
        if file is None:
            summary.unchanged += 1
            self._step(item.source, "unchanged")
            return None
        return file, previous is not None

    async def _collect(self, summary: IngestSummary) -> None:
        """Wait for one task, take its documents, and commit once ``FLUSH_CHUNKS`` are ready."""
        ray = import_ray()
        done, self._pending = await asyncio.to_thread(ray.wait, self._pending, num_returns=1)
        for outcome in await asyncio.to_thread(ray.get, done[0]):
            self._take(outcome, summary)
        if sum(len(d.chunks) for d, _ in self._ready) >= FLUSH_CHUNKS:
            await self._flush(summary)

    def _take(self, outcome: Outcome, summary: IngestSummary) -> None:
        if outcome.prepared is None or outcome.vectors is None:
            summary.skipped.append(SkippedFile(path=outcome.source, reason=outcome.reason or "not prepared"))
            self._step(outcome.source, "skipped")
            return
        replaces = outcome.prepared.replaces
        if replaces:
            summary.changed += 1
        else:
            summary.new += 1
        n = len(outcome.prepared.chunks)
        self._count_chunks(total=n, embedded=n)
        self._ready.append((outcome.prepared, outcome.vectors))
        self._step(outcome.source, "changed" if replaces else "new")

    async def _flush(self, summary: IngestSummary) -> None:
        if not self._ready:
            return
        batch, self._ready = self._ready, []
        await self._commit([d for d, _ in batch], np.vstack([v for _, v in batch]), summary)
