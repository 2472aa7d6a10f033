"""Conformance of ANY back-office endpoint to backoffice-v1: what the pollers rely on.

Read-only on the event log (it never acknowledges: that would hide real events from the poller);
it delivers one synthetic hub message with a fresh id, twice, to check idempotence. The API key is
taken from the environment variable BACKOFFICE_API_KEY (default: the simulator's key).
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Callable

import httpx

from adapters.backoffice import contract
from adapters.backoffice.simulator import SIMULATOR_API_KEY
from hub.ports import Check, SourceConfig
from adapters.common import reachability

__all__ = ["run_conformance", "sample_hub_message"]


def sample_hub_message(flow: str, sender: str) -> dict[str, Any]:
    """A synthetic hub inbox item on `flow`, with a fresh message id (hub.domain.samples payloads)."""
    from hub.domain.samples import FLOW_SAMPLES
    dossier_id = "WIB-2026-900001"
    return {"id": 1, "message_id": f"conformance-{uuid.uuid4().hex}", "flow": flow, "sender": sender,
            "dossier_id": dossier_id, "correlation_id": None, "purpose": 4, "data_categories": ["administrative"],
            "payload": FLOW_SAMPLES[flow][1](dossier_id), "delivered_at": "2026-03-20T10:00:01+00:00"}


def run_conformance(config: SourceConfig, *, party_flows: frozenset[str], delivered_flow: str, sender: str,
                    api_key: str | None = None) -> list[Check]:
    if dead := reachability(config):   # a dead URL: one failed check, not every check on the same cause
        return dead
    key = api_key if api_key is not None else os.environ.get("BACKOFFICE_API_KEY", SIMULATOR_API_KEY)
    auth = {"Authorization": f"Bearer {key}"}
    checks: list[Check] = []
    seen: dict[str, Any] = {}

    def check(name: str, fn: Callable[[], str | None]) -> None:
        try:
            detail = fn()
            checks.append(Check(name, True, detail or ""))
        except AssertionError as err:
            checks.append(Check(name, False, str(err)))
        except httpx.HTTPError as err:
            checks.append(Check(name, False, f"{type(err).__name__}: {err}"))

    def expect(r: httpx.Response, status: int, component: str) -> Any:
        assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code}, expected {status}"
        try:
            body = r.json()
        except ValueError:
            raise AssertionError(f"{r.request.url.path}: answer is not JSON") from None
        found = contract.errors(component, body)
        assert not found, f"{component}: {found[:3]}"
        return body

    with httpx.Client(base_url=config.url, timeout=config.timeout_s) as http:
        def page() -> str:
            body = expect(http.get("/events", params={"limit": 5}, headers=auth), 200, "EventPage")
            assert len(body["events"]) <= 5, "more events than the limit"
            seen.update(body)
            return f"{len(body['events'])} events, cursor {body['cursor']}"

        def flows() -> str:
            assert "events" in seen, "no page to look at"
            wrong = sorted({e["flow"] for e in seen["events"]} - party_flows)
            assert not wrong, f"events on flows this back office does not send: {wrong}"
            return "every event on a flow the party sends"

        def next_page() -> str:
            assert "events" in seen, "no page to look at"
            if not seen.get("cursor"):
                return "no cursor yet (no event): nothing to page"
            body = expect(http.get("/events", params={"after": seen["cursor"], "limit": 5}, headers=auth),
                          200, "EventPage")
            again = {e["event_id"] for e in body["events"]} & {e["event_id"] for e in seen["events"]}
            assert not again, f"events repeated after their cursor: {sorted(again)}"
            return f"{len(body['events'])} newer events"

        message = sample_hub_message(delivered_flow, sender)

        def deliver() -> str:
            body = expect(http.post("/hub-messages", json=message, headers=auth), 201, "DeliveryResult")
            assert body["status"] == "created" and body["message_id"] == message["message_id"], str(body)
            return message["message_id"]

        def deliver_again() -> str:
            body = expect(http.post("/hub-messages", json=message, headers=auth), 200, "DeliveryResult")
            assert body["status"] == "duplicate", str(body)
            return "200 duplicate"

        check("events: API key required", lambda: expect(http.get("/events"), 401, "Problem") and None)
        check("events: a page valid against EventPage", page)
        check("events: flows are the party's", flows)
        check("events: next page after the cursor repeats nothing", next_page)
        check("events: limit 0 refused (400)",
              lambda: expect(http.get("/events", params={"limit": 0}, headers=auth), 400, "Problem") and None)
        check("events: limit above 500 refused (400)",
              lambda: expect(http.get("/events", params={"limit": 501}, headers=auth), 400, "Problem") and None)
        check("events/ack: API key required",
              lambda: expect(http.post("/events/ack", json={"cursor": "1"}), 401, "Problem") and None)
        check("events/ack: body without cursor refused (400)",
              lambda: expect(http.post("/events/ack", json={}, headers=auth), 400, "Problem") and None)
        check("hub-messages: API key required",
              lambda: expect(http.post("/hub-messages", json=message), 401, "Problem") and None)
        check("hub-messages: invalid body refused (400)",
              lambda: expect(http.post("/hub-messages", json={"message_id": "x"}, headers=auth), 400,
                             "Problem") and None)
        check("hub-messages: new message → 201 created", deliver)
        check("hub-messages: same message id again → 200 duplicate", deliver_again)
    return checks
