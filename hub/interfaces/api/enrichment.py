"""Art. 14 on demand: DVZ and the competent region read a dossier's social-security records, or ask
the sources again now."""
from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from hub.interfaces.api.deps import CallerDep, HubDep
from hub.messaging.enrichment import competent_dossier, read_records

router = APIRouter(prefix="/v1", tags=["enrichment"])


@router.get("/dossiers/{dossier_id}/enrichment", summary="The dossier's social-security records (Art. 14)")
def read(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    return {"dossier_id": dossier_id,
            "records": read_records(hub.work, caller.party, caller.acting_person, dossier_id)}


@router.post("/dossiers/{dossier_id}/enrichment", summary="Ask the sources again now (Art. 14, on demand)")
def refresh(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    d = competent_dossier(hub.work, caller.party, dossier_id)
    request_id = f"on-demand-{uuid.uuid4()}"
    records, unavailable = hub.enrichment.on_demand(d, caller.party, caller.acting_person, request_id)
    return {"dossier_id": dossier_id, "request_id": request_id, "records": records, "unavailable": unavailable}
