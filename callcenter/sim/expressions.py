"""The part of Asterisk's ``${...}`` / ``$[...]`` substitution the dialplans use.

Supported: plain variables (channel, then globals), ``${EXTEN}``,
``${CONTEXT}``, ``${CHANNEL}``, ``${UNIQUEID}``, ``${EPOCH}``,
``${CALLERID(num|name|all)}``, substrings ``${name:offset[:length]}``,
``${IF(cond?true:false)}``, ``${FILTER(allowed,string)}``, ``${LEN(string)}``,
``${REGEX("pattern" string)}``, and ``$[...]`` expressions with the operators
of ast_expr2.y by precedence: ``|``, ``&``, comparisons (``= == != < > <=
>=``, numeric when both sides are unquoted numbers, else string), ``+ -``,
``* / %``, unary ``-`` and ``!``, parentheses.  Nested forms are substituted
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
        substring = _SUBSTRING.match(expr)
        if substring is not None:
            name, offset, length = substring.groups()
            value = _variable(name, lookup, channel_info)
            return _substring(value, int(offset), None if length is None else int(length))
        if expr in _BUILTINS:
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
    if name == "REGEX":
        return _regex(arg)
    value = lookup(expr)
    return "" if value is None else value


#: Variables Asterisk computes itself (pbx_retrieve_variable), before channel variables.
_BUILTINS = ("EXTEN", "CONTEXT", "CHANNEL", "UNIQUEID", "EPOCH")
_SUBSTRING = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(-?\d+)(?::(-?\d+))?$")


def _substring(value: str, offset: int, length: int | None) -> str:
    """``${name:offset:length}`` (ast_str_substring): negative offset from the end, negative length
    leaves that many characters off the end."""
    size = len(value)
    if offset < 0:
        offset = max(0, size + offset)
    if offset >= size:
        return ""
    if length is None:
        return value[offset:]
    end = offset + length if length >= 0 else size + length
    return value[offset:end] if end > offset else ""


def _regex(arg: str) -> str:
    """``REGEX("pattern" string)`` (func_strings.c): "1" when the pattern matches somewhere in string."""
    _, quote, rest = arg.partition('"')
    pattern, _, target = rest.partition('"')
    if not quote:
        return "0"
    target = target[1:] if target.startswith(" ") else target
    try:
        return "1" if re.search(pattern, target) else "0"
    except re.error:
        return "0"


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
    """``$[...]`` (ast_expr2): comparisons and logic give "1"/"0", arithmetic a number.

    A single operand comes back as written.  Something the grammar below does
    not parse (Asterisk would log a syntax error) falls back to a plain string
    comparison, else to the text itself.
    """
    try:
        tokens = _tokens(expr)
        if len(tokens) <= 1:
            return expr.strip()
        parser = _Parser(tokens)
        value = parser.parse()
        return value.text
    except _ExprError:
        match = _COMPARISON.match(expr)
        if match is None:
            return expr.strip()
        left, operator, right = match.group(2), match.group(3), match.group(5)
        equal = left == right
        return "1" if (equal if operator == "=" else not equal) else "0"


class _ExprError(Exception):
    pass


class _Value:
    """An operand: its text, and its number when it is an unquoted number."""

    __slots__ = ("text", "number")

    def __init__(self, text: str, number: int | float | None = None) -> None:
        self.text = text
        self.number = number

    @classmethod
    def of(cls, number: int | float) -> _Value:
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        return cls(format(number, ".18g") if isinstance(number, float) else str(number), number)

    def falsy(self) -> bool:
        """is_zero_or_null: empty, or a zero number."""
        if self.number is not None:
            return self.number == 0
        if not self.text:
            return True
        number = _number(self.text)
        return number is not None and number == 0


_OPERATORS = ("<=", ">=", "!=", "==", "=~", "|", "&", "=", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", ":")
_NUMBER = re.compile(r"^\d+(\.\d*)?$")


def _number(text: str) -> int | float | None:
    if not _NUMBER.match(text):
        return None
    return float(text) if "." in text else int(text)


def _tokens(expr: str) -> list[tuple[str, object]]:
    """("op", "<=") or ("val", _Value); quoted strings are one string operand."""
    tokens: list[tuple[str, object]] = []
    pos = 0
    while pos < len(expr):
        char = expr[pos]
        if char.isspace():
            pos += 1
            continue
        if char == '"':
            end = expr.find('"', pos + 1)
            if end < 0:
                raise _ExprError("unterminated string")
            tokens.append(("val", _Value(expr[pos + 1:end])))
            pos = end + 1
            continue
        operator = next((op for op in _OPERATORS if expr.startswith(op, pos)), None)
        if operator is not None:
            tokens.append(("op", operator))
            pos += len(operator)
            continue
        end = pos
        while end < len(expr) and not expr[end].isspace() and expr[end] != '"' and \
                not any(expr.startswith(op, end) for op in _OPERATORS):
            end += 1
        text = expr[pos:end]
        tokens.append(("val", _Value(text, _number(text))))
        pos = end
    return tokens


class _Parser:
    """Precedence climbing over ast_expr2.y's levels (lowest first)."""

    LEVELS = (("|",), ("&",), ("=", "==", "!=", "<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))

    def __init__(self, tokens: list[tuple[str, object]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> _Value:
        value = self._level(0)
        if self.pos != len(self.tokens):
            raise _ExprError("trailing tokens")
        return value

    def _peek_op(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "op":
            return self.tokens[self.pos][1]  # type: ignore[return-value]
        return None

    def _level(self, level: int) -> _Value:
        if level == len(self.LEVELS):
            return self._unary()
        left = self._level(level + 1)
        while self._peek_op() in self.LEVELS[level]:
            operator = self._peek_op()
            self.pos += 1
            right = self._level(level + 1)
            left = _apply(operator, left, right)
        return left

    def _unary(self) -> _Value:
        operator = self._peek_op()
        if operator in ("-", "!"):
            self.pos += 1
            operand = self._unary()
            if operator == "!":
                return _Value.of(1 if operand.falsy() else 0)
            if operand.number is None:
                raise _ExprError("non-numeric negation")
            return _Value.of(-operand.number)
        if operator == "(":
            self.pos += 1
            value = self._level(0)
            if self._peek_op() != ")":
                raise _ExprError("missing )")
            self.pos += 1
            return value
        if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != "val":
            raise _ExprError("operand expected")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value  # type: ignore[return-value]


def _apply(operator: str, left: _Value, right: _Value) -> _Value:
    if operator == "|":
        return right if left.falsy() else left
    if operator == "&":
        return _Value.of(0) if left.falsy() or right.falsy() else left
    if operator in ("=", "==", "!=", "<", ">", "<=", ">="):
        if left.number is not None and right.number is not None:
            a, b = left.number, right.number
        else:
            a, b = left.text, right.text
        result = {"=": a == b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b,
                  "<=": a <= b, ">=": a >= b}[operator]
        return _Value.of(1 if result else 0)
    if left.number is None or right.number is None:
        raise _ExprError("non-numeric argument")
    a, b = left.number, right.number
    if operator == "+":
        return _Value.of(a + b)
    if operator == "-":
        return _Value.of(a - b)
    if operator == "*":
        return _Value.of(a * b)
    if b == 0:
        raise _ExprError("division by zero")
    if operator == "/":
        return _Value.of(a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b)
    return _Value.of(a % b)
