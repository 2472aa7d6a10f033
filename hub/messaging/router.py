"""From the route queue to the recipients.

    route queue ─► router: each envelope, each recipient ─► need-to-know projection
        (hub.domain.projection) ─► delivery row (the recipient's inbox) ─► its own queue, if it has one

Deliveries come in batches: one write and one audit append for the lot (the unit of work). A batch
that fails is handed back by the transport one delivery at a time, so a bad one stands alone.
Delivery is idempotent: a redelivered envelope finds its (message, recipient) rows already there
and changes nothing. A message whose flow enriches (Art. 14) waits until its records are in; the
enricher sends it through the outbox again when they are (hub.messaging.enrichment).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, select

from hub.audit import AuditEvent
from hub.domain import projection
from hub.domain.designations import Designations
from hub.domain.envelope import Envelope, utcnow
from hub.domain.errors import HubError
from hub.domain.flows import Registry
from hub.infra.store.db import is_unavailable
from hub.infra.store.schema import deliveries, dossiers, stored_application
from hub.infra.store.unit_of_work import Batch, UnitOfWork
from hub.infra.store.upsert import insert_ignore
from hub.infra.transport import Delivery, Reject, Transport, Unavailable
from hub.messaging import enrichment
from hub.messaging.inbox import inbox_item_bytes
from hub.messaging.queues import ROUTE_QUEUE, party_queue

__all__ = ["Router"]

log = structlog.get_logger("hub.messaging.router")


@dataclass
class Router:
    registry: Registry
    work: UnitOfWork
    transport: Transport
    queue: str = ROUTE_QUEUE
    queue_prefix: str = ""
    clock: Callable[[], datetime] = utcnow
    on_enrichment_pending: Callable[[], None] = lambda: None
    designations: Designations = field(default_factory=Designations)   # Art. 16-17, for party queues

    def handle_batch(self, batch: Sequence[Delivery]) -> None:
        envelopes = [self._read(d) for d in batch]
        by_id = {env.message_id: env for env in envelopes}
        now = self.clock()
        rows: list[dict[str, Any]] = []
        waiting: list[str] = []

        def write(w: Batch) -> list[AuditEvent]:
            # Art. 14: a message whose flow enriches waits until its records are in
            jobs = enrichment.open_jobs(w, self.registry, envelopes, now)
            ready = [e for e in envelopes if jobs.get(e.message_id, "done") == "done"]
            waiting[:] = [e.message_id for e in envelopes if jobs.get(e.message_id, "done") != "done"]
            records = enrichment.records_for(w.conn, [e.message_id for e in ready if e.message_id in jobs])
            attached = self._attached(w.conn, ready)
            rows[:] = [row for env in ready for row in self._deliveries(env, attached, records, now)]
            new = insert_ignore(w.conn, deliveries, rows, ("message_id", "recipient"))
            return [self._delivered(by_id[r["message_id"]], r) for r in rows
                    if (r["message_id"], r["recipient"]) in new]

        try:
            self.work.write(write)
        except Exception as err:
            if is_unavailable(err):   # the store is away: later, without spending an attempt
                raise Unavailable(type(err).__name__) from err
            raise
        if waiting:
            self.on_enrichment_pending()
        self._push_to_party_queues(rows)

    def _read(self, d: Delivery) -> Envelope:
        try:
            env = Envelope.from_bytes(d.body)
            self.registry.flow(env.flow_id)
        except (ValueError, KeyError, TypeError, HubError) as err:
            log.error("route_unreadable", message_id=d.message_id, error=type(err).__name__)
            raise Reject(str(err)) from err
        return env

    def _attached(self, conn: Connection, envelopes: Sequence[Envelope]) -> dict[str, Any]:
        """The stored applications of the dossiers whose flow forwards them (content enricher)."""
        wanted = {e.dossier_id for e in envelopes if e.dossier_id and self.registry.flow(e.flow_id).attach_dossier}
        if not wanted:
            return {}
        return dict(conn.execute(select(dossiers.c.id, stored_application)
                                 .where(dossiers.c.id.in_(wanted))).all())

    def _deliveries(self, env: Envelope, attached: dict[str, Any], records: dict[str, list[dict[str, Any]]],
                    now: datetime) -> list[dict[str, Any]]:
        """One delivery row per recipient, each with what its rule on the flow lets it know (Art. 11)."""
        flow = self.registry.flow(env.flow_id)
        rows = []
        for recipient in env.recipients:
            seen = projection.for_recipient(self.registry, flow, env.payload, recipient,
                                            application=attached.get(env.dossier_id),
                                            records=records.get(env.message_id))
            if seen is None:  # the registry changed since the message was stored: refuse, don't leak
                log.warning("recipient_no_longer_allowed", flow=flow.id, recipient=recipient)
                continue
            rows.append(dict(
                message_id=env.message_id, recipient=recipient, flow_id=flow.id, sender=env.sender,
                dossier_id=env.dossier_id, correlation_id=env.correlation_id, purpose=env.purpose,
                data_categories=seen.data_categories, payload=seen.payload, attachments=seen.attachments,
                delivered_at=now))
        return rows

    def _delivered(self, env: Envelope, row: dict[str, Any]) -> AuditEvent:
        return AuditEvent("delivered", flow_id=env.flow_id, message_id=env.message_id,
                          correlation_id=env.correlation_id, dossier_id=env.dossier_id, actor=env.sender,
                          recipient=row["recipient"], purpose=env.purpose,
                          legal_basis=self.registry.flow(env.flow_id).legal_basis,
                          data_categories=row["data_categories"], payload_hash=env.payload_hash)

    def _push_to_party_queues(self, rows: list[dict[str, Any]]) -> None:
        """Parties that consume their own queue get the same projection there, as their back-office
        system may see it: special categories only with `systems: true` (contracts/designations.yaml).

        At least once: a redelivered envelope pushes again (the message id lets the party drop the
        copy), so that a push that failed after the commit above is not lost.
        """
        out = []
        for row in rows:
            party = self.registry.parties[row["recipient"]]
            if party.delivery == "queue":
                shown, _ = projection.redact(self.registry, row, self.designations.visible(party.id, None))
                out.append((party_queue(party.id, self.queue_prefix), row["message_id"], inbox_item_bytes(shown), None))
        if out:
            self.transport.publish_many(out)

    def run(self, stop: threading.Event, prefetch: int = 200) -> None:
        self.transport.consume_batch(self.queue, self.handle_batch, stop=stop, prefetch=prefetch,
                                     max_batch=min(100, prefetch))
