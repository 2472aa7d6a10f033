"""The AMQP ingress against RabbitMQ and PostgreSQL: a party publishes on its own ingress exchange as
its own broker user; the sender is the broker's validated user_id; every message is answered on its
reply queue, with the API's answer."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pika
import pika.exceptions as px
import pytest
from sqlalchemy import func, select

from hub.audit.chain import verify
from hub.bootstrap import build_hub
from hub.domain import samples
from hub.infra.store.schema import audit_events, deliveries, messages
from hub.messaging.queues import ingress_queue, reply_queue
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


def _rabbit_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), a 4-byte salt."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@pytest.fixture
def party_url(hub, party, tmp_path):
    """The party's own broker user, made by importing what `wib-hub broker users` prints into the
    broker (rabbitmqctl import_definitions); deleted after."""
    from typer.testing import CliRunner

    from hub.interfaces.cli.main import app
    password = uuid.uuid4().hex
    result = CliRunner().invoke(app, ["broker", "users", "--contracts-dir", str(hub.settings.contracts_dir),
                                      "--prefix", hub.settings.queue_prefix,
                                      "--password-hash", f"{party}={_rabbit_hash(password)}"])
    assert result.exit_code == 0, result.output
    definitions = json.loads(result.stdout)
    assert [u["name"] for u in definitions["users"]] == [party]
    # rabbitmqctl runs as the broker's user: the file where it can read it (not the test's private tmp_path)
    fd, name = tempfile.mkstemp(prefix="wib-definitions-", suffix=".json")
    path = Path(name)
    os.write(fd, result.stdout.encode())
    os.close(fd)
    path.chmod(0o644)
    try:
        _rabbitmqctl("import_definitions", str(path))
        url = f"amqp://{party}:{password}@127.0.0.1:5672/%2F"
        deadline = time.monotonic() + 20   # the import is asynchronous
        while True:
            try:
                pika.BlockingConnection(pika.URLParameters(url)).close()
                break
            except px.AMQPConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        path.unlink()
        subprocess.run(["rabbitmqctl", "delete_user", party], capture_output=True, timeout=60)


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


def _read_own_reply(url: str, queue: str, correlation_id: str, timeout: float = 20) -> dict:
    """The reply as the party reads it: with its own broker user (read is granted on its reply queue)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            assert props.correlation_id == correlation_id
            return json.loads(body)
        raise AssertionError(f"no reply on {queue}")
    finally:
        conn.close()


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
    reply = _read_own_reply(party_url, reply_queue(party, hub.settings.queue_prefix), "p-1")
    assert reply["status"] == 202 and reply["duplicate"] is False and reply["message_id"] == "a-1"
    assert reply["recipients"] and reply["dossier_id"]
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


def test_store_away_retried_keeping_the_sender(hub, party, party_url, monkeypatch):
    """The store away: Unavailable, the delivery goes round the retry queue (a copy the hub publishes,
    with its own user_id) and comes back still from the party, then is accepted."""
    from hub.messaging import queue_ingress
    real, calls = queue_ingress.submit_many, []

    def away_once(ing, subs):
        calls.append(len(subs))
        if len(calls) == 1:
            raise ConnectionError("store away")
        return real(ing, subs)

    monkeypatch.setattr(queue_ingress, "submit_many", away_once)
    monkeypatch.setattr(queue_ingress, "is_unavailable", lambda err: isinstance(err, ConnectionError))
    _publish(party_url, ingress_queue(party, hub.settings.queue_prefix), [_body(7, message_id="r-1")], party, ["r"])
    reply = _replies(hub, party, 1)["r"]
    assert reply["status"] == 202 and len(calls) == 2
    accepted = [e for e in _events(hub, "accepted") if e["message_id"] == "r-1"]
    assert [e["actor"] for e in accepted] == [party]
    assert _events(hub, "rejected") == []
