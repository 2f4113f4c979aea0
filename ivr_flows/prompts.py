"""The prompt manifest (``prompts.yaml``) and what the flows ask of it.

The manifest maps groups to prompts.  A group is either

* a list of names: files someone else provides (``core:`` the Asterisk core
  sounds; a list of ``custom/...`` names is the older format, recordings
  without texts), or
* a mapping of our own prompts, each under ``custom/``, to its text per
  language::

      custom:
        custom/cc-welcome: {en: Welcome to the hotline., zh: 欢迎致电客服热线。}
        custom/cc-language-menu:
          en: ["For English, press 1.", {zh: 中文服务请按 2。}]

  A text is a string, or a list of parts: plain text said in the text's
  language, or ``{LANGUAGE: text}`` said with that language's voice.
  ``callcenter prompts build`` renders these (:mod:`ivr_flows.prompt_render`).

Flows may name every listed prompt.  A prompt with texts needs one in every
language the flows offer (:func:`offered_languages`, :func:`check_texts`).

No I/O here: text in, a :class:`PromptManifest` and errors at
file:line:column out.  :func:`prompt_uses` finds where a flow plays each
prompt, for ``flows validate --sounds-dir``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ivr_flows.model import Flow, FlowError, Position, SetNode
from ivr_flows.schemacheck import schema_problems
from ivr_flows.yamlpos import Document, load

CORE_GROUP = "core"
CUSTOM_DIR = "custom"
SCHEMA = "prompts.schema.json"


@dataclass(frozen=True)
class Part:
    """Words said with the voice of ``language``."""

    language: str
    text: str


@dataclass(frozen=True)
class RenderedPrompt:
    """One of our prompts: its name (``custom/cc-welcome``) and its parts per language."""

    name: str
    pos: Position
    texts: Mapping[str, tuple[Part, ...]]

    @property
    def file_name(self) -> str:
        """The name below ``custom/`` (``cc-welcome``, ``billing/cc-x``)."""
        return self.name.split("/", 1)[1]


@dataclass(frozen=True)
class PromptManifest:
    file: str
    names: frozenset[str]
    rendered: Mapping[str, RenderedPrompt]

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language some prompt has a text in."""
        return tuple(sorted({lang for prompt in self.rendered.values() for lang in prompt.texts}))


def parse_manifest(text: str, file: str) -> tuple[PromptManifest | None, list[FlowError]]:
    doc, problems = load(text, file)
    errors = [FlowError(file, p.line, p.column, p.message) for p in problems]
    if doc is None:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, errors + [FlowError(file, 1, 1, "the prompt manifest maps groups to lists of prompt names, "
                                                     "or to custom prompts with their texts")]
    errors += [error for _, error in schema_problems(doc, SCHEMA)]
    if errors:
        return None, sorted(set(errors))
    names: set[str] = set()
    rendered: dict[str, RenderedPrompt] = {}
    for group, entries in doc.data.items():
        names.update(entries)
        if isinstance(entries, dict):
            for name, texts in entries.items():
                prompt = _rendered(doc, group, name, texts, rendered, errors)
                if prompt is not None:
                    rendered[name] = prompt
    if errors:
        return None, sorted(set(errors))
    return PromptManifest(file, frozenset(names), rendered), []


def _rendered(doc: Document, group: str, name: str, texts: dict, seen: Mapping[str, RenderedPrompt],
              errors: list[FlowError]) -> RenderedPrompt | None:
    line, column = doc.where((group, name), key=True)
    pos = Position(doc.file, line, column)
    path = PurePosixPath(name)
    if path.parts[:1] != (CUSTOM_DIR,) or len(path.parts) < 2 or str(path) != name:
        errors.append(FlowError.at(pos, f"prompt {name!r} has texts, so callcenter renders it into "
                                        f"{CUSTOM_DIR}/: name it '{CUSTOM_DIR}/{name.strip('/').split('/')[-1]}'"))
        return None
    if name in seen:
        first = seen[name].pos
        errors.append(FlowError.at(pos, f"prompt {name!r} already has texts at line {first.line}"))
        return None
    parts: dict[str, tuple[Part, ...]] = {}
    for language, value in texts.items():
        items = value if isinstance(value, list) else [value]
        said = []
        for index, item in enumerate(items):
            where = (group, name, language) + ((index,) if isinstance(value, list) else ())
            voice, words = next(iter(item.items())) if isinstance(item, dict) else (language, item)
            if isinstance(item, dict):
                where += (voice,)
            if not words.strip():
                line, column = doc.where(where)
                errors.append(FlowError(doc.file, line, column, f"empty text: say what {name!r} says in {language}"))
            said.append(Part(voice, " ".join(words.split())))
        parts[language] = tuple(said)
    return RenderedPrompt(name, pos, parts)


