"""The statutory clocks for the authorities that hold them: DVZ and the regional authorities see what
they must decide and by when (Law of 15 December 1980, 61/27-4, 61/29-4, 61/29-5). Each read is one
`consulted` audit event, with counts, never personal data."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from hub import audit
from hub.interfaces.api.deps import CallerDep, HubDep
from hub.audit import AuditEvent
from hub.lifecycle.clocks import ClockRules, clock_of, due, parse_duration
from hub.domain.envelope import utcnow
from hub.domain.errors import MalformedMessage, NotAuthorised, UnknownDossier
from hub.infra.store.schema import dossiers

router = APIRouter(prefix="/v1", tags=["clocks"])


def _require_holder(hub, caller) -> None:
    party = hub.registry.parties.get(caller.party)
    if party is None or party.examines is None:   # DVZ (residence) and the regional authorities (work)
        raise NotAuthorised("statutory clocks are held by DVZ and the regional authorities only",
                            code="not_clock_holder")


def _consulted(hub, caller, reason: str, dossier_id: str | None = None) -> None:
    with hub.engine.begin() as conn:
        audit.append(conn, [AuditEvent("consulted", actor=caller.party, acting_person=caller.acting_person,
                                       dossier_id=dossier_id, data_categories=["administrative"], reason=reason)])


def _json(rules: ClockRules, view, now) -> dict[str, Any]:
    rule = rules.get(view.rule)
    return {**view.as_json(now), "days_left": rules.calendar.days_left(view.due_at, now),
            "title": rule.title if rule else None, "legal_basis": list(rule.legal_basis) if rule else [],
            "on_expiry": rule.on_expiry if rule else None}


@router.get("/clocks", summary="The clocks the calling authority holds that are due within the window, "
                                "and its overdue ones")
def list_clocks(hub: HubDep, caller: CallerDep,
                within: Annotated[str, Query(max_length=20, description="7d, 36h, 2w, 1d12h")] = "7d",
                limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> dict[str, Any]:
    _require_holder(hub, caller)
    try:
        window = parse_duration(within)
    except ValueError as err:
        raise MalformedMessage([{"path": "/query/within", "message": str(err)}], code="invalid_request") from None
    rules, now = hub.clocks, utcnow()
    views = due(hub.reads, now, window, holder=caller.party, limit=limit)
    _consulted(hub, caller, f"GET /v1/clocks within={within} count={len(views)}")
    return {"holder": caller.party, "now": now.isoformat(), "within": within,
            "clocks": [_json(rules, v, now) for v in views]}


@router.get("/dossiers/{dossier_id}/clocks", summary="A dossier's clocks (DVZ and the competent region)")
def dossier_clocks(hub: HubDep, caller: CallerDep, dossier_id: str) -> dict[str, Any]:
    _require_holder(hub, caller)
    with hub.reads.connect() as conn:
        region = conn.execute(select(dossiers.c.competent_region).where(dossiers.c.id == dossier_id)).scalar()
    if region is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if caller.party not in ("dvz", region):
        raise NotAuthorised("only DVZ and the competent region follow this dossier's clocks",
                            code="not_party_to_dossier")
    rules, now = hub.clocks, utcnow()
    views = clock_of(hub.reads, dossier_id, rules)
    _consulted(hub, caller, f"GET /v1/dossiers/clocks count={len(views)}", dossier_id=dossier_id)
    return {"dossier_id": dossier_id, "now": now.isoformat(), "clocks": [_json(rules, v, now) for v in views]}
