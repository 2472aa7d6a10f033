"""Health (the only anonymous routes) and the token endpoint."""
from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.api.deps import HubDep
from hub.errors import MalformedMessage

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(hub: HubDep) -> JSONResponse:
    checks = hub.ready()
    return JSONResponse({"ready": all(checks.values()), "checks": checks},
                        status_code=200 if all(checks.values()) else 503)


@router.post("/oauth/token", summary="OAuth2 client credentials: a short-lived access token for a party")
async def token(request: Request, hub: HubDep) -> dict:
    """Form fields grant_type=client_credentials, client_id, client_secret; optional acting_person
    (the user within the party who acts, carried in the token as act.sub)."""
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials":
        raise MalformedMessage("grant_type must be client_credentials", code="unsupported_grant_type")
    if not form.get("client_id") or not form.get("client_secret"):
        raise MalformedMessage("client_id and client_secret are required", code="invalid_request")
    return hub.tokens.issue(form["client_id"], form["client_secret"], form.get("acting_person"))
