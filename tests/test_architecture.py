"""The domain stays pure: acd/ and the IVR engine import no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"twisted", "asyncio", "redis", "websockets", "panoramisk", "sqlalchemy", "socket",
             "threading", "subprocess", "callcenter", "crm_core", "agent_desktop", "time", "requests"}
#: The IVR package's I/O-facing modules (loading files, watching them) are not the engine.
PURE = [ROOT / "acd", ROOT / "ivr_flows" / "engine.py", ROOT / "ivr_flows" / "model.py",
        ROOT / "ivr_flows" / "expressions.py"]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_modules_import_no_io():
    """No module of the pure domain imports an I/O library or the daemon."""
    files = []
    for target in PURE:
        files += sorted(target.rglob("*.py")) if target.is_dir() else ([target] if target.exists() else [])
    assert files, "the pure domain has no modules to check"
    offenders = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}
