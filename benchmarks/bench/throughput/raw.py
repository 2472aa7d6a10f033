"""The raw pika baselines: what the broker does with the hub's durability and nothing else (a
durable quorum queue, persistent messages, publisher confirms, manual acks with the hub's prefetch,
bodies the hub's envelopes). The two publishers, confirm/msg and batched, are described in
benchmarks/throughput.py.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pika

from bench.measure import CpuMeter
from bench.services import delete_queues
from bench.throughput.core import FLOW, REGIONS, Result, finish, payloads, probe, run_threads, split, wait_all
from hub.domain.envelope import Envelope, new_id
from hub.domain.flows import region_party

MODES = ("confirm/msg", "batched")


def envelope_bodies(count: int) -> list[bytes]:
    """The bytes the hub's relay would put on the route queue for the same applications."""
    return [Envelope(message_id=new_id(), flow_id=FLOW, sender="portal",
                     recipients=(region_party(REGIONS[i % len(REGIONS)]),), purpose=2, correlation_id=new_id(),
                     payload=p, dossier_id=new_id()).to_bytes()
            for i, p in enumerate(payloads(count, offset=0))]


def persistent(message_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id)


class RawConsumer:
    """Manual acks, one per message, with the hub's prefetch."""

    def __init__(self, url: str, queue: str, prefetch: int) -> None:
        self.acked: dict[str, float] = {}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url, queue, prefetch), name="raw-consumer", daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _run(self, url: str, queue: str, prefetch: int) -> None:
        try:
            conn = pika.BlockingConnection(pika.URLParameters(url))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=prefetch)

            def on_message(ch: Any, method: Any, props: pika.BasicProperties, _body: bytes) -> None:
                ch.basic_ack(method.delivery_tag)
                self.acked[props.message_id] = time.perf_counter()

            ch.basic_consume(queue, on_message, auto_ack=False)
            self._ready.set()
            while not self.stop.is_set():
                conn.process_data_events(time_limit=0.05)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.errors.append(exc)
            self._ready.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class AsyncConfirmPublisher:
    """A SelectConnection on its own I/O thread; publish_batch returns once the broker confirmed
    every message of the batch (as the hub's publish_many does)."""

    def __init__(self, url: str) -> None:
        self.channel: Any = None
        self.outstanding: dict[int, bool] = {}
        self.seq = 0
        self.failed: str | None = None
        self.done = threading.Event()
        self._ready = threading.Event()
        self.connection = pika.SelectConnection(pika.URLParameters(url), on_open_callback=self._on_open,
                                                on_open_error_callback=self._on_error, on_close_callback=self._on_error)
        self.thread = threading.Thread(target=self.connection.ioloop.start, name="raw-async-publisher", daemon=True)
        self.thread.start()
        if not self._ready.wait(10) or self.channel is None:
            raise RuntimeError("raw async publisher: cannot open a confirming channel")

    def _on_open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, ch: Any) -> None:
        ch.add_on_return_callback(lambda *_: self._fail("unroutable"))

        def confirming(_frame: Any) -> None:
            self.channel = ch
            self._ready.set()

        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=confirming)

    def _on_error(self, _conn: Any, reason: Any) -> None:
        self._fail(f"connection closed: {reason}")
        self._ready.set()
        self.connection.ioloop.stop()

    def _fail(self, why: str) -> None:
        self.failed = self.failed or why
        self.done.set()

    def _on_confirm(self, frame: Any) -> None:
        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            self._fail("nacked")
        tags = list(itertools.takewhile(lambda t: t <= m.delivery_tag, self.outstanding)) if m.multiple \
            else [m.delivery_tag]
        for tag in tags:
            self.outstanding.pop(tag, None)
        if not self.outstanding:
            self.done.set()

    def _send(self, queue: str, items: Sequence[tuple[str, bytes]]) -> None:
        for mid, body in items:
            self.channel.basic_publish("", queue, body, persistent(mid), mandatory=True)
            self.seq += 1
            self.outstanding[self.seq] = True

    def publish_batch(self, queue: str, items: Sequence[tuple[str, bytes]], timeout: float = 60.0) -> None:
        self.done.clear()
        self.connection.ioloop.add_callback_threadsafe(functools.partial(self._send, queue, items))
        if not self.done.wait(timeout):
            raise RuntimeError(f"raw async publisher: batch not confirmed within {timeout:.0f} s")
        if self.failed:
            raise RuntimeError(f"raw async publisher: {self.failed}")

    def close(self) -> None:
        if self.thread.is_alive():
            self.connection.ioloop.add_callback_threadsafe(self.connection.close)
            self.thread.join(5)


