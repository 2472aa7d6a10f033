"""The RabbitMQ transport (pika): durable quorum queues, publisher confirms, manual acks.

For a queue Q the broker holds:
  Q                 quorum; a rejected message is dead-lettered to Q.parking
  Q.delay.<ms>      quorum; one per distinct retry delay: a failed message is copied here with its
                    x-attempt header raised by one (not when a server the handler needs was away),
                    waits out the TTL, and is dead-lettered back to Q
                    (every queue is quorum, so on a cluster each is replicated and stays usable on
                    the nodes left when one dies; the classic `Q.retry.<ms>` of earlier versions
                    lived on one node, and is only deleted now)
  Q.parking         quorum; what an operator must look at
All go through the default exchange. pika is not thread-safe, so every thread has its own
connections: a consumer owns one, and publishing uses one per thread (threading.local).
"""
from __future__ import annotations

import copy
import functools
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions as px
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from hub.domain.retry import Backoff, RetryPolicy
from hub.ports.oplog import Condition
from hub.infra.transport import split_urls
from hub.infra.transport.base import (
    CORRELATION_ID, BatchHandler, ConsumesSingly, Delivery, Handler, Item, PublishNotConfirmed, TransportError,
    batch_prefetch, fixed_schedule, parking_queue,
)
from hub.infra.transport.confirms import BatchPublisher, ConnectionLost, message_properties
from hub.infra.transport.settle import Action, decide

log = structlog.get_logger(__name__)
T = TypeVar("T")


# What a dead connection or channel looks like; these are retried, everything else is raised.
_CONNECTION_ERRORS = (px.AMQPConnectionError, px.ChannelClosed, px.ChannelWrongStateError, ConnectionLost, OSError)
_REFUSALS = frozenset({403, 404, 405, 406})  # access refused, not found, locked, precondition failed
_BROKER_HEADERS = frozenset({"x-attempt", "x-delivery-count", "x-death", "x-user-id"})
# x-user-id: on a retry copy (published by the hub, so with the hub's own user_id), the user_id the
# original carried; believed only on a message whose user_id is the hub's own (the broker vouches)
_BROKER_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")


def _user_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The sender's headers, without the broker's and this transport's bookkeeping."""
    return {
        k: v for k, v in (headers or {}).items()
        if k not in _BROKER_HEADERS and not k.startswith(_BROKER_HEADER_PREFIXES)
    }


_Raw = tuple[Any, pika.BasicProperties, bytes]
"""A delivery as the channel callback hands it over: (method, properties, body)."""


def _delivery(queue: str, method: Any, props: pika.BasicProperties, body: bytes,
              own_users: frozenset[str] = frozenset()) -> Delivery:
    headers = props.headers or {}
    user_id = props.user_id
    if user_id is not None and user_id in own_users:   # a retry copy: the user the original came from
        original = headers.get("x-user-id")
        user_id = original.decode() if isinstance(original, bytes) else original
    return Delivery(queue, props.message_id or "", body, _user_headers(headers),
                    int(headers.get("x-attempt", 1)), bool(method.redelivered),
                    user_id=user_id, correlation_id=props.correlation_id)


def connection_reason(error: BaseException, params: pika.ConnectionParameters | None = None) -> str:
    """Why a connection to the broker failed, in a few words and without the password."""
    host = f"{params.host}:{params.port}" if params is not None else "the broker"
    user = getattr(getattr(params, "credentials", None), "username", None)
    if isinstance(error, px.ProbableAuthenticationError):
        return f"authentication refused for user {user!r} (wrong user or password)" if user else "authentication refused"
    if isinstance(error, px.ProbableAccessDeniedError):
        vhost = getattr(params, "virtual_host", "?")
        return f"access to virtual host {vhost!r} refused (it does not exist, or the user may not use it)"
    inner: BaseException | None = error
    for _ in range(4):   # pika wraps the socket's error in one or two of its own
        if isinstance(inner, OSError):
            break
        nested = [a for a in getattr(inner, "args", ()) if isinstance(a, BaseException)]
        nested += [getattr(a, "exception", None) for a in getattr(inner, "args", ()) if hasattr(a, "exception")]
        inner = next((n for n in nested if n is not None), None)
    if isinstance(inner, socket.gaierror):
        return f"unknown host {getattr(params, 'host', '?')!r}"
    if isinstance(inner, ConnectionRefusedError) or "Connection refused" in f"{error} {error!r}":
        return f"connection refused at {host}"
    if isinstance(inner, (TimeoutError, socket.timeout)) or "timed out" in f"{error} {error!r}".lower():
        return f"no answer from {host} (timed out)"
    if isinstance(inner, OSError):
        return f"{inner.strerror or type(inner).__name__} ({host})"
    return type(error).__name__


