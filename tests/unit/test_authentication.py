"""Authentication (Art. 8 §2; GDPR art. 32): private_key_jwt for parties, the acting person, the
optional mTLS header and per-party rate limits — and the attacks on them, each refused with one
`rejected` audit event and nothing else stored."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import func, select

from hub import audit
from hub.domain import samples
from hub.infra.auth import ASSERTION_TYPE, load_clients
from hub.infra.store.schema import audit_events, deliveries, dossiers, messages, outbox
from hub.interfaces.api.ratelimit import RateLimiter
from tests.support import start_hub
from tests.support.authentication import (
    KEYS,
    SUBJECT,
    TOKEN_URL,
    _pem,
    assertion,
    write_clients,
)


def token_form(party: str, signed: str, **extra) -> dict:
    return {"grant_type": "client_credentials", "client_id": party,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed, **extra}


def _hub(tmp_path, **settings):
    clients = write_clients(tmp_path / "clients.json")
    settings.setdefault("token_url", TOKEN_URL)   # parties with keys: the hub needs its token URL
    yield from start_hub(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'broker.db'}",
                         clients_file=clients, **settings)


@pytest.fixture
def h(tmp_path):
    yield from _hub(tmp_path)


def _counts(hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dossiers, messages, outbox, deliveries, audit_events)}


def _events_since(hub, seq: int) -> list[dict]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.seq > seq)
                                              .order_by(audit_events.c.seq)).mappings()]


def _refused(h, response, status: int, code: str, before: dict[str, int]) -> None:
    """One `rejected` audit event naming the code, nothing else stored."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    after = _counts(h.hub)
    assert after["audit_events"] == before["audit_events"] + 1
    assert {k: v for k, v in after.items() if k != "audit_events"} == \
        {k: v for k, v in before.items() if k != "audit_events"}, "a refusal must leave nothing stored"
    (event,) = _events_since(h.hub, before["audit_events"])
    assert event["event"] == "rejected" and event["outcome"] == "rejected" and code in event["reason"]
    assert audit.verify(h.hub.engine).intact


def _seq(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(audit_events.c.seq), 0))).scalar_one()


@pytest.mark.parametrize("party", ["portal", "dvz", "region.flanders"])
def test_private_key_jwt_issues_a_token_for_the_party(h, party):
    r = h.http.post("/oauth/token", data=token_form(party, assertion(party)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300
    assert h.hub.tokens.verify(body["access_token"]).party == party
    assert h.http.get("/v1/inbox", headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200


def test_acting_person_is_carried_into_the_audit_trail(h):
    r = h.http.post("/oauth/token", data=token_form("portal", assertion("portal"), acting_person="agent-0042"))
    token = r.json()["access_token"]
    caller = h.hub.tokens.verify(token)
    assert (caller.party, caller.acting_person) == ("portal", "agent-0042")
    seq = _seq(h.hub)
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1),
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.text
    accepted = [e for e in _events_since(h.hub, seq) if e["actor"] == "portal"]
    assert accepted and all(e["acting_person"] == "agent-0042" for e in accepted)


def test_acting_person_must_be_a_user_id(h):
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data=token_form("portal", assertion("portal"), acting_person="x" * 200))
    _refused(h, r, 400, "invalid_request", before)


def test_client_secret_still_works_by_default(h):
    assert h.token("region.wallonia")


def test_client_secrets_can_be_switched_off(tmp_path):
    for h in _hub(tmp_path, allow_client_secrets=False):
        before = _counts(h.hub)
        r = h.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "portal",
                                              "client_secret": h.secrets["portal"]["secret"]})
        _refused(h, r, 401, "invalid_client", before)
        assert h.http.post("/oauth/token", data=token_form("portal", assertion("portal"))).status_code == 200


def test_configured_token_url_is_the_audience(tmp_path):
    for h in _hub(tmp_path, token_url="https://hub.example.org/oauth/token"):
        ok = assertion("portal", aud="https://hub.example.org/oauth/token")
        assert h.http.post("/oauth/token", data=token_form("portal", ok)).status_code == 200
        before = _counts(h.hub)
        r = h.http.post("/oauth/token", data=token_form("portal", assertion("portal")))  # aud = the request URL
        _refused(h, r, 401, "invalid_client", before)


