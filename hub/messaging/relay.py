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
from sqlalchemy import select, update

from hub.audit import AuditEvent
from hub.domain.envelope import Envelope, utcnow
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
            pending = select(outbox.c.id, outbox.c.message_id).where(outbox.c.relayed_at.is_(None)) \
                .order_by(outbox.c.id).limit(self.batch)
            if conn.dialect.name == "postgresql":
                pending = pending.with_for_update(skip_locked=True)
            rows = conn.execute(pending).all()
            if not rows:
                return 0
            ids = [r.message_id for r in rows]
            stored = {m.id: m for m in conn.execute(select(messages).where(messages.c.id.in_(ids))).mappings()}
            envelopes = [envelope_of(stored[i]) for i in ids]
            # published (and confirmed) before the rows are marked: a crash in between re-publishes,
            # and delivery is idempotent, so nothing is lost and nothing is delivered twice
            self.transport.publish_many([(self.queue, e.message_id, e.to_bytes(), None) for e in envelopes])
            conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                         .values(relayed_at=self.clock()))
            tx.record([AuditEvent(
                "routed", flow_id=e.flow_id, message_id=e.message_id, correlation_id=e.correlation_id,
                dossier_id=e.dossier_id, actor=PLATFORM, purpose=e.purpose, payload_hash=e.payload_hash,
                reason=self.queue) for e in envelopes])
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


def envelope_of(m: Any) -> Envelope:
    """A stored message (a `messages` row) as the envelope the broker carries."""
    return Envelope(message_id=m["id"], flow_id=m["flow_id"], sender=m["sender"],
                    recipients=tuple(m["recipients"]), purpose=m["purpose"],
                    correlation_id=m["correlation_id"], payload=m["payload"], dossier_id=m["dossier_id"],
                    acting_person=m["acting_person"], received_at=m["received_at"],
                    payload_hash=m["payload_hash"])
