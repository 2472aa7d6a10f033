"""Routes for the security officer: search the audit trail and read the report (Art. 8 §2; GDPR art. 32).

Only a caller with the `security_officer` role gets in; anyone else gets 403 (and the app's error
handler writes the `rejected` event), before its parameters are validated. Each search or report is
itself a consultation of the trail and leaves one `consulted` event naming the kinds of filter,
never their values.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.audit.query import EVENTS, MAX_LIMIT, OUTCOMES, AuditFilter, record_consultation, search
from hub.audit.report import DEFAULT_OFFICE_HOURS, OfficeHours, build_report
from hub.domain.errors import NotAuthorised
from hub.infra.auth import Caller
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.hardening import INT_MAX
from hub.interfaces.api.problems import problem_responses
from hub.interfaces.api.types import INSTANT_RULE, Instant, Timestamp

router = APIRouter(prefix="/v1/audit", tags=["security officer"], route_class=StrictRoute)

ROLE = "security_officer"


def require_officer(caller: Caller) -> None:
    if ROLE not in caller.roles:
        raise NotAuthorised("the audit trail is open to the security officer only", code="not_security_officer")


async def officer(caller: CallerDep) -> Caller:
    """The caller, if it is the security officer (checked before the parameters are validated)."""
    require_officer(caller)
    return caller


OfficerDep = Annotated[Caller, Depends(officer)]
Since = Annotated[Instant | None, Query(description=f"inclusive; {INSTANT_RULE}")]
Until = Annotated[Instant | None, Query(description=f"exclusive; {INSTANT_RULE}")]

_FORBIDDEN = problem_responses(403, s403="not the security officer (`not_security_officer`)")
_BAD_RANGE = problem_responses(400, s400="a parameter is not valid (`invalid_request`: `issues` name it), or "
                                         "`since` is not before `until` (`invalid_time_range`)")
_BAD_REPORT = problem_responses(400, s400="a parameter is not valid (`invalid_request`), `since` is not before "
                                          "`until` (`invalid_time_range`), or the office hours do not read like "
                                          "Mon-Fri 08:00-18:00 Europe/Brussels (`invalid_office_hours`)")


class AuditEventOut(BaseModel):
    """One event of the trail, as the officer sees it: everything but the link to the previous
    event's hash (checking the chain is `wib-hub audit verify`'s job)."""

    seq: int = Field(description="the event's place in the chain")
    ts: Timestamp
    event: str = Field(description="accepted, routed, delivered, acknowledged, consulted, rejected, …")
    outcome: str = Field(description="ok, rejected, …")
    flow_id: str | None
    message_id: str | None
    correlation_id: str | None
    dossier_id: str | None
    actor: str | None = Field(description="the party that acted (null: unauthenticated)")
    acting_person: str | None
    recipient: str | None
    purpose: int | None = Field(description="Art. 10 n°")
    legal_basis: list[str]
    data_categories: list[str]
    reason: str | None
    payload_hash: str | None
    hash: str
    count: int | None = Field(None, description="how many occurrences the event stands for (aggregated "
                                                "refusals); null: one")


class AuditPage(BaseModel):
    """A page of events in sequence order."""

    items: list[AuditEventOut]
    next_after: int | None = Field(description="pass as `after` for the next page (the last item's `seq`); "
                                               "null on the last page")


class DeniedAttempts(BaseModel):
    party: str = Field(description='the party that tried, or "(unauthenticated)"')
    attempts: int
    codes: dict[str, int] = Field(description="attempts per refusal code, most frequent first")
    flows: list[str]
    first: Timestamp
    last: Timestamp


class SpecialAccess(BaseModel):
    person: str = Field(description="the acting person, or the party itself when none was named")
    party: str
    person_named: bool
    health: int
    criminal_record: int
    delivered: int
    acknowledged: int
    consulted: int
    dossiers: int = Field(description="distinct dossiers")
    first: Timestamp
    last: Timestamp


class AfterHoursConsultation(BaseModel):
    seq: int
    ts: Timestamp
    local_time: Timestamp = Field(description="the same instant in the office hours' time zone")
    actor: str | None
    acting_person: str | None
    dossier_id: str | None
    data_categories: list[str]
    reason: str | None


class FirstUse(BaseModel):
    party: str
    flow_id: str
    role: Literal["sent", "received"]
    seq: int
    ts: Timestamp


class SecurityReportOut(BaseModel):
    """The four sections of the report over the range (each a complete list: the report is not paged)."""

    since: Timestamp | None
    until: Timestamp | None
    office_hours: str
    events_read: int
    denied_attempts_per_party: list[DeniedAttempts]
    special_category_access_per_person: list[SpecialAccess]
    consultations_outside_office_hours: list[AfterHoursConsultation]
    flows_used_for_the_first_time: list[FirstUse]


@router.get("/events", operation_id="searchAuditEvents",
            summary="Search the audit trail (security officer)", response_model=AuditPage,
            responses={**_BAD_RANGE, **_FORBIDDEN})
def events(hub: HubDep, caller: OfficerDep,
           dossier: Annotated[str | None, Query(max_length=36)] = None,
           party: Annotated[str | None, Query(max_length=64, description="actor or recipient")] = None,
           acting_person: Annotated[str | None, Query(max_length=128)] = None,
           flow: Annotated[str | None, Query(max_length=80)] = None,
           purpose: Annotated[int | None, Query(ge=1, le=9, description="Art. 10 n°")] = None,
           outcome: Annotated[Literal[OUTCOMES] | None, Query()] = None,   # type: ignore[valid-type]
           event: Annotated[Literal[EVENTS] | None, Query()] = None,        # type: ignore[valid-type]
           since: Since = None, until: Until = None,
           after: Annotated[int, Query(ge=0, le=INT_MAX, description="sequence number: the previous page's "
                                       "next_after")] = 0,
           limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> dict[str, Any]:
    """Events in sequence order, a page at a time; `next_after` is null on the last page."""
    criteria = AuditFilter(dossier=dossier, party=party, acting_person=acting_person, flow=flow, purpose=purpose,
                           outcome=outcome, event=event, since=since, until=until)
    page = search(hub.work.reads, criteria, after=after, limit=limit)
    record_consultation(hub.work, "search", caller.party, caller.acting_person, criteria.kinds(), "api",
                        dossier_id=dossier)
    return page.as_json()


@router.get("/report", operation_id="getAuditReport",
            summary="Denied attempts, special-category accesses, after-hours consultations, "
                                "first use of a flow (security officer)",
            response_model=SecurityReportOut, responses={**_BAD_REPORT, **_FORBIDDEN})
def report(hub: HubDep, caller: OfficerDep, since: Since = None, until: Until = None,
           office_hours: Annotated[str | None, Query(max_length=80, description="e.g. Mon-Fri 08:00-18:00 "
                                                     "Europe/Brussels; default: the hub's setting")] = None,
           ) -> dict[str, Any]:
    hours = OfficeHours.parse(office_hours or hub.settings.office_hours or DEFAULT_OFFICE_HOURS)
    built = build_report(hub.work.reads, since, until, hours)
    kinds = [k for k, v in (("since", since), ("until", until), ("office_hours", office_hours)) if v]
    record_consultation(hub.work, "report", caller.party, caller.acting_person, kinds, "api")
    return built.as_json()
