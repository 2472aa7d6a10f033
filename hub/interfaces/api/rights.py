"""Data-subject rights (Art. 28–29; GDPR arts. 12, 15–21): the portal or a controller files a request,
the competent controller lists, answers and exports.

Who: filing — the portal (for the data subject) or a controller that received a request directly
(DVZ, a region); listing, answering, exporting — the controller the request went to. Anyone else gets
403 (`not_rights_channel`, `not_a_controller`, `not_request_controller`); the app's error handler
writes the `rejected` event. "Now" is the `utc_now` dependency, so tests can move time.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hub.lifecycle import rights
from hub.interfaces.api.deps import CallerDep, HubDep, json_body
from hub.domain.errors import MalformedMessage, NotAuthorised

router = APIRouter(prefix="/v1", tags=["rights"])

MAX_DETAILS_BYTES = 16 * 1024


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


NowDep = Annotated[datetime, Depends(utc_now)]


class RequestIn(BaseModel):
    """A request as the portal or a controller files it. kind, concerning and the identifiers are
    checked by hub.rights, which names each fault with its own code."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=32, description=" | ".join(rights.KINDS))
    concerning: str = Field(max_length=32, description=" | ".join(rights.CONCERNING))
    insz: str | None = Field(None, max_length=32)
    passport_number: str | None = Field(None, max_length=40)
    region: str | None = Field(None, max_length=40, description="competent region when the person has no dossier")
    received_at: AwareDatetime | None = Field(None, description="when a controller received it directly; default now")
    details: dict[str, Any] | None = Field(None, description="the request in the person's words, free form")


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="why the request needs more time (told to the person)")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(max_length=32, description=" | ".join(rights.OUTCOMES))
    note: str | None = Field(None, max_length=4000)


def _parse(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        detail = [{"path": "/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()]
        raise MalformedMessage(detail, code="invalid_request") from None


@router.post("/rights-requests", status_code=201,
             summary="File a data-subject request (Art. 28–29): the dated acknowledgment of receipt")
def file_request(hub: HubDep, caller: CallerDep, now: NowDep,
                 body: Annotated[Any, Depends(json_body)]) -> dict[str, Any]:
    if not rights.may_bring_requests(hub.registry, caller.party):
        raise NotAuthorised("rights requests come from the portal or a controller (DVZ, a region)",
                            code="not_rights_channel")
    data = _parse(RequestIn, body)
    if data.details is not None and len(json.dumps(data.details)) > MAX_DETAILS_BYTES:
        raise MalformedMessage(f"details: at most {MAX_DETAILS_BYTES} bytes", code="invalid_request")
    req = rights.submit_request(hub.work, hub.registry, kind=data.kind, concerning=data.concerning,
                                insz=data.insz, passport=data.passport_number, details=data.details,
                                region=data.region, submitted_by=caller.party, acting_person=caller.acting_person,
                                received_at=data.received_at, now=now)
    return rights.acknowledgment(req, hub.registry)


@router.get("/rights-requests", summary="The calling controller's requests, overdue ones flagged")
def list_requests(hub: HubDep, caller: CallerDep, now: NowDep,
                  overdue: Annotated[bool, Query(description="only open requests past their due date")] = False,
                  state: Annotated[str | None, Query(pattern="^(open|answered)$")] = None) -> dict[str, Any]:
    rights.require_controller(caller.party)
    found = rights.list_requests(hub.work.reads, caller.party, now, overdue_only=overdue, state=state)
    rights.record_listing(hub.work, caller.party, caller.acting_person, len(found), "api", now)
    return {"controller": caller.party, "now": now.isoformat(),
            "overdue": sum(r.overdue(now) for r in found),
            "requests": [r.as_json(now) for r in found]}


@router.post("/rights-requests/{request_id}/answer", summary="Answer a request (its controller only)")
def answer_request(hub: HubDep, caller: CallerDep, now: NowDep, request_id: str,
                   body: Annotated[Any, Depends(json_body)]) -> dict[str, Any]:
    rights.require_controller(caller.party)
    data = _parse(AnswerIn, body)
    reply = {"outcome": data.outcome, **({"note": data.note} if data.note is not None else {})}
    req = rights.answer(hub.work, request_id, caller.party, reply, now, acting_person=caller.acting_person)
    return req.as_json(now)


@router.post("/rights-requests/{request_id}/extend",
             summary="Extend the period by two further months, once, before the first due date (GDPR art. 12(3))")
def extend_request(hub: HubDep, caller: CallerDep, now: NowDep, request_id: str,
                   body: Annotated[Any, Depends(json_body)]) -> dict[str, Any]:
    rights.require_controller(caller.party)
    data = _parse(ExtendIn, body)
    req = rights.extend(hub.work, request_id, caller.party, data.reason, now, acting_person=caller.acting_person)
    return req.as_json(now)


@router.get("/rights-requests/{request_id}/export",
            summary="The person's data as JSON, for an access or portability request (its controller only)")
def export(hub: HubDep, caller: CallerDep, now: NowDep, request_id: str) -> JSONResponse:
    rights.require_controller(caller.party)
    body = rights.export_for_request(hub.work, hub.registry, request_id, caller.party, now,
                                     acting_person=caller.acting_person,
                                     special=hub.designations.visible(caller.party, caller.acting_person))
    return JSONResponse(body, headers={
        "Content-Disposition": f'attachment; filename="rights-export-{request_id}.json"'})
