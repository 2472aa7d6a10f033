"""The portal's route: an application submitted through "Working in Belgium" (Art. 19–20)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header
from fastapi.responses import JSONResponse

from hub.interfaces.api.authorities import Accepted, accepted_answer
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.openapi import BODY_SCHEMA, contract_ref
from hub.interfaces.api.problems import problem_responses
from hub.messaging.ingress import Submission, submit

router = APIRouter(prefix="/v1", tags=["portal"], route_class=StrictRoute)

APPLICATION_FLOW = "single-permit.application-submitted"
PROFESSIONAL_CARD_FLOW = "professional-card.application-submitted"


@router.post("/applications", operation_id="submitApplication", status_code=202,
             summary="Submit an application (Art. 2 §1 1°): the hub opens a dossier and routes it to the competent region",
             response_model=Accepted,
             responses={200: {"model": Accepted, "description": "a retry of an application already taken"},
                        **problem_responses(403, 409, 422, s422="the application does not follow its contract")},
             openapi_extra={BODY_SCHEMA: contract_ref("application")})
def submit_application(hub: HubDep, caller: CallerDep, application: Annotated[dict[str, Any], Body()],
                       idempotency_key: Annotated[str | None, Header(
                           max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                           description="the portal's own id for this submission: a retry is not processed twice",
                       )] = None) -> JSONResponse:
    """The body is the application itself (the `Application` contract); `application_kind:
    professional_card` sends it on the professional-card flow."""
    kind = application.get("application_kind")
    flow = PROFESSIONAL_CARD_FLOW if kind == "professional_card" else APPLICATION_FLOW
    return accepted_answer(submit(hub.ingress, Submission(flow_id=flow, sender=caller.party, payload=application,
                                                          message_id=idempotency_key,
                                                          acting_person=caller.acting_person)))
