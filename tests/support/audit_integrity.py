"""Shared by the unit and integration tests of test_audit_integrity."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.audit import checkpoints
from hub.audit.chain import AuditEvent

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def signer(tmp_path):
    return checkpoints.ensure_key(tmp_path / "audit-key.pem")


def _fill(work, n: int, batch: int = 3, dossier=lambda i: f"dossier-{i % 2}", start=T0) -> None:
    for first in range(0, n, batch):
        work.record([AuditEvent("received", flow_id="single-permit.application-submitted",
                                message_id=f"m{i}", dossier_id=dossier(i), actor="portal",
                                purpose=2, legal_basis=["Art. 19"],
                                data_categories=["identification", "employment"],
                                payload_hash="ab" * 32)
                     for i in range(first, min(n, first + batch))],
                    at=start + timedelta(seconds=first))
