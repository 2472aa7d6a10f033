"""What the transport tests share: a Broker that opens transports of one kind and names queues, the
`broker` fixture that parametrises the contract tests over the transports, and small waits.

RabbitMQ comes from HUB_TEST_AMQP_URL (the `amqp_url` fixture); when it is unreachable the tests
that need it fail, unless HUB_TEST_ALLOW_SKIP=1.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from hub.infra.transport import Delivery, RetryPolicy, open_transport

FAST = RetryPolicy(max_attempts=3, delays_ms=(50,))


class Crash(BaseException):
    """Stands for the consumer process dying mid-message: nothing in the transport catches it."""


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Broker:
    """Opens transports of one kind on one broker and names queues; cleans both up afterwards."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.opened: list = []
        self.queues: list[str] = []
        self.delays: set[int] = set()
        self.consumers: list[tuple[threading.Event, threading.Thread]] = []

    def open(self, retry: RetryPolicy = FAST, **kw):
        transport = open_transport(self.url, retry=retry, **kw)
        self.opened.append(transport)
        self.delays.update(retry.delays_ms)
        return transport

    def queue(self, transport) -> str:
        name = f"test.transport.{uuid.uuid4().hex[:12]}"
        self.queues.append(name)
        transport.declare(name)
        return name

    def consume(self, transport, queue: str, handler, prefetch: int = 50) -> tuple[threading.Event, threading.Thread]:
        stop = threading.Event()
        thread = threading.Thread(target=transport.consume, args=(queue, handler),
                                  kwargs={"stop": stop, "prefetch": prefetch}, daemon=True)
        thread.start()
        self.consumers.append((stop, thread))
        return stop, thread

    def cleanup(self) -> None:
        for stop, thread in self.consumers:
            stop.set()
        for stop, thread in self.consumers:
            thread.join(timeout=5)
        for transport in self.opened:
            transport.close()
        if self.kind == "amqp":
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(self.url))
            channel = connection.channel()
            for q in self.queues:
                for name in (q, f"{q}.parking", *(f"{q}.delay.{d}" for d in self.delays)):
                    channel.queue_delete(name)
            connection.close()
        if self.kind == "memory":  # a named broker lives as long as the process: leave it empty
            transport = open_transport(self.url)
            for q in self.queues:
                transport.delete(q)
            transport.close()


@pytest.fixture(params=["memory", "embedded", pytest.param("amqp", marks=pytest.mark.rabbitmq)])
def broker(request, tmp_path):
    if request.param == "memory":  # a broker of the test's own, that every transport it opens shares
        url = f"memory://transport-tests-{uuid.uuid4().hex[:12]}"
    elif request.param == "embedded":
        url = f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        url = request.getfixturevalue("amqp_url")
    b = Broker(request.param, url)
    yield b
    b.cleanup()


def collect(into: list[Delivery], fail: Callable[[Delivery], None] | None = None):
    def handler(d: Delivery) -> None:
        into.append(d)
        if fail is not None:
            fail(d)
    return handler


def consume_batch(broker, transport, queue: str, handler, max_batch: int = 20,
                  **kw) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=transport.consume_batch, args=(queue, handler),
                              kwargs={"stop": stop, "prefetch": 100, "max_batch": max_batch, **kw}, daemon=True)
    thread.start()
    broker.consumers.append((stop, thread))
    return stop, thread


def short_lease(broker) -> dict:
    """Embedded: a row that was not really deleted comes back within the test."""
    return {"lease_s": 0.3} if broker.kind == "embedded" else {}