def _hs256_with(secret: bytes) -> str:
    """The classic key-confusion forgery: HMAC keyed with the party's public key (built by hand,
    PyJWT itself refuses to do it)."""
    now = int(time.time())
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps({"iss": "portal", "sub": "portal", "aud": TOKEN_URL, "iat": now,
                                                  "exp": now + 60, "jti": uuid.uuid4().hex}).encode())
    signature = hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
    return b".".join([header, body, jwt.utils.base64url_encode(signature)]).decode()


def _other_key():
    return ed25519.Ed25519PrivateKey.generate()


ATTACKS = {
    "alg_none": lambda: jwt.encode({"iss": "portal", "sub": "portal", "aud": TOKEN_URL, "iat": int(time.time()),
                                    "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex}, None, algorithm="none"),
    "alg_hs256_with_public_key_as_secret": lambda: _hs256_with(_pem(KEYS["portal"]).encode()),
    "wrong_key": lambda: assertion("portal", key=_other_key()),
    "expired": lambda: assertion("portal", iat=int(time.time()) - 600, exp=int(time.time()) - 300),
    "too_long_lived": lambda: assertion("portal", exp=int(time.time()) + 3600),
    "issued_in_the_future": lambda: assertion("portal", iat=int(time.time()) + 600, exp=int(time.time()) + 650),
    "wrong_audience": lambda: assertion("portal", aud="https://elsewhere.example/oauth/token"),
    "sub_differs_from_iss": lambda: assertion("portal", sub="dvz"),
    "no_jti": lambda: assertion("portal", jti=None),
    "another_partys_key": lambda: assertion("dvz", key=KEYS["portal"], alg="EdDSA"),
    "unknown_client": lambda: assertion("nobody", key=KEYS["portal"], alg="EdDSA"),
    "party_without_public_key": lambda: assertion("region.wallonia", key=KEYS["portal"], alg="EdDSA"),
    "garbage": lambda: "not.a.jwt",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_on_client_assertion_is_refused(h, attack):
    signed = ATTACKS[attack]()
    claimed = jwt.decode(signed, options={"verify_signature": False}).get("iss") if attack != "garbage" else "portal"
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data=token_form(claimed, signed))
    _refused(h, r, 401, "invalid_client", before)
    assert "access_token" not in r.text


def test_replayed_assertion_is_refused(h):
    signed = assertion("portal")
    assert h.http.post("/oauth/token", data=token_form("portal", signed)).status_code == 200
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data=token_form("portal", signed))
    _refused(h, r, 401, "assertion_replayed", before)


def test_token_requests_are_limited_per_client_id(tmp_path):
    """Guessing a client's secret: after the limit, 429 with Retry-After before any check, one
    `rejected` event each; another client is not held up."""
    gen = _hub(tmp_path, token_rate_limit_per_minute=3)
    h = next(gen)
    try:
        guess = {"grant_type": "client_credentials", "client_id": "dvz", "client_secret": "guess"}
        for _ in range(3):
            assert h.http.post("/oauth/token", data=guess).status_code == 401
        before = _counts(h.hub)
        r = h.http.post("/oauth/token", data=guess)
        _refused(h, r, 429, "rate_limited", before)
        assert int(r.headers["Retry-After"]) >= 1
        good = {**guess, "client_secret": h.secrets["dvz"]["secret"]}
        assert h.http.post("/oauth/token", data=good).status_code == 429   # the right secret waits too
        assert h.http.post("/oauth/token", data=token_form("portal", assertion("portal"))).status_code == 200
    finally:
        gen.close()


def test_assertion_of_one_party_cannot_get_a_token_for_another(h):
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data=token_form("dvz", assertion("portal")))
    _refused(h, r, 401, "invalid_client", before)


def test_assertion_type_is_checked(h):
    before = _counts(h.hub)
    r = h.http.post("/oauth/token", data=token_form("portal", assertion("portal"), client_assertion_type="bearer"))
    _refused(h, r, 400, "invalid_request", before)


def _tamper_sub(token: str, party: str) -> str:
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    body = jwt.utils.base64url_encode(json.dumps({**claims, "sub": party}).encode()).decode()
    return f"{header}.{body}.{signature}"


