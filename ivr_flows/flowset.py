"""A directory of flow files, loaded and cross-checked as one set.

``flows_dir`` holds one ``NAME.yaml`` per flow, plus:

* ``routes.yaml`` - DNIS -> flow, calendars (or the file ``routes_path`` names);
* ``prompts.yaml`` - the prompt files available on the Asterisk box, and
  the texts of our own prompts (:mod:`ivr_flows.prompts`);
* ``NAME.tests.yaml`` - test cases of flow NAME (run by ``flows validate``).

Files whose name starts with ``.`` or ``_`` are ignored.  A :class:`FlowSet`
exists only when every file is valid; otherwise every error of every file
comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr_flows.loader import LoadEnv, load_flow_text
from ivr_flows.model import Flow, FlowError
from ivr_flows.prompts import PromptManifest, check_texts, offered_languages, parse_manifest
from ivr_flows.routes import Routes, load_routes
from ivr_flows.schemacheck import suggest
from ivr_flows.state import CallContext

ROUTES_FILE = "routes.yaml"
PROMPTS_FILE = "prompts.yaml"
TESTS_SUFFIX = ".tests.yaml"


def is_flow_file(path: Path) -> bool:
    name = path.name
    return (name.endswith(".yaml") and not name.endswith(TESTS_SUFFIX) and name not in (ROUTES_FILE, PROMPTS_FILE)
            and not name.startswith((".", "_")))


def flow_files(flows_dir: Path) -> list[Path]:
    return sorted(p for p in flows_dir.glob("*.yaml") if p.is_file() and is_flow_file(p))


@dataclass(frozen=True)
class FlowSet:
    """Valid flows, routes and prompts: what a call starts with."""

    flows: Mapping[str, Flow]
    routes: Routes
    prompts: frozenset[str]
    flows_dir: str
    texts: Mapping[str, str] = field(default_factory=dict, repr=False)

    def context(self, call_id: str, ani: str, dnis: str, *, trusted_callerid: bool = False) -> CallContext:
        return CallContext(call_id, ani, dnis, self.flows, self.routes.calendars, self.routes.transfer_allow,
                           trusted_callerid)


def load_manifest(path: Path) -> tuple[PromptManifest | None, list[FlowError]]:
    """The prompt manifest at ``path`` (see :mod:`ivr_flows.prompts`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(str(path), 1, 1, f"cannot read the prompt manifest: {exc}")]
    return parse_manifest(text, str(path))


def load_prompts(path: Path) -> tuple[frozenset[str] | None, list[FlowError]]:
    """The prompt names the manifest at ``path`` lists."""
    manifest, errors = load_manifest(path)
    return (manifest.names if manifest else None), errors


def load_flowset(flows_dir: str | Path, routes_path: str | Path | None = None, *,
                 prompts_path: str | Path | None = None,
                 overrides: Mapping[str, tuple[str, str]] | None = None) -> tuple[FlowSet | None, list[FlowError]]:
    """Load every file of ``flows_dir``.  ``overrides`` maps a flow name to
    ``(file name, text)`` used instead of its file: a candidate edit or a
    rollback, checked together with the other files before it is written."""
    flows_dir = Path(flows_dir)
    routes_path = Path(routes_path) if routes_path else flows_dir / ROUTES_FILE
    prompts_path = Path(prompts_path) if prompts_path else flows_dir / PROMPTS_FILE
    overrides = dict(overrides or {})
    errors: list[FlowError] = []
    manifest, problems = load_manifest(prompts_path)
    errors += problems
    prompts = manifest.names if manifest else None
    routes, problems = load_routes(routes_path)
    errors += problems
    texts: dict[str, tuple[str, str]] = {}
    for path in flow_files(flows_dir):
        if path.stem in overrides:
            continue
        try:
            texts[path.stem] = (str(path), path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(FlowError(str(path), 1, 1, f"cannot read the flow file: {exc}"))
    texts.update(overrides)
    env = LoadEnv(
        prompts=prompts, calendars=frozenset(routes.calendars) if routes else None,
        flows=frozenset(texts), transfer_allow=routes.transfer_allow if routes else None,
        prompts_file=str(prompts_path), routes_file=str(routes_path),
    )
    flows: dict[str, Flow] = {}
    for name, (file, text) in texts.items():
        flow, problems = load_flow_text(text, file, name, env)
        errors += problems
        if flow is not None:
            flows[name] = flow
    if manifest is not None:
        errors += check_texts(manifest, offered_languages(flows.values()))
    if routes is not None:
        for name, pos in routes.flow_refs:
            if name not in texts:
                errors.append(FlowError.at(pos, f"unknown flow {name!r}: no {name}.yaml in {flows_dir}"
                                                f"{suggest(name, texts)}"))
    errors = sorted(set(errors))
    if errors or routes is None or prompts is None:
        return None, errors
    return FlowSet(flows, routes, prompts, str(flows_dir), {n: t for n, (_, t) in texts.items()}), []
