"""Routes for the authorities: send on a flow, pull the inbox, acknowledge, consult a dossier."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.domain.errors import MalformedMessage, NotFound
from hub.interfaces.api.deps import CallerDep, HubDep, json_body
from hub.messaging.inbox import acknowledge, read_dossier, read_inbox
from hub.messaging.ingress import Submission, submit

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
    return read_inbox(hub.work, hub.registry, hub.designations, caller.party, caller.acting_person,
                      after=after, limit=limit)


@router.post("/inbox/{delivery_id}/ack", summary="Acknowledge a delivery: it leaves the inbox")
def ack(hub: HubDep, caller: CallerDep, delivery_id: int) -> dict[str, Any]:
    result = acknowledge(hub.work, hub.registry, caller.party, [delivery_id], caller.acting_person)[delivery_id]
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
    results = acknowledge(hub.work, hub.registry, caller.party, ids, caller.acting_person)
    return {"results": {str(k): v for k, v in results.items()}}


@router.get("/dossiers/{dossier_id}", summary="A dossier as the calling party may see it (Art. 11)")
def dossier(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    """Need to know: the procedural state, and exactly what this party was delivered about the dossier."""
    return read_dossier(hub.work, hub.registry, hub.designations, caller.party, caller.acting_person, dossier_id)


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
