"""The broker port: what the hub asks of a message transport, whichever carries the messages.

Delivery is at least once. A handler that returns normally acknowledges its message; one that
raises is retried after a delay and, once the retry policy is spent, the message is parked for an
operator. Nothing is ever dropped silently: a message leaves a queue by being acknowledged or by
moving to the queue's parking companion.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from hub.domain.retry import RetryPolicy

log = structlog.get_logger(__name__)

PARKING_SUFFIX = ".parking"


@dataclass(frozen=True)
class Delivery:
    queue: str
    message_id: str
    body: bytes
    headers: Mapping[str, Any]
    attempt: int  # 1 on first delivery, increases on each retry
    redelivered: bool  # the broker redelivered it (e.g. after a consumer crash)
    # The publisher as the broker authenticated it: RabbitMQ's `user_id` property, which the broker
    # refuses unless it names the connection's own user; kept across the transport's retries. None:
    # not given, or a transport that authenticates no publisher (embedded).
    user_id: str | None = None
    correlation_id: str | None = None   # the message's correlation id property (AMQP correlation_id)


CORRELATION_ID = "x-correlation-id"
"""A header key of publish / publish_many that a transport carries as the message's correlation id
property (AMQP `correlation_id`, what a client matches a reply by) rather than as a header, and hands
back as Delivery.correlation_id (the embedded transport keeps it as a header)."""


class Retry(Exception):
    """Handler asks for a delayed retry (transient failure)."""


class Unavailable(Retry):
    """A server the handler needs (the store) is away: not the message's fault, so it is tried
    again later without spending one of its attempts — an outage of any length parks nothing."""


class Reject(Exception):
    """Handler refuses the message for good: it goes straight to the parking queue."""


class TransportError(Exception):
    """The transport could not do what was asked (broker unreachable, file unusable, ...)."""


class PublishNotConfirmed(TransportError):
    """The broker did not take responsibility for a message (nacked, unroutable or timed out)."""


Handler = Callable[[Delivery], None]
"""Returns normally → ack; raises Retry (or any other exception) → delayed retry, up to
max_attempts, then parking; raises Reject → parking at once (the rule: settle.decide)."""

BatchHandler = Callable[[Sequence[Delivery]], None]
"""Returns normally → all acked; raises → each delivery is handed over again alone (a batch of one)
and settled by the Handler rules above, so one bad message neither holds back nor retries the rest."""

Item = tuple[str, str, bytes, Mapping[str, Any] | None]
"""One message for publish_many: (queue, message_id, body, headers)."""


class Transport(Protocol):
    def declare(self, queue: str) -> None:
        """Idempotent: the queue and its retry and parking companions."""

    def declare_entrance(self, queue: str) -> None:
        """Idempotent: the queue (declare), and a way in for publishers that may write only to it: on
        RabbitMQ a fanout exchange of the same name bound to it alone (write permission is granted
        on exchanges, so a grant on this one lets a client publish to this queue and no other); the
        other transports have no outside publishers, and only declare the queue."""

    def publish(self, queue: str, message_id: str, body: bytes, headers: Mapping[str, Any] | None = None) -> None:
        """Returns only once the broker has confirmed the message (durable).

        Header values are kept to what every transport carries: str, int, float, bool, None."""

    def publish_many(self, items: Sequence[Item]) -> None:
        """Publishes (queue, message_id, body, headers) items, confirmed as one batch."""

    def consume(self, queue: str, handler: Handler, *, stop: threading.Event, prefetch: int = 50) -> None:
        """Blocks until `stop` is set; survives broker restarts by reconnecting with backoff."""

    def consume_batch(self, queue: str, handler: BatchHandler, *, stop: threading.Event, prefetch: int = 200,
                      max_batch: int = 100, max_wait_ms: int = 5) -> None:
        """Like consume, but hands the handler up to max_batch deliveries at once: all that are ready,
        waiting at most max_wait_ms after the first for more. Handler returns → all are acked.
        Handler raises (anything) → each delivery is handed over again alone (a batch of one), in
        order, and settled by consume's per-message rules (Retry or other → delayed retry, then
        parking; Reject → parking), so one bad message neither holds back nor retries the others.
        A batch of one is settled by those rules directly, exactly as consume settles a message.
        prefetch below max_batch is raised to max_batch (logged). Blocks until stop; reconnects
        like consume."""

    def parked(self, queue: str) -> list[Delivery]:
        """What sits in the queue's parking companion, read without removing it."""

    def depth(self, queue: str) -> int:
        """Messages ready in the main queue."""

    def purge(self, queue: str) -> None:
        """Empties the main, retry and parking queues (tests and benchmarks)."""

    def delete(self, queue: str) -> None:
        """Removes the queue and its companions, with whatever they hold (a party leaves; tests)."""

    def ping(self) -> bool:
        """True when the broker answers (readiness)."""

    def close(self) -> None: ...


class ConsumesSingly:
    """`consume` for a transport that has `consume_batch`: batches of one, so that each transport
    has one consumer loop and one set of per-message rules."""

    consume_batch: Callable[..., None]

    def consume(self, queue: str, handler: Handler, *, stop: threading.Event, prefetch: int = 50) -> None:
        self.consume_batch(queue, lambda batch: handler(batch[0]), stop=stop, prefetch=prefetch,
                           max_batch=1, max_wait_ms=0)


def parking_queue(queue: str) -> str:
    return queue + PARKING_SUFFIX


def fixed_schedule(retry: RetryPolicy) -> RetryPolicy:
    """Checks a transport's retry policy: a failed message waits out one of delays_ms, a closed set
    (RabbitMQ holds one retry queue per delay), so a policy with a back-off is refused rather than
    quietly read as its schedule."""
    if retry.backoff is not None:
        raise ValueError("a transport retries on a fixed schedule (delays_ms), not a back-off")
    return retry


def batch_prefetch(queue: str, prefetch: int, max_batch: int, max_wait_ms: float) -> int:
    """Checks consume_batch's limits; returns the prefetch to use, at least max_batch (a consumer
    cannot be handed more at once than the broker lets it hold)."""
    if max_batch < 1 or prefetch < 1 or max_wait_ms < 0:
        raise ValueError("consume_batch needs max_batch >= 1, prefetch >= 1 and max_wait_ms >= 0")
    if prefetch < max_batch:
        log.warning("transport.prefetch_raised", queue=queue, prefetch=prefetch, max_batch=max_batch)
    return max(prefetch, max_batch)
