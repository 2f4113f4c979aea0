"""One log sink: text or JSON lines, the call id on every line about a call, Twisted bridged in."""

from __future__ import annotations

import io
import json
import logging

import pytest

from callcenter.logging import call_id_context, setup_logging, truncated


@pytest.fixture
def sink():
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level

    def make(fmt):
        return setup_logging("debug", fmt, stream)

    yield stream, make
    for h in list(root.handlers):
        if getattr(h, "_callcenter", False):
            root.removeHandler(h)
    root.setLevel(old_level)


def test_text_lines_carry_the_call_id(sink):
    """Inside call_id_context every line names the call; outside none does."""
    stream, make = sink
    make("text")
    log = logging.getLogger("callcenter.test")
    with call_id_context("1795535416.0"):
        log.info("caller %s entered the IVR", "5551001")
    log.info("no call here")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO    callcenter.test call=1795535416.0: caller 5551001 entered the IVR")
    assert second.endswith("INFO    callcenter.test: no call here")


def test_json_lines_are_one_object_each(sink):
    """JSON format: one object per line with ts, level, logger, msg, call_id; non-ASCII kept."""
    stream, make = sink
    make("json")
    with call_id_context("1795535416.7"):
        logging.getLogger("callcenter.ivr").warning("caller name %s", "张伟")
    doc = json.loads(stream.getvalue())
    assert doc["level"] == "warning" and doc["logger"] == "callcenter.ivr"
    assert doc["msg"] == "caller name 张伟" and doc["call_id"] == "1795535416.7"
    assert doc["ts"].endswith("Z")


def test_exceptions_are_logged_with_traceback(sink):
    """logger.exception output includes the traceback (text) or an exc field (JSON)."""
    stream, make = sink
    make("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("handler failed")
    doc = json.loads(stream.getvalue())
    assert "ValueError: boom" in doc["exc"]


def test_twisted_log_goes_to_the_same_sink(sink):
    """Messages logged through twisted.logger reach the stdlib handler."""
    stream, make = sink
    make("text")
    from twisted.logger import Logger

    Logger(namespace="twisted.test").info("from twisted {n}", n=42)
    assert "from twisted 42" in stream.getvalue()


def test_untrusted_input_is_truncated_for_logs():
    """Hostile bytes are logged as a bounded repr."""
    assert truncated(b"ab") == "b'ab'"
    long = truncated(b"x" * 1000, limit=10)
    assert long == "b'xxxxxxxxxx'...(+990)"
