"""The one rule that settles a delivery, whichever transport carries it.

A transport runs the handler through `decide` and gets back what becomes of the delivery: acked,
tried again after a delay, or parked. Applying that is the transport's own business (RabbitMQ acks,
publishes a retry copy or dead-letters; the embedded transport writes rows; the memory transport
moves it between lists), so the rule and its log lines exist once.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import structlog

from hub.domain.retry import RetryPolicy
from hub.infra.transport.base import Delivery, Handler, Reject, Unavailable

log = structlog.get_logger(__name__)


class Action(enum.Enum):
    ACK = "ack"      # handled: the message leaves the queue
    RETRY = "retry"  # failed: handed over again after delay_ms, its attempt raised by one
    PARK = "park"    # refused, or failed on its last allowed attempt: to the parking queue


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_ms: int = 0  # RETRY only: how long the message waits before its next attempt
    counts: bool = True  # RETRY only: the attempt counts against the policy (not when a server was away)

    def next_attempt(self, attempt: int) -> int:
        """The attempt number the retried delivery carries."""
        return attempt + 1 if self.counts else attempt


ACK = Decision(Action.ACK)
PARK = Decision(Action.PARK)


def decide(delivery: Delivery, handler: Handler, retry: RetryPolicy) -> Decision:
    """Runs `handler` on one delivery. Returns normally → ACK; raises Reject → PARK at once; raises
    Unavailable → RETRY after the policy's first delay, the attempt not counted; raises anything
    else → RETRY after the policy's delay, or PARK once the policy is spent.

    What is not an Exception (a crash, KeyboardInterrupt) passes through undecided: the delivery
    stays unsettled, and the transport redelivers it."""
    try:
        handler(delivery)
    except Unavailable as exc:
        log.debug("transport.retry_unavailable", queue=delivery.queue, message_id=delivery.message_id,
                  error=type(exc.__cause__ or exc).__name__)
        return Decision(Action.RETRY, retry.delay_ms(1), counts=False)
    except Reject:
        log.warning("transport.rejected", queue=delivery.queue, message_id=delivery.message_id,
                    attempt=delivery.attempt)
        return PARK
    except Exception as exc:  # Retry or a failure: both are retried
        if retry.exhausted(delivery.attempt):
            log.warning("transport.parked", queue=delivery.queue, message_id=delivery.message_id,
                        attempt=delivery.attempt, error=type(exc).__name__)
            return PARK
        log.info("transport.retry", queue=delivery.queue, message_id=delivery.message_id,
                 attempt=delivery.attempt, error=type(exc).__name__)
        return Decision(Action.RETRY, retry.delay_ms(delivery.attempt))
    return ACK
