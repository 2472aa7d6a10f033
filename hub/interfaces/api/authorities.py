"""Routes for the authorities: send on a flow, pull the inbox, acknowledge, consult a dossier."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from hub import audit
from hub.interfaces.api.deps import CallerDep, HubDep, json_body
from hub.audit import AuditEvent
from hub.domain.designations import SPECIAL_CATEGORIES, redact
from hub.domain.errors import MalformedMessage, NotAuthorised, NotFound, UnknownDossier
from hub.messaging.ingress import Submission, submit
from hub.messaging.routing import acknowledge, inbox_item
from hub.infra.store.schema import deliveries, dossiers

router = APIRouter(prefix="/v1", tags=["authorities"])


class MessageIn(BaseModel):
    """A message on a registered flow. `recipients` may be left out: the flow's parties for the dossier."""

    model_config = ConfigDict(extra="forbid")
    flow: str = Field(max_length=80)
    payload: dict[str, Any]
    recipients: list[str] = Field(default_factory=list, max_length=32)
    dossier_id: str | None = Field(None, max_length=36)
    correlation_id: str | None = Field(None, max_length=64)
    message_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                                   description="the sender's own id: a retry with the same id is not processed twice")


@router.post("/messages", status_code=202, summary="Send a message on a flow of the protocol agreement")
def send_message(hub: HubDep, caller: CallerDep, body: Annotated[Any, Depends(json_body)]) -> JSONResponse:
    try:
        msg = MessageIn.model_validate(body)
    except ValueError as err:
        raise MalformedMessage(_pydantic_errors(err)) from err
    accepted = submit(hub.ingress, Submission(
        flow_id=msg.flow, sender=caller.party, payload=msg.payload, recipients=tuple(msg.recipients),
        dossier_id=msg.dossier_id, correlation_id=msg.correlation_id, message_id=msg.message_id,
        acting_person=caller.acting_person))
    return JSONResponse({"message_id": accepted.message_id, "dossier_id": accepted.dossier_id,
                         "recipients": list(accepted.recipients), "duplicate": accepted.duplicate},
                        status_code=200 if accepted.duplicate else 202)


