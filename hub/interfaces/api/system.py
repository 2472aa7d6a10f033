"""Health (the only anonymous routes) and the token endpoint."""
from __future__ import annotations

import math
from urllib.parse import parse_qs

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.interfaces.api.deps import HubDep
from hub.domain.errors import MalformedMessage, RateLimited

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
    """Secure exchange starts with an authenticated party (Art. 2 §1 3°, Art. 8 §2; GDPR art. 32).

    Form fields grant_type=client_credentials and either (production) client_assertion_type=
    urn:ietf:params:oauth:client-assertion-type:jwt-bearer + client_assertion (private_key_jwt,
    RFC 7523; aud = this endpoint's public URL, HUB_TOKEN_URL) or client_id + client_secret (unless
    HUB_ALLOW_CLIENT_SECRETS=false); optional acting_person: the user within the party who acts,
    carried in the token as act.sub (Art. 16). Every refusal is a HubError, hence audited.
    """
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials":
        raise MalformedMessage("grant_type must be client_credentials", code="unsupported_grant_type")
    _limit_token_requests(request, form)
    settings = hub.settings
    audiences = [settings.token_url] if settings.token_url else [str(request.url.replace(query=None))]
    party = hub.tokens.authenticate(form, audiences=audiences,
                                    allow_client_secrets=settings.allow_client_secrets)
    return hub.tokens.issue_for(party, form.get("acting_person") or None)


def _limit_token_requests(request: Request, form: dict[str, str]) -> None:
    """Guessing a client's secret or flooding the endpoint: a bucket per claimed client id (the
    assertion's unverified `iss` when no client_id is given, else the peer address), refused with
    429 and Retry-After before any check of the credentials."""
    limiter = getattr(request.app.state, "token_limiter", None)
    if limiter is None:
        return
    claimed = form.get("client_id") or _unverified_issuer(form.get("client_assertion"))
    key = claimed[:64] if claimed else f"peer:{request.client.host if request.client else '-'}"
    wait = limiter.take(f"token:{key}")
    if wait > 0:
        raise RateLimited(f"too many token requests for this client: at most {limiter.burst} a minute",
                          retry_after=max(1, math.ceil(wait)))


def _unverified_issuer(assertion: str | None) -> str | None:
    if not assertion:
        return None
    try:
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None
