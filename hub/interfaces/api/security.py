"""Routes for the security officer: search the audit trail and read the report (Art. 8 §2; GDPR art. 32).

Only a caller with the `security_officer` role gets in; anyone else gets 403 (and the app's error
handler writes the `rejected` event). Each search or report is itself a consultation of the trail
and leaves one `consulted` event naming the kinds of filter, never their values.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.interfaces.api.deps import CallerDep, HubDep
from hub.audit.query import MAX_LIMIT, AuditFilter, record_consultation, search
from hub.audit.report import DEFAULT_OFFICE_HOURS, OfficeHours, build_report
from hub.infra.auth import Caller
from hub.domain.errors import NotAuthorised

router = APIRouter(prefix="/v1/audit", tags=["security officer"])

ROLE = "security_officer"


def require_officer(caller: Caller) -> None:
    if ROLE not in caller.roles:
        raise NotAuthorised("the audit trail is open to the security officer only", code="not_security_officer")


@router.get("/events", summary="Search the audit trail (security officer)")
def events(hub: HubDep, caller: CallerDep,
           dossier: Annotated[str | None, Query(max_length=36)] = None,
           party: Annotated[str | None, Query(max_length=64, description="actor or recipient")] = None,
           acting_person: Annotated[str | None, Query(max_length=128)] = None,
           flow: Annotated[str | None, Query(max_length=80)] = None,
           purpose: Annotated[int | None, Query(ge=1, le=9, description="Art. 10 n°")] = None,
           outcome: Annotated[str | None, Query(max_length=16)] = None,
           event: Annotated[str | None, Query(max_length=24)] = None,
           since: Annotated[datetime | None, Query(description="inclusive; without an offset: UTC")] = None,
           until: Annotated[datetime | None, Query(description="exclusive; without an offset: UTC")] = None,
           after: Annotated[int, Query(ge=0, description="sequence number: the previous page's next_after")] = 0,
           limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> dict[str, Any]:
    """Events in sequence order, a page at a time; `next_after` is null on the last page."""
    require_officer(caller)
    criteria = AuditFilter(dossier=dossier, party=party, acting_person=acting_person, flow=flow, purpose=purpose,
                           outcome=outcome, event=event, since=since, until=until)
    page = search(hub.work.reads, criteria, after=after, limit=limit)
    record_consultation(hub.work, "search", caller.party, caller.acting_person, criteria.kinds(), "api",
                        dossier_id=dossier)
    return page.as_json()


@router.get("/report", summary="Denied attempts, special-category accesses, after-hours consultations, "
                                "first use of a flow (security officer)")
def report(hub: HubDep, caller: CallerDep,
           since: Annotated[datetime | None, Query(description="inclusive; without an offset: UTC")] = None,
           until: Annotated[datetime | None, Query(description="exclusive; without an offset: UTC")] = None,
           office_hours: Annotated[str | None, Query(max_length=80, description="e.g. Mon-Fri 08:00-18:00 "
                                                     "Europe/Brussels; default: the hub's setting")] = None,
           ) -> dict[str, Any]:
    require_officer(caller)
    hours = OfficeHours.parse(office_hours or hub.settings.office_hours or DEFAULT_OFFICE_HOURS)
    built = build_report(hub.work.reads, since, until, hours)
    kinds = [k for k, v in (("since", since), ("until", until), ("office_hours", office_hours)) if v]
    record_consultation(hub.work, "report", caller.party, caller.acting_person, kinds, "api")
    return built.as_json()

