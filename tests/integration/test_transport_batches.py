"""consume_batch on every transport: batches gathered and acked together, a failing batch handed over
again one delivery at a time, crashes mid-batch."""
from __future__ import annotations

import threading
import time

import pytest

from hub.infra.transport import Delivery, Reject
from tests.support.transport import (
    FAST,
    Crash,
    consume_batch,
    short_lease,
    wait_until,
)


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
    time.sleep(0.35)  # amqp: unacked deliveries are back in the queue; embedded: their 0.3 s lease ran out
    assert t.depth(q) == 0 and t.parked(q) == []
    assert sorted(done) == sorted([f"a-{i}" for i in range(10)] + [f"b-{i}" for i in range(30)])


def test_idle_batch_consumer_hands_over_at_once_and_gathers_a_trickle(broker):
    t = broker.open()
    q = broker.queue(t)
    got: list[tuple[float, list[str]]] = []
    consume_batch(broker, t, q, lambda b: got.append((time.monotonic(), [d.message_id for d in b])),
                  max_wait_ms=300)
    time.sleep(0.35)  # idle: in its longest wait (embedded: 0.02 s doubling to 0.2 s, reached after 0.3 s)
    sent = time.monotonic()
    t.publish(q, "first", b"x")
    time.sleep(0.02)
    t.publish(q, "second", b"x")  # within max_wait_ms of the first: same batch
    wait_until(lambda: got)
    assert got[0][1] == ["first", "second"]
    assert got[0][0] - sent < 0.3 + 0.4  # max_wait_ms and the idle poll (embedded: woken at once)

    got.clear()
    time.sleep(0.35)  # idle again, as above
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
