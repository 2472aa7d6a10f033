"""Bad input: a clear 4xx with a machine-readable reason, one `rejected` audit event, nothing else stored."""
from __future__ import annotations

import time

import jwt
import pytest
from sqlalchemy import func, select

from hub import audit
from hub.domain import samples
from hub.infra.store.schema import audit_events, deliveries, dossiers, messages, outbox


def _counts(hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dossiers, messages, outbox, deliveries)}


def _last_event(hub) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).mappings().one())


def _refused(h, response, status: int, code: str, before: dict[str, int]) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and "detail" in body
    assert _counts(h.hub) == before, "a refused message must leave nothing stored"
    event = _last_event(h.hub)
    assert event["event"] == "rejected" and event["outcome"] == "rejected"
    assert code in event["reason"]
    assert audit.verify(h.hub.engine).intact


def open_dossier(h, serial: int = 1) -> str:
    """Submit an application and wait until it reached its region, so that counts stand still."""
    dossier_id = h.post("portal", "/v1/applications", samples.synthetic_application(serial)).json()["dossier_id"]
    deadline = time.monotonic() + 10
    while _counts(h.hub)["deliveries"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    return dossier_id


@pytest.fixture
def h(local_hub):
    local_hub.token("portal")
    local_hub.token("region.flanders")
    return local_hub


def test_malformed_json(h):
    before = _counts(h.hub)
    r = h.http.post("/v1/applications", content=b"{not json", headers={**h.as_("portal"),
                                                                        "Content-Type": "application/json"})
    _refused(h, r, 400, "malformed_message", before)


def test_schema_violation_names_the_path(h):
    before = _counts(h.hub)
    bad = samples.synthetic_application(1)
    del bad["worker"]["last_name"]
    r = h.post("portal", "/v1/applications", bad)
    _refused(h, r, 422, "contract_violation", before)
    assert any(e["name"].startswith("/worker") for e in r.json()["issues"])


def test_bad_insz_checksum(h):
    before = _counts(h.hub)
    bad = samples.synthetic_application(1)
    insz = bad["worker"]["insz"]
    bad["worker"]["insz"] = insz[:-2] + f"{(int(insz[-2:]) + 1) % 100:02d}"
    r = h.post("portal", "/v1/applications", bad)
    _refused(h, r, 422, "contract_violation", before)
    assert any(e["name"] == "/worker/insz" for e in r.json()["issues"])


def test_bad_enterprise_number(h):
    before = _counts(h.hub)
    bad = samples.synthetic_application(1)
    bad["employment"]["employer"]["enterprise_number"] = "0123456788"
    r = h.post("portal", "/v1/applications", bad)
    _refused(h, r, 422, "contract_violation", before)


def test_unknown_flow(h):
    before = _counts(h.hub)
    r = h.post("region.flanders", "/v1/messages", {"flow": "single-permit.no-such-flow", "payload": {}})
    _refused(h, r, 422, "unknown_flow", before)


def test_sender_not_allowed_on_flow(h):
    dossier_id = open_dossier(h)
    before = _counts(h.hub)
    # a residence decision is DVZ's (Art. 7): a region may not send one
    r = h.post("region.flanders", "/v1/messages", {"flow": "single-permit.residence-decision",
                                                   "payload": samples.sample_residence_decision(dossier_id)})
    _refused(h, r, 403, "sender_not_allowed", before)


def test_recipient_not_allowed_on_flow(h):
    dossier_id = open_dossier(h)
    before = _counts(h.hub)
    r = h.post("region.flanders", "/v1/messages", {"flow": "single-permit.admissible-to-dvz",
                                                   "payload": samples.sample_admissibility_decision(dossier_id),
                                                   "recipients": ["municipality"]})
    _refused(h, r, 403, "recipient_not_allowed", before)


def test_region_not_party_to_another_regions_dossier(h):
    dossier_id = open_dossier(h)
    before = _counts(h.hub)
    r = h.post("region.wallonia", "/v1/messages", {"flow": "single-permit.admissible-to-dvz",
                                                   "payload": samples.sample_admissibility_decision(dossier_id)})
    _refused(h, r, 403, "not_party_to_dossier", before)


def test_impossible_transition(h):
    dossier_id = open_dossier(h)
    before = _counts(h.hub)
    r = h.post("dvz", "/v1/messages", {"flow": "single-permit.single-act-notified",
                                       "payload": samples.sample_single_act(dossier_id)})
    _refused(h, r, 409, "invalid_transition", before)


def test_body_over_the_limit(h):
    before = _counts(h.hub)
    big = samples.synthetic_application(1)
    big["worker"]["birth_place"] = "x" * (h.hub.settings.max_body_bytes + 1)
    r = h.post("portal", "/v1/applications", big)
    _refused(h, r, 413, "payload_too_large", before)


def test_missing_token(h):
    before = _counts(h.hub)
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1))
    _refused(h, r, 401, "missing_token", before)


