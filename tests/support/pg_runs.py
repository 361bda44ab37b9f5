"""Subprocess drivers for tests/test_runs_postgres.py (settings come from DOSSIER_* variables).

    python -m tests.support.pg_runs many KB_DIR N          N concurrent offline runs; prints one JSON line
    python -m tests.support.pg_runs kill-after K ARGS...   the real `dossier ARGS`, SIGKILLed right after
                                                           its K-th checkpoint is committed to PostgreSQL
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


async def many(kb_dir: Path, n: int, question: str) -> dict[str, Any]:
    from dossier.research import Researcher
    from dossier.settings import Settings
    from tools.knowledge_base import KnowledgeBase

    settings = Settings(kb_dir=kb_dir)
    kb = await KnowledgeBase.open(settings=settings)
    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(Researcher(kb, settings=settings).run(question) for _ in range(n)),
                                       return_exceptions=True)
    finally:
        await kb.close()
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    done = [r.run_id for r in results if not isinstance(r, BaseException) and r.sections and r.references]
    return {"done": done, "errors": errors, "wall_s": round(time.perf_counter() - started, 2)}


def kill_after(k: int) -> None:
    """SIGKILL this process as soon as the k-th checkpoint is committed: no cleanup, no goodbye."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    put = AsyncPostgresSaver.aput
    count = 0

    @functools.wraps(put)
    async def aput(self, *args, **kwargs):
        nonlocal count
        result = await put(self, *args, **kwargs)
        count += 1
        if count == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    AsyncPostgresSaver.aput = aput  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if argv[0] == "many":
        question = argv[3] if len(argv) > 3 else "What does RAG cost compared with fine-tuning?"
        print(json.dumps(asyncio.run(many(Path(argv[1]), int(argv[2]), question))), flush=True)
        return 0
    if argv[0] == "kill-after":
        kill_after(int(argv[1]))
        from dossier.cli import main as dossier

        return dossier(argv[2:])
    raise SystemExit(f"unknown command {argv[0]!r}: use many or kill-after")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
