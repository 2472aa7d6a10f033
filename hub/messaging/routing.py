"""From the outbox to the recipients.

    outbox ─► relay (publish to the broker, confirmed) ─► route queue ─► deliver (need-to-know
    projection per recipient, into its inbox and, if it has one, its own queue) ─► ack ─► audit

The broker carries the envelope; the store is the record. Delivery is idempotent: a redelivered
envelope finds its (message, recipient) rows already there and changes nothing.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence

import structlog
from sqlalchemy import Connection, Engine, bindparam, select, update

from hub import audit
from hub.messaging import enrichment
from hub.domain import policy
from hub.audit import AuditEvent
from hub.domain.designations import Designations, redact
from hub.domain.envelope import Envelope, iso_utc, utcnow
from hub.domain.errors import HubError
from hub.domain.flows import Registry
from hub.infra.store.schema import deliveries, dossiers, messages, outbox
from hub.infra.store.unit_of_work import Batch, GroupCommit
from hub.infra.store.notify import OutboxListener, listener_for
from hub.infra.store.upsert import insert_ignore
from hub.infra.transport import Delivery, Reject, Transport

log = structlog.get_logger("hub.messaging.routing")

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

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 0.25) -> None:
        """Relay until stopped; between batches, wait for news (in-process wake, or a PostgreSQL
        notification from another process) or `poll_s` at most."""
        listener = listener_for(self.engine)
        try:
            while not stop.is_set():
                try:
                    moved = self.run_once()
                except Exception:  # the broker or the store is away: wait and try again, lose nothing
                    log.exception("relay_failed")
                    stop.wait(1.0)
                    continue
                if moved < self.batch:
                    self._idle(wake, listener, poll_s)
                    wake.clear()
        finally:
            if listener is not None:
                listener.close()

    @staticmethod
    def _idle(wake: threading.Event, listener: OutboxListener | None, poll_s: float) -> None:
        if listener is None:
            wake.wait(poll_s)
            return
        deadline = time.monotonic() + poll_s
        while not wake.is_set() and time.monotonic() < deadline:
            if listener.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
                return


@dataclass
class Router:
    """Consumes the route queue and delivers each envelope to each of its recipients.

    Deliveries come in batches: one transaction and one audit append for the lot. A batch that
    fails is handed back by the transport one delivery at a time, so a bad one stands alone.
    """

    registry: Registry
    commits: GroupCommit
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
            # Art. 14: a message whose flow enriches waits until its records are in; the enricher
            # sends it through the outbox again when they are
            jobs = enrichment.open_jobs(w, self.registry, envelopes, now)
            ready = [e for e in envelopes if jobs.get(e.message_id, "done") == "done"]
            waiting[:] = [e.message_id for e in envelopes if jobs.get(e.message_id, "done") != "done"]
            records = enrichment.records_for(w.conn, [e.message_id for e in ready if e.message_id in jobs])
            attached = self._attached(w.conn, ready)
            rows[:] = [row for env in ready for row in self._projections(env, attached, records, now)]
            new = insert_ignore(w.conn, deliveries, rows, ("message_id", "recipient"))
            return [self._delivered(by_id[r["message_id"]], r) for r in rows
                    if (r["message_id"], r["recipient"]) in new]

        self.commits.write(write)
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
        return dict(conn.execute(select(dossiers.c.id, dossiers.c.application)
                                 .where(dossiers.c.id.in_(wanted))).all())

    def _projections(self, env: Envelope, attached: dict[str, Any], records: dict[str, list[dict[str, Any]]],
                     now: datetime) -> list[dict[str, Any]]:
        """Art. 11: each recipient gets only the categories its rule on the flow names."""
        flow = self.registry.flow(env.flow_id)
        contract = self.registry.contract_for(flow)
        application = self.registry.contracts["application"]
        rows = []
        for recipient in env.recipients:
            rule = policy.delivery_rule(flow, recipient)
            if rule is None:  # the registry changed since the message was stored: refuse, don't leak
                log.warning("recipient_no_longer_allowed", flow=flow.id, recipient=recipient)
                continue
            payload = contract.project(env.payload, rule.data_categories)
            categories = contract.categories(payload)
            attachments = None
            if flow.attach_dossier and env.dossier_id in attached:
                projected = application.project(attached[env.dossier_id], rule.data_categories)
                attachments = {"application": projected}
                categories |= application.categories(projected)
            if records.get(env.message_id) and enrichment.CATEGORY in rule.data_categories:
                attachments = {**(attachments or {}), "enrichment": records[env.message_id]}
                categories.add(enrichment.CATEGORY)
            rows.append(dict(
                message_id=env.message_id, recipient=recipient, flow_id=flow.id, sender=env.sender,
                dossier_id=env.dossier_id, correlation_id=env.correlation_id, purpose=env.purpose,
                data_categories=sorted(categories), payload=payload, attachments=attachments,
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
                shown, _ = redact(self.registry, row, self.designations.visible(party.id, None))
                out.append((party_queue(party.id, self.queue_prefix), row["message_id"], inbox_item_bytes(shown), None))
        if out:
            self.transport.publish_many(out)

    def run(self, stop: threading.Event, prefetch: int = 200) -> None:
        self.transport.consume_batch(self.queue, self.handle_batch, stop=stop, prefetch=prefetch,
                                     max_batch=min(100, prefetch))


def inbox_item(row: Any) -> dict[str, Any]:
    """What a recipient sees of one delivery, over HTTP or on its queue."""
    item = {
        "id": row.get("id"), "message_id": row["message_id"], "flow": row["flow_id"],
        "sender": row["sender"], "dossier_id": row["dossier_id"], "correlation_id": row["correlation_id"],
        "purpose": row["purpose"], "data_categories": row["data_categories"], "payload": row["payload"],
        "delivered_at": iso_utc(row["delivered_at"]),
    }
    if row["attachments"]:
        item["attachments"] = row["attachments"]
    return item


def inbox_item_bytes(row: dict[str, Any]) -> bytes:
    return json.dumps(inbox_item(row), separators=(",", ":"), ensure_ascii=False).encode()


def _envelope(m: Any) -> Envelope:
    return Envelope(message_id=m["id"], flow_id=m["flow_id"], sender=m["sender"],
                    recipients=tuple(m["recipients"]), purpose=m["purpose"],
                    correlation_id=m["correlation_id"], payload=m["payload"], dossier_id=m["dossier_id"],
                    acting_person=m["acting_person"], received_at=m["received_at"],
                    payload_hash=m["payload_hash"])


def acknowledge(commits: GroupCommit, registry: Registry, party: str, delivery_ids: Sequence[int],
                acting_person: str | None = None, clock: Callable[[], datetime] = utcnow) -> dict[int, str]:
    """The recipient confirms it has these deliveries; each id answers "acknowledged", "already" or
    "unknown" (not in this party's inbox). One write, one audit event per first acknowledgment."""
    now = clock()
    ids = list(dict.fromkeys(delivery_ids))
    answer: dict[int, str] = {}

    def write(w: Batch) -> list[AuditEvent]:
        conn = w.conn
        done = conn.execute(_ACK, {"ids": ids, "party": party, "now": now}).mappings().all()
        answer.clear()
        answer.update({r["id"]: "acknowledged" for r in done})
        rest = [i for i in ids if i not in answer]
        if rest:
            mine = set(conn.execute(_MINE, {"ids": rest, "party": party}).scalars())
            answer.update({i: "already" if i in mine else "unknown" for i in rest})
        return [AuditEvent(
            "acknowledged", flow_id=r["flow_id"], message_id=r["message_id"],
            correlation_id=r["correlation_id"], dossier_id=r["dossier_id"], actor=party,
            acting_person=acting_person, recipient=party, purpose=r["purpose"],
            legal_basis=registry.flows[r["flow_id"]].legal_basis if r["flow_id"] in registry.flows else (),
            data_categories=r["data_categories"]) for r in done]

    commits.write(write)
    return {i: answer[i] for i in ids}


_ACK = update(deliveries).where(deliveries.c.id.in_(bindparam("ids", expanding=True))) \
    .where(deliveries.c.recipient == bindparam("party")).where(deliveries.c.acked_at.is_(None)) \
    .values(acked_at=bindparam("now")) \
    .returning(deliveries.c.id, deliveries.c.flow_id, deliveries.c.message_id, deliveries.c.correlation_id,
               deliveries.c.dossier_id, deliveries.c.purpose, deliveries.c.data_categories)
_MINE = select(deliveries.c.id).where(deliveries.c.id.in_(bindparam("ids", expanding=True))) \
    .where(deliveries.c.recipient == bindparam("party"))
