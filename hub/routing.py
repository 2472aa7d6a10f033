"""From the outbox to the recipients.

    outbox ─► relay (publish to the broker, confirmed) ─► route queue ─► deliver (need-to-know
    projection per recipient, into its inbox and, if it has one, its own queue) ─► ack ─► audit

The broker carries the envelope; the store is the record. Delivery is idempotent: a redelivered
envelope finds its (message, recipient) rows already there and changes nothing.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import structlog
from sqlalchemy import Engine, select, update

from hub import audit, policy
from hub.audit import AuditEvent
from hub.envelope import Envelope, utcnow
from hub.errors import HubError, NotFound
from hub.flows import Registry
from hub.store.schema import deliveries, dossiers, messages, outbox
from hub.store.upsert import insert_ignore
from hub.transport import Delivery, Reject, Transport

log = structlog.get_logger("hub.routing")

ROUTE_QUEUE = "hub.route"


def party_queue(party_id: str, prefix: str = "") -> str:
    return f"{prefix}party.{party_id}"


@dataclass
class Relay:
    """Moves stored messages from the outbox to the broker (transactional outbox)."""

    engine: Engine
    transport: Transport
    batch: int = 500
    queue: str = ROUTE_QUEUE
    clock: Callable[[], datetime] = utcnow

    def run_once(self) -> int:
        """Relay one batch; returns how many messages went out."""
        with self.engine.begin() as conn:
            pending = select(outbox.c.id, outbox.c.message_id).where(outbox.c.relayed_at.is_(None)) \
                .order_by(outbox.c.id).limit(self.batch)
            if conn.dialect.name == "postgresql":
                pending = pending.with_for_update(skip_locked=True)
            rows = conn.execute(pending).all()
            if not rows:
                return 0
            ids = [r.message_id for r in rows]
            stored = {m.id: m for m in conn.execute(select(messages).where(messages.c.id.in_(ids))).mappings()}
            envelopes = [_envelope(stored[i]) for i in ids]
            # published (and confirmed) before the rows are marked: a crash in between re-publishes,
            # and delivery is idempotent, so nothing is lost and nothing is delivered twice
            self.transport.publish_many([(self.queue, e.message_id, e.to_bytes(), None) for e in envelopes])
            conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                         .values(relayed_at=self.clock()))
            audit.append(conn, [AuditEvent(
                "routed", flow_id=e.flow_id, message_id=e.message_id, correlation_id=e.correlation_id,
                dossier_id=e.dossier_id, actor="onss", purpose=e.purpose, payload_hash=e.payload_hash,
                reason=self.queue) for e in envelopes])
        return len(rows)

    def run(self, stop: threading.Event, wake: threading.Event) -> None:
        while not stop.is_set():
            try:
                moved = self.run_once()
            except Exception:  # the broker or the store is away: wait and try again, lose nothing
                log.exception("relay_failed")
                stop.wait(1.0)
                continue
            if moved < self.batch:
                wake.wait(0.25)
                wake.clear()


@dataclass
class Router:
    """Consumes the route queue and delivers each envelope to each of its recipients."""

    registry: Registry
    engine: Engine
    transport: Transport
    queue: str = ROUTE_QUEUE
    queue_prefix: str = ""
    clock: Callable[[], datetime] = utcnow

    def handle(self, d: Delivery) -> None:
        try:
            env = Envelope.from_bytes(d.body)
            flow = self.registry.flow(env.flow_id)
        except (ValueError, KeyError, TypeError, HubError) as err:
            log.error("route_unreadable", message_id=d.message_id, error=type(err).__name__)
            raise Reject(str(err)) from err
        now = self.clock()
        contract = self.registry.contract_for(flow)
        with self.engine.begin() as conn:
            attached = None
            if flow.attach_dossier and env.dossier_id:
                attached = conn.execute(select(dossiers.c.application)
                                        .where(dossiers.c.id == env.dossier_id)).scalar_one_or_none()
            rows, events = [], []
            for recipient in env.recipients:
                rule = policy.delivery_rule(flow, recipient)
                if rule is None:  # the registry changed since the message was stored: refuse, don't leak
                    log.warning("recipient_no_longer_allowed", flow=flow.id, recipient=recipient)
                    continue
                payload = contract.project(env.payload, rule.data_categories)
                categories = contract.categories(payload)
                attachments = None
                if attached is not None:
                    application = self.registry.contracts["application"]
                    projected = application.project(attached, rule.data_categories)
                    attachments = {"application": projected}
                    categories |= application.categories(projected)
                rows.append(dict(
                    message_id=env.message_id, recipient=recipient, flow_id=flow.id, sender=env.sender,
                    dossier_id=env.dossier_id, correlation_id=env.correlation_id, purpose=env.purpose,
                    data_categories=sorted(categories), payload=payload, attachments=attachments,
                    delivered_at=now))
            new = insert_ignore(conn, deliveries, rows, ("message_id", "recipient"))
            for row in rows:
                if (row["message_id"], row["recipient"]) in new:
                    events.append(AuditEvent(
                        "delivered", flow_id=flow.id, message_id=env.message_id,
                        correlation_id=env.correlation_id, dossier_id=env.dossier_id, actor=env.sender,
                        recipient=row["recipient"], purpose=env.purpose, legal_basis=flow.legal_basis,
                        data_categories=row["data_categories"], payload_hash=env.payload_hash))
            audit.append(conn, events, now=now)
        self._push_to_party_queues(env, rows)

    def _push_to_party_queues(self, env: Envelope, rows: list[dict[str, Any]]) -> None:
        """Parties that consume their own queue get the same projection there.

        At least once: a redelivered envelope pushes again (the message id lets the party drop the
        copy), so that a push that failed after the commit above is not lost.
        """
        out = []
        for row in rows:
            party = self.registry.parties[row["recipient"]]
            if party.delivery == "queue":
                out.append((party_queue(party.id, self.queue_prefix), env.message_id, inbox_item_bytes(row), None))
        if out:
            self.transport.publish_many(out)

    def run(self, stop: threading.Event, prefetch: int = 200) -> None:
        self.transport.consume(self.queue, self.handle, stop=stop, prefetch=prefetch)


def inbox_item(row: Any) -> dict[str, Any]:
    """What a recipient sees of one delivery, over HTTP or on its queue."""
    item = {
        "id": row.get("id"), "message_id": row["message_id"], "flow": row["flow_id"],
        "sender": row["sender"], "dossier_id": row["dossier_id"], "correlation_id": row["correlation_id"],
        "purpose": row["purpose"], "data_categories": row["data_categories"], "payload": row["payload"],
        "delivered_at": _iso(row["delivered_at"]),
    }
    if row["attachments"]:
        item["attachments"] = row["attachments"]
    return item


def inbox_item_bytes(row: dict[str, Any]) -> bytes:
    return json.dumps(inbox_item(row), separators=(",", ":"), ensure_ascii=False).encode()


def _iso(ts: Any) -> str | None:
    return ts.isoformat() if isinstance(ts, datetime) else ts


def _envelope(m: Any) -> Envelope:
    return Envelope(message_id=m["id"], flow_id=m["flow_id"], sender=m["sender"],
                    recipients=tuple(m["recipients"]), purpose=m["purpose"],
                    correlation_id=m["correlation_id"], payload=m["payload"], dossier_id=m["dossier_id"],
                    acting_person=m["acting_person"], received_at=m["received_at"])


def acknowledge(engine: Engine, registry: Registry, party: str, delivery_id: int,
                acting_person: str | None = None, clock: Callable[[], datetime] = utcnow) -> bool:
    """The recipient confirms it has the message; returns False when it was acknowledged before."""
    now = clock()
    with engine.begin() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)
                           .where(deliveries.c.recipient == party)).mappings().first()
        if row is None:
            raise NotFound(f"no delivery {delivery_id} in your inbox")
        if row["acked_at"] is not None:
            return False
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(acked_at=now))
        flow = registry.flows.get(row["flow_id"])
        audit.append(conn, [AuditEvent(
            "acknowledged", flow_id=row["flow_id"], message_id=row["message_id"],
            correlation_id=row["correlation_id"], dossier_id=row["dossier_id"], actor=party,
            acting_person=acting_person, recipient=party, purpose=row["purpose"],
            legal_basis=flow.legal_basis if flow else (), data_categories=row["data_categories"])], now=now)
    return True
