"""YAML text to plain data, remembering where every key and value was written.

PyYAML's composed node tree carries start marks; we build the plain data from
it ourselves, so that:

* every key and value has a 1-based (line, column) by its path
  (``("nodes", "main", "next")``);
* duplicate keys are errors, not silently overwritten;
* mapping keys are text (``1: billing`` gives the key ``"1"``);
* dates and times stay text (YAML 1.1 would turn ``2026-01-01`` into a date
  and ``20:00`` into 1200);
* documents are bounded (size, depth, node count: aliases cannot explode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_NODES = 50_000
MAX_DEPTH = 30

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamps and without base-60 numbers."""


_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_REPLACED = {"tag:yaml.org,2002:int": _INT, "tag:yaml.org,2002:float": _FLOAT}


def _resolvers() -> dict:
    table = {}
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        table[first] = [(tag, _REPLACED.get(tag, regexp)) for tag, regexp in resolvers
                        if tag != "tag:yaml.org,2002:timestamp"]
    return table


_Loader.yaml_implicit_resolvers = _resolvers()


@dataclass
class Document:
    """Plain data plus the positions of its parts."""

    data: Any
    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path, str | None] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (or of its key), else of the
        nearest enclosing part that has one."""
        path = tuple(path)
        while path:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            key = False
            path = path[:-1]
        return self.values.get((), (1, 1))

    def value_column_offset(self, path: Path) -> int:
        """Columns between the value's mark and its first character (1 for quoted)."""
        return 1 if self.styles.get(tuple(path)) in ('"', "'") else 0


class YamlProblem(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def load(text: str, file: str) -> tuple[Document | None, list[YamlProblem]]:
    """Parse one YAML document; a syntax error is returned, not raised."""
    if len(text.encode("utf-8", "surrogateescape")) > MAX_BYTES:
        return None, [YamlProblem(f"file larger than {MAX_BYTES} bytes", 1, 1)]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [YamlProblem(f"YAML syntax: {reason}", line, column)]
    except yaml.YAMLError as exc:
        return None, [YamlProblem(f"YAML syntax: {exc}", 1, 1)]
    finally:
        loader.dispose()
    doc = Document(None, file)
    problems: list[YamlProblem] = []
    if node is None:
        return doc, problems
    builder = _Builder(loader, doc, problems)
    try:
        doc.data = builder.build(node, (), 0)
    except YamlProblem as exc:
        return None, [exc]
    return doc, problems


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: Document, problems: list[YamlProblem]) -> None:
        self.loader, self.doc, self.problems = loader, doc, problems
        self.count = 0

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise YamlProblem("document too large or nested too deeply", node.start_mark.line + 1,
                              node.start_mark.column + 1)
        self.doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar_key(key_node)
                child = path + (key,)
                where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    self.problems.append(YamlProblem(f"duplicate key {key!r}", *where))
                    continue
                self.doc.keys[child] = where
                result[key] = self.build(value_node, child, depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,), depth + 1) for index, item in enumerate(node.value)]
        self.doc.styles[path] = node.style
        return self.loader.construct_object(node)

    def scalar_key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlProblem("a key must be plain text", node.start_mark.line + 1, node.start_mark.column + 1)
        value = self.loader.construct_object(node)
        return "" if value is None else str(value)
