"""The IVR expression language: parsing, evaluation, errors with columns, safety."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr_flows.expressions import Env, EvalError, ExprSyntaxError, luhn_valid, parse

VARS = {
    "customer.tier": "vip", "customer.balance": Decimal("120.50"), "customer.arrears": Decimal("0"),
    "customer.found": True, "account": "10000008", "ani": "5551001", "skills": ["billing", "zh"],
    "customer.name": None, "priority": 3,
}


def ev(text, variables=VARS, **outside):
    return parse(text).evaluate(Env(variables, **outside))


@pytest.mark.parametrize("text, value", [
    ('customer.tier == "vip"', True),
    ("customer.tier == 'gold'", False),
    ("customer.balance > 0", True),
    ("customer.balance > 0 and customer.arrears > 0", False),
    ("customer.arrears > 0 or customer.found", True),
    ("not customer.found", False),
    ("customer.balance - 20.5 == 100", True),
    ("priority * 2 + 1", 7),
    ("priority % 2", 1),
    ("10 / 4", Decimal("2.5")),
    ("-priority < 0", True),
    ('"bill" + "ing" in skills', True),
    ('"fr" not in skills', True),
    ('customer.tier in ["vip", "gold"]', True),
    ("len(account) == 8", True),
    ("number(account) > 9999999", True),
    ('starts_with(ani, "555")', True),
    ("luhn(account)", True),
    ("customer.name == null", True),
    ("1 == 1.0", True),
    ('"1" == 1', False),
    ("(priority > 1) and (priority < 5)", True),
])
def test_expression_evaluates_to_its_value(text, value):
    """Each operator and function gives the expected value over the variables."""
    assert ev(text) == value


def test_open_and_waiting_ask_the_environment():
    """open("cal") and waiting("queue") are answered by the Env's callbacks."""
    env = {"is_open": lambda name: name == "hotline", "waiting": lambda queue: {"support": 12}[queue]}
    assert ev('open("hotline") and waiting("support") >= 10', **env) is True
    assert ev("open('night')", **env) is False


def test_expression_lists_its_variables_and_queues():
    """The validator sees the names used and the queues asked with waiting()."""
    expr = parse('customer.tier == "vip" and waiting("support") > waiting("vip") + waiting("support")')
    assert expr.variables == {"customer.tier"}
    assert expr.queues() == ("support", "vip")


@pytest.mark.parametrize("text, column, message", [
    ("customer.tier ==", 17, "unexpected end of expression"),
    ('customer.tier == "vip', 18, "unterminated string"),
    ("a == 1 )", 8, "unexpected ')'"),
    ("a $ b", 3, "unexpected character '$'"),
    ("1 < a < 3", 7, "comparisons cannot be chained"),
    ("eval('x')", 1, "unknown function 'eval'"),
    ("len(a, b)", 1, "len() takes 1 argument(s), got 2"),
    ('open(name)', 1, "open() takes a quoted name"),
    ("", 1, "empty expression"),
    ("(((a)", 6, "expected ')'"),
])
def test_syntax_error_names_the_column(text, column, message):
    """Syntax errors carry a plain reason and the 1-based column of the problem."""
    with pytest.raises(ExprSyntaxError) as info:
        parse(text)
    assert info.value.column == column
    assert message in info.value.message


def test_python_is_not_reachable():
    """Dunder names are just unknown variables; attribute calls and imports do not parse."""
    with pytest.raises(EvalError, match="not set"):
        ev("__import__")
    for text in ('__import__("os").system("id")', "a.__class__()", "().x", "lambda: 1"):
        with pytest.raises(ExprSyntaxError):
            parse(text)


def test_deep_nesting_and_long_text_are_refused():
    """Bounded depth and length: no recursion blow-up from an admin's typo."""
    with pytest.raises(ExprSyntaxError, match="nested too deeply"):
        parse("(" * 100 + "1" + ")" * 100)
    with pytest.raises(ExprSyntaxError, match="longer than"):
        parse("1 + " * 200 + "1")


@pytest.mark.parametrize("text, message", [
    ("customer.name > 0", "cannot compare null with a number"),
    ('account > 5', "cannot compare text with a number"),
    ("1 / (priority - 3)", "division by zero"),
    ("missing == 1", "variable 'missing' is not set"),
    ('number("12a")', "number() cannot read text"),
    ("len(priority)", "len() needs text or a list"),
])
def test_runtime_errors_are_eval_errors(text, message):
    """Values that do not fit raise EvalError (the engine then falls back)."""
    with pytest.raises(EvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ev(text)


def test_luhn():
    """Luhn check digits of account numbers."""
    assert luhn_valid("10000008") and luhn_valid("12345674") and luhn_valid("79927398713")
    assert not luhn_valid("12345678") and not luhn_valid("1") and not luhn_valid("12a4")


@given(st.text(max_size=80))
def test_any_text_parses_or_fails_with_a_syntax_error(text):
    """Hostile text never raises anything but ExprSyntaxError."""
    try:
        expr = parse(text)
    except ExprSyntaxError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    try:
        expr.evaluate(Env({name: 1 for name in expr.variables}))
    except EvalError:
        pass
