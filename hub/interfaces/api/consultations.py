"""Art. 25 and 26: consulting a dossier one was not sent, on a ground of contracts/consultations.yaml."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.domain.errors import NotFound
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.messaging.consultation import consult

router = APIRouter(prefix="/v1/consultations", tags=["consultations"])


@router.get("", summary="The consultation grounds (Art. 25, 26) and who may use them")
def grounds(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    return {"consultations": [
        {"id": r.id, "title": r.title, "legal_basis": list(r.legal_basis), "purpose": r.purpose,
         "parties": list(r.parties), "dossiers": r.dossiers,
         "application_categories": sorted(r.application_categories), "decisions": list(r.decisions)}
        for r in hub.consultations.values()]}


@router.get("/{ground}/dossiers/{dossier_id}", summary="Consult a dossier on a ground of Art. 25 or 26")
def consult_dossier(hub: HubDep, caller: CallerDep, ground: str, dossier_id: str) -> dict[str, Any]:
    rule = hub.consultations.get(ground)
    if rule is None:
        raise NotFound(f"no consultation ground {ground[:80]!r}", code="unknown_ground")
    return consult(hub.work, hub.registry, rule, caller.party, caller.acting_person, dossier_id)
