"""What every protected route needs: the hub, the authenticated caller, a JSON body."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.interfaces.api.hardening import load_json
from hub.infra.auth import Caller
from hub.bootstrap import Hub
from hub.domain.errors import NotAuthenticated

bearer = HTTPBearer(auto_error=False, description="access token from POST /oauth/token")


def get_hub(request: Request) -> Hub:
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


def get_caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """No anonymous access: every route but health needs a valid token (or, if on, mTLS identity)."""
    caller = resolve_caller(request, credentials)
    request.state.caller = caller
    return caller


async def json_body(request: Request) -> Any:
    return load_json(await request.body())


HubDep = Annotated[Hub, Depends(get_hub)]
CallerDep = Annotated[Caller, Depends(get_caller)]
