"""The broker port and its two adapters: RabbitMQ (amqp) and an embedded durable SQLite transport."""
from hub.domain.retry import RetryPolicy
from hub.infra.transport.base import (
    BatchHandler,
    Delivery,
    Handler,
    PublishNotConfirmed,
    Reject,
    Retry,
    Transport,
    TransportError,
    open_transport,
)

__all__ = [
    "BatchHandler",
    "Delivery",
    "Handler",
    "PublishNotConfirmed",
    "Reject",
    "Retry",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "open_transport",
]