def _parameters_of(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = 30
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = 60
    return params


def retry_queue(queue: str, delay_ms: int) -> str:
    return f"{queue}.delay.{delay_ms}"


def legacy_retry_queue(queue: str, delay_ms: int) -> str:
    """The classic retry queue of earlier versions (one node only): drained by its TTL, then deleted."""
    return f"{queue}.retry.{delay_ms}"


# A consumer that lost its connection waits 0.2 s doubling up to 5 s (a broker that is back is used
# within 5 s), at least half of that and at random, so consumers do not reconnect in lockstep.
_RECONNECT = Backoff(base_s=0.2, cap_s=5.0, jitter=0.5)


class AmqpTransport(ConsumesSingly):
    def __init__(
        self,
        url: str,
        *,
        retry: RetryPolicy = RetryPolicy(),
        connection_name: str = "wib-hub",
        confirm_timeout_s: float = 30.0,
    ) -> None:
        self.retry = fixed_schedule(retry)
        self.connection_name = connection_name
        self.confirm_timeout_s = confirm_timeout_s
        # one address per node of a cluster; connections go to the one that answered last, then
        # the others in turn, so killing the node a connection is on moves it to the next
        self._addresses = [_parameters_of(u) for u in split_urls(url)]
        if not self._addresses:
            raise ValueError("no broker address in the URL")
        self._params = self._addresses[0]
        # the broker users this transport connects as: a message with one of them as its user_id was
        # published by the hub itself (RabbitMQ refuses a user_id that is not the connection's user)
        self._own_users = frozenset(p.credentials.username for p in self._addresses
                                    if getattr(p.credentials, "username", None))
        self._current = 0
        self._delays = sorted(set(retry.delays_ms))
        self._local = threading.local()
        self._connections: weakref.WeakSet[pika.BlockingConnection] = weakref.WeakSet()
        self._closed = threading.Event()
        self._batches = BatchPublisher(functools.partial(self._parameters, "batch-publisher"))

    # --- connections ------------------------------------------------------------------------

    def _candidates(self, role: str) -> list[pika.URLParameters]:
        """Every address, starting with the one that answered last."""
        first = self._current
        out = []
        for params in self._addresses[first:] + self._addresses[:first]:
            params = copy.copy(params)
            if params.client_properties is None:  # names the connection in the management UI
                params.client_properties = {"connection_name": f"{self.connection_name} {role}"}
            out.append(params)
        return out

    def _parameters(self, role: str) -> pika.URLParameters:
        """The address a new connection tries next: the one that answered last, else the next one
        (each call after a failure moves on, so a dead node is skipped)."""
        params = self._candidates(role)[0]
        self._current = (self._current + 1) % len(self._addresses)
        return params

    def _connect(self, role: str) -> pika.BlockingConnection:
        candidates = self._candidates(role)
        conn = pika.BlockingConnection(candidates if len(candidates) > 1 else candidates[0])
        self._remember(conn)
        return conn

    def _remember(self, conn: pika.BlockingConnection) -> None:
        params = getattr(getattr(conn, "_impl", None), "params", None)
        for i, known in enumerate(self._addresses):
            if params is not None and (known.host, known.port) == (params.host, params.port):
                self._current = i
                return

    def _publisher(self) -> BlockingChannel:
        """This thread's confirming channel, (re)opened as needed."""
        ch = getattr(self._local, "channel", None)
        if ch is not None and ch.is_open:
            return ch
        self._drop_publisher()
        conn = self._connect(f"publisher {threading.current_thread().name}")
        self._connections.add(conn)
        ch = conn.channel()
        ch.confirm_delivery()
        self._local.connection, self._local.channel = conn, ch
        return ch

    def _drop_publisher(self) -> None:
        conn = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # it is being thrown away anyway
                pass

    def _with_publisher(self, op: Callable[[BlockingChannel], T]) -> T:
        """Runs op on this thread's channel; a dead connection is replaced and op tried once more."""
        self._check_open()
        for attempt in (1, 2):
            try:
                return op(self._publisher())
            except px.ChannelClosedByBroker as exc:
                if exc.reply_code in _REFUSALS:  # the broker said no: not a dead connection
                    raise
                error: Exception = exc
            except _CONNECTION_ERRORS as exc:
                error = exc
            self._drop_publisher()
            if attempt == 1:
                log.debug("transport.publisher_reconnect", error=type(error).__name__)
        raise TransportError(f"broker unreachable: {connection_reason(error, self._params)}") from error

    def _with_channel(self, op: Callable[[BlockingChannel], T]) -> T:
        """Runs op on a short-lived channel of this thread's connection: a broker refusal
        (404, 406) closes that channel, never the publisher's."""

        def run(publisher: BlockingChannel) -> T:
            ch = publisher.connection.channel()
            try:
                return op(ch)
            finally:
                if ch.is_open:
                    ch.close()

        return self._with_publisher(run)

    def _keep_publisher_alive(self) -> None:
        """Lets this thread's publisher connection answer heartbeats while the thread consumes."""
        conn = getattr(self._local, "connection", None)
        if conn is not None and conn.is_open:
            try:
                conn.process_data_events(time_limit=0)
            except _CONNECTION_ERRORS:
                self._drop_publisher()

    # --- the port ---------------------------------------------------------------------------

    def declare(self, queue: str) -> None:
        def run(ch: BlockingChannel) -> None:
            ch.queue_declare(parking_queue(queue), durable=True, arguments={"x-queue-type": "quorum"})
            for delay in self._delays:
                # Quorum (message TTL since RabbitMQ 3.10): one TTL per queue, so messages expire
                # in arrival order at its head; dead-lettered back to Q at least once (which needs
                # reject-publish). The original stays unacked in Q until its copy is confirmed here.
                ch.queue_declare(retry_queue(queue, delay), durable=True, arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                })
            ch.queue_declare(queue, durable=True, arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": parking_queue(queue),
                # at-least-once: a rejected message leaves Q only once Q.parking has confirmed it
                # (this strategy requires the reject-publish overflow mode).
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            })

        try:
            self._with_channel(run)
        except px.ChannelClosedByBroker as exc:
            raise TransportError(f"cannot declare queue {queue!r}: {exc.reply_text}") from exc

    def declare_entrance(self, queue: str) -> None:
        self.declare(queue)

        def run(ch: BlockingChannel) -> None:
            ch.exchange_declare(queue, exchange_type="fanout", durable=True)
            ch.queue_bind(queue, queue)

        try:
            self._with_channel(run)
        except px.ChannelClosedByBroker as exc:
            raise TransportError(f"cannot declare the entrance of {queue!r}: {exc.reply_text}") from exc

    def publish(self, queue: str, message_id: str, body: bytes, headers: Mapping[str, Any] | None = None) -> None:
        self._publish(queue, message_id, body, message_properties(message_id, headers))

    def _publish(self, queue: str, message_id: str, body: bytes, props: pika.BasicProperties) -> None:
        def run(ch: BlockingChannel) -> None:
            try:
                ch.basic_publish("", queue, body, props, mandatory=True)
            except px.UnroutableError as exc:
                raise PublishNotConfirmed(f"unroutable: no queue {queue!r}") from exc
            except px.NackError as exc:
                raise PublishNotConfirmed(f"nacked by the broker (queue {queue!r})") from exc

        try:
            self._with_publisher(run)
        except PublishNotConfirmed:
            self._drop_publisher()   # as publish_many: the next try on a new channel (see BatchPublisher.reset)
            raise

    def publish_many(self, items: Sequence[Item]) -> None:
        self._check_open()
        if not items:
            return
        timeout = self.confirm_timeout_s + len(items) / 1000
        for attempt in (1, 2):
            try:
                self._batches.publish(items, timeout)
                return
            except ConnectionLost as exc:
                if attempt == 2:
                    raise TransportError(f"broker unreachable: {exc}") from exc
                log.debug("transport.publisher_reconnect", error=type(exc).__name__, batch=len(items))
            except PublishNotConfirmed:
                # nacked or not confirmed: once more on a new connection, then the caller's retry
                self._batches.reset()
                if attempt == 2:
                    raise

    def consume_batch(self, queue: str, handler: BatchHandler, *, stop: threading.Event, prefetch: int = 200,
                      max_batch: int = 100, max_wait_ms: int = 5) -> None:
        """Deliveries gathered in the channel callback, handed over together; on a failing batch each
        is handed over alone and settled by the per-message rules (`_settle`)."""
        prefetch = batch_prefetch(queue, prefetch, max_batch, max_wait_ms)
        failures = 0  # connections lost in a row
        broker = Condition(log, "transport.consumer", queue=queue)   # one line per change, not per attempt
        while not self._stopping(stop):
            conn = None
            try:
                conn = self._connect(f"consumer {queue}")
                ch = conn.channel()
                ch.basic_qos(prefetch_count=prefetch)
                self.declare(queue)
                ready: list[_Raw] = []
                ch.basic_consume(queue, lambda _ch, m, p, b: ready.append((m, p, b)), auto_ack=False)
                if broker.down:
                    broker.ok()
                else:
                    log.info("transport.consuming", queue=queue, transport="amqp", batch=max_batch)
                failures = 0
                settled_through = 0  # every delivery tag up to this one is settled on this channel
                last_keepalive = time.monotonic()
                while not self._stopping(stop):
                    conn.process_data_events(time_limit=0.2)  # returns as soon as a delivery is in
                    deadline = time.monotonic() + max_wait_ms / 1000
                    while ready and len(ready) < max_batch:  # gather more, up to max_wait_ms after the first
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        conn.process_data_events(time_limit=left)
                    while ready and not self._stopping(stop):
                        taken, ready[:] = ready[:max_batch], ready[max_batch:]
                        settled_through = self._handle_batch(queue, handler, ch, taken, settled_through)
                    if time.monotonic() - last_keepalive > 5:
                        self._keep_publisher_alive()
                        last_keepalive = time.monotonic()
            except Exception as exc:  # broker gone, channel closed, retry copy not confirmed, ...
                if self._stopping(stop):
                    break
                delay = _RECONNECT.delay(failures)
                failures += 1
                broker.failed(exc, reason=connection_reason(exc) if isinstance(exc, _CONNECTION_ERRORS) else None,
                              retrying="with back-off up to 5 s")
                log.debug("transport.consumer_reconnect", queue=queue, error=type(exc).__name__,
                          retry_in_s=round(delay, 2))
                stop.wait(delay)
            finally:
                # Whatever was delivered and not settled goes back to the queue with the channel.
                if conn is not None and conn.is_open:
                    try:
                        conn.close()
                    except Exception:
                        pass
        log.info("transport.consumer_stopped", queue=queue, transport="amqp")

    def _handle_batch(self, queue: str, handler: BatchHandler, ch: BlockingChannel, taken: list[_Raw],
                      settled_through: int) -> int:
        """Hands `taken` over and settles all of it; returns the tag up to which the channel is now settled."""
        tags = [m.delivery_tag for m, _, _ in taken]
        # Tags on a consuming channel run on without gaps and batches are settled in order, so this
        # holds; if it ever did not, acking with multiple=True could ack a delivery not in the batch.
        follows = tags[0] == settled_through + 1 and tags[-1] == settled_through + len(tags)
        through = tags[-1] if follows else settled_through
        if len(taken) > 1:
            try:
                handler([_delivery(queue, m, p, b, self._own_users) for m, p, b in taken])
            except Exception as exc:
                log.info("transport.batch_failed", queue=queue, size=len(taken), error=type(exc).__name__)
            else:
                if follows:
                    ch.basic_ack(tags[-1], multiple=True)
                else:
                    for tag in tags:
                        ch.basic_ack(tag)
                return through
        # Alone already, or the batch failed: each delivery alone, by the per-message rules.
        for m, p, b in taken:
            self._settle(queue, lambda d: handler([d]), ch, m, p, b)
        return through

    def _settle(self, queue: str, handler: Handler, ch: BlockingChannel, method: Any,
                props: pika.BasicProperties, body: bytes) -> None:
        """One delivery through the handler (`decide`), then acked, retried by way of a retry
        queue, or rejected, which dead-letters it to the parking queue."""
        delivery = _delivery(queue, method, props, body, self._own_users)
        decision = decide(delivery, handler, self.retry)
        if decision.action is Action.PARK:
            ch.basic_reject(method.delivery_tag, requeue=False)
            return
        if decision.action is Action.RETRY:
            # The copy is confirmed before the original is acked: a crash in between duplicates,
            # it never loses.
            # The publisher the broker authenticated and the correlation id go with it: the copy
            # carries the hub's own user_id (the broker checks it) and the original's in x-user-id.
            headers: dict[str, Any] = {**delivery.headers, "x-attempt": decision.next_attempt(delivery.attempt)}
            if delivery.correlation_id is not None:
                headers[CORRELATION_ID] = delivery.correlation_id
            own = self._params.credentials.username if delivery.user_id is not None else None
            if own is not None:
                headers["x-user-id"] = delivery.user_id
            self._publish(retry_queue(queue, decision.delay_ms), delivery.message_id, body,
                          message_properties(delivery.message_id, headers, user_id=own))
        ch.basic_ack(method.delivery_tag)

    def parked(self, queue: str) -> list[Delivery]:
        """Reads the parking queue by getting every message unacked, then handing all back."""
        name = parking_queue(queue)

        def run(ch: BlockingChannel) -> list[Delivery]:
            out: list[Delivery] = []
            while True:
                method, props, body = ch.basic_get(name, auto_ack=False)
                if method is None:
                    break
                out.append(_delivery(name, method, props, body))
            if out:
                ch.basic_nack(delivery_tag=0, multiple=True, requeue=True)
            return out

        return self._ignoring_missing(run, [])

    def depth(self, queue: str) -> int:
        return self._ignoring_missing(
            lambda ch: ch.queue_declare(queue, passive=True).method.message_count, 0)

    def purge(self, queue: str) -> None:
        for name in self._companions(queue):
            self._ignoring_missing(lambda ch, name=name: ch.queue_purge(name), None)

    def delete(self, queue: str) -> None:
        for name in self._companions(queue):
            self._ignoring_missing(lambda ch, name=name: ch.queue_delete(name), None)
        self._ignoring_missing(lambda ch: ch.exchange_delete(queue), None)   # its entrance, if it has one

    def _companions(self, queue: str) -> list[str]:
        """Q, its retry queues (and those of earlier versions) and its parking queue."""
        return [queue, *(retry_queue(queue, d) for d in self._delays),
                *(legacy_retry_queue(queue, d) for d in self._delays), parking_queue(queue)]

    def ping(self) -> bool:
        try:
            self._with_channel(lambda ch: None)  # a channel open/close is a round trip to the broker
            return True
        except Exception:
            return False

    def close(self) -> None:
        self._closed.set()
        self._batches.close()
        for conn in list(self._connections):
            try:
                if conn.is_open:
                    conn.close()
            except Exception:  # shutting down: a connection already gone is fine
                pass

    # --- helpers ----------------------------------------------------------------------------

    def _ignoring_missing(self, op: Callable[[BlockingChannel], T], missing: T) -> T:
        try:
            return self._with_channel(op)
        except px.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return missing
            raise TransportError(exc.reply_text) from exc

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise TransportError("transport is closed")
