"""What only one transport does: the embedded file (restart, wake-up, version, lease), the memory
broker's names, RabbitMQ (unroutable messages, dropped connections), and picking a transport by URL."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from hub.domain.retry import Backoff
from hub.infra.transport import (
    Delivery,
    PublishNotConfirmed,
    RetryPolicy,
    TransportError,
    open_transport,
)
from tests.support.transport import FAST, Broker, collect, wait_until


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
    time.sleep(0.2)  # long enough for the consumer to be in its idle wait (its first is already 3 s)
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


# --- the memory transport only ---------------------------------------------------------------

def test_memory_names_a_broker_shared_in_the_process():
    from hub.infra.transport.memory import MemoryTransport

    url = f"memory://transport-tests-{uuid.uuid4().hex[:12]}"
    a, b = open_transport(url), open_transport(url)
    assert isinstance(a, MemoryTransport)
    a.declare("q")
    a.publish("q", "m", b"x")
    assert b.depth("q") == 1, "one name, one broker"
    assert open_transport(f"memory://transport-tests-{uuid.uuid4().hex[:12]}").depth("q") == 0
    a.close()
    assert b.depth("q") == 1, "closing one transport leaves the broker to the others"
    b.delete("q")
    b.close()

    own, other = open_transport("memory://"), open_transport("memory://")
    own.declare("q")
    own.publish("q", "m", b"x")
    assert (own.depth("q"), other.depth("q")) == (1, 0), "plain memory://: a broker of its own"


def test_memory_publish_to_an_undeclared_queue_raises():
    # as RabbitMQ: a hub that forgets to declare a queue fails its tests on memory:// too
    t = open_transport("memory://")
    t.declare("known")
    with pytest.raises(PublishNotConfirmed, match="no queue 'missing'"):
        t.publish("missing", "m", b"x")
    with pytest.raises(PublishNotConfirmed):
        t.publish_many([("known", "m-1", b"x", None), ("missing", "m-2", b"x", None)])
    assert t.depth("known") == 0, "a batch is published whole or not at all"


def test_memory_close_stops_its_consumers_at_once():
    t = open_transport("memory://")
    t.declare("q")
    stop = threading.Event()
    thread = threading.Thread(target=t.consume, args=("q", lambda d: None), kwargs={"stop": stop}, daemon=True)
    thread.start()
    time.sleep(0.05)  # the consumer is idle
    started = time.monotonic()
    t.close()
    thread.join(timeout=1)
    assert not thread.is_alive() and time.monotonic() - started < 0.05


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
        # past the first claim's 1 s lease (it began at least 0.85 s ago) and one idle poll (0.2 s):
        # nothing of it comes back
        time.sleep(0.5)
        assert sorted(d.message_id for b in batches for d in b) == sorted(f"m-{i}" for i in range(10))
        assert not any(d.redelivered for b in batches for d in b)
        assert claims == [10, 5], "the second slice was claimed afresh"
        assert t.depth("q") == 0
    finally:
        stop.set()
        thread.join(timeout=3)
        t.close()
