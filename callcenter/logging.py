"""One logging sink for the daemon.

* stdlib ``logging`` everywhere; Twisted's own log is bridged into it;
* text or JSON lines (``[log] format``);
* the call id of the call being handled is added to every record, taken from
  a context variable that adapters set around per-call work
  (``with call_id_context(linkedid): ...``).  Twisted coroutines and asyncio
  tasks copy the context, so work started inside keeps the id.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import json
import logging
import sys
from typing import IO, Iterator

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

#: Longest repr of untrusted bytes or text put in a log line.
MAX_LOGGED = 200


def current_call_id() -> str | None:
    return _call_id.get()


@contextlib.contextmanager
def call_id_context(call_id: str | None) -> Iterator[None]:
    """Mark every log record emitted inside the block with ``call_id``."""
    token = _call_id.set(call_id)
    try:
        yield
    finally:
        _call_id.reset(token)


def truncated(data: bytes | str, limit: int = MAX_LOGGED) -> str:
    """A bounded repr of untrusted input, for log lines."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}...(+{len(data) - limit})"


def _install_record_factory() -> None:
    """Stamp every LogRecord with the current call id, whichever handler reads it."""
    base = logging.getLogRecordFactory()
    if getattr(base, "_callcenter", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.call_id = _call_id.get()
        return record

    factory._callcenter = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


class CallIdFilter(logging.Filter):
    """Adds ``record.call_id`` (or None) from the context variable."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = _call_id.get()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    ts = _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        call = f" call={record.call_id}" if getattr(record, "call_id", None) else ""
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}{call}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "call_id", None):
            doc["call_id"] = record.call_id
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Route stdlib and Twisted logging to one handler; return it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(CallIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_callcenter", False):
            root.removeHandler(old)
    handler._callcenter = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    _bridge_twisted()
    return handler


_bridged = False


def _bridge_twisted() -> None:
    """Send Twisted's log events to stdlib logging (once per process)."""
    global _bridged
    if _bridged:
        return
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], discardBuffer=True, redirectStandardIO=False)
    _bridged = True
