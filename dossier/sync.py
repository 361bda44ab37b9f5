"""The one sync shim: run Dossier's coroutines from scripts and from inside a running loop (Jupyter).

Every call goes to one background event loop in a daemon thread, so objects created through the shim
(LanceDB connections, locks) always live on the same loop, whether or not the caller has its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="dossier-sync", daemon=True).start()
        return _loop


def run_sync(awaitable: Awaitable[T]) -> T:
    """Block until ``awaitable`` finishes on Dossier's background loop and return its result."""
    future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), _background_loop())
    return future.result()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
