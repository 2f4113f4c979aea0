"""The versioned, hot-swappable set of flows the daemon answers calls with.

``reload()`` loads and validates every file first; only a set without a
single error replaces the current one, in one assignment, so a call sees
either the old set or the new one, never a mix.  A call keeps the
:class:`~ivr_flows.flowset.FlowSet` it started with (its CallState holds
the Flow objects), so it finishes on its version.  An invalid edit is
refused: the errors come back and the old set keeps answering calls.

Each loaded flow text is stored in the history (:mod:`ivr_flows.history`);
``rollback`` puts an older version back into the flow file (after
validating it with the other files as they are) and records it as a new
version.

``reload()`` is two steps the daemon runs on different threads:
``prepare()`` does all the file work (reading, validating, recording the
history) and blocks, so it runs on a worker thread; ``commit()`` does no
I/O and makes the swap, on the reactor thread, where calls read
``current``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr_flows.flowset import PROMPTS_FILE, ROUTES_FILE, FlowSet, flow_files, load_flowset
from ivr_flows.history import FlowHistory, HistoryError, Version, digest
from ivr_flows.model import FlowError

logger = logging.getLogger(__name__)

HISTORY_DIR = ".history"


class NoFlows(RuntimeError):
    """No valid flow set has been loaded yet."""


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    errors: tuple[FlowError, ...] = ()
    changed: tuple[str, ...] = ()
    versions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RollbackResult:
    ok: bool
    message: str
    errors: tuple[FlowError, ...] = ()
    restored: Version | None = None
    recorded: Version | None = None


@dataclass(frozen=True)
class Prepared:
    """A loaded and validated flow set (with its history versions), not yet swapped in."""

    flow_set: FlowSet | None
    errors: tuple[FlowError, ...] = ()


class FlowRegistry:
    def __init__(self, flows_dir: str | Path, routes_path: str | Path | None = None,
                 history_dir: str | Path | None = None) -> None:
        self.flows_dir = Path(flows_dir)
        self.routes_path = Path(routes_path) if routes_path else self.flows_dir / ROUTES_FILE
        self.history = FlowHistory(history_dir or self.flows_dir / HISTORY_DIR)
        self._current: FlowSet | None = None

    @property
    def current(self) -> FlowSet:
        if self._current is None:
            raise NoFlows(f"no valid flows loaded from {self.flows_dir}")
        return self._current

    def current_versions(self) -> dict[str, int]:
        """Flow name -> version of the set answering calls ({} before the first load)."""
        return self._versions(self._current)

    def snapshot(self) -> FlowSet:
        """The flow set a new call starts with (the IVR handler's ``flows``)."""
        return self.current

    def watched_files(self) -> list[Path]:
        return flow_files(self.flows_dir) + [self.routes_path, self.flows_dir / PROMPTS_FILE]

    def fingerprint(self) -> tuple:
        """Changes when any watched file is added, removed or written."""
        marks = []
        for path in self.watched_files():
            try:
                stat = path.stat()
            except OSError:
                marks.append((str(path), None))
            else:
                marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(marks)

    def reload(self) -> ReloadResult:
        """Validate everything, then swap in the new set or keep the old one (blocks: see the module)."""
        return self.commit(self.prepare())

    def prepare(self) -> Prepared:
        """Load and validate every file and record each flow's version.  Blocks on the files."""
        flow_set, errors = load_flowset(self.flows_dir, self.routes_path)
        if flow_set is None:
            return Prepared(None, tuple(errors))
        flows = {}
        for name, flow in flow_set.flows.items():
            try:
                version = self.history.record(name, flow_set.texts[name]).number
            except (OSError, HistoryError) as exc:
                logger.error("flow %s: could not store its version in %s: %s", name, self.history.root, exc)
                version = 0
            flows[name] = dataclasses.replace(flow, version=version)
        return Prepared(dataclasses.replace(flow_set, flows=flows))

    def commit(self, prepared: Prepared) -> ReloadResult:
        """Swap in a prepared set, or keep the current one when it has errors.  No I/O."""
        old = self._current
        new = prepared.flow_set
        if new is None:
            return ReloadResult(False, prepared.errors, (), self._versions(old))
        changed = tuple(sorted(n for n, f in new.flows.items()
                               if old is None or n not in old.flows or old.flows[n].digest != f.digest))
        self._current = new  # the swap: one assignment
        return ReloadResult(True, (), changed, self._versions(new))

    @staticmethod
    def _versions(flow_set: FlowSet | None) -> dict[str, int]:
        return {n: f.version for n, f in flow_set.flows.items()} if flow_set else {}

    def rollback(self, name: str, number: int | None = None) -> RollbackResult:
        return rollback(self.flows_dir, self.routes_path, self.history, name, number)


def rollback(flows_dir: Path, routes_path: Path, history: FlowHistory, name: str,
             number: int | None = None) -> RollbackResult:
    """Write version ``number`` (default: the one before the file's) back to ``NAME.yaml``."""
    try:
        versions = history.versions(name)
    except HistoryError as exc:
        return RollbackResult(False, str(exc))
    if not versions:
        return RollbackResult(False, f"flow {name!r} has no stored versions")
    path = flows_dir / f"{name}.yaml"
    current = digest(path.read_text(encoding="utf-8")) if path.exists() else ""
    if number is None:
        index = max((i for i, v in enumerate(versions) if v.digest == current), default=None)
        if index == 0:
            return RollbackResult(False, f"flow {name!r} is at version {versions[0].number}, its first")
        target = versions[-1] if index is None else versions[index - 1]
    else:
        matching = [v for v in versions if v.number == number]
        if not matching:
            return RollbackResult(False, f"flow {name!r} has no version {number} "
                                         f"(versions {versions[0].number}-{versions[-1].number})")
        target = matching[0]
    if target.digest == current:
        return RollbackResult(True, f"flow {name!r} already holds version {target.number}", restored=target,
                              recorded=target)
    text = target.text()
    _, errors = load_flowset(flows_dir, routes_path, overrides={name: (str(path), text)})
    if errors:
        return RollbackResult(False, f"version {target.number} of {name!r} is not valid with the current files",
                              tuple(errors), target)
    temporary = flows_dir / f".{name}.yaml.rollback"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    recorded = history.record(name, text)
    return RollbackResult(True, f"flow {name!r} rolled back to version {target.number} "
                                f"(stored as version {recorded.number})", (), target, recorded)
