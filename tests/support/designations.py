"""Shared by the unit and integration tests of test_designations."""
from __future__ import annotations

import time

from sqlalchemy import select

from hub.domain import samples
from hub.infra.store.schema import audit_events
from hub.interfaces.cli.demo import DemoClient

ADMISSIBLE = "single-permit.admissible-to-dvz"


MEDICAL = "dvz.medical-officer-01"          # designated for health only


CASE_OFFICER = "dvz.residence-officer-01"   # designated for health and criminal_record


CLERK = "dvz.clerk-07"                      # a DVZ user designated for nothing


def _forward_to_dvz(hc) -> tuple[str, str]:
    """An application, then the region's admissibility decision forwarding the dossier (health and
    criminal-record documents included) to DVZ, left unacknowledged in DVZ's inbox."""
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(7))
    r = hc.post("region.flanders", "/v1/messages", {"flow": ADMISSIBLE, "dossier_id": dossier,
                                                    "payload": samples.sample_admissibility_decision(dossier)})
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(i["message_id"] == message_id for i in hc.get("dvz", "/v1/inbox").json()["items"]):
            return dossier, message_id
        time.sleep(0.02)
    raise AssertionError("DVZ did not receive the forwarded dossier")


def _inbox_as(hc, person: str | None, message_id: str) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {hc.token('dvz', person)}"}
    r = hc.http.get("/v1/inbox", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return body, next(i for i in body["items"] if i["message_id"] == message_id)


def _reads(hc, person: str | None, reason_prefix: str) -> list:
    with hc.hub.engine.connect() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.event == "consulted")
                            .where(audit_events.c.actor == "dvz")).mappings().all()
    return [r for r in rows if r["acting_person"] == person and (r["reason"] or "").startswith(reason_prefix)]
