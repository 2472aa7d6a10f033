"""Art. 14 on demand: DVZ and the competent region read a dossier's social-security records, or ask
the sources again now."""
from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.interfaces.api.types import DossierPath, Timestamp
from hub.messaging.enrichment import competent_dossier, read_records

router = APIRouter(prefix="/v1", tags=["enrichment"], route_class=StrictRoute)

_PROBLEMS = problem_responses(403, 404, s403="not DVZ or the dossier's region (`not_competent`)",
                              s404="no such dossier (`unknown_dossier`)")


class RecordData(BaseModel):
    """The canonical record of the source (contracts/enrichment/<source>.schema.json), or for a
    refusal `{"reason": …}`."""

    model_config = ConfigDict(extra="allow")


class SourceRecord(BaseModel):
    """What one source answered about the dossier's worker (data category social_security)."""

    source: str = Field(description="e.g. onss.dimona")
    contract: str
    contract_version: str
    status: str = Field(description="found, no_data or refused")
    retrieved_at: Timestamp
    elapsed_ms: int
    data: RecordData


class Records(BaseModel):
    """Every record stored for the dossier, in the order they came (the whole list)."""

    dossier_id: str
    records: list[SourceRecord]


class Refreshed(BaseModel):
    """What the sources answered now; a source that is down is named in `unavailable`."""

    dossier_id: str
    request_id: str = Field(description="the on-demand request's id, on the audit trail")
    records: list[SourceRecord]
    unavailable: list[str]


@router.get("/dossiers/{dossier_id}/enrichment", operation_id="getEnrichment",
            summary="The dossier's social-security records (Art. 14)",
            response_model=Records, responses=_PROBLEMS)
def read(hub: HubDep, caller: CallerDep, dossier_id: DossierPath) -> dict[str, Any]:
    return {"dossier_id": dossier_id,
            "records": read_records(hub.work, caller.party, caller.acting_person, dossier_id)}


@router.post("/dossiers/{dossier_id}/enrichment", operation_id="refreshEnrichment",
             summary="Ask the sources again now (Art. 14, on demand)",
             response_model=Refreshed, responses=_PROBLEMS)
def refresh(hub: HubDep, caller: CallerDep, dossier_id: DossierPath) -> dict[str, Any]:
    d = competent_dossier(hub.work, caller.party, dossier_id)
    request_id = f"on-demand-{uuid.uuid4()}"
    records, unavailable = hub.enrichment.on_demand(d, caller.party, caller.acting_person, request_id)
    return {"dossier_id": dossier_id, "request_id": request_id, "records": records, "unavailable": unavailable}