def test_token_cannot_be_altered_to_act_as_another_party(h):
    token = h.token("region.flanders")
    before = _counts(h.hub)
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1),
                    headers={"Authorization": f"Bearer {_tamper_sub(token, 'portal')}"})
    _refused(h, r, 401, "invalid_token", before)


def test_party_comes_from_the_token_not_the_body(h):
    """The sender is the token's party, whatever the request says: a region's token cannot submit
    an application as if it were the portal (the body has no say; an extra `sender` is refused)."""
    before = _counts(h.hub)
    r = h.http.post("/v1/applications", json=samples.synthetic_application(1), headers=h.as_("region.flanders"))
    _refused(h, r, 403, "sender_not_allowed", before)
    before = _counts(h.hub)
    r = h.http.post("/v1/applications", json={**samples.synthetic_application(1), "sender": "portal"},
                    headers=h.as_("region.flanders"))
    _refused(h, r, 422, "contract_violation", before)


def test_assertion_is_not_an_access_token(h):
    before = _counts(h.hub)
    r = h.http.get("/v1/inbox", headers={"Authorization": f"Bearer {assertion('portal')}"})
    _refused(h, r, 401, "invalid_token", before)


def test_mtls_header_is_ignored_when_off(h):
    before = _counts(h.hub)
    r = h.http.get("/v1/inbox", headers={"X-Client-Cert-Subject": SUBJECT})
    _refused(h, r, 401, "missing_token", before)


def test_mtls_header_is_honoured_when_on(tmp_path):
    for h in _hub(tmp_path, mtls_header="X-Client-Cert-Subject"):
        assert h.http.get("/v1/inbox", headers={"X-Client-Cert-Subject": SUBJECT}).status_code == 200
        before = _counts(h.hub)
        r = h.http.get("/v1/inbox", headers={"X-Client-Cert-Subject": "CN=someone-else"})
        _refused(h, r, 401, "invalid_certificate", before)
        before = _counts(h.hub)
        r = h.http.get("/v1/inbox", headers={"X-Client-Cert-Subject": SUBJECT, **h.as_("dvz")})
        _refused(h, r, 401, "identity_mismatch", before)
        seq = _seq(h.hub)
        r = h.http.post("/v1/applications", json=samples.synthetic_application(1),
                        headers={"X-Client-Cert-Subject": SUBJECT})
        assert r.status_code == 202, r.text
        assert any(e["actor"] == "portal" and e["outcome"] != "rejected" for e in _events_since(h.hub, seq))


def test_rate_limit_returns_429_after_the_burst_and_recovers(tmp_path):
    # 0.5/s: a token comes back after 2 s, so a slow machine still sends the 4 requests before it does
    for h in _hub(tmp_path, rate_limit_per_second=0.5, rate_limit_burst=3):
        headers = h.as_("dvz")  # the token request itself is not counted (no identity yet)
        assert [h.http.get("/v1/inbox", headers=headers).status_code for _ in range(3)] == [200] * 3
        before = _counts(h.hub)
        r = h.http.get("/v1/inbox", headers=headers)
        _refused(h, r, 429, "rate_limited", before)
        assert int(r.headers["Retry-After"]) >= 1
        assert _events_since(h.hub, before["audit_events"])[0]["actor"] == "dvz"
        assert h.http.get("/v1/inbox", headers=h.as_("region.flanders")).status_code == 200  # other party unaffected
        assert h.http.get("/healthz").status_code == 200  # exempt
        time.sleep(2.1)
        assert h.http.get("/v1/inbox", headers=headers).status_code == 200


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    limiter = RateLimiter(per_second=2, burst=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0
    now[0] = 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0


def test_clients_file_refuses_private_keys_and_weak_keys(tmp_path):
    path = tmp_path / "c.json"
    private_jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(KEYS["portal"]))
    path.write_text(json.dumps({"portal": {"jwks": {"keys": [private_jwk]}}}))
    with pytest.raises(ValueError, match="private key"):
        load_clients(path)
    path.write_text(json.dumps({"portal": {}}))
    with pytest.raises(ValueError, match="no secret"):
        load_clients(path)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_text(json.dumps({"portal": {"public_key_pem": _pem(weak)}}))
    with pytest.raises(ValueError, match="2048"):
        load_clients(path)
