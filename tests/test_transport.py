"""The broker port on both of its transports: embedded (SQLite file) and RabbitMQ, real servers only.

RabbitMQ comes from HUB_TEST_AMQP_URL (the `amqp_url` fixture); when it is unreachable these tests
fail, unless HUB_TEST_ALLOW_SKIP=1.
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from hub.domain.retry import Backoff
from hub.infra.transport import Delivery, PublishNotConfirmed, Reject, Retry, RetryPolicy, TransportError, open_transport

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
                for name in (q, f"{q}.parking", *(f"{q}.retry.{d}" for d in self.delays)):
                    channel.queue_delete(name)
            connection.close()


@pytest.fixture(params=["embedded", pytest.param("amqp", marks=pytest.mark.rabbitmq)])
def broker(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.db'}" if request.param == "embedded" else request.getfixturevalue("amqp_url")
    b = Broker(request.param, url)
    yield b
    b.cleanup()


def collect(into: list[Delivery], fail: Callable[[Delivery], None] | None = None):
    def handler(d: Delivery) -> None:
        into.append(d)
        if fail is not None:
            fail(d)
    return handler


# --- the happy path ---------------------------------------------------------------------------

def test_publish_consume_ack(broker):
    # a short embedded lease: a row that was not really deleted would come back within the test
    t = broker.open(**({"lease_s": 0.3} if broker.kind == "embedded" else {}))
    q = broker.queue(t)
    t.declare(q)  # idempotent
    t.publish(q, "m-1", b"hello")
    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen))
    wait_until(lambda: len(seen) == 1)
    d = seen[0]
    assert (d.queue, d.message_id, d.body, d.attempt, d.redelivered) == (q, "m-1", b"hello", 1, False)
    wait_until(lambda: t.depth(q) == 0)
    time.sleep(0.6)
    assert len(seen) == 1, "an acked message is not delivered again"
    assert t.parked(q) == []


def test_headers_and_message_id_survive(broker):
    t = broker.open()
    q = broker.queue(t)
    headers = {"flow": "single-permit.admissible-to-dvz", "correlation-id": "c-42", "hop": 3, "urgent": True}
    t.publish(q, "msg-7f3a", b"\x00\x01binary", headers)
    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen))
    wait_until(lambda: seen)
    assert seen[0].message_id == "msg-7f3a"
    assert seen[0].body == b"\x00\x01binary"
    assert dict(seen[0].headers) == headers


def test_single_consumer_sees_publish_order(broker):
    t = broker.open()
    q = broker.queue(t)
    for i in range(60):
        t.publish(q, f"m{i}", str(i).encode())
    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen), prefetch=10)
    wait_until(lambda: len(seen) == 60)
    assert [d.message_id for d in seen] == [f"m{i}" for i in range(60)]


def test_publish_many_to_several_queues(broker):
    t = broker.open()
    a, b = broker.queue(t), broker.queue(t)
    items = [(a if i % 2 else b, f"m{i}", f"body {i}".encode(), {"i": i}) for i in range(400)]
    t.publish_many(items)
    t.publish_many([])
    wait_until(lambda: t.depth(a) == 200 and t.depth(b) == 200)
    seen_a: list[Delivery] = []
    seen_b: list[Delivery] = []
    broker.consume(t, a, collect(seen_a))
    broker.consume(t, b, collect(seen_b))
    wait_until(lambda: len(seen_a) == 200 and len(seen_b) == 200)
    assert {d.message_id for d in seen_a} == {f"m{i}" for i in range(1, 400, 2)}
    assert all(d.body == f"body {d.headers['i']}".encode() for d in seen_a + seen_b)


def test_competing_consumers_each_message_once(broker):
    t = broker.open()
    q = broker.queue(t)
    t.publish_many([(q, f"m{i}", b"x", None) for i in range(300)])
    seen: list[Delivery] = []
    for _ in range(3):
        broker.consume(t, q, collect(seen), prefetch=20)
    wait_until(lambda: len(seen) >= 300)
    time.sleep(0.3)
    assert sorted(d.message_id for d in seen) == sorted(f"m{i}" for i in range(300))


def test_depth_and_purge(broker):
    t = broker.open()
    q = broker.queue(t)
    assert t.depth(q) == 0
    assert t.depth(f"test.transport.never-declared-{uuid.uuid4().hex[:6]}") == 0
    t.publish_many([(q, f"m{i}", b"x", None) for i in range(3)])
    wait_until(lambda: t.depth(q) == 3)
    t.purge(q)
    assert t.depth(q) == 0
    t.publish(q, "after", b"x")
    wait_until(lambda: t.depth(q) == 1)


# --- retries and parking ----------------------------------------------------------------------

def test_retry_redelivers_with_next_attempt(broker):
    t = broker.open()
    q = broker.queue(t)
    t.publish(q, "m-1", b"payload", {"flow": "f"})

    def fail_first(d: Delivery) -> None:
        if d.attempt == 1:
            raise Retry("source system down")

    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen, fail_first))
    wait_until(lambda: len(seen) == 2)
    first, second = seen
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.message_id == "m-1" and second.body == b"payload"
    assert dict(second.headers) == {"flow": "f"}, "retry bookkeeping stays out of the headers"
    time.sleep(0.3)
    assert len(seen) == 2 and t.parked(q) == []


def test_exhausted_attempts_park_the_message(broker):
    t = broker.open()  # max_attempts=3
    q = broker.queue(t)
    t.publish(q, "poison", b"x", {"k": "v"})

    def always_fail(d: Delivery) -> None:
        raise ValueError("any exception counts as a failure")

    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen, always_fail))
    wait_until(lambda: len(t.parked(q)) == 1)
    assert [d.attempt for d in seen] == [1, 2, 3]
    parked = t.parked(q)
    assert [(d.message_id, d.body, d.attempt, dict(d.headers)) for d in parked] == [("poison", b"x", 3, {"k": "v"})]
    assert len(t.parked(q)) == 1, "reading the parking queue leaves it in place"
    assert t.depth(q) == 0


def test_reject_parks_at_once(broker):
    t = broker.open()
    q = broker.queue(t)
    t.publish(q, "bad", b"not a contract")

    def refuse(d: Delivery) -> None:
        raise Reject("contract violation")

    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen, refuse))
    wait_until(lambda: len(t.parked(q)) == 1)
    time.sleep(0.2)
    assert [d.attempt for d in seen] == [1]
    assert t.parked(q)[0].message_id == "bad"
    t.purge(q)
    assert t.parked(q) == []


# --- crashes, restarts, stopping --------------------------------------------------------------

def test_unacked_message_is_redelivered_after_consumer_crash(broker):
    # embedded: the crashed consumer's lease runs out; amqp: its connection closes without an ack
    t = broker.open(**({"lease_s": 0.5} if broker.kind == "embedded" else {}))
    q = broker.queue(t)
    t.publish(q, "m-1", b"x")
    t.publish(q, "m-2", b"y")

    def crash(d: Delivery) -> None:
        raise Crash

    with pytest.raises(Crash):
        t.consume(q, crash, stop=threading.Event())
    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen))
    wait_until(lambda: len(seen) == 2)
    by_id = {d.message_id: d for d in seen}
    assert (by_id["m-1"].attempt, by_id["m-1"].redelivered) == (1, True)
    if broker.kind == "embedded":
        # the handler never saw m-2: handed back at once, not flagged (RabbitMQ flags every
        # prefetched message that comes back, seen or not)
        assert by_id["m-2"].redelivered is False


@pytest.mark.parametrize("batched", [False, True], ids=["consume", "consume_batch"])
def test_consume_returns_promptly_when_stopped(broker, batched):
    t = broker.open()
    q = broker.queue(t)
    if batched:
        stop, thread = consume_batch(broker, t, q, lambda b: None)
    else:
        stop, thread = broker.consume(t, q, collect([]))
    time.sleep(0.3)
    started = time.monotonic()
    stop.set()
    thread.join(timeout=3)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0


def test_ping_and_close(broker):
    t = broker.open()
    assert t.ping() is True
    t.close()
    assert t.ping() is False
    with pytest.raises(TransportError):
        t.publish("anything", "m", b"x")


def test_embedded_survives_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.db'}"
    t = open_transport(url, retry=FAST)
    t.publish_many([("q", f"m{i}", f"{i}".encode(), {"i": i}) for i in range(5)])
    t.publish("q", "m5", b"5", {"i": 5})
    t.close()

    t = open_transport(url, retry=FAST)
    assert t.depth("q") == 6
    seen: list[Delivery] = []
    stop = threading.Event()
    thread = threading.Thread(target=t.consume, args=("q", collect(seen)), kwargs={"stop": stop})
    thread.start()
    wait_until(lambda: len(seen) == 6)
    stop.set()
    thread.join(timeout=3)
    assert [(d.message_id, d.body, d.headers["i"]) for d in seen] == [(f"m{i}", f"{i}".encode(), i) for i in range(6)]
    t.close()
    assert open_transport(url).depth("q") == 0


def test_embedded_publish_wakes_an_idle_consumer(tmp_path):
    # idle waits of 3 s: only the wake-up can make delivery fast
    t = open_transport(f"sqlite:///{tmp_path / 'broker.db'}", idle_min_s=3.0, idle_max_s=3.0)
    seen: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=t.consume, args=("q", lambda d: seen.append(time.monotonic())),
                              kwargs={"stop": stop})
    thread.start()
    time.sleep(0.5)  # long enough for the consumer to be in its longest idle wait
    sent = time.monotonic()
    t.publish("q", "m", b"x")
    wait_until(lambda: seen, timeout=5)
    assert seen[0] - sent < 0.5
    stop.set()
    t.close()  # wakes the consumer too
    thread.join(timeout=1)
    assert not thread.is_alive()


def test_embedded_refuses_an_unknown_file_version(tmp_path):
    path = tmp_path / "broker.db"
    open_transport(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(TransportError, match="schema version 99"):
        open_transport(f"sqlite:///{path}")


def test_open_transport_picks_by_scheme(tmp_path):
    from hub.infra.transport.embedded import EmbeddedTransport

    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"embedded:///{tmp_path / 'b.db'}"):
        t = open_transport(url)
        assert isinstance(t, EmbeddedTransport)
        t.close()
    with pytest.raises(ValueError):
        open_transport("kafka://somewhere")
    with pytest.raises(ValueError):
        open_transport("sqlite:///:memory:")


def test_transports_refuse_a_back_off_retry_policy(tmp_path):
    # retries wait out delays_ms (one RabbitMQ retry queue per delay): a back-off cannot be honoured
    with pytest.raises(ValueError, match="fixed schedule"):
        open_transport(f"sqlite:///{tmp_path / 'a.db'}", retry=RetryPolicy(backoff=Backoff()))


# --- RabbitMQ only ----------------------------------------------------------------------------

@pytest.mark.rabbitmq
def test_amqp_unroutable_publish_raises(amqp_url):
    t = open_transport(amqp_url, retry=FAST)
    try:
        missing = f"test.transport.missing-{uuid.uuid4().hex[:8]}"
        with pytest.raises(PublishNotConfirmed):
            t.publish(missing, "m", b"x")
        with pytest.raises(PublishNotConfirmed):
            t.publish_many([(missing, "m", b"x", None)])
    finally:
        t.close()


def _close_connections_named(name: str) -> int:
    listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if name in line]
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test: broker drops the connection"],
                       capture_output=True, timeout=30, check=True)
    return len(pids)


@pytest.mark.rabbitmq
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to drop connections")
def test_amqp_consumer_and_publishers_reconnect(amqp_url, tmp_path):
    b = Broker("amqp", amqp_url)
    name = f"transport-test-{uuid.uuid4().hex[:8]}"
    try:
        t = b.open(connection_name=name)
        q = b.queue(t)
        seen: list[Delivery] = []
        b.consume(t, q, collect(seen))
        t.publish(q, "before", b"x")
        t.publish_many([(q, "before-batch", b"x", None)])
        wait_until(lambda: len(seen) == 2)

        assert _close_connections_named(name) >= 3  # consumer, publisher, batch publisher
        t.publish(q, "after", b"x")
        t.publish_many([(q, "after-batch", b"x", None)])
        wait_until(lambda: {"after", "after-batch"} <= {d.message_id for d in seen}, timeout=20)
    finally:
        b.cleanup()


# --- batch consumption --------------------------------------------------------------------------

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


def test_burst_is_handed_over_in_batches_once_each(broker):
    t = broker.open(**short_lease(broker))
    q = broker.queue(t)
    t.publish_many([(q, f"m-{i}", f"body {i}".encode(), None) for i in range(250)])
    batches: list[list[Delivery]] = []
    consume_batch(broker, t, q, batches.append)
    wait_until(lambda: sum(map(len, batches)) >= 250)
    wait_until(lambda: t.depth(q) == 0)
    time.sleep(0.5)  # an unacked message would come back (embedded lease) or stay counted
    seen = [d.message_id for b in batches for d in b]
    assert sorted(seen) == sorted(f"m-{i}" for i in range(250)) and len(seen) == 250
    assert 1 < max(map(len, batches)) <= 20
    assert all(d.body == f"body {d.message_id[2:]}".encode() and d.attempt == 1 for b in batches for d in b)
    assert t.depth(q) == 0 and t.parked(q) == []


def test_poison_message_stands_alone_and_is_parked(broker):
    t = broker.open()  # FAST: max_attempts=3
    q = broker.queue(t)
    t.publish_many([(q, f"m-{i}", b"x", None) for i in range(10)])
    delivered: list[Delivery] = []
    poison_calls: list[tuple[int, int]] = []  # (attempt, size of the batch it came in)
    calls: list[list[str]] = []

    def handler(batch):
        calls.append([d.message_id for d in batch])
        if any(d.message_id == "m-4" for d in batch):
            poison_calls.extend((d.attempt, len(batch)) for d in batch if d.message_id == "m-4")
            raise RuntimeError("cannot handle m-4")
        delivered.extend(batch)

    consume_batch(broker, t, q, handler)
    wait_until(lambda: len(t.parked(q)) == 1, timeout=15)
    others = [f"m-{i}" for i in range(10) if i != 4]
    assert sorted(d.message_id for d in delivered) == sorted(others), "the others once each, never retried"
    assert all(d.attempt == 1 for d in delivered)
    assert [(d.message_id, d.attempt) for d in t.parked(q)] == [("m-4", FAST.max_attempts)]
    # after the failing batch m-4 is handed over alone, at every attempt up to the last
    assert [c for c in poison_calls if c[1] == 1] == [(a, 1) for a in range(1, FAST.max_attempts + 1)]
    failed = [i for i, ids in enumerate(calls) if "m-4" in ids and len(ids) > 1]
    assert len(failed) == 1, "m-4 arrived in one batch of several (published together)"
    ids = calls[failed[0]]
    assert calls[failed[0] + 1:failed[0] + 1 + len(ids)] == [[m] for m in ids], "then each alone, in order"
    assert t.depth(q) == 0


def test_reject_in_a_batch_parks_at_once(broker):
    t = broker.open()
    q = broker.queue(t)
    t.publish_many([(q, "good", b"x", None), (q, "bad", b"x", None), (q, "fine", b"x", None)])
    delivered: list[str] = []
    bad_calls: list[int] = []

    def handler(batch):
        if any(d.message_id == "bad" for d in batch):
            bad_calls.append(len(batch))
            raise Reject("unreadable")
        delivered.extend(d.message_id for d in batch)

    consume_batch(broker, t, q, handler)
    wait_until(lambda: len(t.parked(q)) == 1)
    time.sleep(0.2)  # a retry (50 ms) would show by now
    assert sorted(delivered) == ["fine", "good"]
    assert bad_calls[-1] == 1 and len([n for n in bad_calls if n == 1]) == 1, "refused alone, once"
    assert [(d.message_id, d.attempt) for d in t.parked(q)] == [("bad", 1)]
    assert t.depth(q) == 0


def test_batches_after_a_failed_batch_are_acked(broker):
    # the fallback settles one delivery at a time; the batches after it must still ack all theirs
    t = broker.open(**short_lease(broker))
    q = broker.queue(t)
    t.publish_many([(q, f"a-{i}", b"x", None) for i in range(10)])
    done: list[str] = []
    failed_once = threading.Event()

    def handler(batch):
        if len(batch) > 1 and not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("the first batch fails as a whole")
        done.extend(d.message_id for d in batch)

    stop, thread = consume_batch(broker, t, q, handler)
    wait_until(lambda: len(done) == 10)
    assert failed_once.is_set()
    t.publish_many([(q, f"b-{i}", b"x", None) for i in range(30)])
    wait_until(lambda: len(done) == 40)
    stop.set()
    thread.join(timeout=3)
    time.sleep(0.5)  # amqp: unacked deliveries are back in the queue; embedded: their lease ran out
    assert t.depth(q) == 0 and t.parked(q) == []
    assert sorted(done) == sorted([f"a-{i}" for i in range(10)] + [f"b-{i}" for i in range(30)])


def test_idle_batch_consumer_hands_over_at_once_and_gathers_a_trickle(broker):
    t = broker.open()
    q = broker.queue(t)
    got: list[tuple[float, list[str]]] = []
    consume_batch(broker, t, q, lambda b: got.append((time.monotonic(), [d.message_id for d in b])),
                  max_wait_ms=300)
    time.sleep(0.5)  # idle: in its longest wait
    sent = time.monotonic()
    t.publish(q, "first", b"x")
    time.sleep(0.02)
    t.publish(q, "second", b"x")  # within max_wait_ms of the first: same batch
    wait_until(lambda: got)
    assert got[0][1] == ["first", "second"]
    assert got[0][0] - sent < 0.3 + 0.4  # max_wait_ms and the idle poll (embedded: woken at once)

    got.clear()
    time.sleep(0.5)
    sent = time.monotonic()
    t.publish(q, "alone", b"x")
    wait_until(lambda: got)
    assert got[0][1] == ["alone"] and got[0][0] - sent < 0.3 + 0.4


def test_crash_mid_batch_leaves_the_whole_batch_for_redelivery(broker):
    t = broker.open(**({"lease_s": 0.5} if broker.kind == "embedded" else {}))
    q = broker.queue(t)
    t.publish_many([(q, f"m-{i}", b"x", None) for i in range(5)])

    def crash(batch):
        raise Crash

    with pytest.raises(Crash):
        t.consume_batch(q, crash, stop=threading.Event(), max_wait_ms=50)
    seen: list[Delivery] = []
    consume_batch(broker, t, q, lambda b: seen.extend(b))
    wait_until(lambda: len(seen) == 5)
    assert sorted(d.message_id for d in seen) == [f"m-{i}" for i in range(5)]
    assert all(d.attempt == 1 for d in seen) and any(d.redelivered for d in seen)


def test_embedded_batch_slices_go_back_when_the_lease_runs_low(tmp_path):
    # one claim of 10, slices of 5; the first slice takes most of the lease, so the second goes
    # back untouched and comes again from a fresh claim: once each, not flagged as redelivered
    t = open_transport(f"sqlite:///{tmp_path / 'broker.db'}", retry=FAST, lease_s=1.0)
    t.publish_many([("q", f"m-{i}", b"x", None) for i in range(10)])
    batches: list[list[Delivery]] = []
    claims: list[int] = []  # sizes of the claims that found rows
    claim = t._claim

    def counting_claim(queue, limit):
        rows = claim(queue, limit)
        if rows:
            claims.append(len(rows))
        return rows

    t._claim = counting_claim

    def slow_first(batch):
        batches.append(list(batch))
        if len(batches) == 1:
            time.sleep(0.85)

    stop = threading.Event()
    thread = threading.Thread(target=t.consume_batch, args=("q", slow_first),
                              kwargs={"stop": stop, "prefetch": 10, "max_batch": 5}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: sum(map(len, batches)) >= 10)
        time.sleep(1.2)  # past the first claim's lease: nothing of it comes back
        assert sorted(d.message_id for b in batches for d in b) == sorted(f"m-{i}" for i in range(10))
        assert not any(d.redelivered for b in batches for d in b)
        assert claims == [10, 5], "the second slice was claimed afresh"
        assert t.depth("q") == 0
    finally:
        stop.set()
        thread.join(timeout=3)
        t.close()


def test_consume_batch_limits(broker):
    t = broker.open()
    q = broker.queue(t)
    for bad in ({"max_batch": 0}, {"max_wait_ms": -1}, {"prefetch": 0}):
        with pytest.raises(ValueError):
            t.consume_batch(q, lambda b: None, stop=threading.Event(), **bad)
    # prefetch below max_batch is raised to it, not refused
    t.publish_many([(q, f"m-{i}", b"x", None) for i in range(40)])
    sizes: list[int] = []
    consume_batch(broker, t, q, lambda b: sizes.append(len(b)), max_batch=40, prefetch=5)
    wait_until(lambda: sum(sizes) == 40)
    assert max(sizes) <= 40
