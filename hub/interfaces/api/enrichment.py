"""Art. 14 on demand: DVZ and the competent region read a dossier's social-security records, or ask
the sources again now."""
from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from hub import audit
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.audit import AuditEvent
from hub.messaging.enrichment import CATEGORY, public_record
from hub.domain.errors import NotAuthorised, UnknownDossier
from hub.infra.store.schema import dossiers, enrichments

router = APIRouter(prefix="/v1", tags=["enrichment"])


def _dossier_for(hub, caller, dossier_id: str) -> dict[str, Any]:
    """Art. 14: ONSS's and INASTI's data go to DVZ and the regions — here, the competent one."""
    with hub.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.competent_region, dossiers.c.application)
                         .where(dossiers.c.id == dossier_id)).mappings().first()
    if d is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if caller.party not in ("dvz", d["competent_region"]):
        raise NotAuthorised("only DVZ and the competent region receive social-security data (Art. 14)",
                            code="not_competent")
    return dict(d)


@router.get("/dossiers/{dossier_id}/enrichment", summary="The dossier's social-security records (Art. 14)")
def read(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    _dossier_for(hub, caller, dossier_id)
    with hub.reads.connect() as conn:
        rows = conn.execute(select(enrichments).where(enrichments.c.dossier_id == dossier_id)
                            .order_by(enrichments.c.id)).mappings().all()
    with hub.engine.begin() as conn:  # a consultation is itself on the record (Art. 11)
        audit.append(conn, [AuditEvent("consulted", dossier_id=dossier_id, actor=caller.party,
                                       acting_person=caller.acting_person, data_categories=[CATEGORY],
                                       reason="GET /v1/dossiers/enrichment")])
    return {"dossier_id": dossier_id, "records": [public_record(r) for r in rows]}


@router.post("/dossiers/{dossier_id}/enrichment", summary="Ask the sources again now (Art. 14, on demand)")
def refresh(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    d = _dossier_for(hub, caller, dossier_id)
    request_id = f"on-demand-{uuid.uuid4()}"
    records, unavailable = hub.enrichment.on_demand(d, caller.party, caller.acting_person, request_id)
    return {"dossier_id": dossier_id, "request_id": request_id, "records": records, "unavailable": unavailable}
