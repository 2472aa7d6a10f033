"""The combined procedure end to end, on every store × transport (SQLite/PostgreSQL × embedded/RabbitMQ)."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from hub import audit
from hub.domain.envelope import Envelope
from hub.infra.store.schema import audit_events, deliveries, dossiers, messages
from hub.interfaces.cli.demo import DemoClient, procedure


def _items(c: DemoClient, party: str, dossier_id: str) -> list[dict]:
    r = c.http.get(f"/v1/dossiers/{dossier_id}", headers=c.headers(party))
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def test_whole_procedure(running_hub):
    hub = running_hub.hub
    c = DemoClient(running_hub.http, running_hub.secrets)
    c.load_flows()
    procedure(c)

    assert len(c.timeline) == 13
    with hub.engine.connect() as conn:
        rows = conn.execute(select(dossiers.c.id, dossiers.c.state, dossiers.c.competent_region)
                            .order_by(dossiers.c.created_at)).all()
        assert conn.execute(select(func.count()).select_from(deliveries)
                            .where(deliveries.c.acked_at.is_(None))).scalar_one() == 0
    a, b = rows
    assert a.state == "notified" and a.competent_region == "region.flanders"
    assert b.state == "notified" and b.competent_region == "region.wallonia"   # refused: decided, notified (Art. 24)

    # need to know: the region never received the medical certificate or the criminal-record extract
    region_view = _items(c, "region.flanders", a.id)
    region_categories = {cat for item in region_view for cat in item["data_categories"]}
    assert "health" not in region_categories and "criminal_record" not in region_categories
    first = region_view[0]["payload"]
    assert "medical_documents" not in first and "criminal_record_documents" not in first
    assert first["worker"]["last_name"]

    # DVZ received the stored application with its forwarded dossier (Art. 12 §1), documents included
    dvz_view = _items(c, "dvz", a.id)
    forwarded = next(i for i in dvz_view if i["flow"] == "single-permit.admissible-to-dvz")
    application = forwarded["attachments"]["application"]
    assert application["medical_documents"] and application["criminal_record_documents"]
    # the additional documents sent through the portal joined the stored application
    assert len(application["employment_documents"]) >= 2

    # diplomatic post: only the authorisation addressed to it
    post = _items(c, "diplomatic-post", a.id)
    assert [i["flow"] for i in post] == ["single-permit.authorisation-to-diplomatic-post"]
    assert "employment" not in post[0]["data_categories"]

    # Art. 24: Wallonia learns only that a negative decision was taken
    notice = next(i for i in _items(c, "region.wallonia", b.id) if i["flow"] == "single-permit.negative-decision-notice")
    assert notice["data_categories"] == [] or set(notice["data_categories"]) <= {"administrative"}
    assert notice["payload"]["negative_decision_taken"] is True

    report = audit.verify(hub.engine)
    assert report.intact, report
    with hub.engine.connect() as conn:
        events = {r.event for r in conn.execute(select(audit_events.c.event))}
    assert {"accepted", "routed", "delivered", "acknowledged", "consulted"} <= events


def test_redelivered_envelope_is_not_delivered_twice(running_hub):
    """Consumers are idempotent: the same envelope routed again changes nothing."""
    hub = running_hub.hub
    c = DemoClient(running_hub.http, running_hub.secrets)
    c.load_flows()
    from hub.domain import samples
    dossier_id = c.apply(samples.synthetic_application(7))
    with hub.engine.connect() as conn:
        m = conn.execute(select(messages)).mappings().one()
        before = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    env = Envelope(message_id=m["id"], flow_id=m["flow_id"], sender=m["sender"],
                   recipients=tuple(m["recipients"]), purpose=m["purpose"], correlation_id=m["correlation_id"],
                   payload=m["payload"], dossier_id=dossier_id, received_at=m["received_at"])
    hub.transport.publish(hub.route_queue, env.message_id, env.to_bytes())
    hub.transport.publish(hub.route_queue, env.message_id, env.to_bytes())
    deadline = time.monotonic() + 10
    while hub.transport.depth(hub.route_queue) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 1
        after = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    assert after == before
    assert audit.verify(hub.engine).intact


def test_sender_retry_with_same_message_id_is_one_message(running_hub):
    from hub.domain import samples
    c = DemoClient(running_hub.http, running_hub.secrets)
    payload = samples.synthetic_application(9)
    h = {**c.headers("portal"), "Idempotency-Key": "portal-0001"}
    first = running_hub.http.post("/v1/applications", json=payload, headers=h)
    again = running_hub.http.post("/v1/applications", json=payload, headers=h)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["message_id"] == first.json()["message_id"]
    other = running_hub.http.post("/v1/applications", json=samples.synthetic_application(10), headers=h)
    assert other.status_code == 400 and other.json()["error"] == "message_id_reused"
    with running_hub.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossiers)).scalar_one() == 1


def test_burst_from_concurrent_senders_is_delivered_once_each(running_hub):
    """Concurrent submissions share commits (group commit) and the router takes them in batches:
    every message still arrives exactly once, with its own audit events, and the chain holds."""
    from concurrent.futures import ThreadPoolExecutor

    from hub.domain import samples
    from hub.messaging.ingress import Submission, submit
    hub = running_hub.hub

    def send(i: int) -> str:
        return submit(hub.ingress, Submission("single-permit.application-submitted", "portal",
                                              samples.synthetic_application(100 + i))).message_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(send, range(60)))
    assert len(set(ids)) == 60
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with hub.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        if n >= 60:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    with hub.engine.connect() as conn:
        delivered = conn.execute(select(deliveries.c.message_id)).scalars().all()
        per_event = dict(conn.execute(select(audit_events.c.event, func.count())
                                      .group_by(audit_events.c.event)).all())
    assert sorted(delivered) == sorted(ids)
    assert per_event["accepted"] == per_event["routed"] == per_event["delivered"] == 60
    assert audit.verify(hub.engine).intact
