"""The HTTP face of the hub: one FastAPI app, one router per audience, errors mapped once."""
from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub.interfaces.api import (
    authorities, clocks, consultations, contracts, enrichment, portal, rights, security, stats, system,
)
from hub.interfaces.api.hardening import SecurityHeaders
from hub.interfaces.api.ratelimit import RateLimit, RateLimiter
from hub.audit import AuditEvent
from hub.bootstrap import Hub
from hub.domain.errors import HubError, MalformedMessage, PayloadTooLarge, RateLimited


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="wib-hub", version="0.1.0",
                  description="Data-exchange hub of the single-permit platform (Working in Belgium).")
    app.state.hub = hub
    per_minute = hub.settings.token_rate_limit_per_minute   # /oauth/token, per client id (hub/interfaces/api/system.py)
    app.state.token_limiter = RateLimiter(per_minute / 60, per_minute) if per_minute > 0 else None
    app.include_router(system.router)
    app.include_router(portal.router)
    app.include_router(authorities.router)
    app.include_router(contracts.router)
    app.include_router(enrichment.router)
    app.include_router(consultations.router)
    app.include_router(security.router)
    app.include_router(clocks.router)
    app.include_router(rights.router)
    app.include_router(stats.router)

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, err: HubError) -> JSONResponse:
        if not getattr(err, "audited", False):
            record_refusal(hub, request, err)
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        if isinstance(err, RateLimited):
            headers = {"Retry-After": str(err.retry_after)}
        return JSONResponse(err.as_body(), status_code=err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # query, path and header parameters FastAPI checks itself: same shape, same trace as ours
        detail = [{"path": "/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()]
        return await _hub_error(request, MalformedMessage(detail, code="invalid_request"))

    app.add_middleware(BodyLimit, limit=hub.settings.max_body_bytes, hub=hub)
    app.add_middleware(RateLimit, hub=hub, record=record_refusal)
    app.add_middleware(SecurityHeaders)
    return app


def record_refusal(hub: Hub, request: Request | None, err: HubError) -> None:
    """A request refused before the pipeline saw it still leaves its trace (no payload, no token)."""
    caller = getattr(request.state, "caller", None) if request is not None else None
    path = request.url.path if request is not None else None
    hub.work.record([AuditEvent("rejected", outcome="rejected", actor=caller.party if caller else None,
                                acting_person=caller.acting_person if caller else None,
                                reason=f"{err.code} {path}" if path else err.code)])


class BodyLimit:
    """Refuse bodies over the limit (413) before they are read into memory."""

    def __init__(self, app, limit: int, hub: Hub):
        self.app, self.limit, self.hub = app, limit, hub

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope, send):
        err = PayloadTooLarge(f"body over {self.limit} bytes")
        record_refusal(self.hub, None, err)
        body = json.dumps(err.as_body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
