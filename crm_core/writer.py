"""The daemon-facing contact logger: journal first, then the CRM database.

``ContactWriter.log(record)`` checks the record, stamps its revision and
returns a Deferred that fires once the record is durable in the local
journal (``crm_core.journal``); it never blocks the reactor: the journal is
written on its own single thread, batching every record that arrived while
the previous write was syncing (group commit).  A background flusher then
moves journaled records, oldest first, into the CRM database with the
idempotent merge of ``crm_core.contacts`` and removes them from the journal
once committed.  A crash anywhere in between replays them on the next
start: at worst a record is merged twice, which changes nothing.

While the database is unreachable the journal holds the records and the
flusher retries with capped exponential backoff, forever; nothing is
dropped.  A record the database refuses for its content (a foreign key to a
deleted customer, say) is isolated from its batch and kept in the journal as
``rejected``, so it cannot hold the others back.  ``stop`` flushes what it
can within a deadline and leaves the rest in the journal.

Nothing is refused silently: ``refused`` counts, since the writer was made,
the records refused for what they hold, at ``log`` (``check_contact``) or by
the database (kept in the journal as ``rejected``), and each is logged as an
error with its call id.  The daemon reaches it as ``root.crm.writer.refused``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from sqlalchemy import exc as sa_exc
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.python.failure import Failure

from callcenter.backoff import Backoff
from callcenter.dbpool import DbPool
from callcenter.logging import call_id_context, truncated
from crm_core.contact_codec import check_contact, contact_from_json, contact_to_json
from crm_core.contacts import thd_log_contacts
from crm_core.errors import CrmError, InvalidInput
from crm_core.journal import Entry, Journal
from crm_core.records import ContactRecord

logger = logging.getLogger(__name__)


class WriterStopped(CrmError):
    """The writer is not running: the record was not taken."""


def is_record_fault(exc: BaseException) -> bool:
    """True when the database refused a record for what it holds, not for being unavailable."""
    if isinstance(exc, (sa_exc.IntegrityError, sa_exc.DataError, InvalidInput)):
        return True
    # A value the driver could not bind, raised before reaching the server.
    return isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError)


#: Retry delays while the CRM database is unreachable: 0.25 s doubling to 15 s, with jitter.
RETRY_BACKOFF = Backoff(initial=0.25, cap=15.0)


class ContactWriter:
    def __init__(self, clock: Any, journal: Journal, db_pool: DbPool, engine: Any, region: str, *,
                 batch_size: int = 500, backoff: Backoff = RETRY_BACKOFF,
                 journal_pool: DbPool | None = None):
        self._clock = clock
        self._journal = journal
        self._jpool = journal_pool or DbPool(clock, name="crm-journal", size=1)
        self._db_pool = db_pool
        self._engine = engine
        self._region = region
        self._batch_size = batch_size
        self._backoff = backoff
        self._queue: list[tuple[str, str, Deferred[None]]] = []
        self._appending: Deferred[Any] | None = None
        self._flushing: Deferred[Any] | None = None
        self._retry: Any = None
        self._failures = 0
        self._held = 0
        self._halt = False
        self._state = "new"
        self._idle_waiters: list[Deferred[None]] = []
        self._last_revision = 0
        self._refused = 0

    @property
    def held(self) -> int:
        """Records durable in the journal and not yet committed to the CRM database."""
        return self._held

    @property
    def outage(self) -> bool:
        return self._failures > 0

    @property
    def refused(self) -> int:
        """Records refused for their content so far: at ``log``, or rejected by the CRM database."""
        return self._refused

    async def start(self) -> None:
        """Open the journal (failure propagates) and replay what it holds."""
        self._jpool.start()
        try:
            self._held = await self._jpool.run(self._journal.open)
        except Exception:
            await self._jpool.stop()
            raise
        self._state = "running"
        if self._held:
            logger.info("replaying %d contact records from the journal %s", self._held, self._journal.path)
        self._kick()

    def log(self, record: ContactRecord) -> "Deferred[None]":
        """Take a contact write; fires when it is durable in the journal."""
        if self._state != "running":
            return fail(WriterStopped(f"contact writer is {self._state}; contact {record.linkedid!r} not taken"))
        try:
            check_contact(record)
            if record.revision == 0:
                record = dataclasses.replace(record, revision=self._stamp())
            payload = json.dumps(contact_to_json(record, compact=True), ensure_ascii=False, separators=(",", ":"))
        except InvalidInput as exc:
            self._refused += 1
            linkedid = getattr(record, "linkedid", None)
            linkedid = linkedid if isinstance(linkedid, str) else None
            with call_id_context(linkedid):
                logger.error("contact record %s refused: %s", truncated(linkedid or "?"), exc)
            return fail(exc)
        d: Deferred[None] = Deferred()
        self._queue.append((record.linkedid, payload, d))
        self._pump()
        return d

    def _stamp(self) -> int:
        """A revision: microseconds of wall time, strictly increasing in this process."""
        self._last_revision = max(self._last_revision + 1, int(self._clock.seconds() * 1_000_000))
        return self._last_revision

    def _pump(self) -> None:
        if self._appending is not None or not self._queue:
            return
        batch, self._queue = self._queue[:1000], self._queue[1000:]
        d = self._jpool.run(self._journal.append, [(linkedid, payload) for linkedid, payload, _ in batch])
        self._appending = d

        def appended(result: Any) -> None:
            self._appending = None
            if isinstance(result, Failure):
                logger.error("journal write failed; %d contact records not taken: %s", len(batch), result.value)
                for *_, waiter in batch:
                    waiter.errback(result)
            else:
                self._held += len(batch)
                for *_, waiter in batch:
                    waiter.callback(None)
                self._kick()
            self._pump()

        d.addBoth(appended)

    def _kick(self) -> None:
        if self._flushing is not None or self._retry is not None or self._state not in ("running", "stopping"):
            return
        self._flushing = ensureDeferred(self._flush())
        self._flushing.addBoth(self._flushed)

    def _flushed(self, result: Any) -> None:
        self._flushing = None
        if isinstance(result, Failure):  # a bug, not an outage: keep the records, try again later
            logger.error("contact flusher failed: %s", result.getTraceback())
            self._schedule_retry()
        self._notify_idle()

    async def _flush(self) -> None:
        while not self._halt:
            entries = await self._jpool.run(self._journal.pending, self._batch_size)
            if not entries:
                self._held = 0
                return
            good = await self._decode(entries)
            try:
                await self._db_pool.run(thd_log_contacts, self._engine, [r for _, r in good], self._region)
            except Exception as exc:
                if not is_record_fault(exc):
                    await self._outage([e for e, _ in good], exc)
                    return
                if not await self._one_by_one(good):
                    return
                continue
            await self._done([e for e, _ in good])

    async def _decode(self, entries: list[Entry]) -> list[tuple[Entry, ContactRecord]]:
        good = []
        for entry in entries:
            try:
                good.append((entry, check_contact(contact_from_json(json.loads(entry.payload)))))
            except (ValueError, InvalidInput) as exc:
                await self._reject(entry, f"unreadable journal entry: {exc}")
        return good

    async def _one_by_one(self, good: list[tuple[Entry, ContactRecord]]) -> bool:
        """Flush records singly to isolate the refused ones; False after an outage."""
        for entry, record in good:
            try:
                await self._db_pool.run(thd_log_contacts, self._engine, [record], self._region)
            except Exception as exc:
                if not is_record_fault(exc):
                    await self._outage([entry], exc)
                    return False
                await self._reject(entry, str(exc).splitlines()[0])
                continue
            await self._done([entry])
        return True

    async def _done(self, entries: list[Entry]) -> None:
        await self._jpool.run(self._journal.remove, [e.seq for e in entries])
        self._held = max(0, self._held - len(entries))
        if self._failures:
            logger.info("CRM database reachable again; flushing %d journaled contact records", self._held)
            self._failures = 0

    async def _reject(self, entry: Entry, reason: str) -> None:
        self._refused += 1
        with call_id_context(entry.linkedid):
            logger.error("CRM refused contact record %s (journal entry %d), kept in the journal: %s",
                         entry.linkedid, entry.seq, reason)
        await self._jpool.run(self._journal.reject, entry.seq, reason)
        self._held = max(0, self._held - 1)

    async def _outage(self, entries: list[Entry], exc: Exception) -> None:
        self._failures += 1
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        await self._jpool.run(self._journal.note_failure, [e.seq for e in entries], reason)
        if self._state != "running":
            return
        level = logging.WARNING if self._failures == 1 or self._failures % 20 == 0 else logging.DEBUG
        logger.log(level, "CRM database unavailable (%s); %d contact records held in the journal (attempt %d)",
                   reason, self._held, self._failures)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._state != "running" or self._retry is not None:
            return
        delay = self._backoff.delay(max(0, self._failures - 1))

        def retry() -> None:
            self._retry = None
            self._kick()

        self._retry = self._clock.callLater(delay, retry)

    def _idle(self) -> bool:
        return not self._queue and self._appending is None and self._flushing is None and self._held == 0

    def _notify_idle(self) -> None:
        if self._idle():
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def wait_flushed(self) -> "Deferred[None]":
        """Fires when everything taken so far is committed to the CRM database (or rejected)."""
        d: Deferred[None] = Deferred()
        self._idle_waiters.append(d)
        self._notify_idle()
        return d

    async def stop(self, timeout: float = 3.0) -> None:
        """Refuse new records, make accepted ones durable, flush for up to ``timeout`` s."""
        if self._state != "running":
            return
        self._state = "stopping"
        while self._appending is not None:
            await self._appending
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._kick()  # one last attempt, even during an outage
        try:
            await self._flush_ended().addTimeout(timeout, self._clock)
        except DeferredTimeout:
            self._halt = True  # the batch in flight finishes; the rest waits for the next start
            await self._flush_ended()
        self._state = "stopped"
        await self._jpool.run(self._journal.close)
        await self._jpool.stop()
        if self._held:
            logger.warning("%d contact records left in the journal %s for the next start",
                           self._held, self._journal.path)
        self._notify_idle()

    def _flush_ended(self) -> "Deferred[None]":
        """Fires when the running flush loop (if any) has returned."""
        d: Deferred[None] = Deferred()
        if self._flushing is None:
            d.callback(None)
        else:
            self._flushing.addBoth(lambda _: None if d.called else d.callback(None))
        return d
