"""The production hub driven through its AMQP ingress (hub.messaging.queue_ingress): client threads
publish the same synthetic applications as the in-process run on the portal's ingress exchange, as
the portal's own broker user (user_id set, publisher confirms, a batch confirmed before the next);
one thread reads the replies; recipient threads read their inboxes and acknowledge, as in-process.

The portal is given `ingress: queue` in a copy of contracts/, and a broker user named `portal` with
the permissions `wib-hub broker users` prints, made with rabbitmqctl (the broker on this host) and
deleted afterwards. Figures as in-process: msgs/s = messages ÷ (last ack − first publish), latency
publish → ack of the delivery; "in submit()" is publish → reply (what a party waits for its answer).
The clients, the reply reader and the hub share this process (and its GIL), as in-process clients do.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika

from bench.measure import CpuMeter
from bench.throughput.core import (
    EVENTS_PER_MESSAGE, FLOW, REGIONS, Result, application, check_store, hub_result, payloads, probe, split,
    run_threads, stage_latencies, wait_all,
)
from bench.throughput.in_process import Inboxes
from bench.throughput.setup import HubSetup
from hub.bootstrap import build_hub
from hub.domain.flows import region_party
from hub.messaging.queues import broker_grants, ingress_queue, reply_queue
from hub.registry import default_contracts_dir

PARTY = "portal"
BATCH = 100   # messages a client publishes before waiting for their confirms


def _contracts(into: Path) -> Path:
    contracts = into / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    path = contracts / "parties.yaml"
    text = path.read_text()
    start = text.index(f"id: {PARTY}\n")
    end = text.index("\n", text.index("delivery: ", start))
    path.write_text(text[:end] + "\n    ingress: queue" + text[end:])
    return contracts


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _party_url(url: str, password: str) -> str:
    parts = urlsplit(url.split(",")[0])
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, f"{PARTY}:{quote(password)}@{host}", parts.path, parts.query, ""))


class Publisher:
    """One client's connection as the party: SelectConnection, asynchronous confirms, batches."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange, self.ready, self.confirmed = exchange, threading.Event(), threading.Condition()
        self.acked = self.sent = 0
        self.failed: str | None = None
        self.conn = pika.SelectConnection(pika.URLParameters(url), on_open_callback=self._open,
                                          on_open_error_callback=lambda _c, e: self._fail(repr(e)),
                                          on_close_callback=lambda _c, e: self._fail(repr(e)))
        self.thread = threading.Thread(target=self.conn.ioloop.start, daemon=True, name="ingress-publisher")
        self.thread.start()
        if not self.ready.wait(10) or self.failed:
            raise RuntimeError(f"publisher: {self.failed or 'timeout'}")

    def _fail(self, why: str) -> None:
        self.failed = why
        self.ready.set()
        with self.confirmed:
            self.confirmed.notify_all()

    def _open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._channel)

    def _channel(self, ch: Any) -> None:
        self.ch = ch
        ch.confirm_delivery(ack_nack_callback=self._confirm, callback=lambda _f: self.ready.set())

    def _confirm(self, frame: Any) -> None:
        m = frame.method
        if not isinstance(m, pika.spec.Basic.Ack):
            self._fail("nacked")
            return
        with self.confirmed:
            self.acked = m.delivery_tag if m.multiple else self.acked + 1
            self.confirmed.notify_all()

    def publish(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Publishes (message id, body) items and returns once the broker confirmed them all."""
        def send() -> None:
            for mid, body in items:
                self.ch.basic_publish(self.exchange, "", body, pika.BasicProperties(
                    delivery_mode=2, message_id=mid, user_id=PARTY, content_type="application/json"))
        target = self.sent + len(items)
        self.sent = target
        self.conn.ioloop.add_callback_threadsafe(send)
        with self.confirmed:
            while self.acked < target and not self.failed:
                self.confirmed.wait(1)
        if self.failed:
            raise RuntimeError(f"publisher: {self.failed}")

    def close(self) -> None:
        self.conn.ioloop.add_callback_threadsafe(self.conn.close)
        self.thread.join(5)


class Replies:
    """One thread reading the party's reply queue: when each answer came, and any that was not 202."""

    def __init__(self, url: str, queue: str) -> None:
        self.at: dict[str, float] = {}
        self.refused: list[dict] = []
        self.stop = threading.Event()
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=500)
        self.ch.basic_consume(queue, self._take)
        self.thread = threading.Thread(target=self._run, daemon=True, name="ingress-replies")
        self.thread.start()

    def _take(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        answer = json.loads(body)
        if answer["status"] != 202:
            self.refused.append(answer)
        self.at[props.correlation_id] = time.perf_counter()
        ch.basic_ack(method.delivery_tag)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.conn.process_data_events(time_limit=0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.conn.close()


def run_amqp_ingress(config: str, setup: HubSetup, args: argparse.Namespace) -> Result:
    if config != "production":
        raise ValueError("the AMQP ingress is measured on the production configuration (RabbitMQ)")
    tmp = Path(tempfile.mkdtemp(prefix="wib-bench-ingress-"))
    settings = setup.settings.model_copy(update={"contracts_dir": _contracts(tmp)})
    hub = build_hub(settings)
    prefix, password = settings.queue_prefix, uuid.uuid4().hex
    grant = next(p for p in broker_grants(hub.registry.parties.values(), prefix)["permissions"]
                 if p["user"] == PARTY)
    _rabbitmqctl("add_user", PARTY, password)
    inboxes = replies = None
    publishers: list[Publisher] = []
    try:
        _rabbitmqctl("set_permissions", "-p", "/", PARTY, grant["configure"], grant["write"], grant["read"])
        hub.start_workers(routers=args.routers)
        while not hub.runtime.threads["queues"].done:   # the ingress exchange is declared there
            time.sleep(0.05)
        url = _party_url(settings.resolved_broker_url(), password)
        replies = Replies(url, reply_queue(PARTY, prefix))
        publishers = [Publisher(url, ingress_queue(PARTY, prefix)) for _ in range(args.clients)]
        inboxes = Inboxes(hub, [region_party(r) for r in REGIONS], poll_s=args.poll_ms / 1000)
        serial = iter(range(10**9))

        def load(batch: list[dict[str, Any]]) -> dict[str, float]:
            submitted: dict[str, float] = {}

            def client(work: tuple[Publisher, Sequence[dict[str, Any]]]) -> None:
                publisher, chunk = work
                for i in range(0, len(chunk), BATCH):
                    items = []
                    for payload in chunk[i:i + BATCH]:
                        mid = f"bench-{next(serial)}"
                        items.append((mid, json.dumps({"flow": FLOW, "payload": payload, "message_id": mid}).encode()))
                    t0 = time.perf_counter()
                    publisher.publish(items)
                    submitted.update((mid, t0) for mid, _ in items)

            run_threads(client, list(zip(publishers, split(batch, args.clients))), "client")
            return submitted

        warm = load(payloads(args.warmup, offset=1_000_000))
        wait_all(list(warm), inboxes.acked, args.timeout, f"{config} ingress warm-up")
        cpu = CpuMeter()
        submitted = load(payloads(args.messages, offset=0))
        wait_all(list(submitted), inboxes.acked, args.timeout, f"{config} ingress")
        usage = cpu.stop()
        wait_all(list(submitted), replies.at, args.timeout, f"{config} ingress replies")
        if replies.refused:
            raise RuntimeError(f"{len(replies.refused)} refused, e.g. {replies.refused[0]}")
        if inboxes.errors:
            raise inboxes.errors[0]

        def send_one(i: int) -> str:
            mid = f"probe-{i}"
            body = {"flow": FLOW, "payload": application(2_000_000 + i, turn=i), "message_id": mid}
            publishers[0].publish([(mid, json.dumps(body).encode())])
            return mid

        unloaded = probe(send_one, inboxes.acked, args.probe) if args.probe else (float("nan"),) * 2
        result = hub_result(f"hub, {config}, AMQP ingress", submitted, replies.at, inboxes.acked, usage, unloaded)
        inboxes.close()
        result.notes.update(check_store(config, hub.engine, settings, args.warmup + args.messages + args.probe,
                                        EVENTS_PER_MESSAGE))
        result.notes["stages"] = stage_latencies(hub.engine, list(submitted))
        result.notes["versions"] = setup.versions
        return result
    finally:
        for p in publishers:
            p.close()
        if replies is not None:
            replies.close()
        if inboxes is not None:
            inboxes.close()
        for q in (ingress_queue(PARTY, prefix), reply_queue(PARTY, prefix)):
            hub.transport.delete(q)
        hub.close()
        _rabbitmqctl("delete_user", PARTY)
        shutil.rmtree(tmp, ignore_errors=True)