# -- what the flows ask of it --------------------------------------------------------

def offered_languages(flows: Iterable[Flow]) -> dict[str, tuple[str, ...]]:
    """Language -> the flow files that offer it: a flow's ``language``, a set
    node's ``language``, or a text literal assigned to ``language`` in a set
    node's ``vars``.  (A language taken from an expression, such as
    ``customer.language``, is not known here.)"""
    found: dict[str, set[str]] = {}
    for flow in flows:
        found.setdefault(flow.language, set()).add(flow.file)
        for node in flow.nodes.values():
            if not isinstance(node, SetNode):
                continue
            if node.language:
                found.setdefault(node.language, set()).add(flow.file)
            for name, expr in node.assign:
                tree = expr.tree if expr is not None else ()
                if name == "language" and tree[:1] == ("lit",) and isinstance(tree[1], str):
                    found.setdefault(tree[1], set()).add(flow.file)
    return {language: tuple(sorted(files)) for language, files in sorted(found.items())}


def check_texts(manifest: PromptManifest, offered: Mapping[str, tuple[str, ...]]) -> list[FlowError]:
    """Every prompt with texts has one in each offered language."""
    errors = []
    every = ", ".join(offered)
    for prompt in manifest.rendered.values():
        for language, files in offered.items():
            if language not in prompt.texts:
                where = ", ".join(PurePosixPath(f).name for f in files)
                errors.append(FlowError.at(prompt.pos, f"prompt {prompt.name!r} has no {language} text: {where} "
                                                       f"offer{'s' if len(files) == 1 else ''} {language} (a "
                                                       f"custom prompt needs a text in every language the flows "
                                                       f"offer: {every})"))
    return errors


@dataclass(frozen=True, order=True)
class PromptUse:
    """Prompt ``name`` is played at ``pos``."""

    pos: Position
    name: str


PROMPT_FIELDS = ("prompt", "invalid_prompt", "timeout_prompt", "locked_prompt")


def prompt_uses(flow: Flow, text: str) -> list[PromptUse]:
    """Every place the flow (valid, loaded from ``text``) plays a prompt file."""
    doc, _ = load(text, flow.file)
    if doc is None or not isinstance(doc.data, dict):
        return []
    uses: list[PromptUse] = []

    def use(path: tuple, name: Any) -> None:
        if isinstance(name, str):
            line, column = doc.where(path)
            uses.append(PromptUse(Position(flow.file, line, column), name))

    amounts: list[tuple] = []
    for node_id, raw in (doc.data.get("nodes") or {}).items():
        if node_id not in flow.nodes or not isinstance(raw, dict):
            continue
        base = ("nodes", node_id)
        for field in PROMPT_FIELDS:
            value = raw.get(field)
            for index, name in enumerate(value) if isinstance(value, list) else [(None, value)]:
                use(base + (field,) + (() if index is None else (index,)), name)
        for index, item in enumerate(raw.get("say") or []):
            if isinstance(item, dict):
                use(base + ("say", index, "prompt"), item.get("prompt"))
                if "currency" in item:
                    amounts.append(base + ("say", index, "currency"))
    if amounts:
        declared = doc.data.get("currency") if isinstance(doc.data.get("currency"), dict) else {}
        for field, name in (("unit_prompt", flow.currency.unit_prompt), ("cents_prompt", flow.currency.cents_prompt)):
            use(("currency", field) if field in declared else amounts[0], name)
    return sorted(uses)
