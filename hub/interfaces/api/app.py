"""The HTTP face of the hub: one FastAPI app, one router per audience, every refusal an RFC 9457
problem (hub/interfaces/api/problems.py), the OpenAPI document complete (hub/interfaces/api/openapi.py)."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from hub.interfaces.api import (
    authorities, clocks, consultations, contracts, docs, enrichment, portal, problems, rights, security,
    stats, system,
)
from hub.interfaces.api.hardening import SecurityHeaders
from hub.interfaces.api.openapi import install_openapi
from hub.interfaces.api.ratelimit import RateLimit, RateLimiter
from hub.interfaces.api.server import HeaderLimits
from hub.audit.refusals import RefusalLog
from hub.bootstrap import Hub
from hub.domain.errors import HubError, MalformedMessage, NotFound, PayloadTooLarge
from hub.domain.problems import validation_issue
from hub.infra.store.db import STORE_ERRORS, is_unavailable
from hub.ports.oplog import Condition

log = structlog.get_logger("hub.api")

STORE_RETRY_AFTER_S = 2   # Retry-After of a 503 while the store is away

ROUTERS = (system, portal, authorities, contracts, enrichment, consultations, security, clocks, rights, stats)


def create_app(hub: Hub) -> FastAPI:
    refusals = RefusalLog(hub.work)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        refusals.start()
        try:
            yield
        finally:
            refusals.stop()

    app = FastAPI(title="wib-hub", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan,
                  redirect_slashes=False,   # a redirect would be built from the request's Host: a 404 problem instead
                  description="Data-exchange hub of the single-permit platform (Working in Belgium). "
                              "Every refusal is an RFC 9457 problem (`application/problem+json`) carrying "
                              "the hub's `error` code.")
    app.state.hub, app.state.refusals = hub, refusals
    store_down = Condition(log, "api.store")   # one line per outage, not per request
    per_minute = hub.settings.token_rate_limit_per_minute   # /oauth/token, per client id (hub/interfaces/api/system.py)
    app.state.token_limiter = RateLimiter(per_minute / 60, per_minute) if per_minute > 0 else None
    for module in ROUTERS:
        app.include_router(module.router)
    docs.install(app)
    install_openapi(app, hub.registry)

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, err: HubError) -> JSONResponse:
        if not getattr(err, "audited", False):
            record_refusal(hub, request, err)
        return JSONResponse(problems.for_error(err, request.url.path), status_code=err.status,
                            headers=problems.headers_for(err) or None, media_type=problems.MEDIA_TYPE)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # what FastAPI checks against the route's models: the same problem, the same trace as ours
        issues = [validation_issue(e) for e in err.errors()]
        in_body = all(i["in"] == "body" for i in issues)   # as before: a bad body is malformed, a bad parameter invalid
        return await _hub_error(request, MalformedMessage(issues, code="malformed_message" if in_body else "invalid_request"))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
        # Starlette's own answers (no such route, method not allowed): problems as well
        if err.status_code == 404:
            refused: HubError = NotFound(f"no route {request.url.path[:200]}", code="route_not_found")
        else:
            detail = str(err.detail)
            if err.status_code == 405:
                detail = f"{request.method} is not allowed on {request.url.path[:200]}; allowed: {(err.headers or {}).get('Allow', '-')}"
            refused = HubError(detail, code=_STARLETTE_CODES.get(err.status_code, "http_error"))
            refused.status = err.status_code
        answer = await _hub_error(request, refused)
        for name, value in (err.headers or {}).items():
            answer.headers[name] = value
        return answer

    async def _store_error(request: Request, err: Exception) -> JSONResponse:
        """A store error is answered here (not as an unexpected error, which the server also
        re-raises and so drops the client's connection): 503 while the store is away, else 500."""
        if not is_unavailable(err):
            return await _unexpected(request, err)
        if store_down.down and time.monotonic() - store_down.last_failure > 30:
            store_down.ok()   # a quiet half minute ended the last outage; this is a new one
        store_down.failed(err, path=request.url.path)
        refused = HubError("the store is not available; nothing was stored: try again (the same "
                           "message id is accepted once)", code="store_unavailable")
        refused.status = 503
        return JSONResponse(problems.for_error(refused, request.url.path), status_code=503,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_S)}, media_type=problems.MEDIA_TYPE)

    for kind in STORE_ERRORS:
        app.add_exception_handler(kind, _store_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("unexpected_error", path=request.url.path, error=type(err).__name__)
        refused = HubError("the hub could not answer this request", code="internal_error")
        refused.status = 500
        return JSONResponse(problems.for_error(refused, request.url.path), status_code=500,
                            media_type=problems.MEDIA_TYPE)

    app.add_middleware(BodyLimit, limit=hub.settings.max_body_bytes, hub=hub)
    app.add_middleware(RateLimit, hub=hub, record=record_refusal)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeaderLimits, max_count=hub.settings.max_header_count,      # outermost: before anything
                       max_bytes=hub.settings.max_header_bytes,                     # reads a header
                       on_refusal=lambda scope, code: record_refusal(hub, Request(scope), HubError(code=code)))
    return app


_STARLETTE_CODES = {405: "method_not_allowed", 406: "not_acceptable", 400: "bad_request"}


def record_refusal(hub: Hub, request: Request, err: HubError) -> None:
    """A request refused before the pipeline saw it still leaves its trace (no payload, no token),
    through the app's RefusalLog: the first of each kind at once, its repeats counted into one
    event per window (hub/audit/refusals.py), so that nobody can flood the trail. The kind names
    the route's template, never the raw path a requester chooses."""
    caller = getattr(request.state, "caller", None)
    route = request.scope.get("route")
    source = caller.party if caller else (request.client.host if request.client else "-")
    request.app.state.refusals.refused(source, err.code, getattr(route, "path", None),
                                       actor=caller.party if caller else None,
                                       acting_person=caller.acting_person if caller else None)


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
        record_refusal(self.hub, Request(scope), err)
        await problems.send(send, err, scope.get("path"))


class _TooLarge(Exception):
    pass
