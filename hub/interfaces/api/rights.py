"""Data-subject rights (Art. 28–29; GDPR arts. 12, 15–21): the portal or a controller files a request,
the competent controller lists, answers and exports.

Who: filing — the portal (for the data subject) or a controller that received a request directly
(DVZ, a region); listing, answering, exporting — the controller the request went to. Anyone else gets
403 (`not_rights_channel`, `not_a_controller`, `not_request_controller`), before its body is validated
against the route's model; the app's error handler writes the `rejected` event. "Now" is the `utc_now` dependency, so tests
can move time.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.domain.errors import MalformedMessage, NotAuthorised
from hub.infra.auth import Caller
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.interfaces.api.types import INSTANT_RULE, Instant, RequestPath, Timestamp, to_instant
from hub.lifecycle import rights

router = APIRouter(prefix="/v1", tags=["rights"], route_class=StrictRoute)

MAX_DETAILS_BYTES = 16 * 1024

# A page's cursor: the last request's due date (UTC, microseconds since the epoch) and id, as text.
_CURSOR = re.compile(r"^([0-9]{1,16})\.([A-Za-z0-9._:-]{1,64})$")


async def utc_now() -> datetime:
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(utc_now)]


async def channel(hub: HubDep, caller: CallerDep) -> Caller:
    """The caller, if it may bring a request (the portal, or a controller that received one directly)."""
    if not rights.may_bring_requests(hub.registry, caller.party):
        raise NotAuthorised("rights requests come from the portal or a controller (DVZ, a region)",
                            code="not_rights_channel")
    return caller


async def controller(caller: CallerDep) -> Caller:
    """The caller, if it is a controller (DVZ, a region; Art. 29)."""
    rights.require_controller(caller.party)
    return caller


ChannelDep = Annotated[Caller, Depends(channel)]
ControllerDep = Annotated[Caller, Depends(controller)]


# ── what comes in ────────────────────────────────────────────────────────────────────────────

class RequestIn(BaseModel):
    """A request as the portal or a controller files it. kind, concerning and the identifiers are
    checked by hub.lifecycle.rights, which names each fault with its own code (unknown_kind,
    unknown_concerning, no_identifier, invalid_insz, invalid_passport, unknown_region,
    controller_unknown)."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=32, description=" | ".join(rights.KINDS),
                      json_schema_extra={"enum": list(rights.KINDS)})
    concerning: str = Field(max_length=32, description=" | ".join(rights.CONCERNING),
                            json_schema_extra={"enum": list(rights.CONCERNING)})
    insz: str | None = Field(None, max_length=32, description="the person's INSZ/NISS (11 digits)")
    passport_number: str | None = Field(None, max_length=40)
    region: str | None = Field(None, max_length=40, description="competent region when the person has no dossier")
    received_at: Instant | None = Field(None, description="when a controller received it directly (not in the "
                                                          f"future); default now. {INSTANT_RULE}")
    details: dict[str, Any] | None = Field(None, description=f"the request in the person's words, free form; "
                                                             f"at most {MAX_DETAILS_BYTES} bytes as JSON")

    @field_validator("details")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, ensure_ascii=False).encode()) > MAX_DETAILS_BYTES:
            raise ValueError(f"at most {MAX_DETAILS_BYTES} bytes")
        return value


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="why the request needs more time (told to the person)")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(max_length=32, description=" | ".join(rights.OUTCOMES) + " (else `unknown_outcome`)",
                         json_schema_extra={"enum": list(rights.OUTCOMES)})
    note: str | None = Field(None, max_length=4000)


# ── what goes out ────────────────────────────────────────────────────────────────────────────

class Acknowledgment(BaseModel):
    """Art. 29 §4: the dated acknowledgment of receipt. It names nobody: whoever carries it may read it."""

    reference: str = Field(description="the request's id")
    kind: str
    right: str = Field(description="the GDPR article, e.g. GDPR art. 15")
    concerning: str
    controller: str = Field(description="the party the request went to (Art. 29)")
    controller_name: dict[str, str] | None = Field(description="the controller's name per language (nl, fr, de, en)")
    received_at: Timestamp
    acknowledged_at: Timestamp
    due_at: Timestamp = Field(description="one calendar month from receipt, to the end of a working day in Brussels")
    due_rule: str
    next_steps: str
    state: Literal["open", "answered"]


class AnswerOut(BaseModel):
    outcome: str
    note: str | None


