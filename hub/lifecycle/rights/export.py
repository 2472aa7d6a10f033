"""Access and portability (GDPR arts. 15, 20; Art. 28–29): the person's data on the platform as one
machine-readable document, made for the controller that answers the request.

What the controller gets follows the need-to-know rule (hub.domain.projection): a dossier it is not
party to is listed without its content; of the special categories (Art. 15–17), only those it
received itself and its caller's designations allow; the rest is withheld and named.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.audit import AuditEvent
from hub.domain import projection
from hub.domain.categories import SPECIAL_CATEGORIES
from hub.domain.envelope import iso_utc
from hub.domain.errors import MalformedMessage
from hub.domain.flows import Registry
from hub.infra.store.schema import (deliveries, dossier_clocks, dossiers, enrichments, rights_requests,
                                   stored_application)
from hub.infra.store.unit_of_work import UnitOfWork
from hub.lifecycle.rights.requests import (
    EXPORT_FORMAT, EXPORT_KINDS, LEGAL_BASIS, request_from_row, check_identifiers, own_request, subject_filter,
)

__all__ = ["export_subject", "export_for_request"]

_WITHHELD_LISTS = {"health": "medical_documents", "criminal_record": "criminal_record_documents"}
_DOSSIER_DATES = ("created_at", "updated_at", "complete_at", "incomplete_since", "decided_at", "notified_at",
                  "appeal_lodged_at", "appeal_ended_at", "closed_at", "retain_until")


def _without_content(value: Any) -> Any:
    """Documents by their metadata only: their content is in the stored application (same sha256)."""
    if isinstance(value, dict):
        return {k: _without_content(v) for k, v in value.items() if k != "content_base64"}
    if isinstance(value, list):
        return [_without_content(v) for v in value]
    return value


def _dossier_export(conn, registry: Registry, d: Mapping[str, Any], actor: str,
                    special: frozenset[str]) -> tuple[dict[str, Any], list[str]]:
    rows = [dict(r) for r in conn.execute(select(deliveries).where(deliveries.c.dossier_id == d["id"])
                                          .order_by(deliveries.c.id)).mappings()]
    own = [r for r in rows if r["recipient"] == actor]
    summary = {"id": d["id"], "application_kind": d["application_kind"], "category": d["category"],
               "competent_region": d["competent_region"], "state": d["state"],
               "residence_outcome": d["residence_outcome"], "work_outcome": d["work_outcome"],
               "residence_decision_kind": d["residence_decision_kind"],
               "work_decision_kind": d["work_decision_kind"],
               **{k: iso_utc(d[k]) for k in _DOSSIER_DATES}}
    if not own and actor != d["competent_region"]:
        # Art. 29: each controller answers for its own processing; this dossier is another's.
        return {**summary, "held_by": d["competent_region"], "content": "not_party"}, []
    # Art. 15–17: the special categories this controller itself received on the dossier, and only for
    # a caller designated for them; the rest is withheld and named.
    received = {c for r in own for c in r["data_categories"] or ()}
    visible = frozenset(special & received)
    app = d["application"] or {}
    present = {c for c, key in _WITHHELD_LISTS.items() if app.get(key)} | \
        {c for r in rows for c in (r["data_categories"] or ()) if c in SPECIAL_CATEGORIES}
    withheld = set(present - visible)
    messages = []
    for r in rows:
        shown, _ = projection.redact(registry, r, visible)
        messages.append({"flow": r["flow_id"], "sender": r["sender"], "recipient": r["recipient"],
                         "message_id": r["message_id"], "delivered_at": iso_utc(r["delivered_at"]),
                         "acknowledged_at": iso_utc(r["acked_at"]), "data_categories": shown["data_categories"],
                         "payload": _without_content(shown["payload"]),
                         "attachments": _without_content(shown["attachments"])})
    records = conn.execute(select(enrichments).where(enrichments.c.dossier_id == d["id"])
                           .order_by(enrichments.c.id)).mappings().all()
    clocks = conn.execute(select(dossier_clocks).where(dossier_clocks.c.dossier_id == d["id"])
                          .order_by(dossier_clocks.c.id)).mappings().all()
    categories = sorted(({c for m in messages for c in m["data_categories"]}
                         | {"identification", "contact", "residence_status", "employment", "financial",
                            "administrative"} | present | ({"social_security"} if records else set())) - withheld)
    return {**summary, "content": "full", "withheld_categories": sorted(withheld),
            "application": projection.application_for(registry, app, withheld), "messages": messages,
            "enrichment": [{"source": e["source"], "contract": e["contract"],
                            "contract_version": e["contract_version"], "status": e["status"],
                            "retrieved_at": iso_utc(e["retrieved_at"]), "data": e["data"]} for e in records],
            "clocks": [{"rule": c["rule"], "holder": c["holder"], "started_at": iso_utc(c["started_at"]),
                        "due_at": iso_utc(c["due_at"]), "stopped_at": iso_utc(c["stopped_at"]),
                        "outcome": c["outcome"]} for c in clocks]}, categories


def export_subject(work: UnitOfWork, registry: Registry, *, insz: str | None = None, passport: str | None = None,
                   actor: str, acting_person: str | None = None, special: frozenset[str] = frozenset(),
                   request_id: str | None = None, now: datetime) -> dict[str, Any]:
    """GDPR art. 15 and 20: the person's data on the platform as one JSON document (EXPORT_FORMAT):
    every dossier found by INSZ or passport number with its stored application (the data the person
    provided, documents included), the messages as each recipient received them, the social-security
    records (Art. 14), the clocks, and the person's rights requests.

    Made for `actor` (a controller): a dossier it is not party to is listed without its content; the
    special categories (Art. 15–17) only where it received them itself and `special` (its caller's
    designations) allows. One `consulted` audit event per dossier exported (none: one event).
    """
    insz, passport = check_identifiers(insz, passport)
    why = f"rights export{' request ' + request_id if request_id else ''}"
    with work.transaction(now) as tx:
        conn = tx.conn
        found = conn.execute(select(*(c for c in dossiers.c if c.name != "application"), stored_application)
                             .where(subject_filter(dossiers, insz, passport))
                             .order_by(dossiers.c.created_at, dossiers.c.id)).mappings().all()
        out, events = [], []
        for d in found:
            entry, categories = _dossier_export(conn, registry, d, actor, special)
            entry["matched_by"] = [k for k, v, col in (("insz", insz, "subject_insz"),
                                                       ("passport", passport, "subject_passport"))
                                   if v and d[col] == v]
            out.append(entry)
            events.append(AuditEvent("consulted", dossier_id=d["id"], actor=actor, acting_person=acting_person,
                                     legal_basis=LEGAL_BASIS, data_categories=categories,
                                     reason=f"{why} ({entry['content']})"))
        requests = [request_from_row(r) for r in conn.execute(
            select(rights_requests).where(subject_filter(rights_requests, insz, passport))
            .order_by(rights_requests.c.received_at, rights_requests.c.id)).mappings()]
        tx.record(events or [AuditEvent("consulted", actor=actor, acting_person=acting_person,
                                                 legal_basis=LEGAL_BASIS, reason=f"{why} (no dossier)")])
    return {
        "format": EXPORT_FORMAT, "generated_at": iso_utc(now), "controller": actor, "request": request_id,
        "subject": {"insz": insz, "passport_number": passport},
        "dossiers": out,
        "rights_requests": [{k: v for k, v in r.as_json(now).items()
                             if k not in ("subject_insz", "subject_passport")} for r in requests],
    }


def export_for_request(work: UnitOfWork, registry: Registry, request_id: str, controller: str, now: datetime, *,
                       acting_person: str | None = None, special: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The export answering an access or portability request, for that request's controller only."""
    req = own_request(work.reads, request_id, controller)
    if req.kind not in EXPORT_KINDS:
        raise MalformedMessage("only access and portability requests have an export", code="no_export_for_kind")
    return export_subject(work, registry, insz=req.subject_insz, passport=req.subject_passport,
                          actor=controller, acting_person=acting_person, special=special,
                          request_id=req.id, now=now)
