"""The HTTP edge on a real uvicorn server, configured as `wib-hub serve` configures it
(hub.interfaces.api.server.server_config): header limits answered with a 431 problem and a clean
close (not a plain-text 400 and a reset), forwarded headers believed only from trusted proxies,
and a token audience no request header can change."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from hub.infra.auth import ASSERTION_TYPE
from hub.infra.settings import Settings
from hub.interfaces.api.server import server_config
from tests.support import hub_settings, sqlite_store
from tests.support.authentication import assertion, write_clients

TOKEN_URL = "https://hub.example.org/oauth/token"


async def echo(scope, receive, send):
    """Who the server says is calling, and how."""
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(app, settings: Settings) -> Iterator[tuple[str, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(server_config(app, settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def edge():
    with serving(echo, Settings()) as address:
        yield address


def _exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send all of `request` and read the answer to the end: a reset on either side fails the test."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _assert_431(status: int, headers, body: bytes) -> dict:
    assert status == 431, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "instance", "error"}
    assert problem["type"] == "urn:problem-type:wib-hub:headers_too_large" and problem["title"] == "Request Header Fields Too Large"
    assert problem["status"] == 431 and problem["error"] == "headers_too_large" and problem["detail"]
    return problem


# ── header limits ───────────────────────────────────────────────────────────────────────────

def test_a_1mb_header_gets_the_431_problem_and_a_clean_close(edge):
    raw = _exchange(edge, b"GET / HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
    status, headers, body = _parse(raw)
    problem = _assert_431(status, headers, body)
    assert "request head over" in problem["detail"]
    assert headers["connection"] == "close" and int(headers["content-length"]) == len(body)


def test_a_1mb_header_from_an_http_client(edge):
    host, port = edge
    for _ in range(3):   # every time, not by luck of timing
        r = httpx.get(f"http://{host}:{port}/", headers={"X-Big": "a" * 1_000_000}, timeout=10)
        _assert_431(r.status_code, r.headers, r.content)


def test_500_headers_get_the_431_problem(edge):
    host, port = edge
    r = httpx.get(f"http://{host}:{port}/", headers={f"x-h{i}": "v" for i in range(500)}, timeout=10)
    problem = _assert_431(r.status_code, r.headers, r.content)
    assert "more than the 100 accepted" in problem["detail"]


def test_headers_over_the_byte_limit_in_one_piece_get_the_431_problem(edge):
    host, port = edge
    r = httpx.get(f"http://{host}:{port}/", headers={"X-Big": "a" * 17_000}, timeout=10)
    problem = _assert_431(r.status_code, r.headers, r.content)
    assert "more than the 16384 accepted" in problem["detail"]


def test_headers_within_the_limits_pass(edge):
    host, port = edge
    r = httpx.get(f"http://{host}:{port}/", headers={**{f"x-h{i}": "v" for i in range(90)}, "x-big": "a" * 8000})
    assert r.status_code == 200


def test_the_limits_come_from_the_settings():
    with serving(echo, Settings(max_header_count=10, max_header_bytes=2048)) as (host, port):
        url = f"http://{host}:{port}/"
        assert httpx.get(url, headers={f"x-h{i}": "v" for i in range(5)}).status_code == 200
        assert httpx.get(url, headers={f"x-h{i}": "v" for i in range(20)}).status_code == 431
        assert httpx.get(url, headers={"x-big": "a" * 3000}).status_code == 431


def test_what_is_not_http_gets_a_400_problem(edge):
    status, headers, body = _parse(_exchange(edge, b"NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400 and headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "urn:problem-type:wib-hub:invalid_http" and problem["title"] == "Bad Request"
    assert problem["status"] == 400 and problem["error"] == "invalid_http"


def test_the_server_still_answers_after_refusals(edge):
    _exchange(edge, b"GET / HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    host, port = edge
    assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200


# ── forwarded headers ───────────────────────────────────────────────────────────────────────

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(edge):
    host, port = edge   # loopback, which uvicorn would trust by default
    seen = httpx.get(f"http://{host}:{port}/", headers=FORWARDED).json()
    assert seen == {"client": "127.0.0.1", "scheme": "http"}


def test_forwarded_headers_from_a_proxy_not_named_are_ignored():
    with serving(echo, Settings(trusted_proxies="10.0.0.5")) as (host, port):
        assert httpx.get(f"http://{host}:{port}/", headers=FORWARDED).json() == {"client": "127.0.0.1",
                                                                                 "scheme": "http"}


@pytest.mark.parametrize("trusted", ["127.0.0.1", "127.0.0.9/8"])   # an address, a network
def test_forwarded_headers_from_a_trusted_proxy_are_believed(trusted):
    with serving(echo, Settings(trusted_proxies=trusted)) as (host, port):
        assert httpx.get(f"http://{host}:{port}/", headers=FORWARDED).json() == {"client": "203.0.113.9",
                                                                                 "scheme": "https"}


# ── the token audience on the real server ───────────────────────────────────────────────────

@pytest.fixture
def api(tmp_path):
    """The hub's API on a real server behind a 'proxy' that passes the client's forwarded headers
    on (loopback trusted): the worst case for the audience."""
    from hub.bootstrap import build_hub
    from hub.interfaces.api.app import create_app
    settings = hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{uuid.uuid4().hex}",
                            clients_file=write_clients(tmp_path / "clients.json"), token_url=TOKEN_URL,
                            trusted_proxies="127.0.0.1")
    hub = build_hub(settings)
    try:
        with serving(create_app(hub), settings) as (host, port):
            yield f"http://{host}:{port}"
    finally:
        hub.close()


def _token(url: str, aud: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/oauth/token", headers=headers, timeout=10, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion("portal", aud=aud)})


def test_host_and_forwarded_proto_do_not_make_the_audience(api):
    attacker = "https://attacker.example/oauth/token"
    spoof = {"Host": "attacker.example", "X-Forwarded-Proto": "https"}
    r = _token(api, attacker, spoof)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    assert _token(api, f"{api}/oauth/token").status_code == 401          # nor the URL the request came to
    r = _token(api, TOKEN_URL, spoof)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
