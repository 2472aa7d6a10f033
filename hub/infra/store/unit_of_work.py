"""Group commit: the writers of one process share one transaction, one audit append, one commit.

Ingress, the router and acknowledgments hand over a function that writes their rows (plain inserts
gathered into one statement per table) and returns their audit events; each blocks until its part is committed, or gets its own error back. Nothing
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, Table

from hub import audit
from hub.audit import AuditEvent
from hub.domain.envelope import utcnow

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
            self.conn.execute(_insert(table), rows)
        self._inserts.clear()
        for step in self._after:
            step(self.conn)
        self._after.clear()


@lru_cache(maxsize=None)
def _insert(table: Table):
    return table.insert()


Write = Callable[[Batch], Sequence[AuditEvent]]


@dataclass
class _Part:
    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, engine: Engine, max_batch: int = 64, clock: Callable[[], datetime] = utcnow):
        self.engine, self._max, self._clock = engine, max_batch, clock
        self._queue: queue.SimpleQueue[_Part] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def write(self, fn: Write) -> None:
        """Run `fn` inside a shared transaction; return once committed, or raise its error."""
        self._ensure_thread()
        part = _Part(fn)
        self._queue.put(part)
        part.done.wait()
        if part.error is not None:
            raise part.error

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

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
            audit.append(conn, events, now=self._clock())
