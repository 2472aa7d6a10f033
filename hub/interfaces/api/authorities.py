"""Routes for the authorities: send on a flow, pull the inbox, acknowledge, consult a dossier."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from hub.domain.errors import NotFound
from hub.infra.auth import Caller
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.hardening import INT_MAX
from hub.interfaces.api.openapi import BODY_SCHEMA
from hub.interfaces.api.problems import Problem, problem_responses
from hub.messaging.inbox import acknowledge, read_dossier, read_inbox
from hub.messaging.ingress import MAX_BATCH, Submission, submit, submit_many
from hub.messaging.message_in import MessageIn, accepted_body, answer_of

router = APIRouter(prefix="/v1", tags=["authorities"], route_class=StrictRoute)

DeliveryId = Annotated[int, Field(strict=True, ge=1, le=INT_MAX)]   # strict: `true` is not delivery 1


class Accepted(BaseModel):
    """The hub took the message: it is stored, and will be delivered to `recipients`."""

    message_id: str
    dossier_id: str | None
    recipients: list[str]
    duplicate: bool = Field(description="true: a retry of a message already taken (answered 200, not 202)")


class BatchIn(BaseModel):
    """Messages handed over at once: each is taken as if sent alone on POST /v1/messages, in order."""

    model_config = ConfigDict(extra="forbid")
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_BATCH)


class AcceptedResult(BaseModel):
    """A message of the batch the hub took: 202 new, 200 a retry of a message already taken."""

    status: Literal[202, 200] = Field(description="202: taken now; 200: a retry of a message already taken")
    message_id: str
    dossier_id: str | None
    recipients: list[str]
    duplicate: bool


class RefusedResult(BaseModel):
    """A message of the batch the hub refused: nothing of it is stored; `problem` is the RFC 9457
    body POST /v1/messages would have answered for it (400 malformed or message_id_reused, 403 not
    your flow or authority, 404 unknown dossier, 409 a move the dossier does not allow, 422 contract)."""

    status: int = Field(ge=400, le=599, description="the HTTP status POST /v1/messages would have answered")
    problem: Problem


def _result_kind(value: Any) -> str:
    status = value.get("status") if isinstance(value, dict) else getattr(value, "status", None)
    return "accepted" if status in (200, 202) else "refused"


BatchResult = Annotated[Union[Annotated[AcceptedResult, Tag("accepted")], Annotated[RefusedResult, Tag("refused")]],
                        Discriminator(_result_kind)]


class BatchResults(BaseModel):
    results: list[BatchResult] = Field(description="one per message of the batch, in its order")


class Delivery(BaseModel):
    """One delivery as the recipient may see it: the payload is the flow's contract, projected to
    the data categories this recipient may receive (fields it may not see are left out)."""

    model_config = ConfigDict(extra="allow")
    id: int | None
    message_id: str
    flow: str
    sender: str
    dossier_id: str | None
    correlation_id: str | None
    purpose: int | None
    data_categories: list[str]
    payload: dict[str, Any]
    delivered_at: str | None
    attachments: dict[str, Any] | None = Field(None, description="present only when the message has attachments")
    withheld_categories: list[str] | None = Field(None, description="present only when special categories were "
                                                                    "left out for this caller")


class InboxPage(BaseModel):
    items: list[Delivery]
    withheld_categories: list[str]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[DeliveryId] = Field(min_length=1, max_length=500)


class AckOne(BaseModel):
    id: int
    acknowledged: bool
    already: bool


class AckResults(BaseModel):
    results: dict[str, str] = Field(description='per delivery id: "acknowledged", "already" or "unknown"')


class DossierView(BaseModel):
    id: str
    application_kind: str | None
    category: str | None
    competent_region: str | None
    state: str
    created_at: str
    updated_at: str
    residence_outcome: str | None = Field(description="granted, refused, … ; null: not decided")
    residence_decision_kind: str | None = Field(description="e.g. residence_authorisation (Art. 18)")
    work_outcome: str | None = Field(description="granted, refused, … ; null: not decided")
    work_decision_kind: str | None = Field(description="e.g. work_authorisation (Art. 18)")
    complete_at: str | None = Field(description="admissible: the decision clock starts (ISO 8601)")
    incomplete_since: str | None = Field(description="additional documents requested, not yet in")
    decided_at: str | None = Field(description="both parts known, or a refusal")
    notified_at: str | None = Field(description="the decision notified")
    appeal_lodged_at: str | None
    appeal_ended_at: str | None
    closed_at: str | None
    retain_until: str | None = Field(description="kept until (Art. 27); null: kept while pending or on hold")
    data_categories: list[str]
    withheld_categories: list[str]
    messages: list[Delivery]


class RecipientSummary(BaseModel):
    party: str
    data_categories: list[str]


class FlowSummary(BaseModel):
    id: str
    title: str
    purpose: int
    legal_basis: list[str]
    controller: list[str]
    processor: str | None
    senders: list[str]
    recipients: list[RecipientSummary]
    message: str
    data_categories: list[str]
    enabled: bool


class Flows(BaseModel):
    flows: list[FlowSummary]


def accepted_answer(accepted) -> JSONResponse:
    body = accepted_body(accepted)
    status = body.pop("status")
    return JSONResponse(body, status_code=status)


def submission_of(caller: Caller, msg: MessageIn) -> Submission:
    """What the caller hands over with one envelope: the sender and acting person from its token."""
    return Submission(flow_id=msg.flow, sender=caller.party, payload=msg.payload, recipients=tuple(msg.recipients),
                      dossier_id=msg.dossier_id, correlation_id=msg.correlation_id, message_id=msg.message_id,
                      acting_person=caller.acting_person)


@router.post("/messages", operation_id="sendMessage",
             status_code=202, summary="Send a message on a flow of the protocol agreement",
             response_model=Accepted,
             responses={200: {"model": Accepted, "description": "a retry of a message already taken"},
                        **problem_responses(403, 404, 409, 422, s422="the payload does not follow the flow's "
                                            "contract, or the flow is unknown or not open")},
             openapi_extra={BODY_SCHEMA: {"$ref": "#/components/schemas/Message"}})
def send_message(hub: HubDep, caller: CallerDep, msg: Annotated[MessageIn, Body()]) -> JSONResponse:
    return accepted_answer(submit(hub.ingress, submission_of(caller, msg)))


@router.post("/messages:batch", operation_id="sendMessageBatch",
             summary=f"Send up to {MAX_BATCH} messages at once, each answered on its own",
             response_model=BatchResults,
             responses={200: {"description": "each message's answer, in order: taken (202, or 200 for a retry) "
                                             "or refused (its problem)"},
                        **problem_responses(400, s400=f"the body is not a batch of 1 to {MAX_BATCH} messages "
                                            "(problem `issues` name each fault): none of it is taken")},
             openapi_extra={BODY_SCHEMA: {
                 "type": "object", "additionalProperties": False, "required": ["messages"],
                 "properties": {"messages": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                             "items": {"$ref": "#/components/schemas/Message"}}}}})
def send_messages(request: Request, hub: HubDep, caller: CallerDep,
                  batch: Annotated[BatchIn, Body()]) -> JSONResponse:
    """Each message is checked and taken as POST /v1/messages would (its own message id, its own
    answer, in order; messages about the same dossier in the order given), and those taken are
    stored together (one transaction; a message about a dossier met earlier in the batch goes in the
    next one, after it). The answer is 200 whatever each message's fate: `results[i]` is the answer
    to `messages[i]`, a refusal the problem the single route would have answered. The store being away is a 503 for the whole batch: send it
    again with the same message ids, and a message already taken is answered as a duplicate."""
    answers = submit_many(hub.ingress, [submission_of(caller, m) for m in batch.messages])
    return JSONResponse({"results": [answer_of(a, request.url.path) for a in answers]})


@router.get("/inbox", operation_id="listInbox",
            summary="Deliveries waiting for the calling party (need-to-know projections)",
            response_model=InboxPage, response_model_exclude_unset=True)
def inbox(hub: HubDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
          after: Annotated[int, Query(ge=0, le=INT_MAX, description="a delivery id: the previous page's "
                                      "next_after")] = 0) -> dict[str, Any]:
    """Art. 16–17: special categories only for designated persons (or a `systems: true` back office);
    an item that holds them is re-projected without what the caller may not see, and every such
    read is on the record."""
    page = read_inbox(hub.work, hub.registry, hub.designations, caller.party, caller.acting_person,
                      after=after, limit=limit)
    items = page["items"]
    page["next_after"] = items[-1]["id"] if len(items) == limit else None
    return page


@router.post("/inbox/{delivery_id}/ack", operation_id="acknowledgeDelivery",
             summary="Acknowledge a delivery: it leaves the inbox",
             response_model=AckOne, responses=problem_responses(404))
def ack(hub: HubDep, caller: CallerDep, delivery_id: Annotated[int, Path(ge=1, le=INT_MAX)]) -> dict[str, Any]:
    result = acknowledge(hub.work, hub.registry, caller.party, [delivery_id], caller.acting_person)[delivery_id]
    if result == "unknown":
        raise NotFound(f"no delivery {delivery_id} in your inbox")
    return {"id": delivery_id, "acknowledged": True, "already": result == "already"}


@router.post("/inbox/ack", operation_id="acknowledgeDeliveries",
             summary="Acknowledge a page of deliveries at once", response_model=AckResults)
def ack_many(hub: HubDep, caller: CallerDep, body: Annotated[AckIn, Body()]) -> dict[str, Any]:
    """Each id answers "acknowledged", "already" or "unknown" (not in the caller's inbox)."""
    results = acknowledge(hub.work, hub.registry, caller.party, body.ids, caller.acting_person)
    return {"results": {str(k): v for k, v in results.items()}}


@router.get("/dossiers/{dossier_id}", operation_id="getDossier",
            summary="A dossier as the calling party may see it (Art. 11)",
            response_model=DossierView, response_model_exclude_unset=True, responses=problem_responses(403, 404))
def dossier(hub: HubDep, caller: CallerDep, dossier_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """Need to know: the procedural state, and exactly what this party was delivered about the dossier."""
    return read_dossier(hub.work, hub.registry, hub.designations, caller.party, caller.acting_person, dossier_id)


@router.get("/flows", operation_id="listFlows",
            summary="The flow registry: the protocol agreement as data", response_model=Flows)
def flows(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    return {"flows": [flow_summary(f) for f in hub.registry.flows.values()]}


def flow_summary(f) -> dict[str, Any]:
    return {
        "id": f.id, "title": f.title, "purpose": f.purpose, "legal_basis": list(f.legal_basis),
        "controller": list(f.controller), "processor": f.processor, "senders": list(f.senders),
        "recipients": [{"party": r.party, "data_categories": sorted(r.data_categories)} for r in f.recipients],
        "message": f.message, "data_categories": sorted(f.data_categories), "enabled": f.enabled,
    }
