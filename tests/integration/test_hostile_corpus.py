"""A hostile corpus against the hub as it is served (uvicorn, hub.interfaces.api.server), on both
stores: SQLite with the in-memory transport, and PostgreSQL with RabbitMQ.

The issue "The API as a published contract, and nothing believed that was not authenticated" names
the classes an independent security test found; each is a list of cases here (data: method, path,
party, headers, body, the status expected):

  1. the token audience from request headers (private_key_jwt made for another server, sent with a
     spoofed Host / X-Forwarded-*): 401
  2. authority fields in payloads not tied to the sender (x-bound-to): 403, the dossier unchanged
  3. bad values: NaN, Infinity, 1e400, NUL and control characters, lone surrogates, integers past
     64 bits, bodies not labelled application/json (415)
  4. what used to be 500s: integers past 64 bits in path ids, cursors and ack lists; dates at the
     edge of time in queries and payloads; contract validation of a 100,000-deep document or a
     5,000-digit number
  5. unknown routes (404 route_not_found), methods (405 with Allow), header limits (431)
  6. anonymous refusals cannot flood the audit trail, every kind still leaves a trace
     (test_anonymous_flood_*, a hub of their own: they read the trail after its shutdown)
  7. the OpenAPI document declares every request body and every status (test_openapi_*)

Every case of 1–5 must answer a 4xx RFC 9457 problem (`application/problem+json`; `type`, `title`,
`status`, `detail`, `instance`, the hub's `error`; faults in `issues`), never 2xx or 5xx, and store
nothing: the rows of every table a request could write are counted before and after (deltas: one
hub per store for the module, nothing reset), the corpus dossier's row must be unchanged, and the
only audit events a case may add are `rejected` ones (at most one written at once).

Each case is sent on a connection of its own, so that one case's failure (a reset after a 500)
cannot fail the next. Cases marked EXTENSION go beyond the issue's list (see their notes).
"""
from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from hub.domain import samples
from hub.infra.auth import ASSERTION_TYPE
from tests.support.authentication import TOKEN_URL, assertion, write_clients
from tests.support.served import (
    Served, audit_since, dossier_row, max_seq, served_hub, servers_unreachable, settled_counts, stored_counts,
    wait_until,
)

PROBLEM = "application/problem+json"
MEMBERS = ("type", "title", "status", "detail", "instance", "error")
EVIL = "https://evil.example/oauth/token"          # another authorisation server's token URL
EDGE_OF_TIME = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59")
BIG = {"2^63": 2 ** 63, "2^64": 2 ** 64, "10^30": 10 ** 30}
MARK = "@@hostile@@"

STORES = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.rabbitmq])]


# ── the hub under attack ─────────────────────────────────────────────────────────────────────

@dataclass
class Target:
    served: Served
    dossier: str                  # an application's dossier, `submitted`, competent region flanders
    delivery: int                 # its delivery to region.flanders
    settle: bool = False          # a case was accepted: wait for the workers before counting again

    @property
    def hub(self):
        return self.served.hub

    @property
    def port(self) -> int:
        return int(self.served.url.rsplit(":", 1)[1])


def _start(kind: str, data_dir: Path):
    """The hub of the corpus: three parties with keys (private_key_jwt), HUB_TOKEN_URL configured."""
    unreachable = servers_unreachable(kind)
    if unreachable is not None:
        from tests.conftest import _unavailable       # fail, or skip with HUB_TEST_ALLOW_SKIP=1
        _unavailable(kind, unreachable)
    data_dir.mkdir(parents=True, exist_ok=True)
    clients = write_clients(data_dir / "clients.json")
    return served_hub(kind, data_dir / "hub", clients_file=clients, token_url=TOKEN_URL)


@pytest.fixture(scope="module", params=STORES)
def target(request, tmp_path_factory):
    with _start(request.param, tmp_path_factory.mktemp(f"corpus-{request.param}")) as served:
        c = served.client
        for party in ("portal", "region.flanders", "region.wallonia", "dvz", "security-officer"):
            c.token(party)
        r = c.post("portal", "/v1/applications", samples.synthetic_application(1))
        assert r.status_code == 202, r.text
        dossier = r.json()["dossier_id"]
        assert wait_until(lambda: stored_counts(served.hub.engine)["deliveries"] >= 1)
        (item,) = c.get("region.flanders", "/v1/inbox").json()["items"]
        settled_counts(served.hub.engine)
        yield Target(served, dossier, item["id"])


# ── the cases ────────────────────────────────────────────────────────────────────────────────

Value = Any   # a value, or a callable of the Target giving it (ids, ports and assertions known at run time)


@dataclass(frozen=True)
class Case:
    id: str
    cls: int
    method: str
    path: Value
    status: int | tuple[int, ...]       # the expected status (a tuple: any of them)
    party: str | None = None            # None: anonymous
    json: Value = None                  # a JSON body (sent as application/json)
    raw: Value = None                   # or raw bytes, with `content_type`
    content_type: str | None = "application/json"
    form: Value = None                  # or a form (application/x-www-form-urlencoded)
    headers: Value = None
    code: str | None = None             # the hub's `error` code, where the contract names it
    names: str | None = None            # the field the problem must name (in `issues` or `detail`)
    allow: str | None = None            # 405: the methods `Allow` must name
    note: str = ""

    @property
    def statuses(self) -> tuple[int, ...]:
        return self.status if isinstance(self.status, tuple) else (self.status,)


def _v(value: Value, t: Target) -> Any:
    return value(t) if callable(value) else value


