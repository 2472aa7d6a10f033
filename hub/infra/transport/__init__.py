"""The broker port and its adapters: RabbitMQ (amqp), an embedded durable SQLite transport, and an
in-memory one for tests (memory).

The port (base) knows no adapter; `open_transport` here picks one by the URL's scheme, importing it
only then (pika is not loaded by a hub on the embedded transport).
"""
import re
from typing import Any

from hub.domain.retry import RetryPolicy
from hub.infra.transport.base import (
    CORRELATION_ID,
    BatchHandler,
    Delivery,
    Handler,
    PublishNotConfirmed,
    Reject,
    Retry,
    Transport,
    TransportError,
    Unavailable,
)

__all__ = [
    "CORRELATION_ID",
    "BatchHandler",
    "Delivery",
    "Handler",
    "PublishNotConfirmed",
    "Reject",
    "Retry",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "Unavailable",
    "open_transport",
    "split_urls",
]


def split_urls(url: str) -> list[str]:
    """The addresses of a broker URL: one, or several separated by commas, one per node of a RabbitMQ
    cluster (`amqp://u:p@node1:5672/%2F,amqp://u:p@node2:5672/%2F`); a comma inside one URL (its
    password, say) stays, since only a comma followed by a scheme separates two."""
    return [u.strip() for u in re.split(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)", url.strip()) if u.strip()]


def open_transport(url: str, *, retry: RetryPolicy = RetryPolicy(), **kw: Any) -> Transport:
    """amqp:// or amqps:// → RabbitMQ; sqlite:///path or embedded:///path → the embedded SQLite transport;
    memory://name → the in-memory broker of that name in this process, memory:// → one of its own (tests)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("broker URL needs a scheme: amqp://, amqps://, sqlite:/// or embedded:///")
    if scheme in ("amqp", "amqps"):
        from hub.infra.transport.amqp import AmqpTransport

        return AmqpTransport(url, retry=retry, **kw)
    if scheme in ("sqlite", "embedded"):
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ValueError("the embedded transport needs a file: sqlite:///relative/path or sqlite:////absolute/path")
        from hub.infra.transport.embedded import EmbeddedTransport

        return EmbeddedTransport(rest[1:], retry=retry, **kw)
    if scheme == "memory":
        from hub.infra.transport.memory import MemoryTransport

        return MemoryTransport(rest, retry=retry, **kw)
    raise ValueError(f"unknown broker URL scheme {scheme!r}")
