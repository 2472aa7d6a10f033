"""Health (the only anonymous routes) and the token endpoint."""
from __future__ import annotations

import math
from urllib.parse import parse_qsl

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic
from pydantic import BaseModel, Field

from hub.interfaces.api import problems
from hub.interfaces.api.deps import HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.domain.errors import MalformedMessage, NotAuthenticated, RateLimited
from hub.infra.auth import ASSERTION_TYPE, BASIC_CHALLENGE, CONTROL_CHARACTERS, client_basic

router = APIRouter(tags=["system"], route_class=StrictRoute)

FORM = "application/x-www-form-urlencoded"
MAX_TOKEN_FIELDS = 16       # the form has six parameters; a flood of them is not a token request


class TokenRequest(BaseModel):
    """The token request (RFC 6749 §4.4, RFC 7523 §2.2), as an `application/x-www-form-urlencoded`
    form: the client authenticates with an assertion (production), with client_id and client_secret
    here, or with client_secret by HTTP Basic instead (then no secret or assertion in the form).
    Other parameters are ignored (RFC 6749 §3.2), but none may be repeated."""

    grant_type: str = Field(description="client_credentials", examples=["client_credentials"])
    client_id: str | None = Field(None, description="the party id (with HTTP Basic: the same or left out)",
                                  examples=["dvz"])
    client_secret: str | None = Field(None, description="the party's client secret (unless HUB_ALLOW_CLIENT_SECRETS=false)")
    client_assertion_type: str | None = Field(None, description=ASSERTION_TYPE, examples=[ASSERTION_TYPE])
    client_assertion: str | None = Field(None, description="private_key_jwt (RFC 7523): a JWT signed by the party's "
                                                           "registered key; iss = sub = the party id, aud = the "
                                                           "token URL (HUB_TOKEN_URL), exp at most 5 minutes "
                                                           "ahead, a jti used once")
    acting_person: str | None = Field(None, pattern=r"^[A-Za-z0-9._:@-]{1,128}$",
                                      description="the user within the party who acts; carried in the token as act.sub")


class TokenResponse(BaseModel):
    """A short-lived access token (RFC 6749 §5.1)."""

    access_token: str = Field(description="a JWT to send as `Authorization: Bearer …`")
    token_type: str = Field(description="Bearer", examples=["Bearer"])
    expires_in: int = Field(description="seconds the token lives (HUB_TOKEN_TTL_SECONDS)")
    scope: str = Field(description="the party's roles, space-separated")


