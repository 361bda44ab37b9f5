"""What happened inside one LLM call: the HTTP attempts the OpenAI SDK made, retries included.

The SDK retries 429/5xx/timeouts inside one ``ainvoke``, out of sight. Its HTTP client carries
event hooks (``http_client``) that count each attempt into the ``CallLog`` of the call in progress
(a context variable: concurrent branches each see their own), so a call that succeeded after
retries is recorded in the trace, not only one that failed.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tools.redact import redact


@dataclass
class CallLog:
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)  # HTTP statuses of the attempts that failed

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)

    def causes(self) -> str:
        """Why attempts were repeated: the HTTP statuses, or timeouts/dropped connections (no status)."""
        parts = [f"HTTP {s}" for s in dict.fromkeys(self.statuses)]
        if self.retries > len(self.statuses):
            parts.append("timeout or connection error")
        return ", ".join(parts) or "retried"


CALL_LOG: ContextVar[CallLog | None] = ContextVar("dossier_llm_call_log", default=None)


async def _on_request(request: Any) -> None:
    log = CALL_LOG.get()
    if log is not None:
        log.attempts += 1


async def _on_response(response: Any) -> None:
    log = CALL_LOG.get()
    if log is not None and response.status_code >= 400:
        log.statuses.append(response.status_code)


def http_client() -> Any:
    """An async HTTP client with the SDK's defaults (timeouts, limits, redirects) and the counting hooks."""
    from openai import DefaultAsyncHttpxClient  # lazy: no client at import time

    return DefaultAsyncHttpxClient(event_hooks={"request": [_on_request], "response": [_on_response]})


def retry_note(step: str, log: CallLog) -> str | None:
    """The trace note for a call that succeeded after retries (None when it needed none)."""
    if not log.retries:
        return None
    times = "1 retry" if log.retries == 1 else f"{log.retries} retries"
    return redact(f"{step}: succeeded after {times} ({log.causes()})")
