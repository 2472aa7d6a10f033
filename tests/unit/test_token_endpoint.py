"""The token endpoint's edge (RFC 6749 §2.3.1, §3.2, §4.4; RFC 7523): the assertion's audience is
the configured token URL whatever the request says; client secrets by HTTP Basic; the request a
strict form. Each refusal a clear 4xx with the hub's code and one `rejected` audit event. And the
start-up refusal when parties have keys and no token URL is set; the header limits as middleware.
(The same edge on a real uvicorn server: tests/integration/test_token_edge.py.)"""
from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.infra.auth import ASSERTION_TYPE, BASIC_CHALLENGE
from hub.infra.settings import ConfigurationError, Settings
from hub.infra.store.schema import audit_events
from hub.interfaces.api.server import HeaderLimits, HubH11Protocol, server_config
from tests.support import hub_settings, sqlite_store, start_hub
from tests.support.authentication import TOKEN_URL, assertion, write_clients

SPECIAL_SECRET = "p@ss:w+rd/ é%20&=?;\"'"   # every character form-urlencoding changes
ATTACKER_URL = "https://attacker.example/oauth/token"


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def _clients(tmp_path):
    path = write_clients(tmp_path / "clients.json")
    entries = json.loads(path.read_text())
    entries["region.wallonia"]["secret"] = SPECIAL_SECRET
    path.write_text(json.dumps(entries))
    return path


def _hub(tmp_path, **settings):
    settings.setdefault("token_url", TOKEN_URL)
    yield from start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{tmp_path.name}",
                         clients_file=_clients(tmp_path), **settings)


@pytest.fixture
def h(tmp_path):
    yield from _hub(tmp_path)


def _events(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(audit_events)).scalar_one()


def _refused(h, response, status: int, code: str, before: int, detail: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    if detail is not None:
        assert detail in body["detail"], body
    assert _events(h.hub) == before + 1, "one rejected audit event"
    return body


GRANT = {"grant_type": "client_credentials"}


# ── the audience is the configured token URL, never the request's ───────────────────────────

def test_spoofed_host_and_forwarded_proto_do_not_change_the_audience(h):
    spoof = {"Host": "attacker.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example"}
    form = {**GRANT, "client_assertion_type": ASSERTION_TYPE}
    before = _events(h.hub)
    r = h.http.post("/oauth/token", data={**form, "client_assertion": assertion("portal", aud=ATTACKER_URL)},
                    headers=spoof)
    _refused(h, r, 401, "invalid_client", before)
    assert r.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    r = h.http.post("/oauth/token", data={**form, "client_assertion": assertion("portal", aud=TOKEN_URL)},
                    headers=spoof)
    assert r.status_code == 200, r.text


def test_the_request_url_is_not_an_audience(tmp_path):
    """TestClient's request URL is TOKEN_URL: with another token URL configured it no longer passes."""
    for h in _hub(tmp_path, token_url="https://hub.example.org/oauth/token"):
        form = {**GRANT, "client_assertion_type": ASSERTION_TYPE}
        before = _events(h.hub)
        r = h.http.post("/oauth/token", data={**form, "client_assertion": assertion("dvz", aud=TOKEN_URL)})
        _refused(h, r, 401, "invalid_client", before)
        ok = assertion("dvz", aud="https://hub.example.org/oauth/token")
        assert h.http.post("/oauth/token", data={**form, "client_assertion": ok}).status_code == 200


def test_with_client_secrets_only_no_token_url_is_needed_and_assertions_are_refused(local_hub):
    h = local_hub
    assert h.hub.settings.token_url is None
    assert h.token("dvz")
    before = _events(h.hub)
    r = h.http.post("/oauth/token", data={**GRANT, "client_assertion_type": ASSERTION_TYPE,
                                          "client_assertion": assertion("portal")})
    _refused(h, r, 401, "invalid_client", before, "no public key registered")


# ── start-up: keys without a token URL ──────────────────────────────────────────────────────

def test_parties_with_keys_and_no_token_url_stop_start_up(tmp_path):
    from hub.bootstrap import build_hub
    clients = write_clients(tmp_path / "clients.json")
    settings = hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}", f"memory://{tmp_path.name}",
                            clients_file=clients)
    with pytest.raises(ConfigurationError) as err:
        build_hub(settings)
    assert err.value.field == "HUB_TOKEN_URL" and err.value.file == str(clients)
    assert "dvz, portal, region.flanders" in err.value.message
    assert not (tmp_path / "hub.db").exists(), "refused before the store is opened"


@pytest.mark.parametrize("url", ["/oauth/token", "ftp://hub.example.org/token", "https://hub.example.org/t?x=1"])
def test_a_token_url_that_is_not_an_absolute_url_stops_start_up(tmp_path, url):
    from hub.bootstrap import check_token_url
    with pytest.raises(ConfigurationError, match="HUB_TOKEN_URL"):
        check_token_url(Settings(token_url=url), {}, tmp_path / "clients.json")


