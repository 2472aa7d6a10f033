"""Shared by the unit and integration tests of test_clocks."""
from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from hub.domain.clocks import ClockRules
from hub.infra.store.schema import dossiers
from hub.registry import default_contracts_dir, load_clocks, load_registry

BRUSSELS = ZoneInfo("Europe/Brussels")


UTC = timezone.utc


DEEMED = "single-permit.deemed-authorisation"


REMINDER = "platform.clock-reminder"


@functools.cache
def _registry():
    return load_registry(default_contracts_dir())


@pytest.fixture(scope="module")
def rules() -> ClockRules:
    return load_clocks(default_contracts_dir(), _registry())


def _dossier(engine, *, category="seasonal_worker", kind="single_permit", region="region.flanders",
             complete_at=None, incomplete_since=None, decided_at=None, **application) -> str:
    dossier_id = f"D-{uuid.uuid4().hex[:12]}"
    created = (complete_at or datetime(2026, 1, 5, 9, tzinfo=UTC)) - timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(insert(dossiers).values(
            id=dossier_id, application_kind=kind, category=category, competent_region=region,
            state="decided" if decided_at else "under_examination" if complete_at else "submitted",
            application={"category": category, "application_kind": kind, **application},
            created_at=created, updated_at=created, complete_at=complete_at, incomplete_since=incomplete_since,
            decided_at=decided_at, residence_outcome="granted" if decided_at else None,
            work_outcome="granted" if decided_at else None))
    return dossier_id
