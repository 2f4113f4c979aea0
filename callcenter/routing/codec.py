"""ACD inputs and snapshots as JSON, for Redis (the leader's snapshot, commands relayed between daemons).

Only the dataclasses of ``acd.inputs`` and ``acd.model`` are known; anything
else, or a field of the wrong shape, raises ``ValueError`` naming it: the
data comes from another daemon, and is still checked.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from acd import inputs, model

_INPUTS: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(inputs.Input)}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(model) | vars(inputs))
    return _HINTS[cls]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, model.AgentState):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset):  # a setup's groups: sorted, so equal sets encode alike
        return sorted(_plain(v) for v in value)
    return value


def _build(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _build(arg, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {args}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items")
        return tuple(_build(a, v, where) for a, v in zip(args, value))
    if origin is frozenset:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        return frozenset(_build(args[0], v, where) for v in value)
    if isinstance(hint, type) and issubclass(hint, model.AgentState):
        try:
            return model.AgentState(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an agent state") from None
    if dataclasses.is_dataclass(hint):
        return from_plain(hint, value, where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ValueError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return value
    raise ValueError(f"{where}: cannot decode {hint}")


def from_plain(cls: type, data: Any, where: str = "") -> Any:
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _build(hints[f.name], data[f.name], f"{where}.{f.name}")
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None


def encode_input(inp: inputs.Input) -> str:
    return json.dumps({"type": type(inp).__name__, "data": _plain(inp)}, ensure_ascii=False)


def decode_input(text: str | bytes) -> inputs.Input:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("type") not in _INPUTS:
        raise ValueError(f"unknown ACD input {raw.get('type') if isinstance(raw, dict) else raw!r}")
    return from_plain(_INPUTS[raw["type"]], raw.get("data"))


def encode_snapshot(snapshot: model.Snapshot) -> str:
    return json.dumps(_plain(snapshot), ensure_ascii=False)


def decode_snapshot(text: str | bytes) -> model.Snapshot:
    return from_plain(model.Snapshot, json.loads(text))


def plain(value: Any) -> Any:
    """A dataclass (view, effect) as JSON-able data."""
    return _plain(value)
