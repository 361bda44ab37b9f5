"""Where runs are checkpointed: ``kb/runs.sqlite`` (the default) or PostgreSQL (``DOSSIER_RUNS_URL``).

``open_run_store`` is the one place that choice is made; research, run listing, resume and plan
approval only see a ``RunStore``. In the SQLite file every run is this knowledge base's. A
PostgreSQL store is shared by many knowledge bases, so each run's checkpoints carry the id of its
knowledge base (metadata, from ``RunStore.config``), listing shows only this knowledge base's runs,
and a run of another one is refused (``ForeignRun``) rather than resumed over the wrong documents.
The id lives in the knowledge-base folder (``kb/kb_id``): it travels with a copied or moved folder,
and a folder mounted at another path on another machine is still the same knowledge base.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from dossier.runs_store import RunInfo, index_run, runs_connection
from dossier.settings import Settings
from graphs.state import SERIALIZED_TYPES

# Every run holds its own connection to runs.sqlite and each checkpoint write spans two event-loop
# hops; with 50 concurrent runs on 2 cores a writer waited past sqlite's default 5 s and failed
# with "database is locked". Waiting longer only matters under contention.
SQLITE_BUSY_TIMEOUT_S = 60.0
KB_ID_FILE = "kb_id"


class RunNotFound(KeyError):
    pass


class ForeignRun(RunNotFound):
    """The run belongs to another knowledge base sharing the PostgreSQL run store."""


@dataclass(frozen=True)
class RunStore:
    saver: BaseCheckpointSaver
    where: str  # for messages: the SQLite file, or the PostgreSQL URL without its password
    list_ids: Callable[[], Awaitable[list[str]]]  # this knowledge base's runs, newest first
    kb_id: str | None = None  # None: the per-knowledge-base SQLite file, whose runs are all this one's
    kb_path: str = ""
    # the SQLite file's run index (dossier.runs_store.read_run_index); a shared PostgreSQL store keeps none
    record: Callable[[RunInfo, str | None], Awaitable[None]] | None = None

    def config(self, run_id: str) -> dict[str, Any]:
        config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
        if self.kb_id is not None:  # LangGraph copies config metadata into every checkpoint's metadata
            from dossier.runs_postgres import KB_KEY, KB_PATH_KEY

            config["metadata"] = {KB_KEY: self.kb_id, KB_PATH_KEY: self.kb_path}
        return config

    def check_owner(self, run_id: str, metadata: Mapping[str, Any] | None) -> None:
        """Refuse a run that exists in the store but belongs to another knowledge base."""
        if self.kb_id is None or metadata is None:
            return
        from dossier.runs_postgres import KB_KEY, KB_PATH_KEY

        if metadata.get(KB_KEY) != self.kb_id:
            if other := metadata.get(KB_PATH_KEY):
                raise ForeignRun(f"run {run_id} belongs to another knowledge base ({other}), not to this one "
                                 f"({self.kb_path}): resume it there with `dossier resume {run_id} --kb {other}`")
            raise ForeignRun(f"run {run_id} in {self.where} does not belong to this knowledge base ({self.kb_path})")


@asynccontextmanager
async def open_run_store(settings: Settings, kb_path: Path) -> AsyncIterator[RunStore]:
    serde = JsonPlusSerializer(allowed_msgpack_modules=SERIALIZED_TYPES)
    if settings.runs_url is None:
        path = kb_path / "runs.sqlite"
        # runs_connection closes even when cancelled, and names the file when it is damaged.
        async with runs_connection(path, timeout=SQLITE_BUSY_TIMEOUT_S) as conn:
            saver = AsyncSqliteSaver(conn, serde=serde)
            yield RunStore(saver, where=str(path), list_ids=lambda: _sqlite_ids(saver),
                           record=lambda info, checkpoint_id: index_run(conn, info, checkpoint_id))
        return
    from dossier import runs_postgres  # psycopg loads only where runs live in PostgreSQL

    url = settings.runs_url.get_secret_value()
    runs_postgres.register_password(url)
    kb_id = knowledge_base_id(kb_path)
    async with runs_postgres.postgres_saver(url, pool_size=settings.runs_pool_size, serde=serde) as pg_saver:
        yield RunStore(pg_saver, where=runs_postgres.safe_url(url), kb_id=kb_id, kb_path=str(kb_path.resolve()),
                       list_ids=lambda: runs_postgres.kb_run_ids(pg_saver, kb_id))


def knowledge_base_id(kb_path: Path) -> str:
    """The knowledge base's id, made once: of processes starting together, the first link wins."""
    path = kb_path / KB_ID_FILE
    if not path.exists():
        tmp = path.with_name(f".{KB_ID_FILE}.{uuid.uuid4().hex}")
        try:
            tmp.write_text(uuid.uuid4().hex + "\n", encoding="utf-8")
            try:
                os.link(tmp, path)  # atomic, and never replaces an id another process wrote first
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        except OSError as exc:
            raise RuntimeError(f"cannot record this knowledge base's id in {path} ({exc.strerror}): runs in "
                               f"PostgreSQL are filed under it; make the folder writable once") from exc
    kb_id = path.read_text(encoding="utf-8").strip()
    if not kb_id.isalnum():
        raise RuntimeError(f"{path} should hold this knowledge base's id (letters and digits), not {kb_id[:40]!r}")
    return kb_id


async def _sqlite_ids(saver: AsyncSqliteSaver) -> list[str]:
    await saver.setup()
    async with saver.conn.execute(
        "SELECT thread_id, max(checkpoint_id) FROM checkpoints GROUP BY thread_id ORDER BY 2 DESC"
    ) as cursor:
        return [row[0] async for row in cursor]
