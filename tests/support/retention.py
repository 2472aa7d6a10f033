"""Shared by the unit and integration tests of test_retention."""
from __future__ import annotations

from datetime import timezone

from sqlalchemy import func, select

from hub.infra.store.schema import (
    deliveries,
    dossier_clocks,
    dossiers,
    enrichments,
    messages,
)

UTC = timezone.utc


DOSSIER_TABLES = {"messages": messages, "deliveries": deliveries, "enrichments": enrichments,
                  "dossier_clocks": dossier_clocks}


def _count(conn, table, did: str) -> int:
    column = table.c.id if table is dossiers else table.c.dossier_id
    return conn.execute(select(func.count()).select_from(table).where(column == did)).scalar_one()
