"""Asterisk-style extension patterns for the transfer allow-list.

``_6XXX`` matches 6000-6999; ``6001`` matches itself.  In a pattern
``X`` = 0-9, ``Z`` = 1-9, ``N`` = 2-9, ``[1-3]`` a set, ``.`` one or more
digits, ``!`` zero or more.  Only digits are ever accepted as a number.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NUMBER = re.compile(r"[0-9]{1,20}")
_PATTERN = re.compile(r"_(?:[0-9XZN.!]|\[[0-9-]+\])+|[0-9]{1,20}")


def valid_pattern(pattern: str) -> bool:
    return bool(_PATTERN.fullmatch(pattern))


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    if not valid_pattern(pattern):
        raise ValueError(f"{pattern!r} is not an extension pattern like _6XXX or 6001")
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out, body, index = [], pattern[1:], 0
    while index < len(body):
        char = body[index]
        if char == "[":
            end = body.index("]", index)
            out.append("[" + body[index + 1:end] + "]")
            index = end + 1
            continue
        out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": "[0-9]+", "!": "[0-9]*"}.get(char, char))
        index += 1
    return re.compile("".join(out))


def matches(pattern: str, number: str) -> bool:
    return bool(_NUMBER.fullmatch(number)) and bool(_compile(pattern).fullmatch(number))


def allowed(patterns: tuple[str, ...] | list[str], number: str) -> bool:
    """True when ``number`` (digits only) matches one of ``patterns``."""
    return any(matches(pattern, number) for pattern in patterns)
