"""Versions of each flow file, kept next to the flows.

``flows_dir/.history/NAME/0001.yaml``, ``0002.yaml``...: the exact text of
every version that was loaded (or rolled back to).  Append-only: a rollback
stores the old text again as a new version.  Two writers (the daemon and the
CLI) cannot take the same number: each file is created with ``O_EXCL``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_VERSION_FILE = re.compile(r"([0-9]{4,})\.yaml")


class HistoryError(ValueError):
    pass


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Version:
    name: str
    number: int
    path: Path
    digest: str
    saved_at: datetime

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


class FlowHistory:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise HistoryError(f"{name!r} is not a flow name")
        return self.root / name

    def versions(self, name: str) -> list[Version]:
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            match = _VERSION_FILE.fullmatch(path.name)
            if match:
                stat = path.stat()
                found.append(Version(name, int(match.group(1)), path, digest(path.read_text(encoding="utf-8")),
                                     datetime.fromtimestamp(stat.st_mtime, timezone.utc)))
        return sorted(found, key=lambda v: v.number)

    def get(self, name: str, number: int) -> Version:
        for version in self.versions(name):
            if version.number == number:
                return version
        raise HistoryError(f"flow {name!r} has no version {number}")

    def record(self, name: str, text: str) -> Version:
        """Store ``text`` as the next version, unless the latest one holds it already."""
        versions = self.versions(name)
        if versions and versions[-1].digest == digest(text):
            return versions[-1]
        folder = self._dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        number = versions[-1].number + 1 if versions else 1
        while True:
            path = folder / f"{number:04d}.yaml"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                number += 1
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            return self.get(name, number)
