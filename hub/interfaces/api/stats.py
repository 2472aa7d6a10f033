"""Statistics for DVZ and the regions (Art. 31–32): counts, processing times and the Eurostat file.

Only DVZ and the regional authorities draw them; anyone else gets 403 `not_statistics_recipient`
(and the app's error handler writes the `rejected` event), before its parameters are validated. The
facts are anonymous, so each call leaves one `consulted` event with no dossier, no data category and
a reason naming the route and the kinds of filter used.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hub.infra.auth import Caller
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.lifecycle.stats import eurostat, record_draw, require_recipient
from hub.lifecycle.stats.queries import (
    DIMENSIONS,
    Breakdown,
    StatsFilter,
    counts,
    parse_by,
    processing_times,
)

router = APIRouter(prefix="/v1", tags=["stats"], route_class=StrictRoute)

By = Annotated[str | None, Query(max_length=120, description=f"comma-separated, among {', '.join(DIMENSIONS)}")]
Year = Annotated[int | None, Query(ge=1900, le=9999)]
Quarter = Annotated[int | None, Query(ge=1, le=4)]
Region = Annotated[str | None, Query(max_length=40, description="flanders, wallonia, brussels, german_speaking")]
PermitType = Annotated[str | None, Query(max_length=40, description="the application's category, e.g. eu_blue_card")]

# a count, or "<5" (small-cell suppression in a breakdown by nationality)
Cell = Annotated[int | str, Field(description='a count; in a breakdown by nationality 1..4 read "<5"')]


async def recipient(hub: HubDep, caller: CallerDep) -> Caller:
    """The caller, if it draws statistics (DVZ and the regional authorities, Art. 31–32)."""
    require_recipient(hub.registry, caller.party)
    return caller


RecipientDep = Annotated[Caller, Depends(recipient)]
_FORBIDDEN = problem_responses(403, s403="not DVZ or a regional authority (`not_statistics_recipient`)")


class StatsFilterOut(BaseModel):
    """The filters applied (only those given)."""

    year: int | None = None
    quarter: int | None = None
    region: str | None = None
    permit_type: str | None = None


class Suppression(BaseModel):
    applied: bool = Field(description="true in a breakdown by nationality")
    min_cell: int
    shown_as: str = Field(description='what a suppressed cell reads, e.g. "<5"')


class Group(BaseModel):
    """The dimension values of a row: only those of `by` are present (null: not recorded, or
    undecided for decision_kind)."""

    permit_type: str | None = None
    permit_type_label: str | None = Field(None, description="with permit_type: its label in the issue's list")
    decision_kind: str | None = None
    region: str | None = None
    nationality: str | None = None
    year: int | None = None
    quarter: int | None = None


class CountRow(Group):
    applications: Cell
    decisions: Cell
    granted: Cell
    refused: Cell
    withdrawn: Cell
    ended: Cell
    deemed: Cell


class CountTotal(BaseModel):
    applications: int
    decisions: int
    granted: int
    refused: int
    withdrawn: int
    ended: int
    deemed: int


class CountTable(BaseModel):
    """Applications and decisions per group, and the exact totals (never suppressed). The table is
    whole: one row per group of `by` (not paged)."""

    by: list[str]
    measures: list[str]
    filter: StatsFilterOut
    suppression: Suppression
    rows: list[CountRow]
    total: CountTotal


class TimeRow(Group):
    decisions: Cell
    median_days: int | None = Field(description="null when suppressed")
    p90_days: int | None = Field(description="null when suppressed")


class TimeTotal(BaseModel):
    decisions: int
    median_days: int | None = Field(description="null when there is no decision")
    p90_days: int | None


class TimeTable(BaseModel):
    """Days from complete to decision per group of decisions taken in the period (not paged)."""

    by: list[str]
    measures: list[str]
    filter: StatsFilterOut
    suppression: Suppression
    rows: list[TimeRow]
    total: TimeTotal


def _breakdown(hub, caller: Caller, route: str, compute, by, year, quarter, region, permit_type) -> Breakdown:
    dims = parse_by(by)
    where = StatsFilter(year=year, quarter=quarter, region=region, permit_type=permit_type)
    table = compute(hub.work.reads, dims, where)
    record_draw(hub.work, caller.party, caller.acting_person, f"GET {route}",
                ([f"by={','.join(dims)}"] if dims else []) + where.kinds())
    return table


# the rows and the filter carry only the keys that apply: answered without the others
@router.get("/stats/applications", operation_id="countApplications",
            summary="Applications and decisions per group (Art. 31-32)",
            response_model=CountTable, response_model_exclude_unset=True, responses=_FORBIDDEN)
def applications(hub: HubDep, caller: RecipientDep, by: By = None, year: Year = None, quarter: Quarter = None,
                 region: Region = None, permit_type: PermitType = None) -> dict[str, Any]:
    """Applications count in their submission period, decisions in their decision period; in a
    breakdown by nationality, counts under 5 read "<5" (the total is exact)."""
    return _breakdown(hub, caller, "/v1/stats/applications", counts, by, year, quarter, region,
                      permit_type).as_json()


@router.get("/stats/processing-times", operation_id="getProcessingTimes",
            summary="Days from complete to decision: median and p90 (Art. 31-32)",
            response_model=TimeTable, response_model_exclude_unset=True, responses=_FORBIDDEN)
def times(hub: HubDep, caller: RecipientDep, by: By = None, year: Year = None, quarter: Quarter = None,
          region: Region = None, permit_type: PermitType = None) -> dict[str, Any]:
    """Nearest-rank median and p90 of whole days, per group of decisions taken in the period."""
    return _breakdown(hub, caller, "/v1/stats/processing-times", processing_times, by, year, quarter, region,
                      permit_type).as_json()


_CSV_EXAMPLE = "year,reason,citizenship,validity,kind,count\r\n2026,EMP_BC,IND,M12-MAX,FIRST,41\r\n"


@router.get("/stats/eurostat", operation_id="getEurostatFile",
            summary="The year's Eurostat residence-permit file, CSV (Reg. 862/2007 art. 6)",
            response_class=Response,
            responses={200: {"description": "the file (`Content-Disposition: attachment`): a header row, then one "
                                            "row per non-empty cell — year, reason, citizenship, validity, kind, "
                                            "count (hub/lifecycle/stats/eurostat.py)",
                             "headers": {"Content-Disposition": {
                                 "description": 'attachment; filename="eurostat-residence-permits-<year>.csv"',
                                 "schema": {"type": "string"}}},
                             "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}}},
                       **_FORBIDDEN})
def eurostat_csv(hub: HubDep, caller: RecipientDep, year: Annotated[int, Query(ge=1900, le=9999)]) -> Response:
    body = eurostat.to_csv(eurostat.rows(hub.work.reads, year))
    record_draw(hub.work, caller.party, caller.acting_person, "GET /v1/stats/eurostat", ["year"])
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="eurostat-residence-permits-{year}.csv"'})
