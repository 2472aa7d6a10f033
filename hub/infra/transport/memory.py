"""The in-memory transport: queues in this process's memory, for tests about the hub, not the broker.

It keeps the port's whole contract (at least once, competing consumers, batches, retries after the
policy's delay, parking) without a file or a server, and loses everything with the process.
`memory://name` opens the broker called name, shared by every transport opened on that name in
this process for as long as it runs (a hub and its test, a hub closed and built again); plain
`memory://` opens a broker of its own each time. Like RabbitMQ, it routes only to declared queues.

A consumer takes what it hands over out of the queue and holds it until settled. When an exception
that is not an Exception escapes the handler (the process dying, in a test), what it held goes back
to the head of the queue flagged as redelivered, as RabbitMQ does when a consumer's connection
closes. One lock and condition per broker: a publish, a retry scheduled or a message put back wakes
the idle consumers at once.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from hub.domain.retry import RetryPolicy
from hub.infra.transport.base import (
    CORRELATION_ID, BatchHandler, ConsumesSingly, Delivery, Item, PublishNotConfirmed, TransportError, batch_prefetch,
    fixed_schedule, parking_queue,
)
from hub.infra.transport.settle import Action, Decision, decide

log = structlog.get_logger(__name__)

_STOP_CHECK_S = 0.1
"""An idle consumer's longest wait: `stop` is an Event the broker cannot be told about, so it looks."""


@dataclass(frozen=True)
class _Message:
    message_id: str
    body: bytes
    headers: Mapping[str, Any]
    attempt: int = 1
    redelivered: bool = False
    user_id: str | None = None
    correlation_id: str | None = None

    def delivery(self, queue: str) -> Delivery:
        # a copy of the headers each time: what one handler does to them stays its own business
        return Delivery(queue, self.message_id, self.body, dict(self.headers), self.attempt, self.redelivered,
                        user_id=self.user_id, correlation_id=self.correlation_id)


@dataclass
class _Queue:
    ready: deque[_Message] = field(default_factory=deque)
    # retries waiting out their delay, a heap of (due on the monotonic clock, tie-breaker, message)
    waiting: list[tuple[float, int, _Message]] = field(default_factory=list)

    def promote(self, now: float) -> float | None:
        """Moves the retries that are due to the back of the queue; returns when the next one is due."""
        while self.waiting and self.waiting[0][0] <= now:
            self.ready.append(heapq.heappop(self.waiting)[2])
        return self.waiting[0][0] if self.waiting else None


