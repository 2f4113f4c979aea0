"""The local durable journal contact records are written to before the CRM.

A SQLite file in WAL mode with ``synchronous=FULL``: when ``append``
returns, the records are on disk (the WAL is fsynced at each commit) and
survive a crash of the process or of the machine.  Entries leave the
journal only after the CRM database has committed them (``remove``).  An
entry the CRM refuses for what it contains (not for being down) is kept,
marked ``rejected`` with the reason, until an operator requeues it.

Sequence numbers come from AUTOINCREMENT, so they grow and are never
reused: entries are flushed in the order they were written.

Blocking; the writer calls it from one dedicated thread only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    linkedid TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    written_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_state_seq ON entries (state, seq);
"""


class JournalError(RuntimeError):
    """The journal file cannot be used (unreadable, not a journal, newer format)."""


@dataclass(frozen=True)
class Entry:
    seq: int
    linkedid: str
    payload: str
    attempts: int = 0
    error: str | None = None
    written_at: str = ""


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"journal {self.path} is not open")
        return self._db

    def open(self) -> int:
        """Open (creating if needed) and return how many entries wait to be flushed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            self._prepare(db)
        except BaseException as exc:
            db.close()
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
            raise
        self._db = db
        return self.counts()["pending"]

    def _prepare(self, db: sqlite3.Connection) -> None:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise JournalError(f"journal {self.path}: cannot use WAL mode (got {mode})")
        db.execute("PRAGMA synchronous=FULL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables - {"entries", "sqlite_sequence"}:
            raise JournalError(f"{self.path} is a database with other tables, not a contact journal")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > FORMAT_VERSION:
            raise JournalError(f"journal {self.path} has format {version}; this version reads {FORMAT_VERSION}")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={FORMAT_VERSION}")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def append(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """Durably add ``(linkedid, payload)`` items; return their sequence numbers."""
        now = datetime.now(timezone.utc).isoformat()
        db = self.db
        seqs = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for linkedid, payload in items:
                cur = db.execute("INSERT INTO entries (linkedid, payload, written_at) VALUES (?, ?, ?)",
                                 (linkedid, payload, now))
                seqs.append(cur.lastrowid)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seqs

    def pending(self, limit: int) -> list[Entry]:
        """The oldest entries still to flush, in order."""
        rows = self.db.execute("SELECT seq, linkedid, payload, attempts, error, written_at FROM entries "
                               "WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Entry(*row) for row in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget entries the CRM database has committed."""
        self._each("DELETE FROM entries WHERE seq = ?", [(s,) for s in seqs])

    def note_failure(self, seqs: Iterable[int], error: str) -> None:
        """Count a failed flush attempt (the entries stay pending)."""
        self._each("UPDATE entries SET attempts = attempts + 1, error = ? WHERE seq = ?",
                   [(error[:1000], s) for s in seqs])

    def reject(self, seq: int, error: str) -> None:
        """Keep an entry the CRM refuses, with the reason, out of the flush order."""
        self._each("UPDATE entries SET state = 'rejected', attempts = attempts + 1, error = ? WHERE seq = ?",
                   [(error[:1000], seq)])

    def rejected(self, limit: int = 1000) -> list[Entry]:
        rows = self.db.execute("SELECT seq, linkedid, payload, attempts, error, written_at FROM entries "
                               "WHERE state = 'rejected' ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Entry(*row) for row in rows]

    def requeue_rejected(self) -> int:
        """Put every rejected entry back in the flush order; return how many."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            count = db.execute("UPDATE entries SET state = 'pending' WHERE state = 'rejected'").rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return count

    def counts(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall())
        return {"pending": found.get("pending", 0), "rejected": found.get("rejected", 0)}

    def _each(self, sql: str, params: list[tuple[object, ...]]) -> None:
        if not params:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(sql, params)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
