"""The embedded durable transport: a queue table in its own SQLite file, for the default deployment.

A committed insert is the broker's confirm; a claimed row carries a lease, so a consumer that dies
mid-message leaves it to be claimed again (redelivered) once the lease runs out. Consumers in the
same process are woken at once by a publish; other processes find new rows by polling.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    JSON, Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, Table, Text,
    create_engine, delete, event, func, or_, select, update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from hub.domain.retry import RetryPolicy
from hub.infra.transport.base import (
    BatchHandler, ConsumesSingly, Delivery, Item, TransportError, batch_prefetch, fixed_schedule,
    parking_queue,
)
from hub.infra.transport.settle import Action, decide

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1

metadata = MetaData()
messages = Table(
    "transport_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("queue", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("available_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("redelivered", Boolean, nullable=False),
    Index("ix_transport_messages_queue_available", "queue", "available_at"),
    sqlite_autoincrement=True,  # ids never reused: id order is publish order
)


def _sqlite_engine(path: str) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": 5.0},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode NORMAL may lose the last commits on power loss, and a commit here is
        # the publisher's confirm, so it must be on disk when publish() returns.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two consumers never claim the same row, and
        # no transaction fails half-way on a lock upgrade. Plain reads ask for a deferred BEGIN.
        mode = "DEFERRED" if conn.get_execution_options().get("hub_read_only") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class EmbeddedTransport(ConsumesSingly):
    def __init__(
        self,
        path: str | Path,
        *,
        retry: RetryPolicy = RetryPolicy(),
        lease_s: float = 10.0,   # a consumer killed mid-claim: its rows come back within 10 s
        idle_min_s: float = 0.02,
        idle_max_s: float = 0.2,
    ) -> None:
        self.path = str(path)
        self.retry = fixed_schedule(retry)
        self.lease_s = lease_s
        self._idle = (idle_min_s, idle_max_s)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._engine = _sqlite_engine(self.path)
        self._closed = threading.Event()
        # Wakes same-process consumers on publish; the counter closes the gap between an empty
        # claim and the wait, so a publish in between is never missed.
        self._published = threading.Condition()
        self._generation = 0
        self._ensure_schema()

    # --- schema -----------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self._engine.begin() as conn:
            version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
            if version == 0:
                metadata.create_all(conn)
                conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise TransportError(
                    f"embedded broker file has schema version {version}, this hub knows {SCHEMA_VERSION}"
                )

    def _read(self) -> Connection:
        return self._engine.connect().execution_options(hub_read_only=True)

    # --- publishing -------------------------------------------------------------------------

    def declare(self, queue: str) -> None:
        """Nothing to create: queues here are rows tagged with their name (retry waits in place)."""
        self._check_open()

    def declare_entrance(self, queue: str) -> None:
        self.declare(queue)   # no outside publishers here: the queue is its own way in

    def publish(self, queue: str, message_id: str, body: bytes, headers: Mapping[str, Any] | None = None) -> None:
        self.publish_many([(queue, message_id, body, headers)])

    def publish_many(self, items: Sequence[Item]) -> None:
        self._check_open()
        if not items:
            return
        now = time.time()
        rows = [
            {
                "queue": q, "message_id": mid, "body": bytes(body), "headers": dict(headers or {}),
                "attempt": 1, "available_at": now, "lease_until": None, "redelivered": False,
            }
            for q, mid, body, headers in items
        ]
        try:
            with self._engine.begin() as conn:
                conn.execute(messages.insert(), rows)
        except OperationalError as exc:
            raise TransportError(f"embedded broker file unavailable: {exc.orig}") from exc
        self.wake()

    def wake(self) -> None:
        """Wakes this process's idle consumers (called after every publish)."""
        with self._published:
            self._generation += 1
            self._published.notify_all()

    # --- consuming --------------------------------------------------------------------------

    def consume_batch(self, queue: str, handler: BatchHandler, *, stop: threading.Event, prefetch: int = 200,
                      max_batch: int = 100, max_wait_ms: int = 5) -> None:
        """Claims up to prefetch rows in one transaction and hands them over in slices of max_batch
        (`_handle`); what became of them is written together, the lease checked."""
        prefetch = batch_prefetch(queue, prefetch, max_batch, max_wait_ms)
        self._loop(queue, handler, stop, prefetch, max_batch, max_wait_ms / 1000 if max_batch > 1 else 0.0)

    def _loop(self, queue: str, handler: BatchHandler, stop: threading.Event, prefetch: int, max_batch: int,
              gather_s: float) -> None:
        """Claims up to prefetch rows at a time. Once a claim has found less than a batch (the queue
        had run dry), the next rows to show up get gather_s (max_wait_ms) for more to arrive."""
        idle = self._idle[0]
        dry = True
        log.info("transport.consuming", queue=queue, transport="embedded")
        while not stop.is_set() and not self._closed.is_set():
            generation = self._generation
            try:
                if self._any_ready(queue):
                    if gather_s and dry:
                        stop.wait(gather_s)
                    claimed = self._claim(queue, prefetch)
                    if claimed:
                        idle = self._idle[0]
                        dry = len(claimed) < max_batch
                        self._handle(queue, claimed, handler, stop, max_batch)
                        continue
                dry = True
            except OperationalError as exc:  # file locked past busy_timeout, disk trouble: wait, go on
                log.warning("transport.consumer_retry", queue=queue, error=type(exc).__name__)
                stop.wait(self._idle[1])
                continue
            with self._published:
                if self._generation == generation:
                    self._published.wait(idle)
            idle = min(idle * 2, self._idle[1])
        log.info("transport.consumer_stopped", queue=queue, transport="embedded")

    def _give_back(self, stop: threading.Event, lease: float) -> bool:
        """Stopping, or the claim's lease is about to run out (its rows may soon be someone else's)."""
        return stop.is_set() or self._closed.is_set() or time.time() >= lease - min(1.0, self.lease_s / 5)

    def _any_ready(self, queue: str) -> bool:
        """A cheap look first: idle polling never takes the write lock."""
        t = messages.c
        with self._read() as conn:
            return conn.execute(
                select(t.id).where(t.queue == queue, t.available_at <= time.time()).limit(1)
            ).first() is not None

    def _claim(self, queue: str, limit: int) -> list[_Claim]:
        """Leases up to `limit` available rows; a row whose lease ran out is a redelivery."""
        now = time.time()
        t = messages.c
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(t.id, t.message_id, t.body, t.headers, t.attempt, t.lease_until, t.redelivered)
                .where(t.queue == queue, t.available_at <= now, or_(t.lease_until.is_(None), t.lease_until < now))
                .order_by(t.available_at, t.id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            # available_at moves to the lease end as well, so rows in flight drop out of the
            # (queue, available_at) index range and the next claim does not scan past them.
            lease_until = now + self.lease_s
            conn.execute(
                update(messages)
                .where(t.id.in_([r.id for r in rows]))
                .values(lease_until=lease_until, available_at=lease_until,
                        redelivered=or_(t.redelivered, t.lease_until.is_not(None)))
            )
        return [
            _Claim(Delivery(queue, r.message_id, r.body, r.headers, r.attempt,
                            bool(r.redelivered or r.lease_until is not None)), r.id, lease_until)
            for r in rows
        ]

    def _handle(self, queue: str, claimed: list[_Claim], handler: BatchHandler, stop: threading.Event,
                max_batch: int) -> None:
        """Hands a claim over in slices of max_batch. A slice that fails, or a slice of one, goes
        through the per-message rules (`_apply_rules`) one delivery at a time. Outcomes are written
        together, in one transaction at the end of the claim (or every half second for slow handlers)."""
        lease = claimed[0].lease_until  # one claim, one lease: it also proves the rows are still ours
        outcome = _Outcome()
        in_flight: list[int] = []
        last_flush = time.monotonic()
        try:
            for start in range(0, len(claimed), max_batch):
                part = claimed[start:start + max_batch]
                if self._give_back(stop, lease):  # the rest go back untouched
                    break
                if len(part) > 1:
                    in_flight = [c.row_id for c in part]
                    try:
                        handler([c.delivery for c in part])
                    except Exception as exc:
                        log.info("transport.batch_failed", queue=queue, size=len(part), error=type(exc).__name__)
                    else:
                        outcome.done.extend(in_flight)
                        part = []
                in_flight = []
                for c in part:
                    if self._give_back(stop, lease):
                        break
                    in_flight = [c.row_id]
                    self._apply_rules(c, handler, outcome)
                    in_flight = []
                if time.monotonic() - last_flush > 0.5:  # slow handlers: do not sit on acks
                    self._settle(queue, lease, outcome)
                    outcome = _Outcome(settled=outcome.settled)
                    last_flush = time.monotonic()
        finally:
            # Rows not settled go back at once. On a crash (an exception escaping the handler) the
            # rows in flight keep their lease and are redelivered once it runs out.
            kept = outcome.settled | outcome.ids() | set(in_flight)
            outcome.unhandled = [c.row_id for c in claimed if c.row_id not in kept]
            self._settle(queue, lease, outcome)

    def _apply_rules(self, c: _Claim, handler: BatchHandler, outcome: _Outcome) -> None:
        """One delivery alone through the handler (`decide`); what became of it goes in `outcome`."""
        decision = decide(c.delivery, lambda d: handler([d]), self.retry)
        if decision.action is Action.ACK:
            outcome.done.append(c.row_id)
        elif decision.action is Action.RETRY:
            outcome.retried.append((c.row_id, decision.next_attempt(c.delivery.attempt), decision.delay_ms))
        else:
            outcome.parked.append(c.row_id)

    def _settle(self, queue: str, lease: float, outcome: _Outcome) -> None:
        if not outcome.ids():
            return
        now = time.time()
        t = messages.c
        ours = t.lease_until == lease  # a row whose lease lapsed and was claimed again is left alone
        with self._engine.begin() as conn:
            if outcome.done:
                conn.execute(delete(messages).where(t.id.in_(outcome.done), ours))
            for row_id, attempt, delay_ms in outcome.retried:
                conn.execute(
                    update(messages).where(t.id == row_id, ours).values(
                        attempt=attempt, available_at=now + delay_ms / 1000.0,
                        lease_until=None, redelivered=False)
                )
            if outcome.parked:
                conn.execute(update(messages).where(t.id.in_(outcome.parked), ours).values(
                    queue=parking_queue(queue), available_at=now, lease_until=None))
            if outcome.unhandled:  # handed back untouched: available at once, not a redelivery
                conn.execute(update(messages).where(t.id.in_(outcome.unhandled), ours).values(
                    available_at=now, lease_until=None))
        outcome.settled |= outcome.ids()
        if outcome.unhandled:
            self.wake()

    # --- operators --------------------------------------------------------------------------

    def parked(self, queue: str) -> list[Delivery]:
        t = messages.c
        with self._read() as conn:
            rows = conn.execute(
                select(t.queue, t.message_id, t.body, t.headers, t.attempt, t.redelivered)
                .where(t.queue == parking_queue(queue)).order_by(t.id)
            ).all()
        return [Delivery(r.queue, r.message_id, r.body, r.headers, r.attempt, bool(r.redelivered)) for r in rows]

    def depth(self, queue: str) -> int:
        t = messages.c
        with self._read() as conn:
            # Rows in flight have available_at at their lease end; a lapsed lease counts as ready.
            return conn.execute(
                select(func.count()).select_from(messages).where(t.queue == queue, t.available_at <= time.time())
            ).scalar_one()

    def purge(self, queue: str) -> None:
        """Main and parking rows; retries wait in place in the main queue, so they go too."""
        with self._engine.begin() as conn:
            conn.execute(delete(messages).where(messages.c.queue.in_([queue, parking_queue(queue)])))

    def delete(self, queue: str) -> None:
        """Queues here are only rows: deleting one is purging it."""
        self.purge(queue)

    def ping(self) -> bool:
        if self._closed.is_set():
            return False
        try:
            with self._read() as conn:
                conn.exec_driver_sql("SELECT 1").scalar_one()
            return True
        except Exception:
            return False

    def close(self) -> None:
        self._closed.set()
        self.wake()
        self._engine.dispose()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError("transport is closed")


@dataclass(frozen=True)
class _Claim:
    """A leased row: the delivery the handler sees, and what settling it needs."""

    delivery: Delivery
    row_id: int
    lease_until: float


@dataclass
class _Outcome:
    """What became of the rows of one claim since the last write."""

    done: list[int] = field(default_factory=list)
    retried: list[tuple[int, int, int]] = field(default_factory=list)  # (row id, its next attempt, delay ms)
    parked: list[int] = field(default_factory=list)
    unhandled: list[int] = field(default_factory=list)
    settled: set[int] = field(default_factory=set)  # written by an earlier _settle of this claim

    def ids(self) -> set[int]:
        return {*self.done, *(r for r, _, _ in self.retried), *self.parked, *self.unhandled}
