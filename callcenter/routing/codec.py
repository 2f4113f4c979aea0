"""ACD inputs, effects and snapshots as JSON, for Redis (the leader's snapshot, commands relayed between
daemons, the leader's broadcasts to the other daemons).

Only the dataclasses of ``acd.inputs``, ``acd.effects`` and ``acd.model`` are
known; anything else, or a field of the wrong shape, raises ``ValueError``
naming it: the data comes from another daemon, and is still checked.

A broadcast (``decode_broadcast``) is one of:

* ``{"effects": [{"type": "Offer", "data": {...}}, ...]}``: effects the
  leader carried out, in order (``EffectsBroadcast``);
* ``{"figures": {"queues": [...], "agents": [...], "chart": {"full": bool,
  "queues": {"<queue>": [[minute, waiting max, answered, answered within
  the threshold, abandoned after it], ...]}}}}``: the wallboard's rows
  (``AcdService.queue_rows``, ``agent_rows``) and the per-minute chart
  buckets of each queue, all of them (``full``) or the latest minutes only
  (``FiguresBroadcast``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from acd import effects, inputs, model
from acd.stats import Bucket

_INPUTS: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(inputs.Input)}
_EFFECTS: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(effects.Effect)}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(model) | vars(inputs) | vars(effects))
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


def encode_effect(effect: effects.Effect) -> str:
    return json.dumps(_typed(effect), ensure_ascii=False)


def decode_effect(text: str | bytes) -> effects.Effect:
    return _effect(_json(text), "effect")


def _typed(value: Any) -> dict[str, Any]:
    return {"type": type(value).__name__, "data": _plain(value)}


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def _effect(raw: Any, where: str) -> effects.Effect:
    if not isinstance(raw, dict) or raw.get("type") not in _EFFECTS:
        raise ValueError(f"{where}: unknown ACD effect {raw.get('type') if isinstance(raw, dict) else raw!r}")
    unknown = set(raw) - {"type", "data"}
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    return from_plain(_EFFECTS[raw["type"]], raw.get("data"), f"{where}.{raw['type']}")


# -- the leader's broadcasts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class EffectsBroadcast:
    """Effects the leader carried out, in order (for the desktops connected to other daemons)."""

    effects: tuple[effects.Effect, ...]


@dataclass(frozen=True)
class FiguresBroadcast:
    """The leader's wallboard figures: queue rows, agent rows, and each queue's per-minute chart buckets
    (every bucket the leader holds when ``full_chart``, else only its latest minutes)."""

    queues: tuple[dict[str, Any], ...]
    agents: tuple[dict[str, Any], ...]
    chart: dict[str, tuple[Bucket, ...]]
    full_chart: bool


Broadcast = EffectsBroadcast | FiguresBroadcast

_BUCKET_FIELDS = ("minute", "waiting_max", "answered", "answered_within", "abandoned_after")
#: The fields of a row a daemon reads (the rest are passed on to desktops as they are): name -> (kind, may be None).
_QUEUE_ROW = {"queue": (str, False), "waiting": (int, False), "longest_wait": (float, False)}
_AGENT_ROW = {"agent": (str, False), "state": (str, False), "seconds": (float, True)}


def encode_effects_broadcast(done: Iterable[effects.Effect]) -> str:
    return json.dumps({"effects": [_typed(e) for e in done]}, ensure_ascii=False)


def encode_figures_broadcast(queues: Iterable[Mapping[str, Any]], agents: Iterable[Mapping[str, Any]],
                             chart: Mapping[str, Iterable[Bucket]], full_chart: bool) -> str:
    buckets = {queue: [[getattr(b, f) for f in _BUCKET_FIELDS] for b in held] for queue, held in chart.items()}
    return json.dumps({"figures": {"queues": list(queues), "agents": list(agents),
                                   "chart": {"full": full_chart, "queues": buckets}}}, ensure_ascii=False)


def decode_broadcast(text: str | bytes) -> Broadcast:
    raw = _json(text)
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("effects", "figures"):
        shown = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"unknown ACD broadcast {shown}: expected an object with effects or figures")
    if "effects" in raw:
        items = raw["effects"]
        if not isinstance(items, list):
            raise ValueError("effects: expected a list")
        return EffectsBroadcast(tuple(_effect(item, f"effects[{i}]") for i, item in enumerate(items)))
    figures = raw["figures"]
    _fields(figures, ("queues", "agents", "chart"), "figures")
    chart = figures["chart"]
    _fields(chart, ("full", "queues"), "figures.chart")
    if not isinstance(chart["full"], bool):
        raise ValueError("figures.chart.full: expected true or false")
    if not isinstance(chart["queues"], dict):
        raise ValueError("figures.chart.queues: expected an object")
    return FiguresBroadcast(_rows(figures["queues"], _QUEUE_ROW, "figures.queues"),
                            _rows(figures["agents"], _AGENT_ROW, "figures.agents"),
                            {str(queue): _buckets(held, f"figures.chart.queues.{queue}")
                             for queue, held in chart["queues"].items()},
                            chart["full"])


def _fields(data: Any, names: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    missing, unknown = set(names) - set(data), set(data) - set(names)
    if missing:
        raise ValueError(f"{where}: missing fields {sorted(missing)}")
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")


def _rows(rows: Any, fields: dict[str, tuple[type, bool]], where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(rows, list):
        raise ValueError(f"{where}: expected a list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{where}[{i}]: expected an object")
        for name, (kind, optional) in fields.items():
            if name not in row:
                raise ValueError(f"{where}[{i}]: missing field {name!r}")
            value = row[name]
            if value is None and optional:
                continue
            _build(kind, value, f"{where}[{i}].{name}")
    return tuple(rows)


def _buckets(held: Any, where: str) -> tuple[Bucket, ...]:
    if not isinstance(held, list):
        raise ValueError(f"{where}: expected a list")
    out = []
    for i, item in enumerate(held):
        if not isinstance(item, list) or len(item) != len(_BUCKET_FIELDS):
            raise ValueError(f"{where}[{i}]: expected a list of {len(_BUCKET_FIELDS)} counts")
        for name, value in zip(_BUCKET_FIELDS, item):
            if isinstance(value, bool) or not isinstance(value, int) or (value < 0 and name != "minute"):
                raise ValueError(f"{where}[{i}].{name}: expected a count, got {value!r}")
        out.append(Bucket(*item))
    return tuple(out)
