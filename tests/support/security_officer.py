"""Shared by the unit and integration tests of test_security_officer."""
from __future__ import annotations

from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")
