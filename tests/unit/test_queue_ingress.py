"""The AMQP ingress's logic on the in-memory transport: the sender from user_id only, the API's
answers on the reply queue, one submit_many per batch, the store away retried."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from hub.bootstrap import build_hub
from hub.domain import samples
from hub.infra.store.schema import audit_events, messages
from hub.messaging import queue_ingress
from hub.messaging.queues import ingress_queue, reply_queue
from tests.support import hub_settings, shut_down, sqlite_store
from tests.support.ingress import FLOW, ingress_contracts, message, take_replies


@pytest.fixture
def hub(tmp_path):
    contracts = ingress_contracts(tmp_path, "portal")
    hub = build_hub(hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"),
                                 f"memory://{uuid.uuid4().hex}", contracts_dir=contracts))
    hub.start_workers()
    yield hub
    shut_down(hub)


def _events(hub, event: str) -> list[dict]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == event)).mappings()]


def _stored(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


def test_queues_declared_with_the_prefix(hub):
    prefix = hub.settings.queue_prefix
    assert ingress_queue("portal", prefix) == f"{prefix}hub.ingress.portal"
    assert f"{prefix}hub.ingress.portal" in hub.queues and f"{prefix}hub.replies.portal" in hub.queues
    assert not any("ingress.region" in q for q in hub.queues)   # only parties that opted in


def test_accepted_duplicate_and_refusals_answered(hub):
    prefix, t = hub.settings.queue_prefix, hub.transport
    q, replies = ingress_queue("portal", prefix), reply_queue("portal", prefix)
    t.publish_as("portal", q, "m-1", message(1, message_id="app-1"), {"acting-person": "clerk.7"})
    t.publish_as("portal", q, "m-2", message(1, message_id="app-1"))                 # the same again
    t.publish_as(None, q, "m-3", message(2))                                          # no user_id
    t.publish_as("region.flanders", q, "m-4", message(3))                             # not this queue's party
    t.publish_as("portal", q, "m-5", b"{not json")
    bad = json.loads(message(4))
    del bad["payload"]["worker"]
    t.publish_as("portal", q, "m-6", json.dumps(bad).encode())
    got = {d.correlation_id: json.loads(d.body) for d in take_replies(t, replies, 6)}
    assert got["m-1"]["status"] == 202 and got["m-1"]["duplicate"] is False and got["m-1"]["message_id"] == "app-1"
    assert got["m-1"]["recipients"] and got["m-1"]["dossier_id"]
    assert got["m-2"] == {**got["m-1"], "status": 200, "duplicate": True}
    assert got["m-3"]["status"] == 401 and got["m-3"]["problem"]["error"] == "missing_user_id"
    assert got["m-4"]["status"] == 401 and got["m-4"]["problem"]["error"] == "identity_mismatch"
    assert got["m-5"]["status"] == 400 and got["m-5"]["problem"]["error"] == "malformed_message"
    assert got["m-6"]["status"] == 422 and got["m-6"]["problem"]["error"] == "contract_violation"
    assert got["m-6"]["problem"]["type"].startswith("urn:problem-type:")
    assert _stored(hub) == 1
    accepted = _events(hub, "accepted")
    assert [(e["actor"], e["acting_person"], e["message_id"]) for e in accepted] == [("portal", "clerk.7", "app-1")]
    rejected = _events(hub, "rejected")
    assert sorted(e["reason"].split()[0] for e in rejected) == [
        "contract_violation", "identity_mismatch", "malformed_message", "missing_user_id"]
    assert t.parked(q) == []


def test_one_submit_many_per_batch(hub, monkeypatch):
    calls = []
    real = queue_ingress.submit_many
    monkeypatch.setattr(queue_ingress, "submit_many", lambda ing, subs: calls.append(len(subs)) or real(ing, subs))
    ing = queue_ingress.QueueIngress(hub.ingress, hub.transport, "portal", queue_prefix=hub.settings.queue_prefix)
    from hub.infra.transport import Delivery
    batch = [Delivery(ing.queue, f"b-{i}", message(100 + i), {}, 1, False, user_id="portal") for i in range(7)]
    ing.handle_batch(batch)
    assert calls == [7]
    replies = take_replies(hub.transport, ing.replies, 7)
    assert sorted(d.correlation_id for d in replies) == sorted(f"b-{i}" for i in range(7))
    assert all(json.loads(d.body)["status"] == 202 for d in replies)


def test_store_away_is_unavailable(hub, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from hub.infra.transport import Unavailable

    def away(ing, subs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(queue_ingress, "submit_many", away)
    monkeypatch.setattr(queue_ingress, "is_unavailable", lambda err: True)
    ing = queue_ingress.QueueIngress(hub.ingress, hub.transport, "portal", queue_prefix=hub.settings.queue_prefix)
    from hub.infra.transport import Delivery
    with pytest.raises(Unavailable):
        ing.handle_batch([Delivery(ing.queue, "x", message(1), {}, 1, False, user_id="portal")])
    assert hub.transport.depth(ing.replies) == 0   # no answer: nothing of it is known stored


def test_body_over_the_api_limit_is_413(hub):
    from hub.infra.transport import Delivery
    ing = queue_ingress.QueueIngress(hub.ingress, hub.transport, "portal", queue_prefix=hub.settings.queue_prefix,
                                     max_body_bytes=100)
    ing.handle_batch([Delivery(ing.queue, "big", message(1), {}, 1, False, user_id="portal")])
    reply = json.loads(take_replies(hub.transport, ing.replies, 1)[0].body)
    assert reply["status"] == 413 and reply["problem"]["error"] == "payload_too_large"
    assert _stored(hub) == 0


def test_reply_for_is_the_api_problem():
    from hub.domain.errors import ContractViolation
    from hub.interfaces.api import problems
    err = ContractViolation([{"path": "/worker", "message": "required"}])
    assert queue_ingress.reply_for(err, "q") == {"status": 422, "problem": problems.for_error(err, "q")}


def test_registry_refuses_ingress_for_a_party_that_sends_nothing(tmp_path):
    from hub.domain.errors import RegistryError
    from hub.registry.flows import load_registry
    contracts = ingress_contracts(tmp_path, "security-officer")
    with pytest.raises(RegistryError) as err:
        load_registry(contracts)
    assert "ingress" in err.value.field


assert FLOW and samples


def test_broker_grants_limit_each_party_to_its_own_names(tmp_path):
    import re

    from hub.messaging.queues import broker_grants, party_queue
    from hub.registry.flows import load_registry
    registry = load_registry(ingress_contracts(tmp_path, "portal", "region.flanders"))
    grants = broker_grants(registry.parties.values(), "acc.", vhost="wib", password_hashes={"portal": "h"})
    assert {u["name"]: u["password_hash"] for u in grants["users"]} == {"portal": "h", "region.flanders": ""}
    perms = {p["user"]: p for p in grants["permissions"]}
    flanders = perms["region.flanders"]
    assert flanders["vhost"] == "wib" and flanders["configure"] == "^$"
    writes = ["acc.hub.ingress.region.flanders", "acc.hub.ingress.portal", "amq.default", "",
              "acc.hub.ingress.region.flandersX", "accXhub.ingress.region.flanders", "acc.hub.route"]
    assert [w for w in writes if re.search(flanders["write"], w)] == ["acc.hub.ingress.region.flanders"]
    reads = ["acc.hub.replies.region.flanders", "acc.hub.replies.portal", party_queue("region.flanders", "acc."),
             "acc.hub.ingress.region.flanders", "acc.hub.route"]
    assert [r for r in reads if re.search(flanders["read"], r)] == ["acc.hub.replies.region.flanders"]
