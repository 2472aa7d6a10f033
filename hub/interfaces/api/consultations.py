"""Art. 25 and 26: consulting a dossier one was not sent, on a ground of contracts/consultations.yaml."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from hub import audit
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.audit import AuditEvent
from hub.domain.consultation import consult
from hub.domain.errors import NotFound, UnknownDossier
from hub.infra.store.schema import dossiers, messages

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
    with hub.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.competent_region, dossiers.c.state,
                                dossiers.c.application).where(dossiers.c.id == dossier_id)).mappings().first()
        if d is None:
            raise UnknownDossier(f"no dossier {dossier_id}")
        decisions = conn.execute(select(messages.c.id, messages.c.flow_id, messages.c.sender, messages.c.payload)
                                 .where(messages.c.dossier_id == dossier_id, messages.c.flow_id.in_(rule.decisions))
                                 .order_by(messages.c.received_at)).mappings().all() if rule.decisions else []
    view = consult(hub.registry, rule, caller.party, d, list(decisions))
    with hub.engine.begin() as conn:  # Art. 11: a consultation is itself on the record
        audit.append(conn, [AuditEvent("consulted", dossier_id=dossier_id, actor=caller.party,
                                       acting_person=caller.acting_person, purpose=rule.purpose,
                                       legal_basis=rule.legal_basis, data_categories=view["data_categories"],
                                       reason=f"consultation {rule.id}")])
    return view
