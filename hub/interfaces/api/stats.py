"""Statistics for DVZ and the regions (Art. 31–32): counts, processing times and the Eurostat file.

Only DVZ and the regional authorities draw them; anyone else gets 403 `not_statistics_recipient`
(and the app's error handler writes the `rejected` event). The facts are anonymous, so each call
leaves one `consulted` event with no dossier, no data category and a reason naming the route and
the kinds of filter used.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.infra.auth import Caller
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.lifecycle.stats import eurostat, record_draw, require_recipient
from hub.lifecycle.stats.queries import DIMENSIONS, Breakdown, StatsFilter, counts, parse_by, processing_times

router = APIRouter(prefix="/v1", tags=["stats"])

By = Annotated[str | None, Query(max_length=120, description=f"comma-separated, among {', '.join(DIMENSIONS)}")]
Year = Annotated[int | None, Query(ge=1900, le=9999)]
Quarter = Annotated[int | None, Query(ge=1, le=4)]
Region = Annotated[str | None, Query(max_length=40, description="flanders, wallonia, brussels, german_speaking")]
PermitType = Annotated[str | None, Query(max_length=40, description="the application's category, e.g. eu_blue_card")]


def _breakdown(hub, caller: Caller, route: str, compute, by, year, quarter, region, permit_type) -> Breakdown:
    require_recipient(hub.registry, caller.party)
    dims = parse_by(by)
    where = StatsFilter(year=year, quarter=quarter, region=region, permit_type=permit_type)
    table = compute(hub.work.reads, dims, where)
    record_draw(hub.work, caller.party, caller.acting_person, f"GET {route}",
                ([f"by={','.join(dims)}"] if dims else []) + where.kinds())
    return table


@router.get("/stats/applications", summary="Applications and decisions per group (Art. 31-32)")
def applications(hub: HubDep, caller: CallerDep, by: By = None, year: Year = None, quarter: Quarter = None,
                 region: Region = None, permit_type: PermitType = None) -> dict[str, Any]:
    """Applications count in their submission period, decisions in their decision period; in a
    breakdown by nationality, counts under 5 read "<5" (the total is exact)."""
    return _breakdown(hub, caller, "/v1/stats/applications", counts, by, year, quarter, region,
                      permit_type).as_json()


@router.get("/stats/processing-times", summary="Days from complete to decision: median and p90 (Art. 31-32)")
def times(hub: HubDep, caller: CallerDep, by: By = None, year: Year = None, quarter: Quarter = None,
          region: Region = None, permit_type: PermitType = None) -> dict[str, Any]:
    """Nearest-rank median and p90 of whole days, per group of decisions taken in the period."""
    return _breakdown(hub, caller, "/v1/stats/processing-times", processing_times, by, year, quarter, region,
                      permit_type).as_json()


@router.get("/stats/eurostat", summary="The year's Eurostat residence-permit file, CSV (Reg. 862/2007 art. 6)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def eurostat_csv(hub: HubDep, caller: CallerDep, year: Annotated[int, Query(ge=1900, le=9999)]) -> Response:
    require_recipient(hub.registry, caller.party)
    body = eurostat.to_csv(eurostat.rows(hub.work.reads, year))
    record_draw(hub.work, caller.party, caller.acting_person, "GET /v1/stats/eurostat", ["year"])
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="eurostat-residence-permits-{year}.csv"'})