def test_expired_token(h):
    before = _counts(h.hub)
    now = int(time.time())
    claims = {"iss": "wib-hub", "aud": "wib-hub-api", "sub": "portal", "iat": now - 600, "exp": now - 300,
              "jti": "x", "scope": "portal"}
    token = jwt.encode(claims, h.hub.tokens._key, algorithm="HS256")
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1),
                    headers={"Authorization": f"Bearer {token}"})
    _refused(h, r, 401, "token_expired", before)


@pytest.mark.parametrize("forge", ["wrong_key", "alg_none", "garbage"])
def test_forged_token(h, forge):
    before = _counts(h.hub)
    now = int(time.time())
    claims = {"iss": "wib-hub", "aud": "wib-hub-api", "sub": "dvz", "iat": now, "exp": now + 300, "jti": "y"}
    token = {"wrong_key": lambda: jwt.encode(claims, "not-the-hub-key-" * 3, algorithm="HS256"),
             "alg_none": lambda: jwt.encode(claims, None, algorithm="none"),
             "garbage": lambda: "abc.def.ghi"}[forge]()
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1),
                    headers={"Authorization": f"Bearer {token}"})
    _refused(h, r, 401, "invalid_token", before)


def test_wrong_client_secret(h):
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "dvz",
                                          "client_secret": "guess"})
    _refused(h, r, 401, "invalid_client", before)


def test_only_health_is_anonymous(h):
    assert h.http.get("/healthz").status_code == 200
    assert h.http.get("/readyz").json()["ready"] is True
    for method, path in (("GET", "/v1/inbox"), ("GET", "/v1/flows"), ("GET", "/v1/dossiers/x"),
                         ("POST", "/v1/messages"), ("POST", "/v1/inbox/1/ack"), ("POST", "/v1/applications")):
        assert h.http.request(method, path).status_code == 401, path


def test_no_delivery_reaches_an_unrelated_party(h):
    h.post("portal", "/v1/applications", samples.synthetic_application(3))
    deadline = time.time() + 5
    while not h.get("region.flanders", "/v1/inbox").json()["items"] and time.time() < deadline:
        time.sleep(0.02)
    assert h.get("region.flanders", "/v1/inbox").json()["items"]
    assert h.get("region.wallonia", "/v1/inbox").json()["items"] == []
    assert h.get("dvz", "/v1/inbox").json()["items"] == []


@pytest.mark.parametrize("method,path,kw", [
    ("GET", "/v1/inbox?limit=100000", {}),
    ("POST", "/v1/inbox/not-a-number/ack", {}),
    ("POST", "/v1/applications", {"headers": {"Idempotency-Key": "x" * 65}}),
])
def test_bad_parameters_get_the_same_error_shape(h, method, path, kw):
    before = _counts(h.hub)
    headers = {**h.as_("portal"), **kw.get("headers", {})}
    r = h.http.request(method, path, headers=headers, json=samples.synthetic_application(1))
    _refused(h, r, 400, "invalid_request", before)


def test_ack_of_another_partys_delivery_is_not_found(h):
    open_dossier(h)
    item = h.get("region.flanders", "/v1/inbox").json()["items"][0]
    r = h.http.post(f"/v1/inbox/{item['id']}/ack", headers=h.as_("region.wallonia"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert h.http.post(f"/v1/inbox/{item['id']}/ack", headers=h.as_("region.flanders")).json()["already"] is False
    assert h.http.post(f"/v1/inbox/{item['id']}/ack", headers=h.as_("region.flanders")).json()["already"] is True


def test_batch_ack_answers_per_id(h):
    open_dossier(h, 1)
    open_dossier(h, 2)
    deadline = time.monotonic() + 10
    while len(h.get("region.flanders", "/v1/inbox").json()["items"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    ids = [i["id"] for i in h.get("region.flanders", "/v1/inbox").json()["items"]]
    assert len(ids) == 2
    r = h.post("region.flanders", "/v1/inbox/ack", {"ids": ids[:1]})
    assert r.json()["results"] == {str(ids[0]): "acknowledged"}
    r = h.post("region.flanders", "/v1/inbox/ack", {"ids": ids + [999999]})
    assert r.json()["results"] == {str(ids[0]): "already", str(ids[1]): "acknowledged", "999999": "unknown"}
    assert h.get("region.flanders", "/v1/inbox").json()["items"] == []
    before = _counts(h.hub)
    _refused(h, h.post("region.flanders", "/v1/inbox/ack", {"ids": []}), 400, "malformed_message", before)
