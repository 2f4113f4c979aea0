"""The part of Asterisk's ``${...}`` / ``$[...]`` substitution the lab dialplan uses.

Supported: plain variables (channel, then globals), ``${EXTEN}``,
``${CONTEXT}``, ``${CHANNEL}``, ``${UNIQUEID}``, ``${CALLERID(num|name|all)}``,
``${IF(cond?true:false)}``, ``${FILTER(allowed,string)}``, ``${LEN(string)}``,
and ``$[ "a" = "b" ]`` / ``!=`` comparisons.  Nested forms are substituted
inside out, as pbx_substitute_variables_helper does.  ``${CALLERID(all)}``
is ``"name" <num>`` without re-escaping (more/README.txt).
"""

from __future__ import annotations

import re
from collections.abc import Callable

Lookup = Callable[[str], str | None]

_COMPARISON = re.compile(r'^\s*("?)(.*?)\1\s*(!=|=)\s*("?)(.*?)\4\s*$', re.DOTALL)
_FUNCTION = re.compile(r"^([A-Z_]+)\((.*)\)$", re.DOTALL)


def substitute(text: str, lookup: Lookup, channel_info: Callable[[str], str | None]) -> str:
    """Expand every ``${...}`` and ``$[...]`` in ``text``.

    ``lookup(name)`` returns a variable (None if unset); ``channel_info(key)``
    answers EXTEN, CONTEXT, CHANNEL, UNIQUEID, CALLERID(num|name|all) and
    CHANNEL(linkedid|uniqueid|name).
    """
    out: list[str] = []
    pos = 0
    while pos < len(text):
        start = text.find("$", pos)
        if start < 0 or start + 1 >= len(text) or text[start + 1] not in "{[":
            if start < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:start + 1])
            pos = start + 1
            continue
        out.append(text[pos:start])
        opener = text[start + 1]
        end = _matching(text, start + 1, opener, "}" if opener == "{" else "]")
        inner = substitute(text[start + 2:end], lookup, channel_info)
        out.append(_variable(inner, lookup, channel_info) if opener == "{" else evaluate(inner))
        pos = end + 1
    return "".join(out)


def _matching(text: str, open_pos: int, opener: str, closer: str) -> int:
    depth = 0
    for index in range(open_pos, len(text)):
        if text[index] == opener:
            depth += 1
        elif text[index] == closer:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced {opener}{closer} in {text!r}")


def _variable(expr: str, lookup: Lookup, channel_info: Callable[[str], str | None]) -> str:
    match = _FUNCTION.match(expr)
    if match is None:
        if expr in ("EXTEN", "CONTEXT", "CHANNEL", "UNIQUEID"):
            return channel_info(expr) or ""
        value = lookup(expr)
        return "" if value is None else value
    name, arg = match.groups()
    if name == "CALLERID":
        return channel_info(f"CALLERID({arg.strip().lower()})") or ""
    if name == "CHANNEL":
        return channel_info(f"CHANNEL({arg.strip().lower()})") or ""
    if name == "IF":
        condition, _, branches = arg.partition("?")
        when_true, _, when_false = branches.partition(":")
        return when_true if is_true(condition) else when_false
    if name == "FILTER":
        allowed, _, value = arg.partition(",")
        chars = filter_set(allowed)
        return "".join(char for char in value if char in chars)
    if name == "LEN":
        return str(len(arg))
    value = lookup(expr)
    return "" if value is None else value


def filter_set(allowed: str) -> set[str]:
    """The characters FILTER() keeps: ``a-z`` is a range (func_strings.c), other characters are literal."""
    chars: set[str] = set()
    i = 0
    while i < len(allowed):
        if i + 2 < len(allowed) and allowed[i + 1] == "-":
            chars.update(chr(c) for c in range(ord(allowed[i]), ord(allowed[i + 2]) + 1))
            i += 3
        else:
            chars.add(allowed[i])
            i += 1
    return chars


def is_true(value: str) -> bool:
    """pbx_checkcondition: empty and numeric zero are false."""
    value = value.strip()
    if not value:
        return False
    try:
        return float(value) != 0
    except ValueError:
        return True


def evaluate(expr: str) -> str:
    """``$[...]``: a string comparison gives "1"/"0"; anything else is returned as is."""
    match = _COMPARISON.match(expr)
    if match is None:
        return expr.strip()
    left, operator, right = match.group(2), match.group(3), match.group(5)
    equal = left == right
    return "1" if (equal if operator == "=" else not equal) else "0"