@pytest.mark.parametrize("command", ["api", "serve", "worker"])
def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path, monkeypatch, command):
    from hub.interfaces.cli.main import app
    monkeypatch.delenv("HUB_TOKEN_URL", raising=False)
    clients = write_clients(tmp_path / "clients.json")
    result = CliRunner().invoke(app, [command], env={
        "HUB_DATA_DIR": str(tmp_path / "data"), "HUB_CLIENTS_FILE": str(clients), "COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert "HUB_TOKEN_URL" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_setting_that_is_not_valid_is_one_line_and_exit_2(monkeypatch, capsys):
    import sys

    from hub.interfaces.cli.main import main
    monkeypatch.setenv("HUB_TRUSTED_PROXIES", "10.0.0.1,proxy.internal")
    monkeypatch.setattr(sys, "argv", ["wib-hub", "api"])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr().out
    assert done.value.code == 2
    assert out.strip().count("\n") == 0 and "HUB_TRUSTED_PROXIES" in out and "proxy.internal" in out, out


def test_trusted_proxies_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("HUB_TRUSTED_PROXIES", " 10.0.0.5, 10.1.0.0/16 ,::1")
    assert Settings().trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "::1"]
    monkeypatch.delenv("HUB_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []


# ── HTTP Basic ──────────────────────────────────────────────────────────────────────────────

def test_http_basic_issues_a_token_even_for_a_secret_with_special_characters(h):
    r = h.http.post("/oauth/token", data=GRANT, headers=basic("region.wallonia", SPECIAL_SECRET))
    assert r.status_code == 200, r.text
    token = r.json()
    assert set(token) == {"access_token", "token_type", "expires_in", "scope"} and token["token_type"] == "Bearer"
    assert h.http.get("/v1/inbox", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200
    r = h.http.post("/oauth/token", data={**GRANT, "client_id": "dvz"}, headers=basic("dvz", h.secrets["dvz"]["secret"]))
    assert r.status_code == 200, r.text   # the same client_id in the form is no second method


def test_the_same_secret_in_the_form_still_works(h):
    r = h.http.post("/oauth/token", data={**GRANT, "client_id": "region.wallonia", "client_secret": SPECIAL_SECRET})
    assert r.status_code == 200, r.text


def test_a_wrong_secret_by_basic_is_401_with_the_basic_challenge(h):
    before = _events(h.hub)
    r = h.http.post("/oauth/token", data=GRANT, headers=basic("dvz", "guess"))
    _refused(h, r, 401, "invalid_client", before)
    assert r.headers["WWW-Authenticate"] == BASIC_CHALLENGE


@pytest.mark.parametrize("extra", [
    {"client_secret": "x"},
    {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x.y.z"},
    {"client_id": "portal"},                                      # another client than the header's
], ids=["secret_in_form", "assertion_in_form", "other_client_id"])
def test_basic_with_a_second_method_is_invalid_request(h, extra):
    before = _events(h.hub)
    r = h.http.post("/oauth/token", data={**GRANT, **extra}, headers=basic("dvz", h.secrets["dvz"]["secret"]))
    _refused(h, r, 400, "invalid_request", before)


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),             # not UTF-8
    "Basic " + base64.b64encode(b"dvz:%ff").decode(),                   # percent-decodes to no UTF-8
    "Basic " + base64.b64encode(b"dvz:a%00b").decode(),                 # a control character
    "Basic " + base64.b64encode(b"dvz:").decode(),                      # no secret
    "Basic",
    "Bearer abc",                                                       # not Basic at all
], ids=["not_base64", "no_colon", "not_utf8", "bad_percent", "control", "empty_secret", "empty", "bearer"])
def test_a_malformed_basic_header_is_401_invalid_client_with_the_challenge(h, header):
    before = _events(h.hub)
    r = h.http.post("/oauth/token", data=GRANT, headers={"Authorization": header})
    _refused(h, r, 401, "invalid_client", before)
    assert r.headers["WWW-Authenticate"] == BASIC_CHALLENGE


def test_basic_is_refused_when_client_secrets_are_off(tmp_path):
    for h in _hub(tmp_path, allow_client_secrets=False):
        before = _events(h.hub)
        r = h.http.post("/oauth/token", data=GRANT, headers=basic("dvz", h.secrets["dvz"]["secret"]))
        _refused(h, r, 401, "invalid_client", before, "disabled")


def test_basic_token_requests_are_limited_per_client_id(tmp_path):
    for h in _hub(tmp_path, token_rate_limit_per_minute=2):
        for _ in range(2):
            assert h.http.post("/oauth/token", data=GRANT, headers=basic("dvz", "guess")).status_code == 401
        r = h.http.post("/oauth/token", data=GRANT, headers=basic("dvz", h.secrets["dvz"]["secret"]))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert h.http.post("/oauth/token", data=GRANT, headers=basic("portal", h.secrets["portal"]["secret"])
                           ).status_code == 200


# ── the request: a strict form ──────────────────────────────────────────────────────────────

def test_a_json_body_is_invalid_request_saying_it_is_a_form(h):
    before = _events(h.hub)
    r = h.http.post("/oauth/token", json={**GRANT, "client_id": "dvz", "client_secret": h.secrets["dvz"]["secret"]})
    _refused(h, r, 400, "invalid_request", before,
             "the token request is a form (application/x-www-form-urlencoded), not JSON")


@pytest.mark.parametrize("content_type, body", [
    ("text/plain", b"grant_type=client_credentials"),
    (None, b"grant_type=client_credentials"),
    ("application/x-www-form-urlencoded", b'{"grant_type": "client_credentials"}'),   # JSON labelled a form
    ("application/x-www-form-urlencoded; charset=iso-8859-1", b"grant_type=client_credentials"),
    ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--"),
])
def test_anything_but_a_form_is_invalid_request(h, content_type, body):
    before = _events(h.hub)
    headers = {"Content-Type": content_type} if content_type else {}
    r = h.http.post("/oauth/token", content=body, headers=headers)
    _refused(h, r, 400, "invalid_request", before)


@pytest.mark.parametrize("body, detail", [
    (b"grant_type=client_credentials&client_id=dvz&client_id=portal&client_secret=x", "repeated"),
    (b"grant_type=client_credentials&client_id=dvz&client_secret=%ff%fe", "UTF-8"),
    (b"grant_type=client_credentials&client_id=dvz&client_secret=\xff", "UTF-8"),
    (b"grant_type=client_credentials&client_id=dv%00z&client_secret=x", "control character"),
    (b"grant_type=client_credentials&client_id=dvz&client_secret=a%0Ab", "control character"),
    (b"grant_type=client_credentials&client_id", "name=value"),
    (b"&".join(b"p%d=1" % i for i in range(40)), "name=value"),
], ids=["repeated", "percent_not_utf8", "raw_not_utf8", "nul", "newline", "no_value", "too_many"])
def test_a_form_that_is_not_clean_is_invalid_request(h, body, detail):
    before = _events(h.hub)
    r = h.http.post("/oauth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    _refused(h, r, 400, "invalid_request", before, detail)


def test_a_form_in_utf8_with_a_charset_parameter_is_accepted(h):
    form = f"grant_type=client_credentials&client_id=region.wallonia&client_secret={quote_plus(SPECIAL_SECRET)}"
    r = h.http.post("/oauth/token", content=form.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert r.status_code == 200, r.text


# ── the OpenAPI document ────────────────────────────────────────────────────────────────────

def test_the_token_request_is_declared_in_openapi(h):
    doc = h.http.get("/openapi.json").json()
    op = doc["paths"]["/oauth/token"]["post"]
    form = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(form["properties"]) == {"grant_type", "client_id", "client_secret", "client_assertion_type",
                                       "client_assertion", "acting_person"}
    assert form["required"] == ["grant_type"]
    assert "application/json" not in op["requestBody"]["content"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TokenResponse"}
    assert set(doc["components"]["schemas"]["TokenResponse"]["properties"]) == {
        "access_token", "token_type", "expires_in", "scope"}
    assert {"clientBasic": []} in op["security"] and {} in op["security"]   # Basic, or the form
    assert doc["components"]["securitySchemes"]["clientBasic"] == {
        "type": "http", "scheme": "basic", "description": doc["components"]["securitySchemes"]["clientBasic"]["description"]}


# ── the server's configuration and the header limits as middleware ──────────────────────────

def test_the_server_pins_h11_and_trusts_no_proxy_by_default():
    async def app(scope, receive, send):
        pass
    config = server_config(app, Settings(), "127.0.0.1", 0)
    config.load()
    assert config.http_protocol_class is HubH11Protocol and config.ws_protocol_class is None
    assert config.proxy_headers is False
    assert config.h11_max_incomplete_event_size == Settings().max_header_bytes + 8 * 1024
    trusting = server_config(app, Settings(trusted_proxies="10.0.0.5"), "127.0.0.1", 0)
    assert trusting.proxy_headers is True and trusting.forwarded_allow_ips == ["10.0.0.5"]


def _limited_client(max_count=100, max_bytes=16384) -> TestClient:
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    return TestClient(HeaderLimits(app, max_count, max_bytes))


def test_header_limits_answer_too_many_headers_with_the_431_problem():
    client = _limited_client()
    assert client.get("/", headers={f"x-h{i}": "v" for i in range(50)}).status_code == 200
    r = client.get("/", headers={f"x-h{i}": "v" for i in range(500)})
    assert r.status_code == 431
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "error"}
    assert body["type"] == "urn:problem-type:wib-hub:headers_too_large" and body["title"] == "Request Header Fields Too Large"
    assert body["status"] == 431 and body["error"] == "headers_too_large"
    assert "more than the 100 accepted" in body["detail"]


def test_header_limits_answer_too_large_headers_with_the_431_problem():
    client = _limited_client()
    r = client.get("/", headers={"x-big": "a" * 20_000})
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large"
    assert "more than the 16384 accepted" in r.json()["detail"]
