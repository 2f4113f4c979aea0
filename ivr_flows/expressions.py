"""The IVR expression language: small, safe, and never ``eval``.

Admins write conditions such as ``customer.tier == "vip" and waiting("support") < 10``.
Text goes through a tokenizer and a recursive-descent parser into a tree of
tuples; :meth:`Expression.evaluate` walks that tree over a variables mapping.
Nothing reaches Python's ``eval``, attribute access or imports.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := "-" unary | primary
    primary := NUMBER | STRING | "true" | "false" | "null" | "[" items "]"
             | NAME | NAME "(" items ")" | "(" expr ")"
    NAME    := identifier ("." identifier)*        e.g. customer.balance

Values are ``None``, ``bool``, ``int``, ``Decimal``, ``str`` and lists.
Errors carry the 1-based column in the expression text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_LENGTH = 500
MAX_DEPTH = 40

Value = Any


class ExprSyntaxError(ValueError):
    """The expression text does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class EvalError(ValueError):
    """The expression parsed but cannot be computed with these values."""


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<=|>=|[<>+\-*/%(),\[\]])
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, op, keyword, end
    text: str
    column: int


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            char = source[pos]
            if char in "\"'":
                raise ExprSyntaxError("unterminated string", pos + 1)
            raise ExprSyntaxError(f"unexpected character {char!r}", pos + 1)
        kind = match.lastgroup or ""
        text = match.group()
        if kind != "space":
            if kind == "name" and text in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, text, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


#: Function name -> number of arguments.  ``open`` and ``waiting`` take a
#: string literal so the validator can check the calendar / queue names.
FUNCTIONS: Mapping[str, int] = {
    "len": 1, "number": 1, "starts_with": 2, "luhn": 1, "open": 1, "waiting": 1,
}
LITERAL_ARG_FUNCTIONS = frozenset({"open", "waiting"})