@router.get("/inbox", summary="Deliveries waiting for the calling party (need-to-know projections)")
def inbox(hub: HubDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
          after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Art. 16–17: special categories only for designated persons (or a `systems: true` back office);
    an item that holds them is re-projected without what the caller may not see, and every such
    read is on the record."""
    with hub.reads.connect() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.recipient == caller.party)
                            .where(deliveries.c.acked_at.is_(None)).where(deliveries.c.id > after)
                            .order_by(deliveries.c.id).limit(limit)).mappings().all()
    shown, withheld = _as_caller_may_see(hub, caller, rows)
    events = [_special_read(hub, caller, row, w, "GET /v1/inbox") for row, w in zip(shown, withheld)
              if w or set(row["data_categories"]) & SPECIAL_CATEGORIES]
    if events:
        with hub.engine.begin() as conn:
            audit.append(conn, events)
    return {"items": [_item(row, w) for row, w in zip(shown, withheld)],
            "withheld_categories": sorted(set().union(*withheld))}


@router.post("/inbox/{delivery_id}/ack", summary="Acknowledge a delivery: it leaves the inbox")
def ack(hub: HubDep, caller: CallerDep, delivery_id: int) -> dict[str, Any]:
    result = acknowledge(hub.commits, hub.registry, caller.party, [delivery_id], caller.acting_person)[delivery_id]
    if result == "unknown":
        raise NotFound(f"no delivery {delivery_id} in your inbox")
    return {"id": delivery_id, "acknowledged": True, "already": result == "already"}


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(min_length=1, max_length=500)


@router.post("/inbox/ack", summary="Acknowledge a page of deliveries at once")
def ack_many(hub: HubDep, caller: CallerDep, body: Annotated[Any, Depends(json_body)]) -> dict[str, Any]:
    """Each id answers "acknowledged", "already" or "unknown" (not in the caller's inbox)."""
    try:
        ids = AckIn.model_validate(body).ids
    except ValueError as err:
        raise MalformedMessage(_pydantic_errors(err)) from err
    results = acknowledge(hub.commits, hub.registry, caller.party, ids, caller.acting_person)
    return {"results": {str(k): v for k, v in results.items()}}


@router.get("/dossiers/{dossier_id}", summary="A dossier as the calling party may see it (Art. 11)")
def dossier(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    """Need to know: the procedural state, and exactly what this party was delivered about the dossier."""
    with hub.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.application_kind, dossiers.c.category,
                                dossiers.c.competent_region, dossiers.c.state, dossiers.c.created_at,
                                dossiers.c.updated_at).where(dossiers.c.id == dossier_id)).mappings().first()
        received = conn.execute(select(deliveries).where(deliveries.c.dossier_id == dossier_id)
                                .where(deliveries.c.recipient == caller.party)
                                .order_by(deliveries.c.id)).mappings().all()
    if d is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if not received:
        raise NotAuthorised("this party received nothing on this dossier", code="not_party_to_dossier")
    shown, withheld = _as_caller_may_see(hub, caller, received)   # Art. 16–17
    categories = sorted({c for r in shown for c in r["data_categories"]})
    not_shown = sorted(set().union(*withheld))
    reason = "GET /v1/dossiers" + (f" withheld={','.join(not_shown)}" if not_shown else "")
    with hub.engine.begin() as conn:  # Art. 11: every consultation is itself on the record
        audit.append(conn, [AuditEvent("consulted", dossier_id=dossier_id, actor=caller.party,
                                       acting_person=caller.acting_person, data_categories=categories,
                                       reason=reason)])
    return {
        "id": d["id"], "application_kind": d["application_kind"], "category": d["category"],
        "competent_region": d["competent_region"], "state": d["state"],
        "created_at": d["created_at"].isoformat(), "updated_at": d["updated_at"].isoformat(),
        "data_categories": categories, "withheld_categories": not_shown,
        "messages": [_item(row, w) for row, w in zip(shown, withheld)],
    }


def _as_caller_may_see(hub, caller, rows) -> tuple[list[dict[str, Any]], list[set[str]]]:
    """Each delivery projected again for the caller's designations (hub/designations.py, Art. 16–17)."""
    visible = hub.designations.visible(caller.party, caller.acting_person)
    pairs = [redact(hub.registry, r, visible) for r in rows]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _item(row: dict[str, Any], withheld: set[str]) -> dict[str, Any]:
    item = inbox_item(row)
    if withheld:
        item["withheld_categories"] = sorted(withheld)
    return item


def _special_read(hub, caller, row: dict[str, Any], withheld: set[str], route: str) -> AuditEvent:
    """The trace of a read of an item holding special categories (Art. 16): who (party and acting
    person), which categories were returned, which withheld. No personal data in the reason."""
    flow = hub.registry.flows.get(row["flow_id"])
    return AuditEvent("consulted", flow_id=row["flow_id"], message_id=row["message_id"],
                      correlation_id=row["correlation_id"], dossier_id=row["dossier_id"], actor=caller.party,
                      acting_person=caller.acting_person, purpose=row["purpose"],
                      legal_basis=flow.legal_basis if flow else (), data_categories=row["data_categories"],
                      reason=route + (f" withheld={','.join(sorted(withheld))}" if withheld else ""))


@router.get("/flows", summary="The flow registry: the protocol agreement as data")
def flows(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    return {"flows": [flow_summary(f) for f in hub.registry.flows.values()]}


def flow_summary(f) -> dict[str, Any]:
    return {
        "id": f.id, "title": f.title, "purpose": f.purpose, "legal_basis": list(f.legal_basis),
        "controller": list(f.controller), "processor": f.processor, "senders": list(f.senders),
        "recipients": [{"party": r.party, "data_categories": sorted(r.data_categories)} for r in f.recipients],
        "message": f.message, "data_categories": sorted(f.data_categories), "enabled": f.enabled,
    }


def _pydantic_errors(err: Exception) -> Any:
    errors = getattr(err, "errors", None)
    if callable(errors):
        return [{"path": "/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors()]
    return str(err)