def _set(doc: dict, pointer: str, value: Any) -> dict:
    *parents, last = pointer.strip("/").split("/")
    node = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def _serial() -> int:
    return 1000 + uuid.uuid4().int % 100_000


def application(pointer: str | None = None, value: Any = None) -> Callable[[Target], dict]:
    """A valid application (a fresh synthetic worker) with one thing set, at a JSON pointer."""
    def build(t: Target) -> dict:
        doc = samples.synthetic_application(_serial())
        return _set(doc, pointer, value) if pointer else doc
    return build


def application_raw(pointer: str, token: str) -> Callable[[Target], bytes]:
    """A valid application with the raw JSON text `token` at a pointer (what json.dumps cannot write)."""
    def build(t: Target) -> bytes:
        text = json.dumps(_set(samples.synthetic_application(_serial()), pointer, MARK))
        return text.replace(json.dumps(MARK), token).encode("utf-8", "surrogatepass")
    return build


def message(flow: str, payload: Callable[[str], dict], **envelope: Any) -> Callable[[Target], dict]:
    return lambda t: {"flow": flow, "dossier_id": t.dossier, "payload": payload(t.dossier), **envelope}


def message_raw(flow: str, payload: Callable[[str], dict], pointer: str, token: str) -> Callable[[Target], bytes]:
    def build(t: Target) -> bytes:
        doc = {"flow": flow, "dossier_id": t.dossier, "payload": payload(t.dossier)}
        return json.dumps(_set(doc, pointer, MARK)).replace(json.dumps(MARK), token).encode("utf-8", "surrogatepass")
    return build


def token_request(party: str, **claims: Any) -> Callable[[Target], dict]:
    """A private_key_jwt token request with a fresh assertion; `aud` may be a callable of the Target."""
    def build(t: Target) -> dict:
        made = {k: _v(v, t) for k, v in claims.items()}
        return {"grant_type": "client_credentials", "client_id": party,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(party, **made)}
    return build


ADMISSIBLE = "single-permit.admissible-to-dvz"
DOCS_REQUESTED = "single-permit.additional-documents-requested"


def admissible(region: str | None, **kw: Any) -> Callable[[str], dict]:
    return lambda d: samples.sample_admissibility_decision(d, region=region, **kw)


def docs_requested(by: str | None) -> Callable[[str], dict]:
    return lambda d: samples.sample_additional_documents_requested(d, requested_by=by)


# 1 ─ the token audience is HUB_TOKEN_URL, whatever the request says its URL is ───────────────

CLASS_1 = [
    Case("host", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud="http://evil.example/oauth/token"),
         headers={"Host": "evil.example"}, code="invalid_client"),
    Case("host-and-x-forwarded-proto", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud=EVIL),
         headers={"Host": "evil.example", "X-Forwarded-Proto": "https"}, code="invalid_client"),
    Case("x-forwarded-host", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud=EVIL),
         headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}, code="invalid_client"),
    Case("x-forwarded-host-port", 1, "POST", "/oauth/token", 401,
         form=token_request("portal", aud="https://evil.example:8443/oauth/token"),
         headers={"Host": "evil.example:8443", "X-Forwarded-Host": "evil.example:8443",
                  "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"}, code="invalid_client"),
    Case("forwarded-rfc7239", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud=EVIL),
         headers={"Forwarded": "for=203.0.113.7;host=evil.example;proto=https"}, code="invalid_client"),
    Case("x-original-host", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud=EVIL),
         headers={"X-Original-Host": "evil.example", "X-Host": "evil.example", "X-Forwarded-Server": "evil.example",
                  "X-Forwarded-Scheme": "https"}, code="invalid_client"),
    Case("audience-list", 1, "POST", "/oauth/token", 401, form=token_request("portal", aud=[EVIL]),
         headers={"Host": "evil.example", "X-Forwarded-Proto": "https"}, code="invalid_client"),
    Case("audience-is-the-request-url", 1, "POST", "/oauth/token", 401,
         form=token_request("portal", aud=lambda t: f"{t.served.url}/oauth/token"), code="invalid_client",
         note="the URL the request names is not the configured one"),
    Case("audience-is-localhost", 1, "POST", "/oauth/token", 401,
         form=token_request("portal", aud=lambda t: f"http://localhost:{t.port}/oauth/token"),
         headers=lambda t: {"Host": f"localhost:{t.port}"}, code="invalid_client"),
    Case("dvz-rs256-spoofed", 1, "POST", "/oauth/token", 401, form=token_request("dvz", aud=EVIL),
         headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
         code="invalid_client"),
    Case("region-es256-spoofed", 1, "POST", "/oauth/token", 401, form=token_request("region.flanders", aud=EVIL),
         headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}, code="invalid_client"),
]

# 2 ─ authority fields are the sender's (x-bound-to), never believed from the payload ───────────