class _ClientBasic(HTTPBasic):
    """HTTP Basic client authentication as OpenAPI declares it. The route reads the header itself,
    strictly (hub.infra.auth.client_basic), so that every refusal is a HubError, hence audited."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


client_basic_scheme = _ClientBasic(
    scheme_name="clientBasic", realm="wib-hub", auto_error=False,
    description="RFC 6749 §2.3.1: base64(urlencode(client_id) \":\" urlencode(client_secret)); "
                "instead of client_id/client_secret in the form")

_TOKEN_REQUEST_BODY = {
    "required": True,
    "content": {FORM: {"schema": TokenRequest.model_json_schema(ref_template="#/components/schemas/{model}")}},
}


class Health(BaseModel):
    status: str = Field(examples=["ok"])


@router.get("/livez", operation_id="livez", response_model=Health, responses=problem_responses(503),
            summary="Liveness: the process answers, and its vital worker threads run")
@router.get("/healthz", operation_id="healthz", response_model=Health, responses=problem_responses(503),
            summary="Liveness (the earlier name of /livez)")
def livez(request: Request, hub: HubDep) -> JSONResponse:
    """503 when this process runs workers and a vital one (relay, router, enricher) was given up
    or is stuck: restart the process. A process with no workers (`wib-hub api`) is live while it
    answers."""
    live, wrong = hub.runtime.live() if hub.runtime.started else (True, [])
    if live:
        return JSONResponse({"status": "ok"})
    body = {**problems.problem(503, "not_live", f"not live: {', '.join(wrong) or 'a vital worker thread failed'}",
                               request.url.path), "threads": hub.runtime.health()}
    return JSONResponse(body, status_code=503, media_type=problems.MEDIA_TYPE)


class WorkerProcess(BaseModel):
    """A hub process running workers, from its last heartbeat in the store."""

    process: str = Field(description="host:pid:instance")
    role: str = Field(examples=["worker"])
    beat_age_s: float = Field(description="seconds since its last heartbeat")
    threads: dict[str, dict] = Field(description="each worker thread: alive, vital, restarts, beat_age_s, last_error")


class Readiness(BaseModel):
    """This API process can accept (not ready: a 503 problem carrying the same members). Ready
    needs the store; the broker is reported, not needed (accepted messages wait in the outbox);
    a process that runs workers also needs them alive."""

    ready: bool
    checks: dict[str, bool] = Field(description="store, broker: reachable; workers: this process's "
                                                "vital worker threads run (when it runs any)")
    workers: list[WorkerProcess] = Field(default_factory=list,
                                         description="the hub processes whose workers beat within the last "
                                                     "three heartbeats (HUB_HEARTBEAT_SECONDS)")


@router.get("/readyz", operation_id="readyz",
            response_model=Readiness, summary="Readiness: the store answers (and this process's workers run)",
            responses=problem_responses(503))
def readyz(hub: HubDep) -> JSONResponse:
    checks = hub.ready()
    workers = hub.workers() if checks["store"] else []
    ready = checks["store"] and checks.get("workers", True)
    if ready:
        return JSONResponse({"ready": True, "checks": checks, "workers": workers})
    down = ", ".join(name for name, ok in checks.items() if not ok and name != "broker")
    body = {**problems.problem(503, "not_ready", f"not ready: {down} not available", "/readyz"),
            "ready": False, "checks": checks, "workers": workers}
    return JSONResponse(body, status_code=503, media_type=problems.MEDIA_TYPE)


@router.post("/oauth/token", operation_id="requestToken",
             summary="OAuth2 client credentials: a short-lived access token for a party",
             response_model=TokenResponse, dependencies=[Depends(client_basic_scheme)],
             openapi_extra={"requestBody": _TOKEN_REQUEST_BODY, "security": [{}]})
async def token(request: Request, hub: HubDep) -> dict:
    """Secure exchange starts with an authenticated party (Art. 2 §1 3°, Art. 8 §2; GDPR art. 32).

    The body is a form (`application/x-www-form-urlencoded`, UTF-8; each parameter once, no control
    characters): grant_type=client_credentials and either (production) client_assertion_type=
    urn:ietf:params:oauth:client-assertion-type:jwt-bearer + client_assertion (private_key_jwt,
    RFC 7523; aud = HUB_TOKEN_URL, this endpoint's public URL as configured — never the URL the
    request names) or a client secret (unless HUB_ALLOW_CLIENT_SECRETS=false): client_id +
    client_secret in the form, or by HTTP Basic (RFC 6749 §2.3.1), one method per request.
    Optional acting_person: the user within the party who acts, carried in the token as act.sub
    (Art. 16). Every refusal is a HubError, hence audited; a 401 carries
    `WWW-Authenticate: Basic realm="wib-hub"` (the error's `www_authenticate`).
    """
    try:
        try:
            form = token_form(request.headers.get("content-type"), await request.body())
            basic = client_basic(_one_header(request, "authorization"))
        except (MalformedMessage, NotAuthenticated):
            _limit_token_requests(request, None)   # counted against the peer, refused all the same
            raise
        _limit_token_requests(request, basic[0] if basic else form.get("client_id")
                              or _unverified_issuer(form.get("client_assertion")))
        if form.get("grant_type") != "client_credentials":
            raise MalformedMessage("grant_type must be client_credentials", code="unsupported_grant_type")
        settings = hub.settings
        party = hub.tokens.authenticate(form, audiences=[settings.token_url] if settings.token_url else [],
                                        allow_client_secrets=settings.allow_client_secrets, basic=basic)
        return hub.tokens.issue_for(party, form.get("acting_person") or None)
    except NotAuthenticated as err:
        err.www_authenticate = BASIC_CHALLENGE  # type: ignore[attr-defined]
        raise


def token_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The token request's parameters, read strictly: a form only (RFC 6749 §4.4.2), UTF-8, each
    parameter at most once (§3.2), no control characters; anything else is invalid_request."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media != FORM:
        looks_json = media == "application/json" or media.endswith("+json") or body.lstrip()[:1] in (b"{", b"[")
        what = "not JSON" if looks_json else (f"not {media[:60]}" if media else "with that Content-Type")
        raise MalformedMessage(f"the token request is a form ({FORM}), {what}", code="invalid_request")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise MalformedMessage("the token request is a form in UTF-8", code="invalid_request")
    if body.lstrip()[:1] in (b"{", b"["):
        raise MalformedMessage(f"the token request is a form ({FORM}), not JSON", code="invalid_request")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict", max_num_fields=MAX_TOKEN_FIELDS)
    except UnicodeDecodeError:
        raise MalformedMessage("the token request is not UTF-8", code="invalid_request") from None
    except ValueError as err:
        bound = f" (at most {MAX_TOKEN_FIELDS})" if "Max number" in str(err) else ""
        raise MalformedMessage(f"the token request is not a form of name=value pairs{bound}",
                               code="invalid_request") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value):
            raise MalformedMessage(f"a control character in parameter {_shown(name)}", code="invalid_request")
        if name in form:
            raise MalformedMessage(f"parameter {_shown(name)} is repeated (RFC 6749 §3.2)", code="invalid_request")
        form[name] = value
    return form


def _shown(name: str) -> str:
    return repr(CONTROL_CHARACTERS.sub("?", name)[:40])


def _one_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise MalformedMessage(f"{name} header is repeated", code="invalid_request")
    return values[0] if values else None


def _limit_token_requests(request: Request, claimed: str | None) -> None:
    """Guessing a client's secret or flooding the endpoint: a bucket per claimed client id (HTTP
    Basic's, the form's, or the assertion's unverified `iss`; else the peer address), refused
    with 429 and Retry-After before any check of the credentials."""
    limiter = getattr(request.app.state, "token_limiter", None)
    if limiter is None:
        return
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
