"""The broker port's contract, on every transport: memory, embedded (SQLite file) and RabbitMQ (a real
server, not a mock).

Batch consumption has its own file (test_transport_batches.py); what only one transport does is in
test_transport_specific.py.
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from hub.infra.transport import Delivery, Reject, Retry, TransportError, Unavailable
from tests.support.transport import Crash, collect, consume_batch, wait_until

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
    time.sleep(0.5)  # embedded: a row not deleted is claimed again by now (0.3 s lease, then one idle poll)
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
    time.sleep(0.2)  # a third attempt (50 ms) would show by now
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


def test_a_server_away_spends_no_attempt_so_a_long_outage_parks_nothing(broker):
    t = broker.open()  # max_attempts=3
    q = broker.queue(t)
    t.publish(q, "m-out", b"x")

    def store_away(d: Delivery) -> None:
        if len(seen) <= 6:   # twice the attempts the policy allows
            raise Unavailable("OperationalError")

    seen: list[Delivery] = []
    broker.consume(t, q, collect(seen, store_away))
    wait_until(lambda: len(seen) == 7)
    time.sleep(0.2)
    assert [d.attempt for d in seen] == [1] * 7 and len(seen) == 7
    assert t.parked(q) == [] and t.depth(q) == 0


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
