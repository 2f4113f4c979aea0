"""Versioned JSON frames between the daemon and browser desktops.

Every frame is a JSON object with ``type`` and ``v`` (protocol version).
Incoming frames are checked here; a bad one yields an ``error`` frame with a
plain reason, and the connection stays open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
#: Largest frame a desktop may send (bytes); websockets enforces it.
MAX_FRAME = 64 * 1024


class BadFrame(ValueError):
    """An incoming frame that cannot be used; ``str()`` is the reason."""


@dataclass(frozen=True)
class Frame:
    type: str
    body: dict[str, Any]


def parse_frame(raw: str | bytes) -> Frame:
    if isinstance(raw, bytes):
        raise BadFrame("binary frames are not accepted; send JSON text")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadFrame(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise BadFrame("a frame must be a JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadFrame("missing 'type'")
    version = doc.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise BadFrame(f"unsupported protocol version {version!r}; this server speaks {PROTOCOL_VERSION}")
    return Frame(kind, {k: v for k, v in doc.items() if k not in ("type", "v")})


def frame(kind: str, **body: Any) -> str:
    return json.dumps({"type": kind, "v": PROTOCOL_VERSION, **body}, ensure_ascii=False)


def error_frame(reason: str, **body: Any) -> str:
    return frame("error", reason=reason, **body)
