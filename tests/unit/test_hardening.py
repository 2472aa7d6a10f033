"""Security headers on every answer; JSON nesting bounded (a 400, never a 500), nothing stored."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.domain.errors import MalformedMessage
from hub.infra.store.schema import audit_events, messages
from hub.interfaces.api.hardening import MAX_JSON_DEPTH, load_json


def test_api_answers_carry_the_security_headers(local_hub):
    for r in (local_hub.http.get("/healthz"), local_hub.get("dvz", "/v1/inbox"),
              local_hub.http.get("/v1/inbox")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    docs = local_hub.http.get("/docs")
    assert docs.status_code == 200 and "https:" not in docs.headers["content-security-policy"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 30_000])  # 30,000: past the parser's own recursion limit
def test_deeply_nested_json_is_refused_cleanly(local_hub, depth):
    body = ("[" * depth + "]" * depth).encode()
    r = local_hub.http.post("/v1/messages", content=body, headers={**local_hub.as_("dvz"),
                                                                      "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "json_too_deep"
    with local_hub.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0
        rejected = conn.execute(select(audit_events.c.reason).where(audit_events.c.event == "rejected")).scalars().all()
    assert any("json_too_deep" in r for r in rejected)


def test_depth_is_measured_without_recursion():
    nested: list = []
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert load_json(repr(nested).encode()) == nested
    with pytest.raises(MalformedMessage):
        load_json(b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1))
