"""The local journal: durable on append, ordered, never reusing a sequence number."""

from __future__ import annotations

import sqlite3

import pytest

from crm_core.journal import FORMAT_VERSION, Journal, JournalError


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "contacts.journal")
    j.open()
    yield j
    j.close()


def test_journal_is_wal_with_full_sync(journal):
    """Commits are fsynced (synchronous=FULL) into a write-ahead log."""
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_appended_entries_are_visible_to_another_process_at_once(journal):
    """append returns only after commit: a fresh connection (another process) sees the entries."""
    journal.append([("a.1", '{"x":1}'), ("a.2", '{"x":2}')])
    other = sqlite3.connect(journal.path)
    assert other.execute("SELECT linkedid FROM entries ORDER BY seq").fetchall() == [("a.1",), ("a.2",)]
    other.close()


def test_entries_come_back_in_order_and_leave_when_removed(journal):
    seqs = journal.append([(f"c.{i}", str(i)) for i in range(5)])
    assert [e.linkedid for e in journal.pending(3)] == ["c.0", "c.1", "c.2"]
    journal.remove(seqs[:2])
    assert [e.payload for e in journal.pending(10)] == ["2", "3", "4"]
    assert journal.counts() == {"pending": 3, "rejected": 0}


def test_sequence_numbers_are_never_reused(journal):
    """Even after every entry is removed, new entries sort after the old ones."""
    first = journal.append([("x", "1")])
    journal.remove(first)
    second = journal.append([("y", "2")])
    assert second[0] > first[0]


def test_rejected_entries_are_kept_aside_with_their_reason_until_requeued(journal):
    seqs = journal.append([("ok", "1"), ("bad", "2"), ("ok2", "3")])
    journal.reject(seqs[1], "foreign key: no customer 99")
    assert [e.linkedid for e in journal.pending(10)] == ["ok", "ok2"]
    [bad] = journal.rejected()
    assert (bad.linkedid, bad.error, bad.attempts) == ("bad", "foreign key: no customer 99", 1)
    assert journal.requeue_rejected() == 1
    assert [e.linkedid for e in journal.pending(10)] == ["ok", "bad", "ok2"]


def test_failures_are_counted_without_losing_the_entry(journal):
    seqs = journal.append([("held", "1")])
    journal.note_failure(seqs, "connection refused")
    journal.note_failure(seqs, "connection refused")
    [entry] = journal.pending(1)
    assert (entry.attempts, entry.error) == (2, "connection refused")


def test_pending_entries_survive_reopening(tmp_path):
    path = tmp_path / "j"
    j = Journal(path)
    j.open()
    j.append([("kept", "payload")])
    j.close()
    again = Journal(path)
    assert again.open() == 1
    assert again.pending(1)[0].payload == "payload"
    again.close()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(path).open()


def test_another_database_is_not_mistaken_for_a_journal(tmp_path):
    """Pointing the journal at, say, the CRM's SQLite file is refused, not written into."""
    path = tmp_path / "crm.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    db.close()
    with pytest.raises(JournalError, match="not a contact journal"):
        Journal(path).open()


def test_a_newer_journal_format_is_refused(tmp_path):
    path = tmp_path / "j"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="has format 2"):
        Journal(path).open()


def test_using_a_closed_journal_says_so(tmp_path):
    with pytest.raises(JournalError, match="is not open"):
        Journal(tmp_path / "j").pending(1)
