"""The body of a refusal, wherever the hub answers it: an RFC 9457 problem with the hub's `error`
code. The HTTP API answers it as `application/problem+json` (hub.interfaces.api.problems, where the
conventions are described); the AMQP ingress (hub.messaging.queue_ingress) puts the same body on the
party's reply queue. One mapping from a HubError to a problem, here, for both.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from hub.domain.errors import HubError

__all__ = ["HUB_TYPE", "MEDIA_TYPE", "STANDARD_TYPES", "for_error", "problem", "problem_type", "title_of",
           "validation_issue"]

MEDIA_TYPE = "application/problem+json"
HUB_TYPE = "urn:problem-type:wib-hub:"

# The guidelines' standard types, by the hub's error code (a code not here gets the hub's own type).
_BELGIF = "urn:problem-type:belgif:"
STANDARD_TYPES = {
    "invalid_request": _BELGIF + "badRequest",
    "malformed_message": _BELGIF + "badRequest",
    "missing_token": _BELGIF + "noAccessToken",
    "not_authenticated": _BELGIF + "noAccessToken",
    "invalid_token": _BELGIF + "invalidAccessToken",
    "token_expired": _BELGIF + "expiredAccessToken",
    "not_found": _BELGIF + "resourceNotFound",
    "route_not_found": _BELGIF + "resourceNotFound",
    "payload_too_large": _BELGIF + "payloadTooLarge",
    "rate_limited": _BELGIF + "tooManyRequests",
    "internal_error": _BELGIF + "internalServerError",
}
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "error", "issues"})


def problem_type(code: str) -> str:
    return STANDARD_TYPES.get(code, HUB_TYPE + code)


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, code: str, detail: Any = None, instance: str | None = None) -> dict[str, Any]:
    """The body for a refusal: status, the hub's code, and its detail (a sentence, a list of
    faults or a mapping of the fault's own fields)."""
    body: dict[str, Any] = {"type": problem_type(code), "title": title_of(status), "status": status}
    if isinstance(detail, str):
        body["detail"] = detail
    elif isinstance(detail, list):
        issues = [_issue(item) for item in detail]
        body["detail"] = _summary(issues)
        body["issues"] = issues
    elif isinstance(detail, dict):
        body["detail"] = "; ".join(f"{k}: {v}" for k, v in detail.items()) or title_of(status)
        body.update({k: v for k, v in detail.items() if k not in _RESERVED})
    else:
        body["detail"] = title_of(status)
    if instance:
        body["instance"] = instance
    body["error"] = code
    return body


def for_error(err: HubError, instance: str | None = None) -> dict[str, Any]:
    return problem(err.status, err.code, err.detail, instance)


def _issue(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {"detail": str(item)}
    issue = {k: v for k, v in item.items() if k not in ("path", "message", "loc", "msg")}
    where = item.get("in", "body")
    name = item.get("name", item.get("path"))
    return {"in": where, **({"name": name} if name is not None else {}),
            "detail": str(item.get("detail") or item.get("message") or item.get("msg") or "not valid"), **issue}


def _summary(issues: list[dict[str, Any]]) -> str:
    if not issues:
        return "the request is not valid"
    first = issues[0]
    where = f"{first['name']}: " if first.get("name") else ""
    return f"{len(issues)} problem{'s' if len(issues) > 1 else ''} in the request; first: {where}{first['detail']}"


def validation_issue(error: dict) -> dict:
    """One fault pydantic found (an item of `ValidationError.errors()`, its `loc` starting with where:
    body, query, path or header) as an issue of a problem."""
    where, *rest = error.get("loc", ()) or ("body",)
    if where == "body":
        name = "/" + "/".join(str(p) for p in rest)
    else:
        name = ".".join(str(p) for p in rest) or None
    return {"in": where if where in ("body", "query", "path", "header") else "body", "name": name,
            "detail": error.get("msg", "not valid")}