class _Broker:
    """The queues of one broker. Every read or change holds `changed`; every change notifies it."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.queues: dict[str, _Queue] = {}
        self.order = itertools.count()  # orders retries due at the same instant

    def declare(self, queue: str) -> _Queue:
        """The queue and its parking companion, created if missing; returns the queue. Holds the lock."""
        self.queues.setdefault(parking_queue(queue), _Queue())
        return self.queues.setdefault(queue, _Queue())


_named: dict[str, _Broker] = {}
_named_lock = threading.Lock()


def _broker(name: str) -> _Broker:
    if not name:
        return _Broker()
    with _named_lock:
        if name not in _named:
            _named[name] = _Broker()
        return _named[name]


class MemoryTransport(ConsumesSingly):
    def __init__(self, name: str = "", *, retry: RetryPolicy = RetryPolicy()) -> None:
        self.name = name
        self.retry = fixed_schedule(retry)
        self._broker = _broker(name)
        self._closed = threading.Event()

    # --- publishing -------------------------------------------------------------------------

    def declare(self, queue: str) -> None:
        self._check_open()
        with self._broker.changed:
            self._broker.declare(queue)

    def declare_entrance(self, queue: str) -> None:
        self.declare(queue)   # no outside publishers here: the queue is its own way in

    def publish(self, queue: str, message_id: str, body: bytes, headers: Mapping[str, Any] | None = None) -> None:
        self.publish_many([(queue, message_id, body, headers)])

    def publish_as(self, user_id: str | None, queue: str, message_id: str, body: bytes,
                   headers: Mapping[str, Any] | None = None) -> None:
        """A publish by a client the broker authenticated as `user_id` (RabbitMQ's validated user_id
        property; None: the client gave none), as a party publishes on its ingress queue (tests)."""
        self.publish_many([(queue, message_id, body, headers)], user_id=user_id)

    def publish_many(self, items: Sequence[Item], *, user_id: str | None = None) -> None:
        """All or nothing, under the lock: confirmed once it returns."""
        self._check_open()
        if not items:
            return
        b = self._broker
        with b.changed:
            for queue, _, _, _ in items:
                if queue not in b.queues:
                    raise PublishNotConfirmed(f"unroutable: no queue {queue!r}")
            for queue, message_id, body, headers in items:
                headers = dict(headers or {})
                correlation_id = headers.pop(CORRELATION_ID, None)
                b.queues[queue].ready.append(_Message(message_id, bytes(body), headers, user_id=user_id,
                                                      correlation_id=correlation_id))
            b.changed.notify_all()

    # --- consuming --------------------------------------------------------------------------

    def consume_batch(self, queue: str, handler: BatchHandler, *, stop: threading.Event, prefetch: int = 200,
                      max_batch: int = 100, max_wait_ms: int = 5) -> None:
        """Takes up to max_batch messages at a time (`_take`) and hands them over (`_handle`). A consumer
        here holds one batch, never more than prefetch, so prefetch is only checked."""
        batch_prefetch(queue, prefetch, max_batch, max_wait_ms)
        log.info("transport.consuming", queue=queue, transport="memory", batch=max_batch)
        while taken := self._take(queue, stop, max_batch, max_wait_ms / 1000):
            self._handle(queue, handler, taken)
        log.info("transport.consumer_stopped", queue=queue, transport="memory")

    def _take(self, queue: str, stop: threading.Event, max_batch: int, gather_s: float) -> list[_Message]:
        """Waits for messages and takes up to max_batch out of the queue; while fewer are ready, waits
        up to gather_s after first seeing some for more. Returns [] once stopping."""
        b = self._broker
        with b.changed:
            gather_until: float | None = None
            while not self._stopping(stop):
                q = b.declare(queue)  # again each time: the queue may have been deleted meanwhile
                now = time.monotonic()
                next_due = q.promote(now)
                timeout = _STOP_CHECK_S
                if q.ready:
                    if gather_until is None:
                        gather_until = now + gather_s
                    if len(q.ready) >= max_batch or now >= gather_until:
                        return [q.ready.popleft() for _ in range(min(max_batch, len(q.ready)))]
                    timeout = gather_until - now
                else:
                    gather_until = None  # another consumer took them: the next to come is a first again
                if next_due is not None:
                    timeout = min(timeout, next_due - now)
                b.changed.wait(timeout)
        return []

    def _handle(self, queue: str, handler: BatchHandler, taken: list[_Message]) -> None:
        """Hands `taken` over as one batch. A batch that fails, or a batch of one, goes through
        `decide` one delivery at a time. What is not settled when an exception escapes goes back."""
        pending = deque(taken)
        try:
            if len(taken) > 1:
                try:
                    handler([m.delivery(queue) for m in taken])
                except Exception as exc:
                    log.info("transport.batch_failed", queue=queue, size=len(taken), error=type(exc).__name__)
                else:
                    pending.clear()
            while pending:
                decision = decide(pending[0].delivery(queue), lambda d: handler([d]), self.retry)
                self._apply(queue, pending.popleft(), decision)
        finally:
            if pending:
                self._put_back(queue, pending)

    def _apply(self, queue: str, message: _Message, decision: Decision) -> None:
        if decision.action is Action.ACK:
            return  # out of the queue since it was taken
        b = self._broker
        with b.changed:
            if decision.action is Action.RETRY:
                due = time.monotonic() + decision.delay_ms / 1000
                retried = replace(message, attempt=decision.next_attempt(message.attempt), redelivered=False)
                heapq.heappush(b.declare(queue).waiting, (due, next(b.order), retried))
            else:
                b.queues.setdefault(parking_queue(queue), _Queue()).ready.append(message)
            b.changed.notify_all()  # a consumer waiting for the next retry may have to wake sooner

    def _put_back(self, queue: str, messages: Iterable[_Message]) -> None:
        """Back to the head of the queue, in their order, flagged as redelivered."""
        b = self._broker
        with b.changed:
            b.declare(queue).ready.extendleft(replace(m, redelivered=True) for m in reversed(list(messages)))
            b.changed.notify_all()

    # --- operators --------------------------------------------------------------------------

    def parked(self, queue: str) -> list[Delivery]:
        self._check_open()
        name = parking_queue(queue)
        with self._broker.changed:
            parking = self._broker.queues.get(name)
            return [m.delivery(name) for m in parking.ready] if parking else []

    def depth(self, queue: str) -> int:
        """Ready messages: a retry counts once its delay is over; what consumers hold does not."""
        self._check_open()
        with self._broker.changed:
            q = self._broker.queues.get(queue)
            if q is None:
                return 0
            q.promote(time.monotonic())
            return len(q.ready)

    def purge(self, queue: str) -> None:
        """Main queue, its waiting retries and its parking queue; what consumers hold stays theirs."""
        self._check_open()
        with self._broker.changed:
            for name in (queue, parking_queue(queue)):
                if name in self._broker.queues:
                    self._broker.queues[name] = _Queue()

    def delete(self, queue: str) -> None:
        self._check_open()
        with self._broker.changed:
            for name in (queue, parking_queue(queue)):
                self._broker.queues.pop(name, None)

    def ping(self) -> bool:
        return not self._closed.is_set()

    def close(self) -> None:
        """This transport only: the broker and its messages stay for the others opened on its name."""
        self._closed.set()
        with self._broker.changed:
            self._broker.changed.notify_all()  # this transport's idle consumers see it at once

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError("transport is closed")
