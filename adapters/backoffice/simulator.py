"""A simulated authority back office speaking backoffice-v1 (contracts/backoffice/backoffice-v1.openapi.yaml).

It holds its events in memory, numbered 1, 2, 3 … (the cursor is the number of the last event read;
event ids are `evt-000001` … unless the caller names them), and records every hub message delivered
to it, once per message id. Test and demo controls, outside the contract and without the API key:
`POST /_sim/events` `{"events": [{flow, payload, dossier_id?, correlation_id?, recipients?, event_id?}]}`
adds events; `GET /_sim/received` lists the hub messages received and how many deliveries were tried.
"""
from __future__ import annotations

import hmac
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.backoffice import contract
from adapters.simulator import FaultInjector, Faults

__all__ = ["SIMULATOR_API_KEY", "BackOfficeState", "make_app", "make_back_office", "synthetic_event"]

SIMULATOR_API_KEY = "sim-back-office-key"     # the simulator's static key (test beds only)
_EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


class BackOfficeState:
    """The back office's memory: its event log, the acknowledged cursor, the hub messages received."""

    def __init__(self, party: str):
        self.party = party
        self.events: list[dict[str, Any]] = []
        self.acked = 0
        self.received: dict[str, dict[str, Any]] = {}
        self.attempts = 0
        self.lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            seq = len(self.events) + 1
            event = {"event_id": spec.get("event_id") or f"evt-{seq:06d}", "flow": spec.get("flow"),
                     "occurred_at": spec.get("occurred_at") or (_EPOCH + timedelta(minutes=seq)).isoformat(),
                     "payload": spec.get("payload")}
            for key in ("dossier_id", "correlation_id", "recipients"):
                if spec.get(key) is not None:
                    event[key] = spec[key]
            contract.check("Event", event)
            if any(e["event_id"] == event["event_id"] for e in self.events):
                raise ValueError(f"event id {event['event_id']} already used")
            self.events.append(event)
            return event


def _problem(status: int, error: str, detail: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


def _seq(cursor: str, state: BackOfficeState) -> int | None:
    if not cursor.isdigit() or int(cursor) > len(state.events):
        return None
    return int(cursor)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return _MALFORMED


_MALFORMED = object()


def make_app(party: str, api_key: str = SIMULATOR_API_KEY, state: BackOfficeState | None = None) -> Starlette:
    """The bare back-office app (no fault injection); `app.state.backoffice` is its memory."""
    state = state or BackOfficeState(party)

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    async def events(request: Request) -> JSONResponse:
        if not authorised(request):
            return _problem(401, "not_authenticated", "Authorization: Bearer <API key> required")
        low, high = contract.limit_bounds()
        raw_limit = request.query_params.get("limit", "100")
        if not raw_limit.isdigit() or not low <= int(raw_limit) <= high:
            return _problem(400, "invalid_limit", f"limit must be an integer in [{low}, {high}]")
        after = request.query_params.get("after")
        with state.lock:
            start = state.acked if after is None else _seq(after, state)
            if start is None:
                return _problem(400, "invalid_cursor", "not a cursor of this back office")
            page = state.events[start:start + int(raw_limit)]
            end = start + len(page)
        return JSONResponse({"events": page, "cursor": str(end) if end else None})

    async def ack(request: Request) -> JSONResponse:
        if not authorised(request):
            return _problem(401, "not_authenticated", "Authorization: Bearer <API key> required")
        body = await _json_body(request)
        if body is _MALFORMED or contract.errors("AckRequest", body):
            return _problem(400, "invalid_request", "body must be {\"cursor\": <cursor>}")
        with state.lock:
            seq = _seq(body["cursor"], state)
            if seq is None:
                return _problem(400, "invalid_cursor", "not a cursor of this back office")
            newly = max(0, seq - state.acked)
            state.acked = max(state.acked, seq)
            return JSONResponse({"cursor": str(state.acked), "acknowledged": newly})

    async def hub_messages(request: Request) -> JSONResponse:
        if not authorised(request):
            return _problem(401, "not_authenticated", "Authorization: Bearer <API key> required")
        body = await _json_body(request)
        if body is _MALFORMED:
            return _problem(400, "malformed_json")
        found = contract.errors("HubMessage", body)
        if found:
            return _problem(400, "invalid_message", found[:5])
        with state.lock:
            state.attempts += 1
            if body["message_id"] in state.received:
                return JSONResponse({"message_id": body["message_id"], "status": "duplicate"}, status_code=200)
            state.received[body["message_id"]] = body
        return JSONResponse({"message_id": body["message_id"], "status": "created"}, status_code=201)

    async def sim_events(request: Request) -> JSONResponse:
        if request.method == "GET":
            with state.lock:
                return JSONResponse({"events": list(state.events), "acked": state.acked})
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return _problem(400, "invalid_request", "body must be {\"events\": [...]}")
        added = []
        for spec in body["events"]:
            try:
                added.append(state.add(spec if isinstance(spec, dict) else {}))
            except ValueError as err:
                return _problem(400, "invalid_event", str(err))
        return JSONResponse({"events": added}, status_code=201)

    async def sim_received(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse({"messages": list(state.received.values()), "attempts": state.attempts})

    app = Starlette(routes=[
        Route("/events", events, methods=["GET"]),
        Route("/events/ack", ack, methods=["POST"]),
        Route("/hub-messages", hub_messages, methods=["POST"]),
        Route("/_sim/events", sim_events, methods=["GET", "POST"]),
        Route("/_sim/received", sim_received, methods=["GET"]),
    ])
    app.state.backoffice = state
    return app


def make_back_office(party: str, faults: Faults | None = None, api_key: str = SIMULATOR_API_KEY) -> FaultInjector:
    """The simulator as `make_simulator` returns it: the app behind fault injection."""
    return FaultInjector(make_app(party, api_key), faults)


def synthetic_event(party: str, flow: str, dossier_id: str, **extra: Any) -> dict[str, Any]:
    """An event spec for `POST /_sim/events`: a valid sample payload of the flow, decided by `party`."""
    from hub.domain.samples import FLOW_SAMPLES
    _, factory = FLOW_SAMPLES[flow]
    payload = factory(dossier_id)
    for key in ("deciding_authority", "requested_by", "decided_by", "informed_by"):   # bound to the sender
        if key in payload:
            payload[key] = party
    return {"flow": flow, "dossier_id": dossier_id, "payload": payload, **extra}
