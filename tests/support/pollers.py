"""Shared by the unit and integration tests of test_pollers."""
from __future__ import annotations

import httpx

FLANDERS = "region.flanders"


def add_events(url: str, *events: dict) -> list[dict]:
    r = httpx.post(f"{url}/_sim/events", json={"events": list(events)})
    assert r.status_code == 201, r.text
    return r.json()["events"]
