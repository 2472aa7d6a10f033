"""The portal's route: an application submitted through "Working in Belgium" (Art. 19–20)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from hub.interfaces.api.deps import CallerDep, HubDep, json_body
from hub.messaging.ingress import Submission, submit

router = APIRouter(prefix="/v1", tags=["portal"])

APPLICATION_FLOW = "single-permit.application-submitted"
PROFESSIONAL_CARD_FLOW = "professional-card.application-submitted"


@router.post("/applications", status_code=202,
             summary="Submit an application (Art. 2 §1 1°): the hub opens a dossier and routes it to the competent region")
def submit_application(hub: HubDep, caller: CallerDep, payload: Annotated[Any, Depends(json_body)],
                       idempotency_key: Annotated[str | None, Header(
                           max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                           description="the portal's own id for this submission: a retry is not processed twice",
                       )] = None) -> JSONResponse:
    kind = payload.get("application_kind") if isinstance(payload, dict) else None
    flow = PROFESSIONAL_CARD_FLOW if kind == "professional_card" else APPLICATION_FLOW
    accepted = submit(hub.ingress, Submission(flow_id=flow, sender=caller.party, payload=payload,
                                              message_id=idempotency_key, acting_person=caller.acting_person))
    return JSONResponse({"message_id": accepted.message_id, "dossier_id": accepted.dossier_id,
                         "recipients": list(accepted.recipients), "duplicate": accepted.duplicate},
                        status_code=200 if accepted.duplicate else 202)