Load = Callable[[str, int], dict[str, float]]   # (tag, count) → message id → when it was published
SendOne = Callable[[int], str]                  # one probe message → its id


def _confirm_per_message(queue: str, bodies: list[bytes], args: argparse.Namespace,
                         probe_ch: Any) -> tuple[Load, SendOne]:
    def load(tag: str, count: int) -> dict[str, float]:
        submitted: dict[str, float] = {}

        def client(chunk: Sequence[int]) -> None:
            c = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
            ch = c.channel()
            ch.confirm_delivery()
            for i in chunk:
                mid = f"{tag}-{i}"
                t0 = time.perf_counter()
                ch.basic_publish("", queue, bodies[i % len(bodies)], persistent(mid), mandatory=True)
                submitted[mid] = t0
            c.close()

        run_threads(client, split(range(count), args.clients), "raw-client")
        return submitted

    def send_one(i: int) -> str:
        mid = f"probe-{i}"
        probe_ch.basic_publish("", queue, bodies[i % len(bodies)], persistent(mid), mandatory=True)
        return mid

    return load, send_one


def _batched(queue: str, bodies: list[bytes], args: argparse.Namespace,
             publisher: AsyncConfirmPublisher) -> tuple[Load, SendOne]:
    def load(tag: str, count: int) -> dict[str, float]:
        submitted: dict[str, float] = {}
        for start in range(0, count, args.batch):
            items = [(f"{tag}-{i}", bodies[i % len(bodies)]) for i in range(start, min(start + args.batch, count))]
            t0 = time.perf_counter()
            for mid, _ in items:
                submitted[mid] = t0
            publisher.publish_batch(queue, items)
        return submitted

    def send_one(i: int) -> str:
        mid = f"probe-{i}"
        publisher.publish_batch(queue, [(mid, bodies[i % len(bodies)])])
        return mid

    return load, send_one


def run_raw(mode: str, bodies: list[bytes], args: argparse.Namespace) -> Result:
    queue = f"bench{uuid.uuid4().hex[:8]}.raw.{mode}"
    conn = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    consumer = RawConsumer(args.amqp_url, queue, args.prefetch)
    publisher: AsyncConfirmPublisher | None = None
    probe_conn: pika.BlockingConnection | None = None
    try:
        if mode == "confirm/msg":
            probe_conn = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
            probe_ch = probe_conn.channel()
            probe_ch.confirm_delivery()
            load, send_one = _confirm_per_message(queue, bodies, args, probe_ch)
        else:
            publisher = AsyncConfirmPublisher(args.amqp_url)
            load, send_one = _batched(queue, bodies, args, publisher)
        warm = load("warm", args.warmup)
        wait_all(list(warm), consumer.acked, args.timeout, f"raw {mode} warm-up")
        cpu = CpuMeter()
        submitted = load("run", args.raw_messages)
        wait_all(list(submitted), consumer.acked, args.timeout, f"raw {mode}")
        usage = cpu.stop()
        un50, un99 = probe(send_one, consumer.acked, args.probe) if args.probe else (float("nan"),) * 2
        if consumer.errors:
            raise consumer.errors[0]
        return finish(f"raw pika, {mode}", submitted, consumer.acked, usage,
                      unloaded_p50_ms=un50, unloaded_p99_ms=un99)
    finally:
        if publisher is not None:
            publisher.close()
        if probe_conn is not None and probe_conn.is_open:
            probe_conn.close()
        consumer.close()
        delete_queues(args.amqp_url, [queue])
