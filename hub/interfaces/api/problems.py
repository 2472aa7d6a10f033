"""Every refusal the API answers, as an RFC 9457 problem (`application/problem+json`).

The Belgian government's REST guidelines ask for problem details, with their standard problem
types where one fits (`urn:problem-type:belgif:…`) and the API's own otherwise; the hub's own are
`urn:problem-type:wib-hub:<error>`. Whatever the type, the body keeps the hub's machine-readable
`error` code as a member, so that clients written against the earlier `{"error", "detail"}` bodies
keep working:

    {"type": "urn:problem-type:wib-hub:contract_violation", "title": "Unprocessable Entity",
     "status": 422, "detail": "1 problem in the request; first: /worker/insz: 'x' does not match …",
     "instance": "/v1/applications", "error": "contract_violation",
     "issues": [{"in": "body", "name": "/worker/insz", "detail": "…", "rule": "pattern"}]}

`detail` is always a sentence; a list of faults goes to `issues` (the guidelines' name), a fault's
own fields (e.g. `from`/`to` of a refused transition) become members beside the standard ones.
`problem_responses` declares the problems an operation can answer in the OpenAPI document.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.domain.errors import HubError
from hub.domain.problems import (  # noqa: F401 - the mapping, re-exported for the API
    HUB_TYPE, MEDIA_TYPE, STANDARD_TYPES, for_error, problem, problem_type, title_of,
)

class Issue(BaseModel):
    """One fault of the request: where (`in`, `name`: a JSON pointer into the body, or the
    parameter's name) and what."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    in_: Literal["body", "query", "path", "header"] | None = Field(None, alias="in")
    name: str | None = None
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the hub's `error` code."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="urn:problem-type:belgif:… (standard) or urn:problem-type:wib-hub:<error>")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str | None = Field(None, description="what went wrong with this request, in one sentence")
    instance: str | None = Field(None, description="the request's path")
    error: str = Field(description="the hub's machine-readable code, e.g. contract_violation")
    issues: list[Issue] | None = Field(None, description="each fault of the request, when there are several")


# ── OpenAPI ──────────────────────────────────────────────────────────────────────────────────

_WHAT = {
    400: "the request is not valid (problem `issues` name each fault)",
    401: "no valid access token",
    403: "the caller may not do this",
    404: "not found, or not visible to the caller",
    409: "the request conflicts with the resource's state",
    413: "the body is larger than the hub accepts",
    415: "the body is not application/json",
    422: "the document does not follow its contract",
    429: "rate limit reached; see Retry-After",
    431: "too many or too large request headers",
    503: "not available now (the store is away, or the process is not ready): try again after Retry-After seconds",
}


def problem_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status answered as a Problem. `described` overrides the
    default description of a status given as `s409="…"`."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"description": described.get(f"s{status}", _WHAT.get(status, title_of(status))),
                       "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return out


def declared(statuses: Iterable[int]) -> dict[str, dict[str, Any]]:
    """The same, keyed as the OpenAPI document keys responses (strings)."""
    return {str(k): v for k, v in problem_responses(*statuses).items()}


# ── answering ────────────────────────────────────────────────────────────────────────────────

def headers_for(err: HubError) -> dict[str, str]:
    """Retry-After for a rate limit; WWW-Authenticate for a 401 (Bearer, unless the error names
    its own scheme, as the token endpoint's HTTP Basic does)."""
    headers: dict[str, str] = {}
    if err.status == 401:
        headers["WWW-Authenticate"] = getattr(err, "www_authenticate", None) or "Bearer"
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def encoded(err: HubError, instance: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers of a problem answer, for ASGI middleware that answers before a route."""
    body = json.dumps(for_error(err, instance), ensure_ascii=False).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in headers_for(err).items()]
    return body, headers


async def send(send_, err: HubError, instance: str | None) -> None:
    body, headers = encoded(err, instance)
    await send_({"type": "http.response.start", "status": err.status, "headers": headers})
    await send_({"type": "http.response.body", "body": body})
