"""What may cross between the caller, the engine and the dialplan.

Caller input is hostile.  Numbers from the AGI environment and digits from
GET DATA are reduced here before the engine sees them, and every value the
daemon hands to the dialplan (queue, skills, priority, language, transfer
target, mailbox, prompt names, what SAY speaks) is checked against the
character sets of :mod:`callcenter.asterisk.channel_vars`.  A value that
does not fit raises :class:`UnsafeValue`: the call then takes the fallback
path instead of handing Asterisk something unexpected.
"""

from __future__ import annotations

import re

from callcenter.asterisk.channel_vars import QUEUE_NAME_CHARS, TRANSFER_TO_CHARS

CALLER_KEYS = "0123456789*#"
MAX_NUMBER = 32
MAX_DNIS = 20

_NUMBER = re.compile(r"\+?[0-9]{1,%d}" % MAX_NUMBER)
_DNIS = re.compile(r"[0-9]{1,%d}" % MAX_DNIS)
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")
_SKILL = re.compile(r"[a-z0-9_-]{1,32}")
_PROMPT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/-]{0,127}")
_MAILBOX = re.compile(r"[0-9]{1,10}(@[A-Za-z0-9_-]{1,32})?")
_AMOUNT = re.compile(r"[0-9]{1,9}\.[0-9]{2}")
_CALL_ID = re.compile(r"[-._0-9A-Za-z]{1,64}")


class UnsafeValue(ValueError):
    """A value does not fit what the dialplan or an AGI command accepts."""


def caller_number(text: str) -> str:
    """The ANI as digits (with a leading +), or ``""`` for withheld or garbage."""
    text = (text or "").strip()
    return text if _NUMBER.fullmatch(text) else ""


def dialed_number(text: str) -> str:
    """The DNIS as digits, or ``""``."""
    text = (text or "").strip()
    return text if _DNIS.fullmatch(text) else ""


def caller_digits(text: str, max_digits: int) -> str:
    """GET DATA's result bounded to ``max_digits``.  Input holding anything
    but the keys 0-9*# is reduced to ``?``, which the engine treats as invalid
    input (never as the keys it may start with)."""
    text = text or ""
    if any(c not in CALLER_KEYS for c in text):
        return "?"
    return text[:max_digits]


def call_id(text: str | None) -> str | None:
    return text if text and _CALL_ID.fullmatch(text) else None


def _check(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UnsafeValue(f"{what} {value!r} refused")
    return value


def queue(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or any(c not in QUEUE_NAME_CHARS for c in value):
        raise UnsafeValue(f"queue name {value!r} refused")
    return value


def skills(values: tuple[str, ...]) -> str:
    return ",".join(_check(_SKILL, skill, "skill") for skill in values)


def priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise UnsafeValue(f"priority {value!r} refused")
    return value


def language(value: object) -> str:
    return _check(_LANGUAGE, value, "language")


def transfer_target(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 20 or any(c not in TRANSFER_TO_CHARS for c in value):
        raise UnsafeValue(f"transfer target {value!r} refused")
    return value


def mailbox(value: object) -> str:
    return _check(_MAILBOX, value, "mailbox")


def prompt(value: object) -> str:
    return _check(_PROMPT, value, "prompt")


def amount(value: object) -> tuple[int, int]:
    """``"123.45"`` -> (123, 45)."""
    units, cents = _check(_AMOUNT, value, "amount").split(".")
    return int(units), int(cents)


def say_digits(value: object) -> str:
    return _check(re.compile(r"[0-9]{1,32}"), value, "digits")


def say_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**9:
        raise UnsafeValue(f"number {value!r} refused")
    return value
