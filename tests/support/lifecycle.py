"""Shared by the unit and integration tests of test_lifecycle."""
from __future__ import annotations

from sqlalchemy import select

from hub.infra.store.schema import dossiers, stats_facts


def _dossier(hub, dossier_id: str) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(dossiers).where(dossiers.c.id == dossier_id)).mappings().one())


def _fact(hub, fact_id: str) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(stats_facts).where(stats_facts.c.id == fact_id)).mappings().one())
