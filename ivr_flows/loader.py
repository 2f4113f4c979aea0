"""Flow files to :class:`~ivr_flows.model.Flow`, with every error at file:line:column.

Loading never stops at the first problem: the YAML is composed with
positions (:mod:`ivr_flows.yamlpos`), checked against ``schema.json``, built
node by node (expressions parsed, prompts looked up in the manifest, digit
keys and variables checked), then the graph is checked
(:mod:`ivr_flows.checks`).  The result is a Flow only when there is no error.

Facts outside the file (the prompt manifest, calendars, other flows, the
transfer allow-list) come in a :class:`LoadEnv`; a ``None`` there means
"not known, do not check".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr_flows import dialpatterns
from ivr_flows.checks import check_graph
from ivr_flows.expressions import Expression, ExprSyntaxError, parse
from ivr_flows.model import (
    BUILTIN_VARIABLES, NODE_CLASSES, NODE_TYPES, READ_ONLY_VARIABLES, Currency, Edge, Flow, FlowError,
    Node, Position, Say,
)
from ivr_flows.schemacheck import schema_problems, suggest
from ivr_flows.yamlpos import Document, load

MENU_KEYS = "0123456789*"


@dataclass(frozen=True)
class LoadEnv:
    prompts: frozenset[str] | None = None
    calendars: frozenset[str] | None = None
    flows: frozenset[str] | None = None
    transfer_allow: tuple[str, ...] | None = None
    prompts_file: str = "prompts.yaml"
    routes_file: str = "routes.yaml"


def load_flow(path: str | Path, env: LoadEnv = LoadEnv()) -> tuple[Flow | None, list[FlowError]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(str(path), 1, 1, f"cannot read the file: {exc}")]
    return load_flow_text(text, str(path), path.stem, env)


def load_flow_text(text: str, file: str, name: str, env: LoadEnv = LoadEnv()) -> tuple[Flow | None, list[FlowError]]:
    doc, problems = load(text, file)
    errors = [FlowError(file, p.line, p.column, p.message) for p in problems]
    if doc is None:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, errors + [FlowError(file, 1, 1, "a flow file is a mapping with 'start' and 'nodes'")]
    builder = _FlowBuilder(doc, name, env)
    flow = builder.build(text)
    errors = sorted(set(errors + builder.errors))
    return (flow if not errors else None), errors


def _skip_schema_error(error: Any) -> bool:
    path = tuple(error.absolute_path)
    if len(path) == 3 and path[0] == "nodes" and path[2] == "type" and error.validator == "enum":
        return True  # reported as "unknown node type"
    return "propertyNames" in error.schema_path and path[-1:] == ("choices",)  # "bad digit key"


class _FlowBuilder:
    def __init__(self, doc: Document, name: str, env: LoadEnv) -> None:
        self.doc, self.name, self.env = doc, name, env
        self.data: dict = doc.data
        self.errors: list[FlowError] = []
        self.node_ids = set(self.raw_nodes())
        self.known_vars: set[str] = set(BUILTIN_VARIABLES)

    # -- positions and errors ---------------------------------------------------

    def pos(self, path: tuple, *, key: bool = False) -> Position:
        line, column = self.doc.where(path, key=key)
        return Position(self.doc.file, line, column)

    def error(self, path: tuple, message: str, *, key: bool = False, column_offset: int = 0) -> None:
        pos = self.pos(path, key=key)
        self.errors.append(FlowError(pos.file, pos.line, pos.column + column_offset, message))

    # -- the flow -----------------------------------------------------------------

    def build(self, text: str) -> Flow | None:
        broken, whole_file = self.schema_pass()
        self.collect_variables()
        nodes: dict[str, Node] = {}
        for node_id, raw in self.raw_nodes().items():
            if node_id not in broken:
                nodes[node_id] = self.node(node_id, raw)
        currency = self.currency(nodes)
        start = self.data.get("start")
        if isinstance(start, str) and self.node_ids and start not in self.node_ids:
            self.error(("start",), f"start node {start!r} does not exist{suggest(start, self.node_ids)}")
        if whole_file or len(nodes) != len(self.node_ids) or start not in nodes:
            return None  # the graph checks need every node
        flow = Flow(
            name=self.name, file=self.doc.file, start=start, nodes=nodes,
            language=self.data.get("language", "en"), description=self.data.get("description", ""),
            variables=dict(self.data.get("variables") or {}),
            tier_priority=dict(self.data.get("tier_priority") or {}),
            currency=currency,
            digest=hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest(),
        )
        self.errors.extend(check_graph(flow))
        return flow

    def raw_nodes(self) -> dict[str, Any]:
        nodes = self.data.get("nodes")
        return nodes if isinstance(nodes, dict) else {}

    def schema_pass(self) -> tuple[set[str], bool]:
        """Schema errors; returns the ids of nodes that cannot be built, and
        whether something outside the nodes is wrong."""
        problems = schema_problems(self.doc, "schema.json", _skip_schema_error)
        broken, whole_file = set(), False
        for path, error in problems:
            self.errors.append(error)
            if len(path) >= 2 and path[0] == "nodes":
                broken.add(path[1])
            else:
                whole_file = True
        for node_id, raw in self.raw_nodes().items():
            kind = raw.get("type") if isinstance(raw, dict) else None
            if isinstance(raw, dict) and kind not in NODE_TYPES:
                broken.add(node_id)
                what = f"unknown node type {kind!r}{suggest(str(kind), NODE_TYPES)}"
                self.error(("nodes", node_id, "type"), f"{what}; known types: {', '.join(NODE_TYPES)}")
        return broken, whole_file

    def collect_variables(self) -> None:
        """Every variable the flow declares or assigns (read-only ones are errors)."""
        declared = self.data.get("variables")
        for name in declared if isinstance(declared, dict) else ():
            self.assignable(("variables", name), name)
        for node_id, raw in self.raw_nodes().items():
            if not isinstance(raw, dict):
                continue
            base = ("nodes", node_id)
            if raw.get("type") == "collect" and isinstance(raw.get("into"), str):
                self.assignable(base + ("into",), raw["into"])
            for field in ("set", "vars"):
                if isinstance(raw.get(field), dict) and raw.get("type") in ("lookup", "set"):
                    for name in raw[field]:
                        self.assignable(base + (field, name), name, key=True)

    def assignable(self, path: tuple, name: str, *, key: bool = False) -> None:
        if name in READ_ONLY_VARIABLES:
            self.error(path, f"variable {name!r} is read-only", key=key)
        self.known_vars.add(name)

    def currency(self, nodes: dict[str, Node]) -> Currency:
        """The amount prompts; checked when the flow says an amount."""
        raw = self.data.get("currency") if isinstance(self.data.get("currency"), dict) else {}
        currency = Currency(raw.get("unit_prompt", Currency.unit_prompt), raw.get("cents_prompt", Currency.cents_prompt))
        says_amounts = any(item.kind == "currency" for node in nodes.values() for item in getattr(node, "items", ()))
        if says_amounts:
            self.prompt(("currency", "unit_prompt"), currency.unit_prompt)
            self.prompt(("currency", "cents_prompt"), currency.cents_prompt)
        return currency

    # -- pieces ---------------------------------------------------------------------

    def prompt(self, path: tuple, name: str) -> str:
        known = self.env.prompts
        if known is not None and name not in known:
            self.error(path, f"missing prompt file {name!r}: not in {self.env.prompts_file}{suggest(name, known)}")
        return name

    def prompts(self, path: tuple, value: Any) -> tuple[str, ...]:
        if isinstance(value, list):
            return tuple(self.prompt(path + (i,), p) for i, p in enumerate(value))
        return (self.prompt(path, value),)

    def expr(self, path: tuple, source: Any) -> Expression | None:
        text = source if isinstance(source, str) else str(source).lower() if isinstance(source, bool) else str(source)
        offset = self.doc.value_column_offset(path)
        try:
            expression = parse(text)
        except ExprSyntaxError as exc:
            self.error(path, f"expression syntax: {exc.message}", column_offset=offset + exc.column - 1)
            return None
        for name, column in expression.names:
            if name not in self.known_vars:
                self.error(path, f"unknown variable {name!r}{suggest(name, self.known_vars)}",
                           column_offset=offset + column - 1)
        for call in expression.calls:
            self.check_call(path, call, offset)
        return expression

    def check_call(self, path: tuple, call: Any, offset: int) -> None:
        arg = call.args[0]
        if call.name == "open" and self.env.calendars is not None and arg not in self.env.calendars:
            self.error(path, f"unknown calendar {arg!r} in open(){suggest(arg, self.env.calendars)}; "
                             f"calendars are defined in {self.env.routes_file}", column_offset=offset + call.column - 1)
        if call.name == "waiting" and not _queue_name(arg):
            self.error(path, f"waiting(): {arg!r} is not a queue name", column_offset=offset + call.column - 1)

    def edge(self, edges: list[Edge], label: str, path: tuple, target: str | None) -> str:
        if target:
            edges.append(Edge(label, target, self.pos(path)))
            if target not in self.node_ids:
                self.error(path, f"dangling {label}: no node {target!r} in this flow{suggest(target, self.node_ids)}")
        return target or ""

    def flow_ref(self, path: tuple, name: str) -> str:
        flows = self.env.flows
        if flows is not None and name not in flows:
            self.error(path, f"unknown flow {name!r}{suggest(name, flows)}")
        return name

    # -- nodes --------------------------------------------------------------------------

    def node(self, node_id: str, raw: dict) -> Node:
        """The node; after an error its expression fields may be None (the
        flow is then not returned, but the graph is still checked)."""
        base = ("nodes", node_id)
        edges: list[Edge] = []
        kind = raw["type"]
        fields = getattr(self, "node_" + kind)(base, raw, edges)
        return NODE_CLASSES[kind](id=node_id, pos=self.pos(base, key=True), edges=tuple(edges), **fields)

    def node_play(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        items: list[Say] = []
        if "prompt" in raw:
            items.append(Say("prompt", prompt=self.prompt(base + ("prompt",), raw["prompt"])))
        for index, item in enumerate(raw.get("say", [])):
            (kind, value), = item.items()
            path = base + ("say", index, kind)
            if kind == "prompt":
                items.append(Say("prompt", prompt=self.prompt(path, value)))
            else:
                items.append(Say(kind, expr=self.expr(path, value)))
        return {"items": tuple(items), "next": self.edge(edges, "next", base + ("next",), raw["next"])}

    def _retries(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        fields = {"timeout_ms": int(raw.get("timeout", 5)) * 1000, "max_tries": raw.get("max_tries", 3),
                  "fallback": self.edge(edges, "fallback", base + ("fallback",), raw.get("fallback"))}
        for name in ("invalid_prompt", "timeout_prompt"):
            fields[name] = self.prompt(base + (name,), raw[name]) if name in raw else ""
        return fields

    def _lengths(self, base: tuple, raw: dict, low: int, high: int) -> tuple[int, int]:
        low, high = raw.get("min_length", low), raw.get("max_length", high)
        if low > high:
            self.error(base + ("min_length",), f"min_length {low} is more than max_length {high}")
        return low, high

    def node_menu(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        choices = []
        for key, target in raw["choices"].items():
            path = base + ("choices", key)
            if key == "#":
                self.error(path, "bad digit key '#': # ends input in Asterisk's GET DATA; use 0-9 or *", key=True)
            elif len(key) != 1 or key not in MENU_KEYS:
                self.error(path, f"bad digit key {key!r}: a menu choice is one key, 0-9 or *", key=True)
            choices.append((key, self.edge(edges, f"choice {key}", path, target)))
        fields = self._retries(base, raw, edges)
        return {"prompts": self.prompts(base + ("prompt",), raw["prompt"]), "choices": tuple(choices), **fields}

    def node_collect(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        low, high = self._lengths(base, raw, 1, 20)
        validate = self.expr(base + ("validate",), raw["validate"]) if "validate" in raw else None
        fields = self._retries(base, raw, edges)
        return {"prompts": self.prompts(base + ("prompt",), raw["prompt"]), "into": raw["into"],
                "min_length": low, "max_length": high, "terminator": raw.get("terminator", "#"),
                "allow_star": raw.get("allow_star", False), "mask": raw.get("mask", False), "validate": validate,
                "next": self.edge(edges, "next", base + ("next",), raw["next"]), **fields}

    def node_verify(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        low, high = self._lengths(base, raw, 4, 4)
        fields = self._retries(base, raw, edges)
        locked_prompt = self.prompt(base + ("locked_prompt",), raw["locked_prompt"]) if "locked_prompt" in raw else ""
        return {"prompts": self.prompts(base + ("prompt",), raw["prompt"]), "min_length": low, "max_length": high,
                "locked_prompt": locked_prompt, "next": self.edge(edges, "next", base + ("next",), raw["next"]),
                "locked": self.edge(edges, "locked", base + ("locked",), raw.get("locked")), **fields}

    def node_lookup(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        key = self.expr(base + ("key",), raw["key"]) if "key" in raw else None
        if raw["by"] == "account" and "key" not in raw:
            self.error(base, "missing field 'key': a lookup by account needs the number to look up")
        return {"by": raw["by"], "key": key, "assign": tuple((raw.get("set") or {}).items()),
                "found": self.edge(edges, "found", base + ("found",), raw["found"]),
                "not_found": self.edge(edges, "not_found", base + ("not_found",), raw["not_found"])}

    def node_condition(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        branches = []
        for index, branch in enumerate(raw["branches"]):
            path = base + ("branches", index)
            expr = self.expr(path + ("if",), branch["if"])
            branches.append((expr, self.edge(edges, f"branch {index + 1}", path + ("next",), branch["next"])))
        return {"branches": tuple(branches), "otherwise": self.edge(edges, "else", base + ("else",), raw["else"])}

    def node_set(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        assign = []
        for name, source in (raw.get("vars") or {}).items():
            assign.append((name, self.expr(base + ("vars", name), source)))
        skills = tuple(raw["skills"]) if "skills" in raw else None
        return {"queue": raw.get("queue"), "skills": skills, "priority": raw.get("priority"),
                "language": raw.get("language"), "assign": tuple(assign),
                "next": self.edge(edges, "next", base + ("next",), raw["next"])}

    def node_queue(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        skills = tuple(raw["skills"]) if "skills" in raw else None
        return {"queue": raw.get("queue"), "skills": skills, "priority": raw.get("priority")}

    def node_transfer(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        target, allow = raw["to"], self.env.transfer_allow
        if allow is not None and not dialpatterns.allowed(allow, target):
            listed = ", ".join(allow) or "nothing"
            self.error(base + ("to",), f"transfer target {target!r} is not allow-listed in "
                                       f"{self.env.routes_file} (transfers.allow: {listed})")
        return {"target": target}

    def node_voicemail(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {"mailbox": raw["mailbox"]}

    def node_callback(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {"number": self.expr(base + ("number",), raw.get("number", "ani")), "queue": raw.get("queue"),
                "next": self.edge(edges, "next", base + ("next",), raw["next"]),
                "failed": self.edge(edges, "failed", base + ("failed",), raw.get("failed"))}

    def node_ticket(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {"category": raw["category"], "summary": raw.get("summary", ""),
                "next": self.edge(edges, "next", base + ("next",), raw["next"])}

    def node_hangup(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {}

    def node_goto(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        if "flow" in raw:
            return {"flow": self.flow_ref(base + ("flow",), raw["flow"])}
        return {"node": self.edge(edges, "goto", base + ("node",), raw["node"])}

    def node_subflow(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {"flow": self.flow_ref(base + ("flow",), raw["flow"]),
                "next": self.edge(edges, "next", base + ("next",), raw["next"])}

    def node_return(self, base: tuple, raw: dict, edges: list[Edge]) -> dict:
        return {}


def _queue_name(name: Any) -> bool:
    return isinstance(name, str) and name.isascii() and 0 < len(name) <= 64 \
        and all(c.isalnum() or c in "_-" for c in name)
