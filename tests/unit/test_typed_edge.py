"""The typed edge of the security officer's, rights, statistics, clocks, consultation, enrichment and
contract routes.

- Each operation is in /openapi.json with its request body (where it takes one), a schema for each
  success and the problems it can answer.
- Every answer is exactly what the document says: validated against the published schema with
  every object closed unless the model says its content is open.
- Inputs are bounded to what the store can hold: a date at the edge of time, an `after` cursor past
  64 bits, a NUL in a parameter, an id past its length, an oversized free-text field or list: a 400
  problem, the refusal on the record, and nothing else stored or consulted.
- A role or party check comes before the body or parameters are looked at.
"""
from __future__ import annotations

import copy
import json
import uuid

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import func, select

from hub.domain import samples
from hub.infra.store.schema import audit_events, dossiers, rights_requests
from hub.interfaces.api.hardening import INT_MAX
from hub.interfaces.cli.demo import DemoClient, blue_card_clock, procedure
from hub.registry import default_contracts_dir
from hub.registry.catalogue import load_catalogue
from tests.support import sqlite_store, start_hub
from tests.support.rights import STRANGER_INSZ

OFFICER = "security-officer"
PROBLEM = "application/problem+json"

# Dates at the edge of time: out of 1900–2999 once in UTC (the first two overflow Python's datetime
# when converted), then dates that are just inside.
EDGES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59", "0001-01-01T00:00:00",
         "3000-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2999-12-31T23:30:00-01:00"]
INSIDE = ["2999-12-31T23:59:59Z", "1900-01-01T00:00:00", "3000-01-01T00:30:00+01:00", "1899-12-31T23:30:00-01:00"]
NOT_ISO = ["1700000000", "+10000-01-01T00:00:00", "2026-02-30T00:00:00"]   # seconds, a 5-digit year, no such day


# ── the document ─────────────────────────────────────────────────────────────────────────────

# (method, path): (request body: component or media types, 2xx status → component or media type,
#                  the route's own problems)
OPERATIONS = {
    ("get", "/v1/audit/events"): (None, {"200": "AuditPage"}, {403}),
    ("get", "/v1/audit/report"): (None, {"200": "SecurityReportOut"}, {403}),
    ("post", "/v1/rights-requests"): ("RequestIn", {"201": "Acknowledgment"}, {403}),
    ("get", "/v1/rights-requests"): (None, {"200": "RightsRequests"}, {403}),
    ("post", "/v1/rights-requests/{request_id}/answer"): ("AnswerIn", {"200": "RightsRequestOut"}, {403, 404, 409}),
    ("post", "/v1/rights-requests/{request_id}/extend"): ("ExtendIn", {"200": "RightsRequestOut"}, {403, 404, 409}),
    ("get", "/v1/rights-requests/{request_id}/export"): (None, {"200": "SubjectExport"}, {403, 404}),
    ("get", "/v1/stats/applications"): (None, {"200": "CountTable"}, {403}),
    ("get", "/v1/stats/processing-times"): (None, {"200": "TimeTable"}, {403}),
    ("get", "/v1/stats/eurostat"): (None, {"200": "text/csv"}, {403}),
    ("get", "/v1/clocks"): (None, {"200": "HolderClocks"}, {403}),
    ("get", "/v1/dossiers/{dossier_id}/clocks"): (None, {"200": "DossierClocks"}, {403, 404}),
    ("get", "/v1/consultations"): (None, {"200": "Grounds"}, set()),
    ("get", "/v1/consultations/{ground}/dossiers/{dossier_id}"): (None, {"200": "ConsultationView"}, {403, 404}),
    ("get", "/v1/dossiers/{dossier_id}/enrichment"): (None, {"200": "Records"}, {403, 404}),
    ("post", "/v1/dossiers/{dossier_id}/enrichment"): (None, {"200": "Refreshed"}, {403, 404}),
    ("get", "/v1/contracts"): (None, {"200": "ContractList"}, set()),
    ("post", "/v1/contracts/{name}/validate"): ({"application/json", "application/xml"}, {"200": "Valid"},
                                                {404, 415, 422, 503}),
}


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge")
    hub = start_hub(tmp / "data", sqlite_store(tmp / "hub.db"), f"memory://{uuid.uuid4().hex}")
    client = next(hub)
    yield client.http.get("/openapi.json").json()
    next(hub, None)


