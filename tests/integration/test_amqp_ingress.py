"""The AMQP ingress against RabbitMQ and PostgreSQL: a party publishes on its own ingress exchange as
its own broker user; the sender is the broker's validated user_id; every message is answered on its
reply queue, with the API's answer."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

import pika
import pika.exceptions as px
import pytest
from sqlalchemy import func, select

from hub.audit.chain import verify
from hub.bootstrap import build_hub
from hub.domain import samples
from hub.infra.store.schema import audit_events, deliveries, messages
from hub.messaging.queues import broker_grants, ingress_queue, reply_queue
from tests.support import hub_settings, shut_down
from tests.support.ingress import FLOW, ingress_contracts, take_replies

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def party(tmp_path):
    """A portal party of its own for this test (its broker user is named as it), allowed to send
    applications and given an ingress queue."""
    return f"portal.t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hub(tmp_path, party, pg_schema_url, amqp_url):
    contracts = ingress_contracts(tmp_path)
    parties = contracts / "parties.yaml"
    parties.write_text(parties.read_text() + f"""
  - id: {party}
    name: {{en: A portal of this test}}
    kind: portal
    roles: [portal]
    delivery: inbox
    ingress: queue
""")
    flow = contracts / "flows" / f"{FLOW}.yaml"
    flow.write_text(flow.read_text().replace("senders: [portal]", f"senders: [portal, {party}]"))
    hub = build_hub(hub_settings(tmp_path / "data", pg_schema_url, amqp_url, contracts_dir=contracts))
    hub.start_workers()
    deadline = time.monotonic() + 20
    while not hub.runtime.threads["queues"].done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.runtime.threads["queues"].done
    yield hub
    for q in (ingress_queue(party, hub.settings.queue_prefix), reply_queue(party, hub.settings.queue_prefix)):
        hub.transport.delete(q)
    shut_down(hub)


@pytest.fixture
def party_url(hub, party):
    """The party's own broker user, with the permissions `wib-hub broker users` prints; deleted after."""
    password = uuid.uuid4().hex
    grants = broker_grants(hub.registry.parties.values(), hub.settings.queue_prefix)
    perm = next(p for p in grants["permissions"] if p["user"] == party)
    _rabbitmqctl("add_user", party, password)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", party, perm["configure"], perm["write"], perm["read"])
        yield f"amqp://{party}:{password}@127.0.0.1:5672/%2F"
    finally:
        _rabbitmqctl("delete_user", party)


def _publish(url: str, exchange: str, bodies: list[bytes], user_id: str | None, ids: list[str] | None = None) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for i, body in enumerate(bodies):
            ch.basic_publish(exchange, "", body, pika.BasicProperties(
                user_id=user_id, message_id=ids[i] if ids else None, delivery_mode=2), mandatory=True)
    finally:
        if conn.is_open:
            conn.close()


def _body(i: int, **kw) -> bytes:
    return json.dumps({"flow": FLOW, "payload": samples.synthetic_application(i), **kw}).encode()


def _count(hub, table, *where) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _events(hub, event: str) -> list[dict]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == event)).mappings()]


def _replies(hub, party, n):
    return {d.correlation_id: json.loads(d.body)
            for d in take_replies(hub.transport, reply_queue(party, hub.settings.queue_prefix), n)}


def _wait_delivered(hub, message_id: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _count(hub, deliveries, deliveries.c.message_id == message_id)
        if n:
            return n
        time.sleep(0.1)
    return 0


def test_accepted_delivered_and_audited(hub, party, party_url):
    entrance = ingress_queue(party, hub.settings.queue_prefix)
    _publish(party_url, entrance, [_body(1, message_id="a-1")], party, ["p-1"])
    reply = _replies(hub, party, 1)["p-1"]
    assert reply["status"] == 202 and reply["duplicate"] is False and reply["message_id"] == "a-1"
    assert reply["recipients"] == ["region.flanders"] or reply["recipients"]
    assert _wait_delivered(hub, "a-1") == len(reply["recipients"])
    accepted = [e for e in _events(hub, "accepted") if e["message_id"] == "a-1"]
    assert len(accepted) == 1 and accepted[0]["actor"] == party


def test_forged_user_id_refused_by_the_broker(hub, party, party_url):
    entrance = ingress_queue(party, hub.settings.queue_prefix)
    with pytest.raises(px.ChannelClosedByBroker) as err:
        _publish(party_url, entrance, [_body(2, message_id="f-1")], "region.flanders")
    assert err.value.reply_code == 406 and "PRECONDITION_FAILED" in err.value.reply_text
    # nor can it write to another queue through the default exchange
    with pytest.raises(px.ChannelClosedByBroker) as err:
        _publish(party_url, "", [_body(2)], party)
    assert err.value.reply_code == 403
    time.sleep(1)
    assert _count(hub, messages) == 0 and hub.transport.depth(reply_queue(party, hub.settings.queue_prefix)) == 0


def test_invalid_payload_is_the_api_problem(hub, party, party_url):
    body = json.loads(_body(3))
    del body["payload"]["worker"]
    _publish(party_url, ingress_queue(party, hub.settings.queue_prefix), [json.dumps(body).encode()], party, ["bad-1"])
    reply = _replies(hub, party, 1)["bad-1"]
    assert reply["status"] == 422 and reply["problem"]["error"] == "contract_violation"
    assert reply["problem"]["status"] == 422 and reply["problem"]["type"] == "urn:problem-type:wib-hub:contract_violation"
    rejected = _events(hub, "rejected")
    assert len(rejected) == 1 and rejected[0]["actor"] == party and rejected[0]["reason"] == "contract_violation"
    assert _count(hub, messages) == 0


def test_same_message_id_twice_stored_once(hub, party, party_url):
    entrance = ingress_queue(party, hub.settings.queue_prefix)
    _publish(party_url, entrance, [_body(4, message_id="d-1")], party, ["first"])
    first = _replies(hub, party, 1)["first"]
    _publish(party_url, entrance, [_body(4, message_id="d-1")], party, ["second"])
    second = _replies(hub, party, 1)["second"]
    assert first["status"] == 202 and second == {**first, "status": 200, "duplicate": True}
    assert _count(hub, messages, messages.c.id == "d-1") == 1


def test_not_json_answered_and_on_the_record(hub, party, party_url):
    _publish(party_url, ingress_queue(party, hub.settings.queue_prefix), [b"\xff not json"], party, ["nj-1"])
    reply = _replies(hub, party, 1)["nj-1"]
    assert reply["status"] == 400 and reply["problem"]["error"] == "malformed_message"
    rejected = _events(hub, "rejected")
    assert len(rejected) == 1 and rejected[0]["actor"] == party and rejected[0]["reason"].startswith("malformed_message")
    assert _count(hub, messages) == 0
    assert hub.transport.parked(ingress_queue(party, hub.settings.queue_prefix)) == []


def test_burst_of_50(hub, party, party_url):
    ids = [f"burst-{i}" for i in range(50)]
    _publish(party_url, ingress_queue(party, hub.settings.queue_prefix),
             [_body(100 + i, message_id=m) for i, m in enumerate(ids)], party, ids)
    replies = _replies(hub, party, 50)
    assert sorted(replies) == sorted(ids) and all(r["status"] == 202 for r in replies.values())
    assert _count(hub, messages) == 50
    assert all(_count(hub, messages, messages.c.id == m) == 1 for m in ids)
    report = verify(hub.engine)
    assert report.intact, report