class RequestFields(BaseModel):
    id: str
    kind: str
    concerning: str
    controller: str
    submitted_by: str
    details: dict[str, Any] | None = Field(description="as filed, free form")
    received_at: Timestamp
    acknowledged_at: Timestamp
    due_at: Timestamp
    state: Literal["open", "answered"]
    answered_at: Timestamp | None
    answer: AnswerOut | None
    extended_at: Timestamp | None
    extension_reason: str | None
    overdue: bool = Field(description="still open after its due date")
    late: bool = Field(description="answered after its due date")


class RightsRequestOut(RequestFields):
    """A request as its controller handles it (it names the person)."""

    subject_insz: str | None
    subject_passport: str | None


class RightsRequests(BaseModel):
    """The calling controller's requests, oldest due first, a page at a time."""

    controller: str
    now: Timestamp
    overdue: int = Field(description="how many of the controller's open requests are overdue (on every page)")
    requests: list[RightsRequestOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last page")


class ExportedMessage(BaseModel):
    flow: str
    sender: str
    recipient: str
    message_id: str
    delivered_at: Timestamp | None
    acknowledged_at: Timestamp | None
    data_categories: list[str]
    payload: dict[str, Any] = Field(description="as the recipient received it, documents by their metadata only")
    attachments: dict[str, Any] | None


class ExportedRecord(BaseModel):
    source: str
    contract: str
    contract_version: str
    status: str
    retrieved_at: Timestamp
    data: dict[str, Any]


class ExportedClock(BaseModel):
    rule: str
    holder: str
    started_at: Timestamp
    due_at: Timestamp
    stopped_at: Timestamp | None
    outcome: str


class ExportedDossier(BaseModel):
    """A dossier found for the person. `content: not_party`: another controller's dossier, listed
    without its content (`held_by` names it); `content: full`: what this controller may see of it."""

    id: str
    application_kind: str
    category: str
    competent_region: str
    state: str
    residence_outcome: str | None
    work_outcome: str | None
    residence_decision_kind: str | None
    work_decision_kind: str | None
    created_at: Timestamp
    updated_at: Timestamp
    complete_at: Timestamp | None
    incomplete_since: Timestamp | None
    decided_at: Timestamp | None
    notified_at: Timestamp | None
    appeal_lodged_at: Timestamp | None
    appeal_ended_at: Timestamp | None
    closed_at: Timestamp | None
    retain_until: Timestamp | None
    matched_by: list[Literal["insz", "passport"]]
    content: Literal["full", "not_party"]
    held_by: str | None = Field(None, description="not_party only: the controller that holds it")
    withheld_categories: list[str] | None = Field(None, description="full only: special categories left out")
    application: dict[str, Any] | None = Field(None, description="full only: the stored application (the "
                                                                 "`Application` contract), projected")
    messages: list[ExportedMessage] | None = Field(None, description="full only")
    enrichment: list[ExportedRecord] | None = Field(None, description="full only")
    clocks: list[ExportedClock] | None = Field(None, description="full only")


class Subject(BaseModel):
    insz: str | None
    passport_number: str | None


class SubjectExport(BaseModel):
    """GDPR arts. 15, 20: the person's data on the platform as one document (format
    `wib-hub.subject-export/1`), made for the controller that answers the request."""

    format: str
    generated_at: Timestamp
    controller: str
    request: str | None
    subject: Subject
    dossiers: list[ExportedDossier]
    rights_requests: list[RequestFields] = Field(description="the person's requests, oldest received first")


_REQUEST_PROBLEMS = {"s403": "not a controller (`not_a_controller`), or not the one the request went to "
                             "(`not_request_controller`)",
                     "s404": "no such request (`unknown_request`)"}


# ── the routes ───────────────────────────────────────────────────────────────────────────────

@router.post("/rights-requests", operation_id="fileRightsRequest", status_code=201,
             summary="File a data-subject request (Art. 28–29): the dated acknowledgment of receipt",
             response_model=Acknowledgment,
             responses=problem_responses(
                 400, 403, s403="not the portal or a controller (`not_rights_channel`)",
                 s400="the body does not follow RequestIn (`malformed_message`: `issues` name each field), or "
                      "names what the hub does not know: `unknown_kind`, `unknown_concerning`, `no_identifier`, "
                      "`invalid_insz`, `invalid_passport`, `unknown_region`, `controller_unknown` (the person "
                      "has no dossier: name the region), `invalid_request` (received_at in the future)"))
def file_request(hub: HubDep, caller: ChannelDep, now: NowDep,
                 body: Annotated[RequestIn, Body()]) -> dict[str, Any]:
    req = rights.submit_request(hub.work, hub.registry, kind=body.kind, concerning=body.concerning,
                                insz=body.insz, passport=body.passport_number, details=body.details,
                                region=body.region, submitted_by=caller.party, acting_person=caller.acting_person,
                                received_at=body.received_at, now=now)
    return rights.acknowledgment(req, hub.registry)


@router.get("/rights-requests", operation_id="listRightsRequests",
            summary="The calling controller's requests, overdue ones flagged",
            response_model=RightsRequests,
            responses=problem_responses(403, s403="not a controller (`not_a_controller`)"))
def list_requests(hub: HubDep, caller: ControllerDep, now: NowDep,
                  overdue: Annotated[bool, Query(description="only open requests past their due date")] = False,
                  state: Annotated[str | None, Query(pattern="^(open|answered)$")] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  after: Annotated[str | None, Query(max_length=120, pattern=_CURSOR.pattern,
                                                     description="the previous page's next_after")] = None,
                  ) -> dict[str, Any]:
    found = rights.list_requests(hub.work.reads, caller.party, now, overdue_only=overdue, state=state,
                                 after=_from_cursor(after), limit=limit)
    rights.record_listing(hub.work, caller.party, caller.acting_person, len(found), "api", now)
    return {"controller": caller.party, "now": now.isoformat(),
            "overdue": rights.count_overdue(hub.work.reads, caller.party, now),
            "requests": [r.as_json(now) for r in found],
            "next_after": _cursor(found[-1]) if len(found) == limit else None}


def _cursor(last: Any) -> str:
    return f"{int(to_instant(last.due_at).timestamp() * 1_000_000)}.{last.id}"


def _from_cursor(after: str | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    micros, request_id = _CURSOR.match(after).groups()     # the pattern was checked with the query
    try:
        return to_instant(datetime.fromtimestamp(int(micros) / 1_000_000, UTC)), request_id
    except (ValueError, OverflowError, OSError):
        raise MalformedMessage([{"in": "query", "name": "after", "detail": "not a cursor of this list"}],
                               code="invalid_request") from None


@router.post("/rights-requests/{request_id}/answer", operation_id="answerRightsRequest",
             summary="Answer a request (its controller only)",
             response_model=RightsRequestOut,
             responses=problem_responses(400, 403, 404, 409, **_REQUEST_PROBLEMS,
                                         s400="the body does not follow AnswerIn (`malformed_message`), or the "
                                              "outcome is not one of them (`unknown_outcome`)",
                                         s409="the request was already answered (`already_answered`)"))
def answer_request(hub: HubDep, caller: ControllerDep, now: NowDep, request_id: RequestPath,
                   body: Annotated[AnswerIn, Body()]) -> dict[str, Any]:
    reply = {"outcome": body.outcome, **({"note": body.note} if body.note is not None else {})}
    req = rights.answer(hub.work, request_id, caller.party, reply, now, acting_person=caller.acting_person)
    return req.as_json(now)


@router.post("/rights-requests/{request_id}/extend", operation_id="extendRightsRequest",
             summary="Extend the period by two further months, once, before the first due date (GDPR art. 12(3))",
             response_model=RightsRequestOut,
             responses=problem_responses(403, 404, 409, **_REQUEST_PROBLEMS,
                                         s409="answered, already extended, or past its first due date "
                                              "(`not_extendable`)"))
def extend_request(hub: HubDep, caller: ControllerDep, now: NowDep, request_id: RequestPath,
                   body: Annotated[ExtendIn, Body()]) -> dict[str, Any]:
    req = rights.extend(hub.work, request_id, caller.party, body.reason, now, acting_person=caller.acting_person)
    return req.as_json(now)


@router.get("/rights-requests/{request_id}/export", operation_id="exportRightsRequest",
            summary="The person's data as JSON, for an access or portability request (its controller only)",
            response_model=SubjectExport,
            responses={200: {"description": "the export, as a JSON file to save "
                                            "(`Content-Disposition: attachment`)",
                             "headers": {"Content-Disposition": {
                                 "description": 'attachment; filename="rights-export-<request>.json"',
                                 "schema": {"type": "string"}}}},
                       **problem_responses(400, 403, 404, **_REQUEST_PROBLEMS,
                                           s400="the request id is not valid (`invalid_request`), or the request "
                                                "is not an access or portability request (`no_export_for_kind`)")})
def export(hub: HubDep, caller: ControllerDep, now: NowDep, request_id: RequestPath) -> JSONResponse:
    """Only access and portability requests have an export (else 400 `no_export_for_kind`)."""
    body = rights.export_for_request(hub.work, hub.registry, request_id, caller.party, now,
                                     acting_person=caller.acting_person,
                                     special=hub.designations.visible(caller.party, caller.acting_person))
    return JSONResponse(body, headers={
        "Content-Disposition": f'attachment; filename="rights-export-{request_id}.json"'})
