"""The statutory clocks for the authorities that hold them: DVZ and the regional authorities see what
they must decide and by when (Law of 15 December 1980, 61/27-4, 61/29-4, 61/29-5). Each read is one
`consulted` audit event (hub.lifecycle.clocks.views)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.domain.envelope import utcnow
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.interfaces.api.types import DossierPath, Timestamp
from hub.lifecycle.clocks.views import dossier_clocks_for, holder_clocks

router = APIRouter(prefix="/v1", tags=["clocks"], route_class=StrictRoute)

MAX_CLOCKS = 5000


class ClockOut(BaseModel):
    """One clock of one dossier: ids, rule, holder and dates (no personal data)."""

    id: int | None = Field(description="null: a clock the next scan will start (outcome `pending`)")
    dossier_id: str
    clock: str = Field(description="the rule of contracts/clocks.yaml")
    holder: str
    outcome: str = Field(description="running, pending, met, expired, deemed_authorised, …")
    started_at: Timestamp
    due_at: Timestamp
    remind_at: Timestamp | None
    reminded_at: Timestamp | None
    stopped_at: Timestamp | None
    overdue: bool
    hours_left: float = Field(description="negative once due")
    days_left: int = Field(description="calendar days to the due day in Brussels (0 on the day, negative once passed)")
    title: str | None
    legal_basis: list[str]
    on_expiry: Literal["report", "deemed_authorisation"] | None


class HolderClocks(BaseModel):
    """The caller's clocks due within the window and its overdue ones, soonest due first: at most
    `limit` of them (not paged: narrow `within` or raise `limit` for more)."""

    holder: str
    now: Timestamp
    within: str
    clocks: list[ClockOut]


class DossierClocks(BaseModel):
    """Every clock the dossier had, and those its rules will start, in the order they start."""

    dossier_id: str
    now: Timestamp
    clocks: list[ClockOut]


@router.get("/clocks", operation_id="listClocks",
            summary="The clocks the calling authority holds that are due within the window, "
                                "and its overdue ones",
            response_model=HolderClocks,
            responses=problem_responses(400, 403, s403="not DVZ or a regional authority (`not_clock_holder`)",
                                        s400="`within` is not a duration such as 7d, 36h, 2w, 1d12h, or "
                                             "`limit` is out of range (`invalid_request`)"))
def list_clocks(hub: HubDep, caller: CallerDep,
                within: Annotated[str, Query(max_length=20, description="7d, 36h, 2w, 1d12h")] = "7d",
                limit: Annotated[int, Query(ge=1, le=MAX_CLOCKS)] = 1000) -> dict[str, Any]:
    return holder_clocks(hub.work, hub.registry, hub.clocks, caller.party, caller.acting_person, utcnow(),
                         within, limit)


@router.get("/dossiers/{dossier_id}/clocks", operation_id="getDossierClocks",
            summary="A dossier's clocks (DVZ and the competent region)",
            response_model=DossierClocks,
            responses=problem_responses(403, 404, s403="not DVZ or a regional authority (`not_clock_holder`), or "
                                                       "not DVZ or the dossier's region (`not_party_to_dossier`)",
                                        s404="no such dossier (`unknown_dossier`)"))
def dossier_clocks(hub: HubDep, caller: CallerDep, dossier_id: DossierPath) -> dict[str, Any]:
    return dossier_clocks_for(hub.work, hub.registry, hub.clocks, caller.party, caller.acting_person, utcnow(),
                              dossier_id)
