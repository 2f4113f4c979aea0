"""The IVR engine stays pure all the way down: every ivr_flows module the engine
imports, directly or not, imports no I/O library and nothing of the daemon."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"twisted", "asyncio", "redis", "websockets", "panoramisk", "sqlalchemy", "socket", "threading",
             "subprocess", "callcenter", "crm_core", "agent_desktop", "time", "requests", "os", "pathlib",
             "yaml", "jsonschema", "click", "zoneinfo", "shutil"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "ivr_flows":  # from ivr_flows import commands
                names |= {f"ivr_flows.{alias.name}" for alias in node.names}
    return names


def closure(module: str) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = imports(ROOT / (name.replace(".", "/") + ".py"))
        todo += [m for m in seen[name] if m.startswith("ivr_flows.")]
    seen.pop("ivr_flows", None)
    return seen


def test_the_engine_and_everything_it_imports_are_pure():
    """engine -> model, state, commands, expressions, calendars, dialpatterns: no I/O anywhere."""
    found = closure("ivr_flows.engine")
    assert set(found) == {"ivr_flows.engine", "ivr_flows.model", "ivr_flows.state", "ivr_flows.commands",
                          "ivr_flows.expressions", "ivr_flows.calendars", "ivr_flows.dialpatterns"}
    offenders = {m: sorted(n for n in names if n.split(".")[0] in FORBIDDEN) for m, names in found.items()}
    assert {m: n for m, n in offenders.items() if n} == {}


def test_the_ivr_flows_package_never_imports_the_daemon():
    """Only callcenter/ivr knows both sides; ivr_flows never imports callcenter or twisted."""
    for path in sorted((ROOT / "ivr_flows").glob("*.py")):
        roots = {name.split(".")[0] for name in imports(path)}
        assert not roots & {"callcenter", "twisted", "crm_core"}, path.name