CLASS_2 = [
    Case("deciding-authority-another-region", 2, "POST", "/v1/messages", 403, party="region.flanders",
         json=message(ADMISSIBLE, admissible("region.wallonia")), code="not_your_authority",
         names="/deciding_authority"),
    Case("deciding-authority-brussels", 2, "POST", "/v1/messages", 403, party="region.flanders",
         json=message(ADMISSIBLE, admissible("region.brussels")), code="not_your_authority",
         names="/deciding_authority"),
    Case("deciding-authority-dvz", 2, "POST", "/v1/messages", (403, 422), party="region.flanders",
         json=message(ADMISSIBLE, admissible("dvz")), names="/deciding_authority"),
    Case("deciding-authority-other-case", 2, "POST", "/v1/messages", (403, 422), party="region.flanders",
         json=message(ADMISSIBLE, admissible("Region.Flanders")), names="/deciding_authority"),
    Case("requested-by-dvz", 2, "POST", "/v1/messages", 403, party="region.flanders",
         json=message(DOCS_REQUESTED, docs_requested("dvz")), code="not_your_authority", names="/requested_by"),
    Case("requested-by-another-region", 2, "POST", "/v1/messages", 403, party="region.flanders",
         json=message(DOCS_REQUESTED, docs_requested("region.wallonia")), code="not_your_authority",
         names="/requested_by"),
    Case("requested-by-portal", 2, "POST", "/v1/messages", (403, 422), party="region.flanders",
         json=message(DOCS_REQUESTED, docs_requested("portal")), names="/requested_by"),
    Case("dvz-says-the-region-requested", 2, "POST", "/v1/messages", 403, party="dvz",
         json=message(DOCS_REQUESTED, docs_requested("region.flanders")), code="not_your_authority",
         names="/requested_by"),
    Case("work-decision-by-another-region", 2, "POST", "/v1/messages", (403, 409), party="region.flanders",
         json=message("single-permit.work-decision",
                      lambda d: samples.sample_work_decision(d, region="region.wallonia")), names="/deciding_authority"),
    Case("negative-notice-by-the-region", 2, "POST", "/v1/messages", (403, 409), party="dvz",
         json=message("single-permit.negative-decision-notice",
                      lambda d: samples.sample_negative_decision_notice(d, decided_by="region.flanders"))),
    Case("appeal-lodged-informed-by-the-region", 2, "POST", "/v1/messages", (403, 409), party="dvz",
         json=message("single-permit.appeal-lodged",
                      lambda d: samples.sample_appeal_lodged(d, informed_by="region.flanders"))),
    Case("appeal-ended-informed-by-the-region", 2, "POST", "/v1/messages", (403, 409), party="dvz",
         json=message("single-permit.appeal-ended",
                      lambda d: samples.sample_appeal_ended(d, informed_by="region.flanders"))),
    Case("withdrawal-decided-by-another-region", 2, "POST", "/v1/messages", (403, 409), party="region.flanders",
         json=message("single-permit.withdrawal-to-employment-service",
                      lambda d: samples.sample_permit_withdrawal_notice(d, decided_by="region.wallonia",
                                                                         competent_region=None))),
    Case("withdrawal-names-another-competent-region", 2, "POST", "/v1/messages", (403, 409), party="region.flanders",
         json=message("single-permit.withdrawal-to-employment-service",
                      lambda d: samples.sample_permit_withdrawal_notice(d, decided_by=None,
                                                                         competent_region="wallonia"))),
    Case("region-not-party-to-the-dossier", 2, "POST", "/v1/messages", 403, party="region.wallonia",
         json=message(ADMISSIBLE, admissible("region.wallonia"))),
    Case("portal-on-a-region-flow", 2, "POST", "/v1/messages", 403, party="portal",
         json=message(ADMISSIBLE, admissible(None))),
    Case("recipient-outside-the-flow", 2, "POST", "/v1/messages", 403, party="region.flanders",
         json=message(DOCS_REQUESTED, docs_requested(None), recipients=["dvz"])),
    Case("recipient-made-up", 2, "POST", "/v1/messages", (403, 422), party="region.flanders",
         json=message(DOCS_REQUESTED, docs_requested(None), recipients=["evil.example"])),
    Case("payload-names-another-dossier", 2, "POST", "/v1/messages", (400, 403, 404), party="region.flanders",
         json=message(ADMISSIBLE, lambda d: samples.sample_admissibility_decision("WIB-2026-999999", region=None))),
]

# 3 ─ bad values ─────────────────────────────────────────────────────────────────────────────

NAME = "/worker/first_name"
PAY = "/employment/gross_monthly_pay"
HOURS = "/employment/weekly_hours"


def _bad_number(token: str, names: str | None = None) -> Case:
    return Case(f"pay-{token}", 3, "POST", "/v1/applications", 400, party="portal",
                raw=application_raw(PAY, token), names=names)


def _bad_name(label: str, escaped: str) -> Case:
    return Case(f"name-{label}", 3, "POST", "/v1/applications", 400, party="portal",
                raw=application_raw(NAME, f'"A{escaped}b"'), names=NAME)


def _media(label: str, content_type: str | None, path: str = "/v1/applications", party: str = "portal",
           body: Value = None) -> Case:
    return Case(f"media-{label}", 3, "POST", path, 415, party=party,
                raw=body if body is not None else (lambda t: json.dumps(samples.synthetic_application(_serial())).encode()),
                content_type=content_type, code="unsupported_media_type")


def _deep(levels: int) -> Callable[[Target], bytes]:
    return lambda t: json.dumps(_set(samples.synthetic_application(_serial()), "/portal_reference", MARK)).replace(
        json.dumps(MARK), "[" * levels + "]" * levels).encode()


