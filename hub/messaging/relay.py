"""From the outbox to the broker (transactional outbox).

    outbox ─► relay: publish to the route queue, confirmed ─► mark relayed ─► `routed` audit event

A message is stored with its outbox row in one transaction (hub.messaging.ingress); the relay
publishes what is waiting, and only once the broker has confirmed it marks the rows. A crash in
between publishes again, and delivery is idempotent (hub.messaging.router), so nothing is lost and
nothing is delivered twice.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Text, bindparam, cast, select, update

from hub.audit import AuditEvent
from hub.domain.envelope import as_utc, envelope_bytes, utcnow
from hub.domain.parties import PLATFORM
from hub.domain.retry import Backoff
from hub.infra.store.notify import OutboxListener, listener_for
from hub.infra.store.schema import messages, outbox
from hub.infra.store.unit_of_work import UnitOfWork
from hub.infra.transport import Transport, TransportError
from hub.messaging.queues import ROUTE_QUEUE
from hub.ports.oplog import Condition

__all__ = ["Relay"]

log = structlog.get_logger("hub.messaging.relay")


@dataclass
class Relay:
    work: UnitOfWork
    transport: Transport
    batch: int = 500
    queue: str = ROUTE_QUEUE
    clock: Callable[[], datetime] = utcnow

    def run_once(self) -> int:
        """Relay one batch; returns how many messages went out."""
        # a transaction of its own: the rows stay locked while the broker confirms them
        with self.work.transaction() as tx:
            conn = tx.conn
            rows = waiting(conn, self.batch)
            if not rows:
                return 0
            # published (and confirmed) before the rows are marked: a crash in between re-publishes,
            # and delivery is idempotent, so nothing is lost and nothing is delivered twice
            self.transport.publish_many([(self.queue, r.message_id, carried(r), None) for r in rows])
            conn.execute(_MARK, {"ids": [r.id for r in rows], "now": self.clock()})
            tx.record([AuditEvent(
                "routed", flow_id=r.flow_id, message_id=r.message_id, correlation_id=r.correlation_id,
                dossier_id=r.dossier_id, actor=PLATFORM, purpose=r.purpose, payload_hash=r.payload_hash,
                reason=self.queue) for r in rows])
        return len(rows)

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 0.25,
            beat: Callable[[], None] = lambda: None) -> None:
        """Relay until stopped; between batches, wait for news (in-process wake, or a PostgreSQL
        notification from another process) or `poll_s` at most. Neither the store nor the broker
        going away ends it: a failed batch is tried again with back-off, and a lost listener falls
        back to polling every `poll_s` while a new one is opened every few seconds. `beat` is
        called every turn (the runtime's heartbeat)."""
        listener: OutboxListener | None = None
        listen_at = 0.0                      # when to (re)open the listener
        relaying = Condition(log, "relay", queue=self.queue)
        listening = Condition(log, "relay.listener")
        failures = 0
        try:
            while not stop.is_set():
                beat()
                if listener is None and time.monotonic() >= listen_at:
                    try:
                        listener = listener_for(self.work.engine)
                        listening.ok()
                    except Exception as err:  # noqa: BLE001 - polling meanwhile
                        listening.failed(err, meanwhile=f"polling every {poll_s} s")
                    listen_at = time.monotonic() + _RELISTEN_S
                try:
                    moved = self.run_once()
                except Exception as err:  # noqa: BLE001 - the broker or the store is away: lose nothing
                    relaying.failed(err, reason=str(err)[:160] if isinstance(err, TransportError) else None,
                                    meanwhile="the outbox keeps the messages; retrying with back-off")
                    stop.wait(_RETRY.delay(failures))
                    failures += 1
                    continue
                relaying.ok()
                failures = 0
                if moved < self.batch:
                    try:
                        self._idle(wake, listener, poll_s)
                    except Exception as err:  # noqa: BLE001 - the listener's connection is gone
                        listening.failed(err, meanwhile=f"polling every {poll_s} s")
                        _close(listener)
                        listener, listen_at = None, time.monotonic() + _RELISTEN_S
                    wake.clear()
        finally:
            _close(listener)

    @staticmethod
    def _idle(wake: threading.Event, listener: OutboxListener | None, poll_s: float) -> None:
        if listener is None:
            wake.wait(poll_s)
            return
        deadline = time.monotonic() + poll_s
        while not wake.is_set() and time.monotonic() < deadline:
            if listener.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
                return


_RETRY = Backoff(base_s=0.2, cap_s=5.0, jitter=0.5)   # a failed batch: 0.1–0.2 s doubling, up to 5 s
_RELISTEN_S = 2.0                                      # a lost listener: a new one tried this often


def _close(listener: OutboxListener | None) -> None:
    if listener is not None:
        try:
            listener.close()
        except Exception:  # noqa: BLE001 - its connection is gone already
            pass


# What is waiting, oldest first, with what the envelope carries: one query, built once. The payload
# comes as the text it is stored as, and goes into the envelope as it is (read and written once, at
# the ingress: never parsed and encoded again here).
_HEADER = (messages.c.flow_id, messages.c.sender, messages.c.recipients, messages.c.purpose,
           messages.c.correlation_id, messages.c.dossier_id, messages.c.acting_person, messages.c.received_at,
           messages.c.payload_hash)
_PENDING = select(outbox.c.id, outbox.c.message_id, *_HEADER, cast(messages.c.payload, Text).label("payload")) \
    .join(messages, messages.c.id == outbox.c.message_id).where(outbox.c.relayed_at.is_(None)) \
    .order_by(outbox.c.id).limit(bindparam("n"))
_PENDING_PG = _PENDING.with_for_update(skip_locked=True, of=outbox)   # relays in other processes take others
_MARK = update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True))).values(relayed_at=bindparam("now"))


def waiting(conn: Connection, limit: int) -> list[Any]:
    """Up to `limit` messages waiting in the outbox, oldest first (on PostgreSQL locked, skipping
    those another relay holds): outbox id, message id, the envelope's fields, payload as stored."""
    return conn.execute(_PENDING_PG if conn.dialect.name == "postgresql" else _PENDING, {"n": limit}).all()


def carried(r: Any) -> bytes:
    """The envelope of a stored message, its payload spliced in as stored (Envelope.from_bytes reads it)."""
    return envelope_bytes(dict(
        message_id=r.message_id, flow_id=r.flow_id, sender=r.sender, recipients=list(r.recipients),
        purpose=r.purpose, correlation_id=r.correlation_id, dossier_id=r.dossier_id,
        acting_person=r.acting_person, received_at=as_utc(r.received_at).isoformat(),
        payload_hash=r.payload_hash), r.payload.encode())
