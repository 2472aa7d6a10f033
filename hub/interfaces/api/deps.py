"""What every route needs: the hub, the authenticated caller, and a strict way in for its body
and parameters (StrictRoute)."""
from __future__ import annotations

from typing import Annotated, Any, Callable, Coroutine

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from hub.interfaces.api.hardening import bad_text, load_json, require_json
from hub.infra.auth import Caller
from hub.bootstrap import Hub
from hub.domain.errors import MalformedMessage, NotAuthenticated

bearer = HTTPBearer(auto_error=False, description="access token from POST /oauth/token")


# Dependencies are `async def` when they do no I/O: FastAPI runs a plain `def` one in its thread
# pool, a hand-over to another thread and back for each (measured: a third of a request's cost).

def get_hub(request: Request) -> Hub:
    return request.app.state.hub


async def hub_of(request: Request) -> Hub:
    return request.app.state.hub


def resolve_caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """Who calls (Art. 8 §2; GDPR art. 32): a bearer token from /oauth/token or, only when
    HUB_MTLS_HEADER is set, the client-certificate subject a TLS-terminating proxy verified.

    The proxy must strip that header from every incoming request and set it itself; when the
    setting is off the header is ignored. A bearer token and a certificate naming different
    parties are refused. The party always comes from these, never from a request body.
    """
    hub = get_hub(request)
    header = hub.settings.mtls_header
    subject = request.headers.get(header) if header else None
    if credentials is not None:
        caller = hub.tokens.verify(credentials.credentials)
        if subject and hub.tokens.party_for_certificate(subject) != caller.party:
            raise NotAuthenticated("certificate and token name different parties", code="identity_mismatch")
        return caller
    if subject:
        return hub.tokens.caller(hub.tokens.party_for_certificate(subject))
    raise NotAuthenticated("a bearer token is required", code="missing_token")


def bearer_credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and token:
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
    return None


def identify(request: Request) -> Caller:
    """The caller, once per request: the rate limit (ratelimit.py) or StrictRoute found it first."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        caller = resolve_caller(request, bearer_credentials(request))
        request.state.caller = caller
    return caller


async def get_caller(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """No anonymous access: every route but health needs a valid token (or, if on, mTLS identity)."""
    return identify(request)


class StrictRoute(APIRoute):
    """Every route of the API: before FastAPI reads anything, the query and path parameters are
    checked for NUL, control characters and lone surrogates, and a JSON body must come as
    `application/json` (else 415) and is parsed by hardening.load_json (no NaN, bounded numbers,
    clean strings, bounded depth). The parsed value is what FastAPI then validates against the
    route's model, so a body is parsed once and checked in one pass. A route that needs a caller
    authenticates it first: an anonymous request learns nothing about bodies or parameters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None and not _is_form(self)
        authenticated = _uses(self.dependant, get_caller)

        async def strict(request: Request) -> Response:
            if authenticated:
                identify(request)
            _check_parameters(request)
            if takes_json:
                require_json(request.headers.get("content-type"))
                request._json = load_json(await request.body())   # FastAPI's request.json() answers this
            return await handler(request)

        return strict


def _uses(dependant: Any, call: Callable) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def _is_form(route: APIRoute) -> bool:
    from fastapi.params import Form
    info = getattr(route.body_field, "field_info", None)
    return isinstance(info, Form)


def _check_parameters(request: Request) -> None:
    faults = [{"in": "query", "name": k[:64], "detail": "a control character, NUL or lone surrogate"}
              for k, v in request.query_params.multi_items() if bad_text(k) or bad_text(v)]
    faults += [{"in": "path", "name": k, "detail": "a control character, NUL or lone surrogate"}
               for k, v in request.path_params.items() if isinstance(v, str) and bad_text(v)]
    if faults:
        raise MalformedMessage(faults, code="invalid_request")


async def json_body(request: Request) -> Any:
    """A JSON body for a route that declares its schema itself (openapi_extra): the same checks."""
    require_json(request.headers.get("content-type"))
    return load_json(await request.body())


HubDep = Annotated[Hub, Depends(hub_of)]
CallerDep = Annotated[Caller, Depends(get_caller)]
