"""Art. 25 and 26: a party reads a dossier it was not sent, on a ground of contracts/consultations.yaml.

What it gets is decided by hub.domain.projection (`consultation`); the read itself is one
`consulted` audit event naming the ground, the purpose and the categories returned (Art. 11).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.audit import AuditEvent
from hub.domain import projection
from hub.domain.consultation import Consultation
from hub.domain.errors import UnknownDossier
from hub.domain.flows import Registry
from hub.infra.store.schema import dossiers, messages, stored_application
from hub.infra.store.unit_of_work import UnitOfWork

__all__ = ["consult"]


def consult(work: UnitOfWork, registry: Registry, rule: Consultation, party: str, acting_person: str | None,
            dossier_id: str) -> dict[str, Any]:
    with work.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.competent_region, dossiers.c.state,
                                stored_application).where(dossiers.c.id == dossier_id)).mappings().first()
        if d is None:
            raise UnknownDossier(f"no dossier {dossier_id}")
        decisions = conn.execute(select(messages.c.id, messages.c.flow_id, messages.c.sender, messages.c.payload)
                                 .where(messages.c.dossier_id == dossier_id, messages.c.flow_id.in_(rule.decisions))
                                 .order_by(messages.c.received_at)).mappings().all() if rule.decisions else []
    view = projection.consultation(registry, rule, party, d, list(decisions))
    work.record([AuditEvent("consulted", dossier_id=dossier_id, actor=party, acting_person=acting_person,
                            purpose=rule.purpose, legal_basis=rule.legal_basis,
                            data_categories=view["data_categories"], reason=f"consultation {rule.id}")])
    return view
