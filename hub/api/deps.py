"""What every protected route needs: the hub, the authenticated caller, a JSON body."""
from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth import Caller
from hub.bootstrap import Hub
from hub.errors import MalformedMessage, NotAuthenticated

bearer = HTTPBearer(auto_error=False, description="access token from POST /oauth/token")


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def get_caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """No anonymous access: every route but health needs a valid token."""
    if credentials is None:
        raise NotAuthenticated("a bearer token is required", code="missing_token")
    caller = get_hub(request).tokens.verify(credentials.credentials)
    request.state.caller = caller
    return caller


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f"body is not JSON: {err}") from err


HubDep = Annotated[Hub, Depends(get_hub)]
CallerDep = Annotated[Caller, Depends(get_caller)]
