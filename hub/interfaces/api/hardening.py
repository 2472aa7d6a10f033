"""What every answer carries and every JSON body must respect, whatever the route.

Security headers: the API serves personal data to authorities' systems, never pages to be framed
or cached; only the OpenAPI pages (/docs, /redoc) may load their scripts and styles.
JSON: nesting is bounded (deeply nested input is a classic way to exhaust a parser), and a body
too deep for the parser itself is a clean 400, not a 500.
"""
from __future__ import annotations

import json
from typing import Any

from hub.domain.errors import MalformedMessage

MAX_JSON_DEPTH = 64

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]
_API = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
        (b"cache-control", b"no-store")]
_DOCS = [(b"content-security-policy",
          b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
          b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
          b"frame-ancestors 'none'")]
_DOC_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = _COMMON + (_DOCS if scope["path"].startswith(_DOC_PATHS) else _API)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k, v) for k, v in extra if k not in names)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def load_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body; MalformedMessage when it is not JSON or nests deeper than max_depth."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise MalformedMessage(f"JSON nests deeper than {max_depth} levels", code="json_too_deep") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f"body is not JSON: {err}") from err
    if _depth(value) > max_depth:
        raise MalformedMessage(f"JSON nests deeper than {max_depth} levels", code="json_too_deep")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a recursive walk would itself be the weakness)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return deepest
