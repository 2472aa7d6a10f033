"""POST /v1/messages:batch on every store × transport: each message of a batch taken as POST
/v1/messages would take it (its own answer, in order), the refused ones audited once and not stored,
the accepted ones delivered; a body that is not a batch of 1..MAX_BATCH messages is refused whole."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from hub import audit
from hub.domain import samples
from hub.infra.store.schema import audit_events, dossiers, messages
from hub.messaging.ingress import MAX_BATCH

BATCH = "/v1/messages:batch"
APPLICATION = "single-permit.application-submitted"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "error"}


def _counts(hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dossiers, messages)}


def _events(hub, event: str) -> list[dict]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == event)
                                              .order_by(audit_events.c.seq)).mappings()]


def _stored(hub, message_id: str) -> dict | None:
    with hub.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == message_id)).mappings().first()
    return dict(row) if row else None


def _inbox_item(c, party: str, message_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = c.get(party, "/v1/inbox", params={"limit": 500})
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            if item["message_id"] == message_id:
                return item
        time.sleep(0.02)
    raise AssertionError(f"{party} did not receive {message_id} within {timeout:.0f} s")


def _apply(c, serial: int, region: str = "flanders") -> str:
    r = c.post("portal", "/v1/messages", {"flow": APPLICATION, "payload": samples.synthetic_application(serial, region)})
    assert r.status_code == 202, r.text
    return r.json()["dossier_id"]


def test_a_batch_of_valid_messages_is_accepted_and_delivered(running_hub):
    c, hub = running_hub, running_hub.hub
    regions = ["flanders", "wallonia", "brussels", "flanders"]
    body = {"messages": [{"flow": APPLICATION, "payload": samples.synthetic_application(200 + i, region),
                          "message_id": f"batch-ok-{i}"} for i, region in enumerate(regions)]}
    r = c.post("portal", BATCH, body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202] * 4
    assert [x["message_id"] for x in results] == [f"batch-ok-{i}" for i in range(4)]
    assert [x["recipients"] for x in results] == [[f"region.{region}"] for region in regions]
    assert all(x["duplicate"] is False for x in results)
    assert len({x["dossier_id"] for x in results}) == 4

    for i, (result, region) in enumerate(zip(results, regions)):
        row = _stored(hub, result["message_id"])
        assert row is not None and row["sender"] == "portal" and row["dossier_id"] == result["dossier_id"]
        item = _inbox_item(c, f"region.{region}", result["message_id"])
        assert item["dossier_id"] == result["dossier_id"] and item["flow"] == APPLICATION
        assert item["payload"]["worker"]["last_name"] == samples.synthetic_application(200 + i, region)["worker"]["last_name"]
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossiers)).scalar_one() == 4
    accepted = {e["message_id"] for e in _events(hub, "accepted")}
    assert accepted == {f"batch-ok-{i}" for i in range(4)}
    assert audit.verify(hub.engine).intact


def test_a_mixed_batch_answers_each_message_and_stores_only_the_valid_ones(running_hub):
    c, hub = running_hub, running_hub.hub
    dossier = _apply(c, 300)
    first = {"flow": "single-permit.admissible-to-dvz", "dossier_id": dossier, "message_id": "region-1",
             "payload": samples.sample_admissibility_decision(dossier)}
    r = c.post("region.flanders", "/v1/messages", first)
    assert r.status_code == 202, r.text
    other = _apply(c, 301)
    before = _counts(hub)
    rejected_before = len(_events(hub, "rejected"))

    broken = samples.sample_admissibility_decision(other)
    del broken["decided_at"]
    batch = [
        {"flow": "single-permit.admissible-to-dvz", "dossier_id": other, "message_id": "region-2",
         "payload": samples.sample_admissibility_decision(other)},                          # valid
        {"flow": "single-permit.admissible-to-dvz", "dossier_id": other, "message_id": "region-3",
         "payload": broken},                                                                 # not the contract
        {"flow": "single-permit.residence-decision", "dossier_id": other, "message_id": "region-4",
         "payload": samples.sample_residence_decision(other)},                               # DVZ's flow
        first,                                                                               # a retry
        {**first, "dossier_id": other, "payload": samples.sample_admissibility_decision(other)},   # id reused
    ]
    r = c.post("region.flanders", BATCH, {"messages": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 422, 403, 200, 400]

    assert results[0]["message_id"] == "region-2" and results[0]["dossier_id"] == other
    assert results[0]["duplicate"] is False and results[0]["recipients"] == ["dvz"]
    assert results[3] == {"status": 200, "message_id": "region-1", "dossier_id": dossier,
                          "recipients": ["dvz"], "duplicate": True}
    problems = {i: results[i]["problem"] for i in (1, 2, 4)}
    assert {i: p["error"] for i, p in problems.items()} == {1: "contract_violation", 2: "sender_not_allowed",
                                                            4: "message_id_reused"}
    for i, p in problems.items():
        assert PROBLEM_MEMBERS <= set(p) and p["status"] == results[i]["status"] and p["instance"] == BATCH
    assert any("decided_at" in issue["detail"] for issue in problems[1]["issues"])

    # the same problem the single route answers for the same message
    alone = c.post("region.flanders", "/v1/messages", batch[2])
    assert alone.status_code == 403
    assert {k: v for k, v in alone.json().items() if k != "instance"} == \
        {k: v for k, v in problems[2].items() if k != "instance"}

    after = _counts(hub)
    assert after == {"dossiers": before["dossiers"], "messages": before["messages"] + 1}   # region-2 only
    assert _stored(hub, "region-2")["dossier_id"] == other
    assert _stored(hub, "region-3") is None and _stored(hub, "region-4") is None
    assert _stored(hub, "region-1")["dossier_id"] == dossier          # the reused id kept its first message
    assert _inbox_item(c, "dvz", "region-2")["dossier_id"] == other

    rejected = _events(hub, "rejected")[rejected_before:]
    by_batch = rejected[:3]                                            # then the single route's own
    assert [(e["message_id"], e["reason"]) for e in by_batch] == [
        ("region-3", "contract_violation"), ("region-4", "sender_not_allowed"), ("region-1", "message_id_reused")]
    assert all(e["actor"] == "region.flanders" and e["outcome"] == "rejected" for e in by_batch)
    assert len(rejected) == 4 and rejected[3]["message_id"] == "region-4"   # the single route's refusal
    assert {e["message_id"] for e in _events(hub, "accepted")} >= {"region-1", "region-2"}
    assert audit.verify(hub.engine).intact


def test_messages_about_one_dossier_are_taken_in_the_order_given(running_hub):
    c, hub = running_hub, running_hub.hub
    dossier = _apply(c, 400)
    batch = [
        {"flow": "single-permit.additional-documents-requested", "dossier_id": dossier, "message_id": "seq-1",
         "payload": samples.sample_additional_documents_requested(dossier)},
        {"flow": "single-permit.admissible-to-dvz", "dossier_id": dossier, "message_id": "seq-2",
         "payload": samples.sample_admissibility_decision(dossier)},
        {"flow": "single-permit.work-decision", "dossier_id": dossier, "message_id": "seq-3",
         "payload": samples.sample_work_decision(dossier, outcome="granted")},
    ]
    r = c.post("region.flanders", BATCH, {"messages": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["status"], x["message_id"], x["dossier_id"]) for x in results] == [
        (202, f"seq-{i}", dossier) for i in (1, 2, 3)]
    with hub.engine.connect() as conn:
        state = conn.execute(select(dossiers.c.state).where(dossiers.c.id == dossier)).scalar_one()
        work = conn.execute(select(dossiers.c.work_outcome).where(dossiers.c.id == dossier)).scalar_one()
        stored = set(conn.execute(select(messages.c.id).where(messages.c.dossier_id == dossier)).scalars())
    assert state == "work_decided" and work == "granted"       # submitted → incomplete → under_examination → …
    assert stored >= {"seq-1", "seq-2", "seq-3"}
    accepted = [e["message_id"] for e in _events(hub, "accepted") if e["dossier_id"] == dossier]
    assert accepted[-3:] == ["seq-1", "seq-2", "seq-3"]        # on the trail in the order sent
    for result in results:
        for recipient in result["recipients"]:
            assert _inbox_item(c, recipient, result["message_id"])["dossier_id"] == dossier
    assert audit.verify(hub.engine).intact


def test_the_same_messages_in_the_wrong_order_refuse_the_move_the_dossier_does_not_allow(running_hub):
    c, hub = running_hub, running_hub.hub
    dossier = _apply(c, 401)
    batch = [
        {"flow": "single-permit.work-decision", "dossier_id": dossier, "message_id": "wrong-1",
         "payload": samples.sample_work_decision(dossier, outcome="granted")},    # before admissibility
        {"flow": "single-permit.admissible-to-dvz", "dossier_id": dossier, "message_id": "wrong-2",
         "payload": samples.sample_admissibility_decision(dossier)},
    ]
    r = c.post("region.flanders", BATCH, {"messages": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [409, 202]
    assert results[0]["problem"]["error"] == "invalid_transition"
    assert _stored(hub, "wrong-1") is None and _stored(hub, "wrong-2") is not None
    assert [e["reason"] for e in _events(hub, "rejected") if e["message_id"] == "wrong-1"] == ["invalid_transition"]
    assert audit.verify(hub.engine).intact


def test_an_empty_batch_and_one_over_the_bound_are_refused_whole(running_hub):
    c, hub = running_hub, running_hub.hub
    _apply(c, 500)
    before, accepted_before = _counts(hub), len(_events(hub, "accepted"))
    empty = c.post("portal", BATCH, {"messages": []})
    one = {"flow": APPLICATION, "payload": samples.synthetic_application(501)}
    over = c.post("portal", BATCH, {"messages": [one] * (MAX_BATCH + 1)})
    missing = c.post("portal", BATCH, {})
    for r in (empty, over, missing):
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert PROBLEM_MEMBERS <= set(body) and body["error"] == "malformed_message"
        assert body["instance"] == BATCH and body["issues"][0]["name"] == "/messages"
    assert "at least 1" in empty.json()["detail"] and f"at most {MAX_BATCH}" in over.json()["detail"]
    assert _counts(hub) == before                                       # nothing of them stored
    assert len(_events(hub, "accepted")) == accepted_before
    assert any(e["reason"].startswith("malformed_message") for e in c.refusals())   # refused on the record
    assert audit.verify(hub.engine).intact


def test_a_batch_needs_a_token_and_json(running_hub):
    c, hub = running_hub, running_hub.hub
    body = {"messages": [{"flow": APPLICATION, "payload": samples.synthetic_application(600)}]}
    anonymous = c.http.post(BATCH, json=body)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "missing_token"
    text = c.http.post(BATCH, content=b"{}", headers={**c.as_("portal"), "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert _counts(hub)["messages"] == 0