CLASS_3 = [
    _bad_number("NaN"), _bad_number("Infinity"), _bad_number("-Infinity"),
    _bad_number("1e400", names=PAY), _bad_number("-1e400", names=PAY),
    _bad_name("nul", "\\u0000"), _bad_name("soh", "\\u0001"), _bad_name("backspace", "\\u0008"),
    _bad_name("vertical-tab", "\\u000b"), _bad_name("escape", "\\u001b"), _bad_name("delete", "\\u007f"),
    _bad_name("c1-next-line", "\\u0085"), _bad_name("c1-csi", "\\u009b"),
    _bad_name("lone-high-surrogate", "\\ud800"), _bad_name("lone-low-surrogate", "\\udfff"),
    _bad_name("reversed-surrogate-pair", "\\udc00\\ud800"), _bad_name("high-surrogate-then-letter", "\\ud83dx"),
    Case("name-raw-nul-byte", 3, "POST", "/v1/applications", 400, party="portal",
         raw=application_raw(NAME, '"A\x00b"')),
    Case("name-utf8-encoded-surrogate", 3, "POST", "/v1/applications", 400, party="portal",
         raw=lambda t: application_raw(NAME, '"A@@b"')(t).replace(b"@@", b"\xed\xa0\x80")),
    Case("name-overlong-utf8", 3, "POST", "/v1/applications", 400, party="portal",
         raw=lambda t: application_raw(NAME, '"A@@b"')(t).replace(b"@@", b"\xc0\xaf")),
    Case("key-with-nul", 3, "POST", "/v1/applications", 400, party="portal",
         raw=lambda t: application_raw(NAME, '"Amara", "first_name\\u0000": "x"')(t)),
    Case("weekly-hours-2^63", 3, "POST", "/v1/applications", 400, party="portal",
         json=application(HOURS, 2 ** 63), names=HOURS),
    Case("weekly-hours-2^64", 3, "POST", "/v1/applications", 400, party="portal",
         json=application(HOURS, 2 ** 64), names=HOURS),
    Case("weekly-hours-below-min-int64", 3, "POST", "/v1/applications", 400, party="portal",
         json=application(HOURS, -(2 ** 63) - 1), names=HOURS),
    Case("weekly-hours-10^30", 3, "POST", "/v1/applications", 400, party="portal",
         json=application(HOURS, 10 ** 30), names=HOURS),
    Case("weekly-hours-5000-digits", 3, "POST", "/v1/applications", 400, party="portal",
         raw=application_raw(HOURS, "9" * 5000)),
    Case("pay-5000-digit-float", 3, "POST", "/v1/applications", 400, party="portal",
         raw=application_raw(PAY, "9" * 5000 + ".5")),
    Case("nesting-65-levels", 3, "POST", "/v1/applications", 400, party="portal", raw=_deep(65)),
    Case("nesting-100000-levels", 3, "POST", "/v1/applications", 400, party="portal", raw=_deep(100_000)),
    Case("message-flow-with-nul", 3, "POST", "/v1/messages", 400, party="region.flanders",
         raw=message_raw(ADMISSIBLE, admissible(None), "/flow", '"single-permit.admissible-to-dvz\\u0000"')),
    Case("message-payload-nan", 3, "POST", "/v1/messages", 400, party="region.flanders",
         raw=message_raw(ADMISSIBLE, admissible(None), "/payload/case_reference", "NaN")),
    Case("message-recipient-lone-surrogate", 3, "POST", "/v1/messages", 400, party="region.flanders",
         raw=message_raw(ADMISSIBLE, admissible(None), "/recipients", '["dvz\\ud800"]')),
    Case("ack-ids-2^64", 3, "POST", "/v1/inbox/ack", 400, party="region.flanders", json={"ids": [2 ** 64]}),
    _media("text-plain", "text/plain"),
    _media("none", None),
    _media("form", "application/x-www-form-urlencoded"),
    _media("multipart", "multipart/form-data; boundary=x"),
    _media("xml", "application/xml"),
    _media("json-latin-1", "application/json; charset=iso-8859-1"),
    _media("x-json", "application/x-json"),
    _media("messages-text-plain", "text/plain", "/v1/messages", "region.flanders",
           lambda t: json.dumps(message(ADMISSIBLE, admissible(None))(t)).encode()),
    _media("ack-none", None, "/v1/inbox/ack", "region.flanders", b'{"ids": [1]}'),
    _media("rights-request-text-plain", "text/plain", "/v1/rights-requests", "portal",
           json.dumps({"kind": "access", "concerning": "single_permit", "insz": samples.WORKER_INSZ}).encode()),
    # EXTENSION: beyond the list, the same rule (JSON is UTF-8, a value means one thing)
    Case("utf-16-body", 3, "POST", "/v1/applications", 400, party="portal",
         raw=lambda t: json.dumps(samples.synthetic_application(_serial())).encode("utf-16"),
         note="EXTENSION: hardening.require_json says JSON bodies are UTF-8; json.loads(bytes) also reads UTF-16/32"),
    Case("duplicate-key", 3, "POST", "/v1/applications", 400, party="portal",
         raw=lambda t: json.dumps(samples.synthetic_application(_serial())).replace(
             '"competent_region": "flanders"', '"competent_region": "flanders", "competent_region": "wallonia"').encode(),
         note="EXTENSION: a repeated member (RFC 8259 §4, I-JSON RFC 7493 §2.3): the last one silently wins, "
              "here the competent region, which decides where the application goes"),
    Case("ack-id-true", 3, "POST", "/v1/inbox/ack", 400, party="region.flanders", json={"ids": [True]},
         note="EXTENSION: `true` is not a delivery id; lax coercion acknowledges delivery 1"),
]

# 4 ─ what used to be 500s ───────────────────────────────────────────────────────────────────

def _query(path: str, name: str, value: str) -> str:
    return f"{path}?{httpx.QueryParams({name: value})}"


def _ack_path(value: str) -> str:
    return f"/v1/inbox/{value}/ack"


VALIDATE = "/v1/contracts/messages.application/validate"

