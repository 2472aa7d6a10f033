"""Shared by the unit and integration tests of test_rights."""
from __future__ import annotations

from datetime import date, datetime, timezone

from hub.domain import samples
from hub.domain.identifiers import make_insz

UTC = timezone.utc


T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)            # a Monday


DUE = datetime(2026, 3, 2, 22, 59, 59, tzinfo=UTC)     # Monday 2 March, 23:59:59 in Brussels (CET)


STRANGER_INSZ = make_insz(date(1980, 6, 1), 55)         # valid, and nobody's dossier


BAD_INSZ = samples.WORKER_INSZ[:9] + f"{(int(samples.WORKER_INSZ[9:]) + 1) % 100:02d}"
