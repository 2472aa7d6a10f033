"""What every answer carries and every JSON body must respect, whatever the route.

Security headers: the API serves personal data to authorities' systems, never pages to be framed
or cached; only the OpenAPI pages (/docs, /redoc) may load their scripts and styles.
JSON: only `application/json` (require_json, else 415), read by the hub's one strict reader
(hub.domain.values.strict_loads, here `load_json`): each fault a clean 400 problem, never a 500 or a
stored value.
"""
from __future__ import annotations

from hub.domain.errors import UnsupportedMediaType
from hub.domain.values import BAD_CHARACTERS, INT_MAX, INT_MIN, MAX_JSON_DEPTH, bad_text, check_value, strict_loads

__all__ = ["BAD_CHARACTERS", "INT_MAX", "INT_MIN", "MAX_JSON_DEPTH", "SecurityHeaders", "bad_text", "check_value",
           "load_json", "require_json"]

load_json = strict_loads   # the API's bodies are read as every JSON value the hub takes (hub.domain.values)

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
_DOCS = [(b"content-security-policy",   # the pages' assets come from the hub itself (docs.py)
          b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
          b"img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'")]
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


def require_json(content_type: str | None) -> None:
    """Bodies are JSON only as `application/json` (in UTF-8): UnsupportedMediaType (415) otherwise."""
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != "application/json":
        raise UnsupportedMediaType(f"the body must be application/json, not {media.strip()[:60] or 'unlabelled'}")
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("JSON bodies are UTF-8")