CLASS_4 = [
    *[Case(f"ack-path-{k}", 4, "POST", _ack_path(str(v)), 400, party="region.flanders") for k, v in BIG.items()],
    Case("ack-path-negative", 4, "POST", _ack_path("-1"), 400, party="region.flanders"),
    Case("ack-path-zero", 4, "POST", _ack_path("0"), 400, party="region.flanders"),
    Case("ack-path-5000-digits", 4, "POST", _ack_path("9" * 5000), (400, 414, 431), party="region.flanders"),
    *[Case(f"inbox-after-{k}", 4, "GET", f"/v1/inbox?after={v}", 400, party="region.flanders") for k, v in BIG.items()],
    Case("inbox-after-negative", 4, "GET", "/v1/inbox?after=-1", 400, party="region.flanders"),
    *[Case(f"audit-after-{k}", 4, "GET", f"/v1/audit/events?after={v}", 400, party="security-officer")
      for k, v in BIG.items()],
    Case("audit-after-negative", 4, "GET", "/v1/audit/events?after=-1", 400, party="security-officer"),
    *[Case(f"ack-list-{k}", 4, "POST", "/v1/inbox/ack", 400, party="region.flanders", json={"ids": [1, v]})
      for k, v in BIG.items()],
    Case("ack-list-negative", 4, "POST", "/v1/inbox/ack", 400, party="region.flanders", json={"ids": [-1]}),
    Case("ack-list-zero", 4, "POST", "/v1/inbox/ack", 400, party="region.flanders", json={"ids": [0]}),
    Case("ack-list-501-ids", 4, "POST", "/v1/inbox/ack", 400, party="region.flanders",
         json={"ids": list(range(1, 502))}),
    *[Case(f"audit-events-{p}-{i}", 4, "GET", _query("/v1/audit/events", p, d), 400, party="security-officer", note=d)
      for p in ("since", "until") for i, d in enumerate(EDGE_OF_TIME)],
    *[Case(f"audit-report-{p}-{i}", 4, "GET", _query("/v1/audit/report", p, d), 400, party="security-officer", note=d)
      for p in ("since", "until") for i, d in enumerate(EDGE_OF_TIME)],
    *[Case(f"rights-received-at-{i}", 4, "POST", "/v1/rights-requests", 400, party="dvz",
           json={"kind": "access", "concerning": "single_permit", "insz": samples.WORKER_INSZ, "region": "flanders",
                 "received_at": d}, note=d)
      for i, d in enumerate(EDGE_OF_TIME)],
    *[Case(f"payload-decided-at-{i}", 4, "POST", "/v1/messages", (400, 422), party="region.flanders",
           json=message(ADMISSIBLE, admissible(None, decided_at=d)), names="/decided_at", note=d)
      for i, d in enumerate(EDGE_OF_TIME)],
    *[Case(f"payload-submitted-at-{i}", 4, "POST", "/v1/applications", (400, 422), party="portal",
           json=application("/submitted_at", d), names="/submitted_at", note=d)
      for i, d in enumerate(EDGE_OF_TIME)],
    Case("dossier-path-utf8-surrogate", 4, "GET", "/v1/dossiers/%ED%A0%80", (400, 404), party="region.flanders"),
    Case("dossier-path-nul", 4, "GET", "/v1/dossiers/%00", 400, party="region.flanders"),
    Case("validate-100000-deep-array", 4, "POST", VALIDATE, (400, 422), party="portal",
         raw=b"[" * 100_000 + b"]" * 100_000),
    Case("validate-100000-deep-object", 4, "POST", VALIDATE, (400, 422), party="portal",
         raw=b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    Case("validate-5000-digit-number", 4, "POST", VALIDATE, (400, 422), party="portal", raw=b"9" * 5000),
    Case("validate-5000-digit-negative", 4, "POST", VALIDATE, (400, 422), party="portal", raw=b"-" + b"9" * 5000),
    Case("validate-5000-digit-member", 4, "POST", VALIDATE, (400, 422), party="portal",
         raw=b'{"application_kind": ' + b"9" * 5000 + b"}"),
]

# 5 ─ unknown routes and methods, header limits ─────────────────────────────────────────────

def _not_allowed(method: str, path: Value, allow: str, party: str | None = "portal") -> Case:
    label = path if isinstance(path, str) else "dossier"
    return Case(f"{method.lower()}-{label.strip('/').replace('/', '-')}", 5, method, path, 405, party=party,
                code="method_not_allowed", allow=allow)


def _many_headers(n: int) -> dict[str, str]:
    return {f"X-Hostile-{i}": "v" for i in range(n)}


CLASS_5 = [
    Case("unknown-route-anonymous", 5, "GET", "/nope", 404, code="route_not_found"),
    Case("unknown-route", 5, "GET", "/v1/nope", 404, party="portal", code="route_not_found"),
    Case("unknown-version", 5, "POST", "/v2/applications", 404, party="portal", json={}, code="route_not_found"),
    Case("dotenv", 5, "GET", "/.env", 404, code="route_not_found"),
    Case("collection-without-route", 5, "GET", "/v1/dossiers", 404, party="region.flanders", code="route_not_found"),
    Case("trailing-slash", 5, "GET", "/v1/inbox/", 404, party="region.flanders", code="route_not_found",
         note="an unknown route; Starlette's redirect_slashes answers 307 without a problem"),
    Case("trailing-slash-post", 5, "POST", "/v1/applications/", 404, party="portal", json={},
         code="route_not_found"),
    Case("trailing-slash-spoofed-host", 5, "POST", "/v1/applications/", 404, party="portal", json=application(),
         headers={"Host": "evil.example"}, code="route_not_found",
         note="a redirect would be built from the Host the request names: to http://evil.example/…"),
    _not_allowed("DELETE", "/v1/applications", "POST"),
    _not_allowed("PUT", "/v1/inbox", "GET", "region.flanders"),
    _not_allowed("PATCH", lambda t: f"/v1/dossiers/{t.dossier}", "GET", "region.flanders"),
    _not_allowed("GET", "/oauth/token", "POST", None),
    _not_allowed("POST", "/healthz", "GET", None),
    _not_allowed("TRACE", "/v1/inbox", "GET", "region.flanders"),
    _not_allowed("FOO", "/v1/flows", "GET", "portal"),
    Case("101-headers", 5, "GET", "/v1/flows", 431, party="portal", headers=_many_headers(101),
         code="headers_too_large"),
    Case("500-headers", 5, "GET", "/v1/inbox", 431, party="region.flanders", headers=_many_headers(500),
         code="headers_too_large"),
    Case("500-headers-anonymous-token", 5, "POST", "/oauth/token", 431, headers=_many_headers(500),
         form={"grant_type": "client_credentials"}, code="headers_too_large"),
    Case("1mb-header", 5, "GET", "/v1/inbox", 431, party="region.flanders", headers={"X-Big": "a" * 1_000_000},
         code="headers_too_large"),
    Case("17kib-of-headers", 5, "GET", "/v1/inbox", 431, party="region.flanders",
         headers={f"X-Part-{i}": "b" * 4400 for i in range(4)}, code="headers_too_large"),
    Case("1mb-header-on-a-body", 5, "POST", "/v1/applications", 431, party="portal",
         headers={"X-Big": "c" * 1_000_000}, json=application(), code="headers_too_large"),
]

CORPUS: dict[int, list[Case]] = {1: CLASS_1, 2: CLASS_2, 3: CLASS_3, 4: CLASS_4, 5: CLASS_5}
CASES = [c for cases in CORPUS.values() for c in cases]
assert len({(c.cls, c.id) for c in CASES}) == len(CASES), "case ids are unique"


# ── sending a case, and what must hold of the answer ─────────────────────────────────────────

def send(t: Target, case: Case) -> httpx.Response:
    headers: dict[str, str] = {}
    if case.party:
        headers["Authorization"] = f"Bearer {t.served.client.token(case.party)}"
    kw: dict[str, Any] = {}
    body = _v(case.json, t)
    raw = _v(case.raw, t)
    form = _v(case.form, t)
    if body is not None:
        kw["content"] = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif raw is not None:
        kw["content"] = raw
        if case.content_type:
            headers["Content-Type"] = case.content_type
    elif form is not None:
        kw["data"] = form
    headers.update(_v(case.headers, t) or {})
    with t.served.fresh() as http:
        return http.request(case.method, _v(case.path, t), headers=headers, **kw)


def assert_problem(r: httpx.Response, case: Case) -> dict:
    assert 400 <= r.status_code < 500, f"answered {r.status_code} {r.headers.get('content-type')}: {r.text[:500]}"
    assert r.status_code in case.statuses, f"expected {case.statuses}, got {r.status_code}: {r.text[:500]}"
    media = r.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM, f"content type {media!r}, not {PROBLEM}: {r.text[:300]}"
    body = r.json()
    missing = [m for m in MEMBERS if m not in body]
    assert not missing, f"problem members missing: {missing} in {body}"
    assert body["status"] == r.status_code
    assert all(isinstance(body[m], str) and body[m] for m in ("type", "title", "detail", "error")), body
    assert isinstance(body["instance"], str) and body["instance"].startswith("/"), body
    if "issues" in body:
        assert isinstance(body["issues"], list) and body["issues"], body
        assert all(isinstance(i, dict) and isinstance(i.get("detail"), str) for i in body["issues"]), body
    if case.code:
        assert body["error"] == case.code, body
    if case.names:
        named = [i.get("name") for i in body.get("issues") or []]
        assert case.names in named or case.names in body["detail"], f"the problem does not name {case.names}: {body}"
    if r.status_code == 401:
        assert r.headers.get("www-authenticate"), "a 401 names its scheme (WWW-Authenticate)"
    if case.allow:
        allowed = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
        assert set(case.allow.split(",")) <= allowed and case.method not in allowed, r.headers.get("allow")
    return body


@pytest.mark.parametrize("case", CASES, ids=[f"c{c.cls}-{c.id}" for c in CASES])
def test_hostile_request_is_refused_with_a_problem_and_stores_nothing(target, case):
    engine = target.hub.engine
    before = settled_counts(engine) if target.settle else stored_counts(engine)
    target.settle = False
    dossier = dossier_row(engine, target.dossier)
    seq = max_seq(engine)
    try:
        r = send(target, case)
    except httpx.TransportError as err:
        target.settle = True
        pytest.fail(f"{case.method} {case.id}: no answer (a reset or a close instead of a problem): {err!r}",
                    pytrace=False)
    if 200 <= r.status_code < 300:
        target.settle = True        # it was taken: let the workers finish before the next case counts
    try:
        body = assert_problem(r, case)
        assert stored_counts(engine) == before, "a refused request must leave nothing stored"
        assert dossier_row(engine, target.dossier) == dossier, "a refused request must not move the dossier"
        events = audit_since(engine, seq)
        assert {e["event"] for e in events} <= {"rejected"}, [e["event"] for e in events]
        immediate = [e for e in events if e.get("count") is None]
        assert len(immediate) <= 1, [e["reason"] for e in events]
        if immediate:
            assert body["error"] in immediate[0]["reason"], (body["error"], immediate[0]["reason"])
    except AssertionError as err:
        # the message alone: a traceback through 100,000-deep inputs is no help (and has crashed
        # pytest's own formatting on CPython 3.11)
        pytest.fail(f"{case.method} {case.id}: {err}", pytrace=False)


def test_the_configured_audience_is_accepted_whatever_the_request_says(target):
    """The control of class 1: the same spoofed headers with aud = HUB_TOKEN_URL get a token, so
    that the refusals above are the audience's and nothing else's."""
    for headers in ({"Host": "evil.example", "X-Forwarded-Proto": "https"},
                    {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}):
        with target.served.fresh() as http:
            r = http.post("/oauth/token", data=token_request("portal", aud=TOKEN_URL)(target), headers=headers)
        assert r.status_code == 200, r.text


def test_the_bound_fields_left_out_or_stated_right_are_accepted(target):
    """The control of class 2: the region stating itself is taken (and moves the dossier), so that
    the refusals above are the authority's and nothing else's. Runs on a dossier of its own."""
    c = target.served.client
    r = c.post("portal", "/v1/applications", samples.synthetic_application(_serial()))
    assert r.status_code == 202, r.text
    dossier = r.json()["dossier_id"]
    r = c.post("region.flanders", "/v1/messages", {"flow": ADMISSIBLE, "dossier_id": dossier,
                                                   "payload": samples.sample_admissibility_decision(dossier)})
    assert r.status_code == 202, r.text
    assert dossier_row(target.hub.engine, dossier)["state"] == "under_examination"
    target.settle = True


# ── 6: anonymous refusals cannot flood the audit trail ───────────────────────────────────────

FLOOD = 1000


def _rejected_after(store_url: str, seq: int) -> list[dict]:
    from hub.infra.store import open_engine
    engine = open_engine(store_url)
    try:
        return [e for e in audit_since(engine, seq) if e["event"] == "rejected"]
    finally:
        engine.dispose()


def _weight(events: list[dict], code: str) -> int:
    return sum(e.get("count") or 1 for e in events if e["reason"].split(" ", 1)[0] == code)


@pytest.fixture(params=STORES)
def flood_hub(request, tmp_path):
    with _start(request.param, tmp_path) as served:
        yield served


def test_anonymous_flood_from_one_source_leaves_a_bounded_trace(flood_hub):
    """1,000 anonymous requests from one source (one address, one connection) are a few `rejected`
    events, one of which carries their number in `count`; a refusal of another kind in the same
    window still leaves its own event at once; after the shutdown every refusal is accounted for."""
    served = flood_hub
    seq = max_seq(served.hub.engine)
    with served.fresh() as http:
        for _ in range(FLOOD):
            assert http.get("/v1/inbox").status_code == 401
    during = [e for e in audit_since(served.hub.engine, seq) if e["event"] == "rejected"]
    assert len(during) <= 3, f"{len(during)} rejected events for {FLOOD} identical refusals"
    # every other kind still leaves a trace, at once
    others = {"invalid_token": lambda h: h.get("/v1/inbox", headers={"Authorization": "Bearer not.a.token"}),
              "route_not_found": lambda h: h.get("/nowhere"),
              "method_not_allowed": lambda h: h.delete("/v1/applications"),
              "not_security_officer": lambda h: h.get("/v1/audit/events", headers=served.client.as_("dvz"))}
    mark = max_seq(served.hub.engine)
    with served.fresh() as http:
        for code, call in others.items():
            assert 400 <= call(http).status_code < 500
    fresh = audit_since(served.hub.engine, mark)
    for code in others:
        assert any(e["event"] == "rejected" and e["reason"].startswith(code) for e in fresh), \
            f"no trace of {code}: {[e['reason'] for e in fresh]}"
    served.stop()                      # the counts of the window are written at shutdown
    after = _rejected_after(served.store_url, seq)
    assert len(after) <= 3 + len(others), [e["reason"] for e in after]
    assert _weight(after, "missing_token") == FLOOD, [(e["reason"], e.get("count")) for e in after]
    assert any((e.get("count") or 1) > 1 for e in after), "the repeats are one event with a `count`"
    for code in others:
        assert _weight(after, code) == 1


def test_anonymous_flood_over_made_up_paths_stays_bounded(flood_hub):
    """1,000 anonymous requests, each to a path of its own (made-up ids, made-up routes): the trail
    grows by a bounded number of events (the refusal log's budget per window and one per kind),
    not by one per request, and still counts every refusal."""
    served = flood_hub
    seq = max_seq(served.hub.engine)
    with served.fresh() as http:
        for i in range(FLOOD // 2):
            assert http.post(f"/v1/inbox/{i + 1}/ack").status_code == 401
            assert http.get(f"/made-up-{uuid.uuid4().hex}").status_code == 404
    served.stop()
    after = _rejected_after(served.store_url, seq)
    assert len(after) <= 128, f"{len(after)} rejected events for {FLOOD} anonymous refusals"
    assert _weight(after, "missing_token") == FLOOD // 2
    assert _weight(after, "route_not_found") == FLOOD // 2


# ── 7: the OpenAPI document is complete ───────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    """The document of an app built like local_hub's (no workers needed to read it)."""
    from hub.bootstrap import build_hub
    from hub.interfaces.api.app import create_app
    from tests.support import hub_settings, sqlite_store
    tmp = tmp_path_factory.mktemp("openapi")
    hub = build_hub(hub_settings(tmp / "data", sqlite_store(tmp / "hub.db"), f"memory://{uuid.uuid4().hex}"))
    try:
        app = create_app(hub)
        yield app, app.openapi()
    finally:
        hub.close()


def _template_of(doc: dict, method: str, path: str) -> str | None:
    path = path.split("?", 1)[0]
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if method.lower() in item and re.match(pattern, path):
            return template
    return None


def _takes_a_body(app) -> set[tuple[str, str]]:
    """The operations that read a body, from the routes themselves: a body parameter, the
    json_body dependency, or an endpoint that reads request.body() (the token form, the document
    to validate)."""
    import inspect

    from fastapi.routing import APIRoute

    from hub.interfaces.api.deps import json_body

    def uses(dependant) -> bool:
        return any(d.call is json_body or uses(d) for d in dependant.dependencies)

    found = set()
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        try:
            source = inspect.getsource(route.endpoint)
        except (OSError, TypeError):
            source = ""
        if route.body_field is not None or uses(route.dependant) or "request.body()" in source:
            found |= {(m, route.path) for m in route.methods if m not in ("HEAD", "OPTIONS")}
    return found


# documented in README.md ("Refusals are …", the routes table): what these operations also answer
DOCUMENTED = {
    ("GET", "/v1/audit/events"): {403}, ("GET", "/v1/audit/report"): {403},
    ("GET", "/v1/stats/applications"): {403}, ("GET", "/v1/stats/processing-times"): {403},
    ("GET", "/v1/stats/eurostat"): {403},
    ("GET", "/v1/dossiers/{dossier_id}"): {403, 404},
    ("GET", "/v1/consultations/{ground}/dossiers/{dossier_id}"): {403, 404},
    ("POST", "/v1/rights-requests"): {403}, ("GET", "/v1/rights-requests"): {403},
    ("POST", "/v1/rights-requests/{request_id}/answer"): {403, 404},
    ("POST", "/v1/rights-requests/{request_id}/extend"): {403, 404},
    ("GET", "/v1/rights-requests/{request_id}/export"): {403, 404},
    ("POST", "/v1/contracts/{name}/validate"): {404, 422},
    ("POST", "/v1/applications"): {403, 409, 422}, ("POST", "/v1/messages"): {403, 404, 409, 422},
    ("GET", "/v1/dossiers/{dossier_id}/enrichment"): {403, 404},
    ("POST", "/v1/dossiers/{dossier_id}/enrichment"): {403, 404},
    ("GET", "/v1/dossiers/{dossier_id}/clocks"): {403, 404}, ("GET", "/v1/clocks"): {403},
}


def test_openapi_declares_a_request_body_for_every_operation_that_takes_one(openapi):
    app, doc = openapi
    missing = []
    for method, path in sorted(_takes_a_body(app)):
        op = doc["paths"].get(path, {}).get(method.lower())
        assert op is not None, f"{method} {path} is not in the document"
        body = op.get("requestBody") or {}
        if not body.get("content") or not all(c.get("schema") for c in body["content"].values()):
            missing.append(f"{method} {path}")
    assert not missing, f"operations that read a body but declare none (with a schema): {missing}"


def test_openapi_declares_every_status_an_operation_answers(openapi):
    """Each status the corpus expects of an operation (its first choice, or one of its choices),
    the edge's (400 for parameters or a body, 401/429 with a token, 413/415 with a JSON body, 431),
    and the refusals README.md documents: declared, as a Problem."""
    app, doc = openapi
    expected: dict[tuple[str, str], set[int]] = {k: set(v) for k, v in DOCUMENTED.items()}
    either: list[tuple[tuple[str, str], tuple[int, ...], str]] = []
    for case in CASES:
        if not isinstance(case.path, str) or case.code in ("route_not_found", "method_not_allowed"):
            continue
        template = _template_of(doc, case.method, case.path)
        if template is None:
            continue
        key = (case.method, template)
        if len(case.statuses) == 1:
            expected.setdefault(key, set()).add(case.status)
        else:
            either.append((key, case.statuses, case.id))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            edge = {431}
            if op.get("parameters") or op.get("requestBody"):
                edge.add(400)
            if op.get("security") and {} not in op["security"]:
                edge |= {401, 429}
            if op.get("requestBody"):
                edge.add(413)
                if "application/json" in op["requestBody"].get("content", {}):
                    edge.add(415)
            expected.setdefault((method.upper(), path), set()).update(edge)
    missing = []
    for (method, path), statuses in sorted(expected.items()):
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None:
            missing.append(f"{method} {path}: not in the document")
            continue
        declared = op.get("responses", {})
        for status in sorted(statuses):
            if str(status) not in declared:
                missing.append(f"{method} {path}: {status}")
    for (method, path), choices, case_id in either:
        declared = doc["paths"][path][method.lower()].get("responses", {})
        if not any(str(s) in declared for s in choices):
            missing.append(f"{method} {path}: one of {choices} ({case_id})")
    assert not missing, "statuses answered but not declared:\n  " + "\n  ".join(missing)


def test_openapi_declares_every_refusal_as_a_problem(openapi):
    _, doc = openapi
    wrong = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for status, response in op.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    content = response.get("content") or {}
                    schema = content.get(PROBLEM, {}).get("schema", {})
                    if list(content) != [PROBLEM] or not schema.get("$ref", "").endswith("/Problem"):
                        wrong.append(f"{method.upper()} {path} {status}: {sorted(content) or 'no content'}")
    assert not wrong, "refusals not declared as application/problem+json Problem:\n  " + "\n  ".join(wrong)


def test_the_corpus_covers_every_class():
    per_class = Counter(c.cls for c in CASES)
    assert set(per_class) == {1, 2, 3, 4, 5} and sum(per_class.values()) >= 100, per_class