@pytest.mark.parametrize("method,path", sorted(OPERATIONS))
def test_each_operation_declares_its_body_its_answers_and_its_problems(doc, method, path):
    body, successes, own = OPERATIONS[(method, path)]
    op = doc["paths"][path][method]
    responses = op["responses"]
    content = op.get("requestBody", {}).get("content")
    if body is None:
        assert content is None, f"{method} {path} declares a body it does not take"
    elif isinstance(body, str):
        assert op["requestBody"]["required"] is True
        assert content == {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}
    else:
        assert set(content) == body and all(m.get("schema") for m in content.values())
        assert content["application/xml"]["schema"]["type"] == "string"
    assert {s for s in responses if s.startswith("2")} == set(successes)
    for status, what in successes.items():
        media = responses[status]["content"]
        if "/" in what:
            assert list(media) == [what] and media[what]["schema"] == {"type": "string"}
            assert "Content-Disposition" in responses[status]["headers"]
        else:
            assert media == {"application/json": {"schema": {"$ref": f"#/components/schemas/{what}"}}}
            assert what in doc["components"]["schemas"]
    common = {401, 429, 431, 503} | ({400} if op.get("parameters") or content else set()) | ({413, 415} if content else set())
    declared = {int(s) for s in responses if not s.startswith("2")}
    assert declared == own | common, (method, path, declared ^ (own | common))
    for status in declared:
        assert responses[str(status)]["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_inputs_are_bounded_in_the_document(doc):
    def params(method, path):
        return {p["name"]: p["schema"] for p in doc["paths"][path][method].get("parameters", [])}

    for (method, path) in OPERATIONS:
        for name, schema in params(method, path).items():
            if name in ("dossier_id", "request_id", "ground", "name", "component", "dossier", "party", "flow",
                        "within", "by", "office_hours", "region", "permit_type"):
                found = schema.get("maxLength") or next((s.get("maxLength") for s in schema.get("anyOf", [])
                                                         if s.get("type") == "string"), None)
                assert found, (path, name)
    events = params("get", "/v1/audit/events")
    assert events["after"]["maximum"] == INT_MAX and events["limit"]["maximum"] == 1000
    for name in ("since", "until"):
        assert {"type": "string", "format": "date-time"} in events[name]["anyOf"]
        assert "2999" in events[name]["description"]
    schemas = doc["components"]["schemas"]
    request = schemas["RequestIn"]
    assert request["additionalProperties"] is False
    assert {"type": "string", "format": "date-time"} in request["properties"]["received_at"]["anyOf"]
    assert set(request["properties"]["kind"]["enum"]) == {"access", "rectification", "erasure", "restriction",
                                                         "portability", "objection"}
    assert schemas["AnswerIn"]["properties"]["note"]["anyOf"][0]["maxLength"] == 4000
    assert schemas["ExtendIn"]["properties"]["reason"]["maxLength"] == 2000
    page = schemas["AuditPage"]                       # a list that pages says how
    assert "next_after" in page["required"] and "`after`" in page["properties"]["next_after"]["description"]


# ── every answer is what the document says ───────────────────────────────────────────────────

def _closed(node):
    """The document's schemas with every object closed unless it says it is open."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _closed(value)
    elif isinstance(node, list):
        for value in node:
            _closed(value)
    return node


def _checker(doc):
    strict = _closed(copy.deepcopy(doc))
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(
        {**strict, "$schema": "https://json-schema.org/draft/2020-12/schema"}))

    def check(name: str, body) -> None:
        validator = Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=registry)
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(body)]
        assert not errors, (name, errors[:5])
    return check


def _ok(r, status: int = 200):
    assert r.status_code == status, r.text
    return r.json()


def test_every_answer_is_exactly_what_the_document_says(local_hub):
    hc = local_hub
    check = _checker(hc.http.get("/openapi.json").json())
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    procedure(c)                                         # A granted (Flanders), B refused (Wallonia)
    card = blue_card_clock(c)["dossier_id"]              # C: a Blue Card with DVZ's clock running
    lone = c.apply(samples.synthetic_application(5))     # D: never sent to DVZ
    a_insz = samples.synthetic_application(1)["worker"]["insz"]
    b_passport = samples.synthetic_application(2, "wallonia")["worker"]["passport_number"]
    with hc.hub.engine.connect() as conn:
        a = conn.execute(select(dossiers.c.id).where(dossiers.c.subject_insz == a_insz)).scalar_one()

    # the security officer
    page = _ok(hc.get(OFFICER, "/v1/audit/events", params={"limit": 1000}))
    check("AuditPage", page)
    assert page["items"] and page["next_after"] is None
    paged = _ok(hc.get(OFFICER, "/v1/audit/events", params={"limit": 2}))
    check("AuditPage", paged)
    assert paged["next_after"] == paged["items"][-1]["seq"]
    check("SecurityReportOut", _ok(hc.get(OFFICER, "/v1/audit/report", params={"since": "2000-01-01T00:00:00"})))

    # statistics, in every breakdown (a breakdown by nationality has "<5" cells)
    for by in (None, "permit_type,region", "nationality", "decision_kind,year,quarter"):
        table = _ok(hc.get("dvz", "/v1/stats/applications", params={"by": by} if by else {}))
        check("CountTable", table)
        times = _ok(hc.get("region.flanders", "/v1/stats/processing-times", params={"by": by} if by else {}))
        check("TimeTable", times)
        for row in table["rows"]:
            assert set(row) - set(table["measures"]) - {"permit_type_label"} == set((by or "").split(",")) - {""}
    small = _ok(hc.get("dvz", "/v1/stats/applications", params={"by": "nationality"}))
    assert small["suppression"]["applied"] and any(r[m] == "<5" for r in small["rows"] for m in small["measures"])
    year = _ok(hc.get("dvz", "/v1/stats/applications", params={"year": 2026, "region": "flanders"}))
    check("CountTable", year)
    assert year["filter"] == {"year": 2026, "region": "flanders"}
    csv = hc.get("dvz", "/v1/stats/eurostat", params={"year": 2026})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "year,reason,citizenship,validity,kind,count"

    # clocks, consultations, enrichment
    check("HolderClocks", _ok(hc.get("dvz", "/v1/clocks", params={"within": "400d"})))
    clocks = _ok(hc.get("dvz", f"/v1/dossiers/{card}/clocks"))
    check("DossierClocks", clocks)
    assert clocks["clocks"]
    check("Grounds", _ok(hc.get("inspection.social", "/v1/consultations")))
    check("ConsultationView", _ok(hc.get("inspection.social", f"/v1/consultations/art25.inspection/dossiers/{a}")))
    check("ConsultationView", _ok(hc.get("region.wallonia",
                                         f"/v1/consultations/art26.mutual-recognition/dossiers/{a}")))
    records = _ok(hc.get("dvz", f"/v1/dossiers/{a}/enrichment"))
    check("Records", records)
    assert records["records"]
    check("Refreshed", _ok(hc.post("region.flanders", f"/v1/dossiers/{a}/enrichment", None)))

    # contracts
    check("ContractList", _ok(hc.get("dvz", "/v1/contracts")))
    valid = hc.http.post("/v1/contracts/messages.application/validate", json=samples.synthetic_application(9),
                         headers=hc.as_("dvz"))
    check("Valid", _ok(valid))

    # rights: filed, listed, extended, answered, exported (full, and a dossier of another controller)
    ack = _ok(hc.post("portal", "/v1/rights-requests", {"kind": "access", "concerning": "residence",
                                                         "insz": a_insz, "details": {"text": "a copy"}}), 201)
    check("Acknowledgment", ack)
    portability = _ok(hc.post("portal", "/v1/rights-requests", {"kind": "portability", "concerning": "work",
                                                                 "passport_number": b_passport}), 201)
    lone_insz = samples.synthetic_application(5)["worker"]["insz"]
    other = _ok(hc.post("dvz", "/v1/rights-requests", {"kind": "access", "concerning": "residence",
                                                        "insz": lone_insz, "received_at": "2020-01-06T10:00:00"}),
                201)
    assert other["received_at"] == "2020-01-06T10:00:00+00:00"          # without an offset: UTC
    listed = _ok(hc.get("dvz", "/v1/rights-requests"))
    check("RightsRequests", listed)
    assert {r["id"] for r in listed["requests"]} == {ack["reference"], other["reference"]}
    check("RightsRequestOut", _ok(hc.post("dvz", f"/v1/rights-requests/{ack['reference']}/extend",
                                          {"reason": "several dossiers"})))
    export = hc.get("dvz", f"/v1/rights-requests/{ack['reference']}/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    check("SubjectExport", export.json())
    assert [d["content"] for d in export.json()["dossiers"]] == ["full"]
    elsewhere = _ok(hc.get("dvz", f"/v1/rights-requests/{other['reference']}/export"))
    check("SubjectExport", elsewhere)
    assert [(d["id"], d["content"]) for d in elsewhere["dossiers"]] == [(lone, "not_party")]
    check("SubjectExport", _ok(hc.get("region.wallonia", f"/v1/rights-requests/{portability['reference']}/export")))
    answered = _ok(hc.post("dvz", f"/v1/rights-requests/{ack['reference']}/answer", {"outcome": "granted"}))
    check("RightsRequestOut", answered)
    assert answered["answer"] == {"outcome": "granted", "note": None}
    check("RightsRequests", _ok(hc.get("dvz", "/v1/rights-requests", params={"state": "answered"})))


# ── bounded inputs: a 400 problem, nothing stored ────────────────────────────────────────────

def _count(hc, table, *where) -> int:
    with hc.hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _consulted(hc) -> int:
    return _count(hc, audit_events, audit_events.c.event == "consulted")


def _refusals(hc, party: str) -> list[str]:
    with hc.hub.engine.connect() as conn:
        return conn.execute(select(audit_events.c.reason).where(audit_events.c.event == "rejected",
                                                                audit_events.c.actor == party)).scalars().all()


def _refused(hc, r, status: int, code: str, party: str, where: str | None = None, name: str | None = None) -> dict:
    """A problem with the hub's code (and the issue naming the input), and the refusal on the record
    (the first refusal of a kind is written at once; its repeats are counted, hub/audit/refusals.py)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["error"] == code and body["status"] == status and isinstance(body["detail"], str), body
    if where is not None:
        assert any(i["in"] == where and i.get("name") == name for i in body["issues"]), body
    assert any(reason.split()[0] == code for reason in _refusals(hc, party)), (code, _refusals(hc, party))
    return body


def test_dates_at_the_edge_of_time_are_a_400_and_nothing_is_consulted(local_hub):
    hc = local_hub
    for path in ("/v1/audit/events", "/v1/audit/report"):
        for name in ("since", "until"):
            for value in EDGES + NOT_ISO:
                before = _consulted(hc)
                r = hc.get(OFFICER, path, params={name: value})
                _refused(hc, r, 400, "invalid_request", OFFICER, "query", name)
                assert _consulted(hc) == before, (path, name, value)
            for value in INSIDE:
                assert hc.get(OFFICER, path, params={name: value}).status_code == 200, (path, name, value)


def test_a_received_at_at_the_edge_of_time_is_a_400_and_no_request_is_filed(local_hub):
    hc = local_hub
    for value in EDGES + NOT_ISO + [1700000000, True]:
        r = hc.post("dvz", "/v1/rights-requests", {"kind": "access", "concerning": "work", "insz": STRANGER_INSZ,
                                                   "region": "flanders", "received_at": value})
        _refused(hc, r, 400, "malformed_message", "dvz", "body", "/received_at")
    assert _count(hc, rights_requests) == 0
    assert _count(hc, audit_events, audit_events.c.event == "rights_request") == 0
    r = hc.post("dvz", "/v1/rights-requests", {"kind": "access", "concerning": "work", "insz": STRANGER_INSZ,
                                               "region": "flanders", "received_at": "1900-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    assert r.json()["received_at"] == "1900-01-01T00:00:00+00:00"


def test_an_after_cursor_past_64_bits_is_a_400(local_hub):
    hc = local_hub
    for after in (2 ** 64, 2 ** 63, -1):
        before = _consulted(hc)
        r = hc.get(OFFICER, "/v1/audit/events", params={"after": after})
        _refused(hc, r, 400, "invalid_request", OFFICER, "query", "after")
        assert _consulted(hc) == before
    assert hc.get(OFFICER, "/v1/audit/events", params={"after": INT_MAX}).json() == {"items": [], "next_after": None}


# (party, method, path, parameter): every query parameter that takes text, on each route that has one
NUL_QUERIES = [
    (OFFICER, "/v1/audit/events", "flow"), (OFFICER, "/v1/audit/events", "since"),
    (OFFICER, "/v1/audit/report", "office_hours"), ("dvz", "/v1/rights-requests", "state"),
    ("dvz", "/v1/stats/applications", "by"), ("dvz", "/v1/stats/processing-times", "region"),
    ("dvz", "/v1/stats/eurostat", "year"), ("dvz", "/v1/clocks", "within"),
]


def test_a_nul_in_a_query_parameter_is_a_400_and_nothing_is_consulted(local_hub):
    hc = local_hub
    for party, path, name in NUL_QUERIES:
        before = _consulted(hc)
        r = hc.get(party, path, params={name: "2026\x00"})
        _refused(hc, r, 400, "invalid_request", party, "query", name)
        assert _consulted(hc) == before, (path, name)
    r = hc.http.post("/v1/contracts/messages.application/validate?component=a%00b", content=b"{}",
                     headers={**hc.as_("dvz"), "Content-Type": "application/json"})
    _refused(hc, r, 400, "invalid_request", "dvz", "query", "component")


def test_ids_past_their_length_or_holding_a_nul_are_a_400(local_hub):
    hc = local_hub
    long = "x" * 65
    cases = [("dvz", "get", f"/v1/dossiers/{long}/clocks", "dossier_id"),
             ("dvz", "get", f"/v1/dossiers/{long}/enrichment", "dossier_id"),
             ("dvz", "post", f"/v1/dossiers/{long}/enrichment", "dossier_id"),
             ("inspection.social", "get", f"/v1/consultations/{'g' * 81}/dossiers/d", "ground"),
             ("inspection.social", "get", f"/v1/consultations/art25.inspection/dossiers/{long}", "dossier_id"),
             ("dvz", "get", f"/v1/rights-requests/{long}/export", "request_id"),
             ("dvz", "get", "/v1/dossiers/a%00b/clocks", "dossier_id")]
    for party, method, path, name in cases:
        before = _consulted(hc)
        r = hc.http.request(method, path, headers=hc.as_(party))
        _refused(hc, r, 400, "invalid_request", party, "path", name)
        assert _consulted(hc) == before, path
    r = hc.http.post(f"/v1/rights-requests/{long}/answer", json={"outcome": "granted"}, headers=hc.as_("dvz"))
    _refused(hc, r, 400, "invalid_request", "dvz", "path", "request_id")
    r = hc.http.post(f"/v1/contracts/{'n' * 161}/validate", content=b"{}",
                     headers={**hc.as_("dvz"), "Content-Type": "application/json"})
    _refused(hc, r, 400, "invalid_request", "dvz", "path", "name")


def test_free_text_and_bodies_are_bounded_and_nothing_is_filed(local_hub):
    hc = local_hub
    base = {"kind": "access", "concerning": "work", "insz": STRANGER_INSZ, "region": "flanders"}
    cases = [({**base, "details": {"text": "x" * (16 * 1024)}}, "/details"),
             ({**base, "kind": "a" * 33}, "/kind"),
             ({**base, "passport_number": "P" * 41}, "/passport_number"),
             ({**base, "region": "r" * 41}, "/region"),
             ({**base, "received_at": "soon"}, "/received_at"),
             ({**base, "extra": 1}, "/extra")]
    for body, name in cases:
        r = hc.post("portal", "/v1/rights-requests", body)
        _refused(hc, r, 400, "malformed_message", "portal", "body", name)
    assert _count(hc, rights_requests) == 0
    ref = _ok(hc.post("portal", "/v1/rights-requests", {**base, "concerning": "residence"}), 201)["reference"]
    for path, body, name in [("answer", {"outcome": "granted", "note": "n" * 4001}, "/note"),
                             ("answer", {"outcome": "o" * 33}, "/outcome"),
                             ("answer", {}, "/outcome"),
                             ("extend", {"reason": "r" * 2001}, "/reason"),
                             ("extend", {"reason": ""}, "/reason")]:
        r = hc.post("dvz", f"/v1/rights-requests/{ref}/{path}", body)
        _refused(hc, r, 400, "malformed_message", "dvz", "body", name)
    with hc.hub.engine.connect() as conn:
        row = conn.execute(select(rights_requests).where(rights_requests.c.id == ref)).mappings().one()
    assert row["state"] == "open" and row["extended_at"] is None and row["answer"] is None
    r = hc.http.post(f"/v1/rights-requests/{ref}/answer", content=b'{"outcome": "granted"}',
                     headers={**hc.as_("dvz"), "Content-Type": "text/plain"})
    _refused(hc, r, 415, "unsupported_media_type", "dvz")


def test_state_conflicts_and_unknown_requests_answer_their_declared_problems(local_hub):
    hc = local_hub
    ref = _ok(hc.post("portal", "/v1/rights-requests", {"kind": "erasure", "concerning": "residence",
                                                         "insz": STRANGER_INSZ}), 201)["reference"]
    _ok(hc.post("dvz", f"/v1/rights-requests/{ref}/answer", {"outcome": "refused", "note": "retention"}))
    _refused(hc, hc.post("dvz", f"/v1/rights-requests/{ref}/answer", {"outcome": "granted"}), 409,
             "already_answered", "dvz")
    _refused(hc, hc.post("dvz", f"/v1/rights-requests/{ref}/extend", {"reason": "late"}), 409, "not_extendable", "dvz")
    _refused(hc, hc.post("dvz", "/v1/rights-requests/nope/answer", {"outcome": "granted"}), 404,
             "unknown_request", "dvz")
    _refused(hc, hc.get("dvz", f"/v1/rights-requests/{ref}/export"), 400, "no_export_for_kind", "dvz")
    _refused(hc, hc.get("dvz", "/v1/dossiers/nope/clocks"), 404, "unknown_dossier", "dvz")
    _refused(hc, hc.get("inspection.social", "/v1/consultations/nope/dossiers/d"), 404, "unknown_ground",
             "inspection.social")


def test_the_role_is_checked_before_the_body_or_the_parameters(local_hub):
    hc = local_hub
    r = hc.post("onss", "/v1/rights-requests", {"kind": 1, "unexpected": True})
    _refused(hc, r, 403, "not_rights_channel", "onss")
    r = hc.post("portal", "/v1/rights-requests/x/answer", {"outcome": "o" * 40})
    _refused(hc, r, 403, "not_a_controller", "portal")
    r = hc.get("portal", "/v1/audit/events", params={"since": EDGES[0], "after": 2 ** 64})
    _refused(hc, r, 403, "not_security_officer", "portal")
    r = hc.get("portal", "/v1/stats/applications", params={"year": 99999})
    _refused(hc, r, 403, "not_statistics_recipient", "portal")
    assert hc.http.get("/v1/audit/events", params={"since": EDGES[0]}).status_code == 401


# ── the contract tool: a document read as strictly as any body ───────────────────────────────

def _validate(hc, body: bytes, media: str | None = "application/json", name: str = "messages.application"):
    headers = hc.as_("dvz") | ({"Content-Type": media} if media else {})
    return hc.http.post(f"/v1/contracts/{name}/validate", content=body, headers=headers)


@pytest.fixture
def roomy_hub(tmp_path):
    """A hub that takes bodies of 1 MB (the default test hub stops at 64 KB)."""
    yield from start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{uuid.uuid4().hex}",
                         max_body_bytes=1024 * 1024)


def test_a_deep_or_huge_json_document_is_a_400_problem(local_hub):
    hc = local_hub
    _refused(hc, _validate(hc, b"[" * 30_000 + b"]" * 30_000), 400, "json_too_deep", "dvz")
    _refused(hc, _validate(hc, b"[" * 65 + b"]" * 65), 400, "json_too_deep", "dvz")
    _refused(hc, _validate(hc, b"1" * 5000), 400, "malformed_message", "dvz")
    _refused(hc, _validate(hc, b'{"n": ' + b"9" * 4000 + b"}"), 400, "number_out_of_range", "dvz", "body", "/n")
    _refused(hc, _validate(hc, b'{"n": NaN}'), 400, "malformed_message", "dvz")
    _refused(hc, _validate(hc, b'{"s": "a\\u0000b"}'), 400, "invalid_string", "dvz", "body", "/s")
    _refused(hc, _validate(hc, b"{}", "text/plain"), 415, "unsupported_media_type", "dvz")
    _refused(hc, _validate(hc, b"{}", None), 415, "unsupported_media_type", "dvz")
    _refused(hc, _validate(hc, b"{}", "application/json; charset=latin-1"), 415, "unsupported_media_type", "dvz")


def test_a_100000_deep_json_document_is_a_400_problem(roomy_hub):
    hc = roomy_hub
    _refused(hc, _validate(hc, b"[" * 100_000 + b"]" * 100_000), 400, "json_too_deep", "dvz")
    _refused(hc, _validate(hc, b'{"a":' * 100_000 + b"1" + b"}" * 100_000), 400, "json_too_deep", "dvz")
    xml = (b"<PersonnelFileConsultationRequest><Form>" + b"<a>" * 100_000 + b"</a>" * 100_000
           + b"</Form></PersonnelFileConsultationRequest>")
    r = _validate(hc, xml, "application/xml", "onss.dimona.personnel-file.request")
    body = _refused(hc, r, 422, "contract_violation", "dvz")
    assert body["issues"][0]["rule"] == "well-formedness"


def test_a_contract_violation_is_a_problem_naming_each_fault(local_hub):
    hc = local_hub
    application = samples.synthetic_application(9)
    del application["worker"]["last_name"]
    application["unexpected"] = 1
    text = json.dumps(application, indent=2)
    body = _refused(hc, _validate(hc, text.encode()), 422, "contract_violation", "dvz")
    assert body["type"] == "urn:problem-type:wib-hub:contract_violation"
    assert body["instance"] == "/v1/contracts/messages.application/validate"
    rules = {(i["name"], i["rule"]) for i in body["issues"]}
    assert ("", "additionalProperties") in rules and ("/worker", "required") in rules
    assert all(i["in"] == "body" and i["detail"] and "line" in i for i in body["issues"])
    assert next(i for i in body["issues"] if i["name"] == "/worker")["line"] == \
        text.splitlines().index('  "worker": {') + 1
    _refused(hc, _validate(hc, b"{}", name="no.such"), 404, "unknown_contract", "dvz")


def test_the_catalogue_itself_never_crashes_on_a_deep_or_huge_document():
    """The CLI (`wib-hub contracts validate`) reads with json.loads: the limits are problems there too."""
    catalogue = load_catalogue(default_contracts_dir())
    [deep] = catalogue.validate("messages.application", b"[" * 100_000 + b"]" * 100_000)
    assert deep.rule == "depth"
    [digits] = catalogue.validate("messages.application", b"1" * 5000)
    assert digits.rule == "syntax" and "digits" in digits.message
