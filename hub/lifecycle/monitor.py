"""Art. 10 6°: follow-up of granted permits — holders with no running Dimona employment, per the
region that must control them."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select

from hub.ports import Subject
from hub.audit import AuditEvent
from hub.domain.categories import SOCIAL_SECURITY
from hub.domain.dossier import NEGATIVE
from hub.domain.parties import PLATFORM
from hub.infra.store.schema import dossiers, stored_application
from hub.infra.store.unit_of_work import UnitOfWork

ACTIVE_STATES = ("decided", "notified")


def permit_holders_without_employment(work: UnitOfWork, source: Any, today: date,
                                      legal_context: str) -> dict[str, list[dict[str, Any]]]:
    """Region party → the permit holders (dossier, INSZ, last employer and period end) with no
    Dimona period running today. The permit must be active: work granted, and residence not refused,
    withdrawn or ended (one negative part decides the single permit)."""
    with work.reads.connect() as conn:
        rows = conn.execute(select(dossiers.c.id, dossiers.c.competent_region, stored_application)
                            .where(dossiers.c.state.in_(ACTIVE_STATES), dossiers.c.work_outcome == "granted")
                            .where(or_(dossiers.c.residence_outcome.is_(None),
                                       dossiers.c.residence_outcome.not_in(sorted(NEGATIVE))))
                            .order_by(dossiers.c.id)).all()
    holders = [(r.id, r.competent_region, (r.application.get("worker") or {}).get("insz")) for r in rows]
    holders = [h for h in holders if h[2]]
    subjects = [Subject(insz=insz, reference_date=today, legal_context=legal_context, ticket=dossier_id[:36])
                for dossier_id, _, insz in holders]
    records = source.fetch_many(subjects) if subjects else []
    findings: dict[str, list[dict[str, Any]]] = {}
    checked = []
    for (dossier_id, region, insz), record in zip(holders, records):
        periods = record.data.get("periods", [])
        running = [p for p in periods if date.fromisoformat(p["start"]) <= today
                   and (p.get("end") is None or date.fromisoformat(p["end"]) >= today)]
        checked.append(AuditEvent("consulted", dossier_id=dossier_id, actor=PLATFORM, recipient=region,
                                  purpose=6, data_categories=[SOCIAL_SECURITY],
                                  reason="follow-up (Art. 10 6°): " + ("employed" if running else "no running employment")))
        if running:
            continue
        last = max(periods, key=lambda p: p.get("end") or "", default=None)
        findings.setdefault(region, []).append({
            "dossier_id": dossier_id, "insz": insz,
            "last_employer": last.get("employer") if last else None,
            "last_period_end": last.get("end") if last else None})
    work.record(checked)   # each permit holder looked up is a consultation on the record
    return findings
