"""The statutory clocks for the authorities that hold them: DVZ and the regional authorities see what
they must decide and by when (Law of 15 December 1980, 61/27-4, 61/29-4, 61/29-5). Each read is one
`consulted` audit event (hub.lifecycle.clocks.views)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.domain.envelope import utcnow
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.lifecycle.clocks.views import dossier_clocks_for, holder_clocks

router = APIRouter(prefix="/v1", tags=["clocks"])


@router.get("/clocks", summary="The clocks the calling authority holds that are due within the window, "
                                "and its overdue ones")
def list_clocks(hub: HubDep, caller: CallerDep,
                within: Annotated[str, Query(max_length=20, description="7d, 36h, 2w, 1d12h")] = "7d",
                limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> dict[str, Any]:
    return holder_clocks(hub.work, hub.registry, hub.clocks, caller.party, caller.acting_person, utcnow(),
                         within, limit)


@router.get("/dossiers/{dossier_id}/clocks", summary="A dossier's clocks (DVZ and the competent region)")
def dossier_clocks(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    return dossier_clocks_for(hub.work, hub.registry, hub.clocks, caller.party, caller.acting_person, utcnow(),
                              dossier_id)
