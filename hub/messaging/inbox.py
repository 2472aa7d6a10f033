"""What a recipient does with its deliveries: pull its inbox, acknowledge, read a dossier as it
was delivered to it.

    deliveries ─► for_caller (hub.domain.projection: the caller's designations, Art. 16–17)
               ─► the items ─► `consulted` audit event for every item that holds or withheld a
                  special category ─► ack ─► `acknowledged` audit event

Every read of a dossier, and every read of an item with a special category, is on the record
(Art. 11, 16), with the acting person and the categories returned, never the data.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from hub.audit import AuditEvent
from hub.domain import jsonbytes, projection
from hub.domain.categories import SPECIAL_CATEGORIES
from hub.domain.designations import Designations
from hub.domain.envelope import iso_utc, utcnow
from hub.domain.errors import NotAuthorised, UnknownDossier
from hub.domain.flows import Registry
from hub.infra.store.schema import deliveries, dossiers
from hub.infra.store.unit_of_work import Batch, UnitOfWork

__all__ = ["inbox_item", "inbox_item_bytes", "read_inbox", "read_dossier", "acknowledge", "PROCEDURAL_FIELDS"]

# What GET /v1/dossiers/{id} shows of the dossier's procedure beside its state: each part's outcome and
# decision kind, the date of each move the state machine records (hub.domain.dossier), and the date
# until which it is kept (Art. 27). Procedural facts, no personal data.
PROCEDURAL_FIELDS = (
    "residence_outcome", "residence_decision_kind", "work_outcome", "work_decision_kind",
    "complete_at", "incomplete_since", "decided_at", "notified_at", "appeal_lodged_at", "appeal_ended_at",
    "closed_at", "retain_until",
)


def inbox_item(row: Mapping[str, Any]) -> dict[str, Any]:
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


def inbox_item_bytes(row: Mapping[str, Any]) -> bytes:
    return jsonbytes.dumps(inbox_item(row))


def read_inbox(work: UnitOfWork, registry: Registry, designations: Designations, party: str,
               acting_person: str | None, *, after: int = 0, limit: int = 100) -> dict[str, Any]:
    """The caller's unacknowledged deliveries after id `after`, as it may see them (Art. 16–17)."""
    with work.reads.connect() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.recipient == party)
                            .where(deliveries.c.acked_at.is_(None)).where(deliveries.c.id > after)
                            .order_by(deliveries.c.id).limit(limit)).mappings().all()
    shown, withheld = projection.for_caller(registry, designations, party, acting_person, rows)
    work.record([_special_read(registry, party, acting_person, row, w, "GET /v1/inbox")
                 for row, w in zip(shown, withheld) if w or set(row["data_categories"]) & SPECIAL_CATEGORIES])
    return {"items": [_item(row, w) for row, w in zip(shown, withheld)],
            "withheld_categories": sorted(set().union(*withheld))}


def read_dossier(work: UnitOfWork, registry: Registry, designations: Designations, party: str,
                 acting_person: str | None, dossier_id: str) -> dict[str, Any]:
    """Need to know: the dossier's procedural state, and exactly what this party was delivered about
    it, as the caller may see it. Itself a `consulted` audit event (Art. 11)."""
    with work.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.application_kind, dossiers.c.category,
                                dossiers.c.competent_region, dossiers.c.state, dossiers.c.created_at,
                                dossiers.c.updated_at, *(dossiers.c[c] for c in PROCEDURAL_FIELDS))
                         .where(dossiers.c.id == dossier_id)).mappings().first()
        received = conn.execute(select(deliveries).where(deliveries.c.dossier_id == dossier_id)
                                .where(deliveries.c.recipient == party)
                                .order_by(deliveries.c.id)).mappings().all()
    if d is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if not received:
        raise NotAuthorised("this party received nothing on this dossier", code="not_party_to_dossier")
    shown, withheld = projection.for_caller(registry, designations, party, acting_person, received)
    categories = sorted({c for r in shown for c in r["data_categories"]})
    not_shown = sorted(set().union(*withheld))
    reason = "GET /v1/dossiers" + (f" withheld={','.join(not_shown)}" if not_shown else "")
    work.record([AuditEvent("consulted", dossier_id=dossier_id, actor=party, acting_person=acting_person,
                            data_categories=categories, reason=reason)])
    return {
        "id": d["id"], "application_kind": d["application_kind"], "category": d["category"],
        "competent_region": d["competent_region"], "state": d["state"],
        "created_at": iso_utc(d["created_at"]), "updated_at": iso_utc(d["updated_at"]),
        # the procedural facts of the dossier (its moves, each part's outcome): always present, null when not set
        **{c: iso_utc(d[c]) for c in PROCEDURAL_FIELDS},
        "data_categories": categories, "withheld_categories": not_shown,
        "messages": [_item(row, w) for row, w in zip(shown, withheld)],
    }


def _item(row: Mapping[str, Any], withheld: set[str]) -> dict[str, Any]:
    item = inbox_item(row)
    if withheld:
        item["withheld_categories"] = sorted(withheld)
    return item


def _special_read(registry: Registry, party: str, acting_person: str | None, row: Mapping[str, Any],
                  withheld: set[str], route: str) -> AuditEvent:
    """The trace of a read of an item holding special categories (Art. 16): who (party and acting
    person), which categories were returned, which withheld. No personal data in the reason."""
    flow = registry.flows.get(row["flow_id"])
    return AuditEvent("consulted", flow_id=row["flow_id"], message_id=row["message_id"],
                      correlation_id=row["correlation_id"], dossier_id=row["dossier_id"], actor=party,
                      acting_person=acting_person, purpose=row["purpose"],
                      legal_basis=flow.legal_basis if flow else (), data_categories=row["data_categories"],
                      reason=route + (f" withheld={','.join(sorted(withheld))}" if withheld else ""))


def acknowledge(work: UnitOfWork, registry: Registry, party: str, delivery_ids: Sequence[int],
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

    work.write(write)
    return {i: answer[i] for i in ids}


_ACK = update(deliveries).where(deliveries.c.id.in_(bindparam("ids", expanding=True))) \
    .where(deliveries.c.recipient == bindparam("party")).where(deliveries.c.acked_at.is_(None)) \
    .values(acked_at=bindparam("now")) \
    .returning(deliveries.c.id, deliveries.c.flow_id, deliveries.c.message_id, deliveries.c.correlation_id,
               deliveries.c.dossier_id, deliveries.c.purpose, deliveries.c.data_categories)
_MINE = select(deliveries.c.id).where(deliveries.c.id.in_(bindparam("ids", expanding=True))) \
    .where(deliveries.c.recipient == bindparam("party"))
