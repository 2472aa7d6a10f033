"""Group commit: concurrent writers share one transaction, one audit append and one commit.

Each caller hands over a function that writes its rows and returns its audit events; it blocks
until its part is committed, or gets its own error back. Each part runs in a savepoint, so one
that fails (a duplicate id, a dossier that moved meanwhile) is rolled back alone. Nothing waits
for company: the committer takes what is queued when it is free, so a lone writer pays only a
thread hand-over, and many writers pay one commit per batch instead of one each.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine

from hub import audit
from hub.audit import AuditEvent
from hub.envelope import utcnow

Write = Callable[[Connection], Sequence[AuditEvent]]


@dataclass
class _Part:
    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, engine: Engine, max_batch: int = 64, clock: Callable[[], datetime] = utcnow):
        self._engine, self._max, self._clock = engine, max_batch, clock
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
            with self._engine.begin() as conn:
                events: list[AuditEvent] = []
                if len(batch) == 1:  # alone, a part needs no savepoint: its failure is the batch's
                    events.extend(batch[0].write(conn))
                else:
                    for part in batch:
                        try:
                            with conn.begin_nested():
                                events.extend(part.write(conn))
                        except Exception as err:  # this part alone is rolled back; the caller gets it
                            part.error = err
                audit.append(conn, events, now=self._clock())
        except Exception as err:  # the commit itself failed: nobody's part is stored
            for part in batch:
                part.error = part.error or err
        finally:
            for part in batch:
                part.done.set()
