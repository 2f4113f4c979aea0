"""JSON Schema errors turned into plain reasons at a file:line:column.

The published schemas (``schema.json``, ``routes.schema.json``) are the one
description of the file formats: editors autocomplete with them and the
validator checks with them, through ``jsonschema``.  Its messages are
reworded where they would puzzle an admin (unknown fields, missing fields,
regular expressions).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ivr_flows.model import FlowError
from ivr_flows.yamlpos import Document

HERE = Path(__file__).resolve().parent

#: Regular expressions of the schemas, in words.
PATTERN_WORDS = {
    "^[A-Za-z_][A-Za-z0-9_-]{0,63}$": "a name of letters, digits, _ and - that starts with a letter",
    "^[A-Za-z0-9_][A-Za-z0-9_/-]{0,127}$": "a prompt name of letters, digits, _, - and / (no extension)",
    "^[a-z_][a-z0-9_]{0,63}$": "a variable name of lower-case letters, digits and _",
    "^[A-Za-z0-9_-]{1,64}$": "a queue name of letters, digits, _ and -",
    "^[a-z0-9_-]{1,32}$": "lower-case letters, digits, _ and -",
    "^[a-z]{2,3}(_[A-Za-z]{2})?$": "a language code like en, zh or fr_CA",
    "^[0-9]{1,20}$": "digits only",
    "^[0-9]{1,10}(@[A-Za-z0-9_-]{1,32})?$": "a mailbox like 1000 or 1000@default",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date like 2026-12-25",
    "^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$": "a time range like 08:00-17:30",
}


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def schema_problems(doc: Document, name: str, skip: Callable[[ValidationError], bool] = lambda e: False
                    ) -> list[tuple[tuple, FlowError]]:
    """(path in the document, error) for every schema violation not skipped."""
    problems: list[tuple[tuple, FlowError]] = []
    for error in _validator(name).iter_errors(doc.data):
        if not skip(error):
            problems.extend((tuple(error.absolute_path), e) for e in _explain(doc, error))
    return problems


def schema_errors(doc: Document, name: str, skip: Callable[[ValidationError], bool] = lambda e: False
                  ) -> list[FlowError]:
    return [error for _, error in schema_problems(doc, name, skip)]


def _field(path: tuple) -> str:
    names = [str(p) for p in path if not isinstance(p, int)]
    return names[-1] if names else ""


def _at(doc: Document, path: tuple, message: str, *, key: bool = False) -> FlowError:
    line, column = doc.where(path, key=key)
    return FlowError(doc.file, line, column, message)


def _explain(doc: Document, error: ValidationError) -> list[FlowError]:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        return [_at(doc, path + (k,), f"unknown field {k!r}{suggest(k, known)}", key=True) for k in extras]
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [_at(doc, path, f"missing field {k!r}") for k in missing]
    if "propertyNames" in error.relative_schema_path:
        words = PATTERN_WORDS.get(error.validator_value, "a valid name") if kind == "pattern" else "a valid name"
        return [_at(doc, path + (str(error.instance),), f"{error.instance!r} is not allowed here: use {words}",
                    key=True)]
    if kind == "pattern":
        words = PATTERN_WORDS.get(error.validator_value, f"text matching {error.validator_value}")
        return [_at(doc, path, f"{_field(path)}: {error.instance!r} is not {words}")]
    if kind == "oneOf":
        options = error.validator_value
        if all(set(option) == {"required"} for option in options):
            names = " or ".join(repr(option["required"][0]) for option in options)
            return [_at(doc, path, f"give exactly one of {names}")]
        inner = best_match(error.context) if error.context else None
        if inner is not None:
            return _explain(doc, inner)
    if kind == "dependentRequired":
        return [_at(doc, path, f"{_field(path) or 'this entry'}: {error.message}")]
    prefix = f"{_field(path)}: " if _field(path) else ""
    return [_at(doc, path, prefix + error.message)]
