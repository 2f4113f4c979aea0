"""Checks on values going into the CRM: stored exactly, or refused with a clear error.

Text is never trimmed, folded or truncated.  What both databases cannot
store (NUL, lone surrogates) and what breaks the column's contract (too
long, a control character in a single-line field typed by staff) raises
``InvalidInput`` naming the field.  Right-to-left marks, SQL-meaningful
characters and every other code point are kept as given; every query is
parameterised, so they are only data.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable

from crm_core.errors import InvalidInput

#: What each ``controls`` mode refuses (a C-speed scan: notes may be long and this runs on the reactor).
_FORBIDDEN = {
    "keep": re.compile("[\x00\ud800-\udfff]"),
    "lines": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"),
    "refuse": re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]"),
}
_CONTROL_NAMES = {0x07: "bell", 0x08: "backspace", 0x09: "tab", 0x0A: "line feed", 0x0C: "form feed",
                  0x0D: "carriage return", 0x1B: "escape", 0x7F: "delete"}


def text(field: str, value: Any, max_len: int, *, required: bool = False, controls: str = "refuse") -> str | None:
    """Check a text value; ``controls`` is ``refuse``, ``lines`` (tab/CR/LF allowed) or ``keep``."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidInput(field, f"{len(value)} characters, at most {max_len}")
    bad = _FORBIDDEN[controls].search(value)
    if bad is not None:
        pos, code = bad.start(), ord(bad.group())
        if code == 0:
            raise InvalidInput(field, f"NUL (U+0000) at position {pos}: the database cannot store it")
        if 0xD800 <= code <= 0xDFFF:
            raise InvalidInput(field, f"lone surrogate U+{code:04X} at position {pos}: not valid Unicode")
        name = f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else ""
        raise InvalidInput(field, f"control character U+{code:04X}{name} at position {pos}")
    return value


def choice(field: str, value: Any, allowed: Iterable[str], *, required: bool = True) -> str | None:
    allowed = tuple(allowed)
    if value is None and not required:
        return None
    if value not in allowed:
        raise InvalidInput(field, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def integer(field: str, value: Any, lo: int, hi: int, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"expected {lo} to {hi}, got {value}")
    return value


def seconds(field: str, value: Any) -> float | None:
    """A non-negative duration in seconds (at most ten days), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(field, f"expected seconds as a number, got {type(value).__name__}")
    if not 0 <= value <= 864000:
        raise InvalidInput(field, f"expected 0 to 864000 seconds, got {value}")
    return float(value)


def moment(field: str, value: Any, *, required: bool = False) -> datetime | None:
    """A timezone-aware datetime, returned in UTC; naive ones are refused."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "needs a timezone (naive datetimes are ambiguous)")
    if not 1970 <= value.year <= 9999:
        raise InvalidInput(field, f"year {value.year} out of range")
    return value.astimezone(timezone.utc)