@dataclass(frozen=True)
class Call:
    """A function call seen in an expression (for the validator)."""
    name: str
    args: tuple[Any, ...]  # literal values, or None where the argument is not a literal
    column: int


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, tree, the variables and calls it uses."""

    source: str
    tree: tuple = field(repr=False, compare=False)
    names: tuple[tuple[str, int], ...] = field(repr=False, compare=False)  # (name, column)
    calls: tuple[Call, ...] = field(repr=False, compare=False)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.names)

    def queues(self) -> tuple[str, ...]:
        """Queue names asked with ``waiting("...")``, in order, once each."""
        seen: dict[str, None] = {}
        for call in self.calls:
            if call.name == "waiting" and isinstance(call.args[0], str):
                seen.setdefault(call.args[0], None)
        return tuple(seen)

    def evaluate(self, env: "Env") -> Value:
        return _eval(self.tree, env)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0
        self.names: list[tuple[str, int]] = []
        self.calls: list[Call] = []

    @property
    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, *texts: str) -> Token | None:
        if self.peek.kind in ("op", "keyword") and self.peek.text in texts:
            return self.take()
        return None

    def expect(self, text: str) -> Token:
        token = self.accept(text)
        if token is None:
            raise ExprSyntaxError(f"expected {text!r}, found {_describe(self.peek)}", self.peek.column)
        return token

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprSyntaxError("expression nested too deeply", self.peek.column)

    def parse(self) -> tuple:
        tree = self.or_()
        if self.peek.kind != "end":
            raise ExprSyntaxError(f"unexpected {_describe(self.peek)}", self.peek.column)
        return tree

    def or_(self) -> tuple:
        left = self.and_()
        while self.accept("or"):
            left = ("or", left, self.and_())
        return left

    def and_(self) -> tuple:
        left = self.not_()
        while self.accept("and"):
            left = ("and", left, self.not_())
        return left

    def not_(self) -> tuple:
        if self.accept("not"):
            self.nested()
            operand = self.not_()
            self.depth -= 1
            return ("not", operand)
        return self.compare()

    def compare(self) -> tuple:
        left = self.sum_()
        token = self.peek
        if token.kind == "keyword" and token.text == "not" and self.tokens[self.index + 1].text == "in":
            self.index += 2
            return ("not", ("cmp", "in", left, self.sum_(), token.column))
        op = self.accept("==", "!=", "<", "<=", ">", ">=", "in")
        if op is None:
            return left
        right = self.sum_()
        if self.peek.text in ("==", "!=", "<", "<=", ">", ">="):
            raise ExprSyntaxError("comparisons cannot be chained; use 'and'", self.peek.column)
        return ("cmp", op.text, left, right, op.column)

    def sum_(self) -> tuple:
        left = self.product()
        while (op := self.accept("+", "-")) is not None:
            left = ("arith", op.text, left, self.product(), op.column)
        return left

    def product(self) -> tuple:
        left = self.unary()
        while (op := self.accept("*", "/", "%")) is not None:
            left = ("arith", op.text, left, self.unary(), op.column)
        return left

    def unary(self) -> tuple:
        op = self.accept("-")
        if op is not None:
            self.nested()
            operand = self.unary()
            self.depth -= 1
            return ("neg", operand, op.column)
        return self.primary()

    def primary(self) -> tuple:
        token = self.take()
        if token.kind == "number":
            return ("lit", Decimal(token.text) if "." in token.text else int(token.text))
        if token.kind == "string":
            return ("lit", _unescape(token.text))
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return ("lit", {"true": True, "false": False, "null": None}[token.text])
        if token.kind == "op" and token.text == "(":
            self.nested()
            inner = self.or_()
            self.depth -= 1
            self.expect(")")
            return inner
        if token.kind == "op" and token.text == "[":
            return ("list", tuple(self.items("]")))
        if token.kind == "name":
            if self.accept("("):
                return self.call(token)
            self.names.append((token.text, token.column))
            return ("var", token.text, token.column)
        raise ExprSyntaxError(f"unexpected {_describe(token)}", token.column)

    def items(self, closer: str) -> list[tuple]:
        self.nested()
        items: list[tuple] = []
        if not self.accept(closer):
            items.append(self.or_())
            while self.accept(","):
                items.append(self.or_())
            self.expect(closer)
        self.depth -= 1
        return items

    def call(self, name: Token) -> tuple:
        args = self.items(")")
        arity = FUNCTIONS.get(name.text)
        if arity is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExprSyntaxError(f"unknown function {name.text!r} (known: {known})", name.column)
        if len(args) != arity:
            raise ExprSyntaxError(f"{name.text}() takes {arity} argument(s), got {len(args)}", name.column)
        literals = tuple(arg[1] if arg[0] == "lit" else None for arg in args)
        if name.text in LITERAL_ARG_FUNCTIONS and not isinstance(literals[0], str):
            raise ExprSyntaxError(f"{name.text}() takes a quoted name, e.g. {name.text}(\"support\")", name.column)
        self.calls.append(Call(name.text, literals, name.column))
        return ("call", name.text, tuple(args), name.column)


def _describe(token: Token) -> str:
    return "end of expression" if token.kind == "end" else repr(token.text)


def parse(source: str) -> Expression:
    """Parse ``source``; raises ExprSyntaxError with the column of the problem."""
    if not isinstance(source, str):
        raise ExprSyntaxError("an expression must be text", 1)
    if len(source) > MAX_LENGTH:
        raise ExprSyntaxError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if not source.strip():
        raise ExprSyntaxError("empty expression", 1)
    parser = _Parser(source)
    tree = parser.parse()
    return Expression(source, tree, tuple(parser.names), tuple(parser.calls))


# -- evaluation ---------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """What an expression can see: variables and the two outside facts."""

    variables: Mapping[str, Value]
    is_open: Callable[[str], bool] = lambda name: False
    waiting: Callable[[str], int] = lambda queue: 0


def truthy(value: Value) -> bool:
    if isinstance(value, Decimal):
        return value != 0
    return bool(value)


def _number(value: Value, what: str) -> int | Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise EvalError(f"{what} is {_kind(value)}, not a number")
    return value


def _kind(value: Value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", Decimal: "a number", str: "text", list: "a list"}.get(
        type(value), type(value).__name__)


def _eval(tree: tuple, env: Env) -> Value:
    kind = tree[0]
    if kind == "lit":
        return tree[1]
    if kind == "var":
        if tree[1] not in env.variables:
            raise EvalError(f"variable {tree[1]!r} is not set")
        return env.variables[tree[1]]
    if kind == "list":
        return [_eval(item, env) for item in tree[1]]
    if kind == "and":
        left = _eval(tree[1], env)
        return _eval(tree[2], env) if truthy(left) else left
    if kind == "or":
        left = _eval(tree[1], env)
        return left if truthy(left) else _eval(tree[2], env)
    if kind == "not":
        return not truthy(_eval(tree[1], env))
    if kind == "neg":
        return -_number(_eval(tree[1], env), "the operand of '-'")
    if kind == "cmp":
        return _compare(tree[1], _eval(tree[2], env), _eval(tree[3], env))
    if kind == "arith":
        return _arith(tree[1], _eval(tree[2], env), _eval(tree[3], env))
    if kind == "call":
        return _call(tree[1], [_eval(arg, env) for arg in tree[2]], env)
    raise EvalError(f"unknown expression node {kind!r}")


def _comparable(value: Value) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def _compare(op: str, left: Value, right: Value) -> bool:
    if op == "in":
        if isinstance(right, list):
            return any(_compare("==", left, item) for item in right)
        if isinstance(right, str) and isinstance(left, str):
            return left in right
        raise EvalError(f"'in' needs a list or text on its right, not {_kind(right)}")
    if op in ("==", "!="):
        same = left == right if (_comparable(left) and _comparable(right)) or type(left) is type(right) else False
        return same if op == "==" else not same
    if _comparable(left) and _comparable(right):
        pass
    elif not (isinstance(left, str) and isinstance(right, str)):
        raise EvalError(f"cannot compare {_kind(left)} with {_kind(right)} using {op!r}")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _arith(op: str, left: Value, right: Value) -> Value:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    a = _number(left, f"the left side of {op!r}")
    b = _number(right, f"the right side of {op!r}")
    if op in ("/", "%") and b == 0:
        raise EvalError("division by zero")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return Decimal(a) / Decimal(b)
    return a % b


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit (account and card numbers)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _call(name: str, args: list[Value], env: Env) -> Value:
    if name == "len":
        if not isinstance(args[0], (str, list)):
            raise EvalError(f"len() needs text or a list, not {_kind(args[0])}")
        return len(args[0])
    if name == "number":
        value = args[0]
        if _comparable(value):
            return value
        if isinstance(value, str):
            try:
                return Decimal(value) if "." in value else int(value)
            except (ValueError, InvalidOperation):
                pass
        raise EvalError(f"number() cannot read {_kind(value)} as a number")
    if name == "starts_with":
        if not (isinstance(args[0], str) and isinstance(args[1], str)):
            raise EvalError("starts_with() needs two texts")
        return args[0].startswith(args[1])
    if name == "luhn":
        return isinstance(args[0], str) and luhn_valid(args[0])
    if name == "open":
        return bool(env.is_open(args[0]))
    if name == "waiting":
        return int(env.waiting(args[0]))
    raise EvalError(f"unknown function {name!r}")
