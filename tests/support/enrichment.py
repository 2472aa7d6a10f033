"""Shared by the unit and integration tests of test_enrichment."""
from __future__ import annotations

import time

from hub.domain import samples
from hub.interfaces.cli.demo import DemoClient

FORWARD = "single-permit.admissible-to-dvz"


def _forward(c: DemoClient, dossier_id: str) -> str:
    r = c.http.post("/v1/messages", headers=c.headers("region.flanders"),
                    json={"flow": FORWARD, "dossier_id": dossier_id,
                          "payload": samples.sample_admissibility_decision(dossier_id)})
    assert r.status_code == 202, r.text
    return r.json()["message_id"]


def _dvz_item(c: DemoClient, message_id: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in c.http.get("/v1/inbox", headers=c.headers("dvz")).json()["items"]:
            if item["message_id"] == message_id:
                return item
        time.sleep(0.05)
    return None
