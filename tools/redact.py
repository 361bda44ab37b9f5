"""Secrets out of every text that leaves the process: errors, failures, log records.

A server may echo the API key back ("Incorrect API key provided: sk-…"). Such a message then travels
as an exception through the graph (into the checkpoints), into the report's failures, onto stderr
and into log records. The keys the process was configured with are registered here, and each of
those exits passes its text through ``redact``; anything shaped like a key is masked as well.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "[redacted]"
_MIN_SECRET_LEN = 6  # shorter values ('x', 'none') would mask ordinary words
# Shapes of keys that providers issue and servers echo: OpenAI-style sk-/sess-/rk- keys, bearer
# tokens in echoed headers, and Azure-style 32-hex keys after a key= parameter.
_KEY_SHAPES = re.compile(r"\b(?:sk|rk|sess|pk)-[A-Za-z0-9_\-]{8,}|(?<=Bearer )[A-Za-z0-9._\-~+/]{8,}=*"
                         r"|(?<=api[-_]key=)[A-Za-z0-9_\-]{8,}", re.IGNORECASE)
_secrets: set[str] = set()
_lock = threading.Lock()
_factory_installed = False


def register_secret(value: str | None) -> None:
    """Remember a configured secret, so no later text can carry it out."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        _secrets.add(value)
    _install_log_factory()


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-shaped token masked."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: a key containing another
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_SHAPES.sub(MASK, text)


def scrub_exception(exc: BaseException) -> BaseException:
    """Mask secrets in an exception and every exception chained to it, in place, and return it.

    The exception object itself is what LangGraph stores in its checkpoint and what the caller
    prints, so the text is fixed where it lives rather than at each place it is shown.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        for attr in ("message", "body"):  # openai's APIError keeps both besides args
            value = getattr(current, attr, None)
            if isinstance(value, str):
                _set(current, attr, redact(value))
            elif isinstance(value, dict):
                _set(current, attr, _redact_obj(value))
        current = current.__cause__ or current.__context__
    return exc


def _redact_obj(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_obj(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_obj(v) for v in value]
    return value


def _set(obj: object, attr: str, value: object) -> None:
    try:
        setattr(obj, attr, value)
    except AttributeError:  # a read-only property: args already carry the text that is shown
        pass


def _install_log_factory() -> None:
    """Every log record, of every library, is redacted when it is made (before any handler sees it)."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
    base = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return record

    logging.setLogRecordFactory(factory)
