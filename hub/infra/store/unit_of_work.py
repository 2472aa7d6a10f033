"""The unit of work: the one writer of a process, and the one way into the audit trail.

Every write that leaves an audit event goes through a UnitOfWork, and the UnitOfWork is the only
caller of `hub.audit.chain.append`, with the store's checkpoint policy. Three ways in:

    write(fn)        fn(batch) writes its rows and returns its audit events. Writers share one
                     transaction, one audit append and one commit (group commit, below).
    write_many(fns)  several parts handed over at once (a batch of submissions): they go into the
                     same transaction, and each gets its own outcome back.
    record(events)   audit events alone (a consultation, a refusal): a write with no rows.
    transaction()    a transaction of its own, for work that must hold its own locks or call out
                     while it holds them (the relay publishes before it marks its rows; retention
                     deletes batch by batch); its events are appended at commit, the same way.

Group commit. Ingress, the router, acknowledgments and the readers' audit events hand over a
function that writes their rows (plain inserts gathered into one statement per table) and returns
their audit events; each blocks until its part is committed, or gets its own error back. Nothing
waits for company: the committer takes what is queued when it is free, so a lone writer pays only
a thread hand-over, and many pay one commit per batch instead of one each.

Why one writer: every write appends to the audit chain under one row lock. Threads that each took
that lock convoyed behind each other and the GIL; one writer holds it once per batch.

A part that fails (a duplicate id, a dossier that moved meanwhile) rolls the batch back; the
parts are then written again one by one, each in its own transaction, so only it fails. Parts
must therefore be safe to run twice against a rolled-back transaction: pure writes, no side effects.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table

from hub.audit import AuditEvent, CheckpointPolicy, checkpoint_now
from hub.audit.chain import append
from hub.domain.envelope import utcnow
from hub.infra.store.db import reader
from hub.infra.store.rows import insert_rows

__all__ = ["Batch", "Transaction", "UnitOfWork", "Write"]


class Batch:
    """What a part writes with: the shared connection, and inserts gathered across parts so that
    each table gets one multi-row INSERT per batch instead of one round trip per row."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._inserts: dict[Table, list[dict[str, Any]]] = {}
        self._after: dict[Callable[[Connection], None], None] = {}

    def insert(self, table: Table, row: dict[str, Any]) -> None:
        self._inserts.setdefault(table, []).append(row)

    def once(self, step: Callable[[Connection], None]) -> None:
        """Run `step` once for the whole batch, after the inserts (e.g. a NOTIFY)."""
        self._after[step] = None

    def flush(self) -> None:
        for table, rows in self._inserts.items():   # in the order the tables were first used
            insert_rows(self.conn, table, rows)     # COPY on PostgreSQL (hub.infra.store.rows)
        self._inserts.clear()
        for step in self._after:
            step(self.conn)
        self._after.clear()


Write = Callable[[Batch], Sequence[AuditEvent]]


_STOP: Any = object()   # tells the committer to end (UnitOfWork.close)


@dataclass
class _Part:
    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Transaction:
    """A transaction of its own (UnitOfWork.transaction): its connection, and the events it records."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.events: list[AuditEvent] = []

    def record(self, events: Sequence[AuditEvent]) -> None:
        self.events.extend(events)


class UnitOfWork:
    def __init__(self, engine: Engine, checkpoints: CheckpointPolicy | None = None, max_batch: int = 500,
                 clock: Callable[[], datetime] = utcnow):
        self.engine, self._max, self._clock = engine, max_batch, clock
        self.reads = reader(engine)          # the same pool, for transactions that only read
        self.checkpoints = checkpoints       # None: nothing is sealed as it goes (tests, tools)
        self._queue: queue.SimpleQueue[list[_Part]] = queue.SimpleQueue()   # what one caller handed over
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def write(self, fn: Write) -> None:
        """Run `fn` inside a shared transaction; return once committed, or raise its error."""
        error = self.write_many([fn])[0]
        if error is not None:
            raise error

    def write_many(self, fns: Sequence[Write]) -> list[BaseException | None]:
        """Run each of `fns` inside a shared transaction; return once all are committed, with each
        one's own error (None: committed). Handed over together, they are committed together
        (unless they outnumber the batch bound); a failing one is found out and stands alone."""
        if not fns:
            return []
        self._ensure_thread()
        parts = [_Part(fn) for fn in fns]
        self._queue.put(parts)
        for part in parts:
            part.done.wait()
        return [part.error for part in parts]

    def record(self, events: Sequence[AuditEvent], at: datetime | None = None) -> None:
        """Append audit events alone; return once committed. `at`: the time they carry, when the
        caller decides it (a request's `now` that tests move); they then go in a transaction of
        their own, since a group commit stamps one time on all its events."""
        if not events:
            return
        events = list(events)
        if at is None:
            self.write(lambda _batch: events)
            return
        with self.transaction(at) as tx:
            tx.record(events)

    @contextmanager
    def transaction(self, at: datetime | None = None) -> Iterator[Transaction]:
        """A transaction of its own; what it records is appended just before it commits, stamped
        `at` (default: the clock)."""
        with self.engine.begin() as conn:
            tx = Transaction(conn)
            yield tx
            self._append(conn, tx.events, at)

    def seal(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Sign a checkpoint of the chain head now (None: nothing unsealed, or no policy)."""
        if self.checkpoints is None:
            return None
        return checkpoint_now(self.engine, self.checkpoints.signer, now)

    def _append(self, conn: Connection, events: Sequence[AuditEvent], at: datetime | None = None) -> None:
        append(conn, events, now=at or self._clock(), checkpoints=self.checkpoints)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        """Stop the committer once what is queued is written (a write after this starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=10)
        while True:   # a part handed over as the committer stopped is still written, here
            try:
                parts = self._queue.get_nowait()
            except queue.Empty:
                return
            if parts is not _STOP:
                self._commit(parts)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = list(first)
            stop = False
            while len(batch) < self._max:
                try:
                    parts = self._queue.get_nowait()
                except queue.Empty:
                    break
                if parts is _STOP:
                    stop = True
                    break
                batch.extend(parts)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Part]) -> None:
        try:
            self._write(batch)
        except Exception as err:
            if len(batch) == 1:
                batch[0].error = err
            else:  # somebody's part failed: find out whose, each alone
                for part in batch:
                    try:
                        self._write([part])
                    except Exception as own:
                        part.error = own
        finally:
            for part in batch:
                part.done.set()

    def _write(self, batch: list[_Part]) -> None:
        with self.engine.begin() as conn:
            shared = Batch(conn)
            events: list[AuditEvent] = []
            for part in batch:
                events.extend(part.write(shared))
            shared.flush()
            self._append(conn, events)
