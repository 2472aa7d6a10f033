"""The API's HTTP server: uvicorn configured in one place (server_config), for `wib-hub serve` and
`wib-hub api` and for the demo's in-process hub.

- **HTTP/1.1 by h11, pinned** (HubH11Protocol): not httptools or zttp, whichever happens to be
  installed, so the parser and its refusals are the same everywhere. No WebSocket (the API has none).
- **Forwarded headers** (`X-Forwarded-For`, `X-Forwarded-Proto`) change the client address and
  scheme only on connections from a proxy named in HUB_TRUSTED_PROXIES; by default from nobody.
  (Nothing that decides security reads them anyway: the token audience is HUB_TOKEN_URL.)
- **Header limits**: at most HUB_MAX_HEADER_COUNT header fields of at most HUB_MAX_HEADER_BYTES
  in all (name, value, ": " and CRLF of each); the whole request head at most that plus 8 KiB for
  the request line. Beyond, `431 Request Header Fields Too Large` as an RFC 9457 problem:

      {"type": "urn:problem-type:wib-hub:headers_too_large", "status": 431,
       "title": "Request Header Fields Too Large", "detail": "<the limit>", "error": "headers_too_large"}

  Any other request h11 cannot parse gets `400` with `"error": "invalid_http"`. Either way the
  connection then closes cleanly: the answer is written, the hub stops sending, and what the client
  still sends (the rest of a 1 MB header) is read and dropped for a few seconds, so that the client
  reads the answer instead of a connection reset. A head too large to buffer is refused while h11
  reads it, a complete one over a limit as soon as h11 has parsed it: either way before the app
  sees the request. HeaderLimits is the same check as ASGI middleware, for the app on any server
  (the test client included).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from hub.infra.settings import Settings
from hub.interfaces.api import problems

__all__ = ["HeaderLimits", "HubH11Protocol", "ServerConfig", "header_fault", "problem_body", "server_config"]

MEDIA_TYPE = "application/problem+json"
REQUEST_LINE_BYTES = 8 * 1024     # allowance for the request line on top of the header fields
LINGER_SECONDS = 5.0              # after a refusal: how long what the client still sends is dropped
LINGER_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_HEADER_COUNT = 100
DEFAULT_MAX_HEADER_BYTES = 16 * 1024


def problem_body(status: int, detail: str, error: str, instance: str | None = None) -> bytes:
    """An RFC 9457 problem of the edge (no route, no HubError: the request never reached the app),
    the same shape as every other (hub/interfaces/api/problems.py)."""
    return json.dumps(problems.problem(status, error, detail, instance)).encode()


def _target_path(target: bytes | None) -> str | None:
    """The path of a request target (no query: it may carry what is not ours to echo), if it is one."""
    if not target or not target.startswith(b"/"):
        return None
    path = target.split(b"?", 1)[0][:200]
    try:
        text = path.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def header_fault(headers: Iterable[tuple[bytes, bytes]], max_count: int, max_bytes: int) -> str | None:
    """What limit the header fields break (a sentence), or None. Each field counts its name, its
    value, ': ' and CRLF."""
    count = size = 0
    for name, value in headers:
        count += 1
        size += len(name) + len(value) + 4
    if count > max_count:
        return f"{count} header fields, more than the {max_count} accepted"
    if size > max_bytes:
        return f"header fields of {size} bytes, more than the {max_bytes} accepted"
    return None


def _problem_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]


class HeaderLimits:
    """ASGI middleware: a request with more than `max_count` header fields, or more than `max_bytes`
    of them, gets the 431 problem and never reaches the app."""

    def __init__(self, app: Any, max_count: int = DEFAULT_MAX_HEADER_COUNT,
                 max_bytes: int = DEFAULT_MAX_HEADER_BYTES, on_refusal: Any = None):
        self.app, self.max_count, self.max_bytes = app, max_count, max_bytes
        self.on_refusal = on_refusal    # called with the scope and the error code (the audit trail's trace)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            fault = header_fault(scope.get("headers") or (), self.max_count, self.max_bytes)
            if fault is not None:
                if self.on_refusal is not None:
                    self.on_refusal(scope, "headers_too_large")
                body = problem_body(431, fault, "headers_too_large", scope.get("path"))
                await send({"type": "http.response.start", "status": 431, "headers": _problem_headers(body)})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class _LimitedConnection(h11.Connection):
    """h11's server connection, with the header limits checked on each request and the reason of a
    refusal kept for the answer (`refusal`: status, error code, detail, the request's path if known)."""

    def __init__(self, max_incomplete_event_size: int, max_count: int, max_bytes: int):
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.max_head, self.max_count, self.max_bytes = max_incomplete_event_size, max_count, max_bytes
        self.refusal: tuple[int, str, str, str | None] | None = None

    def _pending_path(self) -> str | None:
        """The path of the request line still in h11's buffer (a head too large is refused unparsed)."""
        try:
            line = bytes(self._receive_buffer)[:REQUEST_LINE_BYTES].split(b"\r\n", 1)[0]
        except Exception:  # noqa: BLE001 - h11's internals: without them, no instance
            return None
        parts = line.split(b" ")
        return _target_path(parts[1]) if len(parts) == 3 else None

    def next_event(self):  # type: ignore[override]
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as err:
            if err.error_status_hint == 431:
                detail = f"a request head over {self.max_head} bytes (header fields: at most {self.max_bytes} bytes)"
                self.refusal = (431, "headers_too_large", detail, self._pending_path())
            else:
                reason = str(err).split(":", 1)[0][:80]
                self.refusal = (400, "invalid_http", f"not a valid HTTP/1.1 request ({reason})", None)
            raise
        if isinstance(event, h11.Request):
            fault = header_fault(event.headers.raw_items(), self.max_count, self.max_bytes)
            if fault is not None:
                self.refusal = (431, "headers_too_large", fault, _target_path(event.target))
                raise h11.RemoteProtocolError(fault, error_status_hint=431)
        return event


class HubH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering what it refuses (a head too large, too many headers,
    anything not HTTP/1.1) with a problem instead of a plain-text 400, then closing the connection
    cleanly (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        max_bytes = getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES)
        self.conn = _LimitedConnection(config.h11_max_incomplete_event_size or max_bytes + REQUEST_LINE_BYTES,
                                       getattr(config, "max_header_count", DEFAULT_MAX_HEADER_COUNT), max_bytes)
        self._linger: asyncio.TimerHandle | None = None
        self._dropped = 0

    def send_400_response(self, msg: str) -> None:
        status, error, detail, instance = self.conn.refusal or (400, "invalid_http", "not a valid HTTP/1.1 request", None)
        self.conn.refusal = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True               # the app's request is over: it answers nothing more
            if cycle.response_started:
                self.transport.close()
                return
        body = problem_body(status, detail, error, instance)
        headers = [*_problem_headers(body), (b"connection", b"close")]
        try:
            output = self.conn.send(h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status]))
            output += self.conn.send(h11.Data(data=body))
            output += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:              # h11 cannot answer in this state: just close
            self.transport.close()
            return
        self.transport.write(output)
        self._close_after_answer()

    def _close_after_answer(self) -> None:
        """Lingering close: stop sending, read and drop what the client still sends until it closes
        (or LINGER_SECONDS, or LINGER_MAX_BYTES), so that closing resets nothing it has not read."""
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            self._dropped += len(data)
            if self._dropped > LINGER_MAX_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._linger is not None:
            self.transport.close()
            return
        super().shutdown()


class ServerConfig(uvicorn.Config):
    """uvicorn's Config with the header limits HubH11Protocol reads."""

    def __init__(self, app: Any, *, max_header_count: int, max_header_bytes: int, **kwargs: Any):
        super().__init__(app, **kwargs)
        self.max_header_count, self.max_header_bytes = max_header_count, max_header_bytes


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The one uvicorn configuration of the API (see the module docstring)."""
    trusted = list(settings.trusted_proxies)
    return ServerConfig(
        app, host=host, port=port, log_level="warning",
        http=HubH11Protocol, ws="none",
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted,
        h11_max_incomplete_event_size=settings.max_header_bytes + REQUEST_LINE_BYTES,
        max_header_count=settings.max_header_count, max_header_bytes=settings.max_header_bytes)
