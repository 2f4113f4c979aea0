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
    """Every call blocks on the file system: the daemon runs them on a thread, never on its reactor."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise HistoryError(f"{name!r} is not a flow name")
        return self.root / name

    def _files(self, name: str) -> list[tuple[int, Path]]:
        """(number, path) of every stored version, oldest first, from the names alone."""
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            match = _VERSION_FILE.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    @staticmethod
    def _version(name: str, number: int, path: Path, text: str | None = None) -> Version:
        stat = path.stat()
        text = path.read_text(encoding="utf-8") if text is None else text
        return Version(name, number, path, digest(text), datetime.fromtimestamp(stat.st_mtime, timezone.utc))

    def versions(self, name: str) -> list[Version]:
        """Every stored version (each file is read and hashed)."""
        return [self._version(name, number, path) for number, path in self._files(name)]

    def latest(self, name: str) -> Version | None:
        """The newest stored version; only that file is read."""
        files = self._files(name)
        return self._version(name, *files[-1]) if files else None

    def get(self, name: str, number: int) -> Version:
        for found, path in self._files(name):
            if found == number:
                return self._version(name, number, path)
        raise HistoryError(f"flow {name!r} has no version {number}")

    def record(self, name: str, text: str) -> Version:
        """Store ``text`` as the next version, unless the latest one holds it already.

        Reads one stored file (the latest), however long the history is."""
        latest = self.latest(name)
        if latest is not None and latest.digest == digest(text):
            return latest
        folder = self._dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        number = latest.number + 1 if latest is not None else 1
        while True:
            path = folder / f"{number:04d}.yaml"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                number += 1
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            return self._version(name, number, path, text)
