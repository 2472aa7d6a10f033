"""ONSS Dimona adapter: contract tests both ways (OpenAPI components, published ONSS XSDs), HTTP edge
cases (respx), bulk == one-by-one, the conformance suite, and a property test of the mapping."""
from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import pytest
import requests
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oauth import generate_key
from adapters.onss_dimona import ADAPTER, DimonaEnricher, contract
from adapters.onss_dimona import client as client_mod
from adapters.onss_dimona.client import (
    DimonaClient,
    PersonnelFileClient,
    personnel_file_request,
)
from adapters.onss_dimona.mapping import from_personnel_file, from_rest, to_record
from adapters.onss_dimona.simulator import PUBLISHED_JOINT_COMMITTEES, rest_period
from adapters.population import JOINT_COMMITTEES, Employment, Population
from adapters.simulator import Faults, serve_in_thread
from hub.domain.identifiers import make_enterprise_number
from hub.domain.retry import Backoff, RetryPolicy
from hub.messaging.resilience import Resilient
from hub.ports import (
    SimulatorConfig,
    SourceConfig,
    SourceRefused,
    SourceUnavailable,
    Subject,
)

POP = Population(2026)
KEY, PUBLIC = generate_key()


def _start(faults: Faults | None = None):
    app = ADAPTER.make_simulator(SimulatorConfig(POP, faults or Faults(), {"wib-hub": PUBLIC}))
    return serve_in_thread("onss.dimona", app)


@pytest.fixture(scope="module")
def sim():
    running = _start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def config(sim) -> SourceConfig:
    return SourceConfig(sim.url, timeout_s=5.0, private_key_pem=KEY)


@pytest.fixture(scope="module")
def people() -> dict[str, str]:
    employed = next(i for i, _ in POP.sample(200) if POP.person(i).employments)
    running = next(i for i, _ in POP.sample(200) if POP.person(i).employments_at(POP.today))
    none = next(i for i, _ in POP.sample(200) if not POP.person(i).employments)
    return {"employed": employed, "running": running, "none": none}


def _token(config: SourceConfig) -> dict[str, str]:
    from adapters.oauth import ASSERTION_TYPE, client_assertion
    url = config.url + "/REST/oauth/v5/token"
    r = httpx.post(url, data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                              "client_assertion": client_assertion("wib-hub", KEY, url)})
    assert r.status_code == 200
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# ---- contract tests: what the client sends ----

def test_client_requests_validate_against_openapi(config, people):
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = DimonaClient(config, http)
    client.periods_for(people["employed"])
    client.periods_for(people["employed"], POP.today, {"enterpriseNumber": make_enterprise_number(1234567)})
    client.periods_for_many([i for i, _ in POP.sample(30)], POP.today)
    client.declarations_for(people["employed"])
    searches = [r for r in sent if r.url.path.endswith("/periods/search")]
    assert len(searches) == 3
    for r in searches:
        assert contract.errors("PeriodSearch", json.loads(r.content)) == []
    decl = next(r for r in sent if r.url.path.endswith("/declarations/search"))
    assert contract.errors("DeclarationSearch", json.loads(decl.content)) == []
    assert all(r.headers["authorization"].startswith("Bearer ") for r in sent if "/REST/dimona/" in r.url.path)
    assert contract.errors("PeriodSearch", {"ssins": ["1" * 11] * 2}) != []          # unique items
    assert contract.errors("PeriodSearch", {"ssins": [f"{i:011d}" for i in range(501)]}) != []


def test_soap_request_validates_against_published_xsd(config, people):
    employer = POP.person(people["employed"]).employments[0].employer
    payload = personnel_file_request(employer, None, "ticket-1", start=date(2025, 1, 1), end=POP.today)
    assert contract.xsd_errors(contract.REQUEST_XSD, payload) == []
    envelope = PersonnelFileClient(config).message(payload, "ticket-1")
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    sent = body.find(f"{{{contract.WSDL_NS}}}consultPersonnelFileRequest/{{{contract.WSDL_NS}}}request")[0]
    assert sent.tag == "PersonnelFileConsultationRequest"
    assert contract.xsd_errors(contract.REQUEST_XSD, sent) == []
    with pytest.raises(contract.ContractViolation):
        personnel_file_request(employer, "0987654300", "t")          # beyond the published NOSS range


# ---- contract tests: what the simulator answers ----

def test_simulator_rest_answers_validate(config, people):
    headers = _token(config)
    base = config.url + "/REST/dimona/v2"
    with httpx.Client(headers=headers) as http:
        single = http.post(base + "/periods/search", json={"ssin": people["employed"]})
        assert single.status_code == 200 and contract.errors("PeriodSearchResult", single.json()) == []
        ssins = [i for i, _ in POP.sample(40)]
        bulk = http.post(base + "/periods/search", json={"ssins": ssins})
        assert contract.errors("PeriodSearchResult", bulk.json()) == []
        assert [i["ssin"] for i in bulk.json()["items"]] == ssins
        period = single.json()["items"][0]["periods"][0]
        got = http.get(base + f"/periods/{period['id']}")
        assert got.status_code == 200 and got.json() == period and contract.errors("Period", got.json()) == []
        decls = http.post(base + "/declarations/search", json={"ssin": people["employed"]})
        assert decls.status_code == 200 and contract.errors("DeclarationList", decls.json()) == []
        decl = http.get(base + f"/declarations/{decls.json()['items'][0]['declarationId']}")
        assert decl.status_code == 200 and contract.errors("Declaration", decl.json()) == []
        for response, status in ((http.get(base + "/periods/000000000001"), 404),
                                 (http.get(base + "/declarations/1"), 404),
                                 (http.post(base + "/periods/search", json={"ssin": "12345678901"}), 400),
                                 (http.post(base + "/periods/search", json={"nope": 1}), 400),
                                 (httpx.post(base + "/periods/search", json={"ssin": people["employed"]}), 401)):
            assert response.status_code == status
            assert response.headers["content-type"].startswith("application/problem+json")
            assert contract.errors("Problem", response.json()) == []


def test_reference_date_returns_running_periods(config, people):
    client = DimonaClient(config)
    person = POP.person(people["running"])
    running = {e.period_id for e in person.employments_at(POP.today)}
    assert {p["id"] for p in client.periods_for(person.insz, POP.today)} == running
    assert {p["id"] for p in client.periods_for(person.insz)} == {e.period_id for e in person.employments}


def test_simulator_soap_answer_validates_and_maps(config, people):
    person = POP.person(people["employed"])
    employment = person.employments[0]
    soap = PersonnelFileClient(config, requests.Session())
    answer = soap.consult(employment.employer, None, ticket="t-42")
    assert answer is not None and contract.xsd_errors(contract.ANSWER_XSD, answer) == []
    mapped = from_personnel_file(answer)
    period = next(p for p in mapped[person.insz] if p["period_id"] == employment.period_id)
    assert (period["employer"], period["start"], period["end"], period["worker_type"]) == (
        employment.employer, employment.start.isoformat(),
        employment.end.isoformat() if employment.end else None, employment.worker_type)
    expected_jc = employment.joint_committee if employment.joint_committee in PUBLISHED_JOINT_COMMITTEES else None
    assert period["joint_committee"] == expected_jc
    assert soap.consult(make_enterprise_number(1_000_001), None, ticket="t-43") is None     # NO_DATA_FOUND


def test_soap_client_fault_is_refused_and_outage_unavailable(config, people):
    soap = PersonnelFileClient(config, requests.Session())
    employer = POP.person(people["employed"]).employments[0].employer
    with pytest.raises(SourceRefused):
        soap.consult(employer, None, ticket="t", legal_context="")   # empty legal context: Client fault
    for faults in (Faults(down=True), Faults(malformed_rate=1.0), Faults(timeout_rate=1.0, hang_s=1.5)):
        broken = _start(faults)
        try:
            with pytest.raises(SourceUnavailable):
                PersonnelFileClient(SourceConfig(broken.url, timeout_s=0.5)).consult(employer, None, ticket="t")
        finally:
            broken.stop()


def test_wsdl_served_with_the_service_address(config):
    r = httpx.get(config.url + "/soap/PersonnelFileConsultation?wsdl")
    assert r.status_code == 200 and contract.WSDL_ADDRESS.encode() not in r.content
    assert f'location="{config.url}/soap/PersonnelFileConsultation"'.encode() in r.content


# ---- HTTP edge cases ----

FAKE = "https://dimona.test"
SEARCH = FAKE + "/REST/dimona/v2/periods/search"
TOKEN = FAKE + "/REST/oauth/v5/token"


def _fake_client() -> DimonaClient:
    return DimonaClient(SourceConfig(FAKE, timeout_s=1.0, private_key_pem=KEY), httpx.Client())


def _token_route(mock, tokens=("t1",)):
    return mock.post(TOKEN).mock(side_effect=[httpx.Response(200, json={"access_token": t, "expires_in": 300})
                                              for t in tokens])


@pytest.mark.parametrize("side_effect, error", [
    (httpx.ReadTimeout("slow"), SourceUnavailable),
    (httpx.ConnectError("refused"), SourceUnavailable),
    (httpx.Response(503, json={"title": "Service unavailable", "status": 503}), SourceUnavailable),
    (httpx.Response(200, content=b'{"items": [{"ssin"'), SourceUnavailable),
    (httpx.Response(200, content=b'{"items": [], "total": NaN}'), SourceUnavailable),         # values the hub
    (httpx.Response(200, content=b'{"items": [{"ssin": "a\\u0000"}]}'), SourceUnavailable),   # does not take
    (httpx.Response(200, content=b'{"items": [], "items": []}'), SourceUnavailable),
    (httpx.Response(200, json={"items": [{"ssin": "x"}]}), SourceUnavailable),      # not the contract
    (httpx.Response(429, json={"title": "Too many", "status": 429}), SourceUnavailable),
    (httpx.Response(400, json={"title": "Bad request", "status": 400, "detail": "bad INSZ"}), SourceRefused),
    (httpx.Response(403, json={"title": "Forbidden", "status": 403}), SourceRefused),
])
def test_http_edge_cases(side_effect, error, people):
    with respx.mock:
        _token_route(respx)
        respx.post(SEARCH).mock(side_effect=[side_effect])
        with pytest.raises(error):
            _fake_client().periods_for(people["employed"])


def test_401_then_token_refresh_succeeds(people):
    ssin = people["employed"]
    period = rest_period(ssin, POP.person(ssin).employments[0])

    def search(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer t2":
            return httpx.Response(200, json={"items": [{"ssin": ssin, "periods": [period]}]})
        return httpx.Response(401, json={"title": "Unauthorized", "status": 401})

    with respx.mock:
        tokens = _token_route(respx, ("t1", "t2"))
        respx.post(SEARCH).mock(side_effect=search)
        assert _fake_client().periods_for(ssin) == [period]
        assert tokens.call_count == 2


def test_token_endpoint_refusal_is_refused_and_outage_unavailable(people):
    for status, error in ((401, SourceRefused), (503, SourceUnavailable)):
        with respx.mock:
            respx.post(TOKEN).mock(return_value=httpx.Response(status, json={"error": "x"}))
            with pytest.raises(error):
                _fake_client().periods_for(people["employed"])


# ---- enricher: bulk == one by one ----

def test_bulk_equals_one_by_one(config, monkeypatch):
    monkeypatch.setattr(client_mod, "BULK_LIMIT", 7)                 # several chunks
    enricher = DimonaEnricher(config)
    subjects = [Subject(insz, POP.today - timedelta(days=i * 11), employer=POP.person(insz).employments[0].employer
                        if POP.person(insz).employments and i % 2 else None)
                for i, (insz, _) in enumerate(POP.sample(40))]
    many = enricher.fetch_many(subjects)
    one = [enricher.fetch(s) for s in subjects]
    assert [(r.status, r.data) for r in many] == [(r.status, r.data) for r in one]
    assert {r.status for r in many} == {"found", "no_data"}
    for r in many:
        assert r.source == "onss.dimona" and (r.contract, r.contract_version) == ("dimona-rest", "v2")
        assert list(contract.enrichment_validator().iter_errors(r.data)) == []


def test_enricher_flags_and_resilience(config, people):
    person = POP.person(people["running"])
    current = person.employments_at(POP.today)[0]
    record = DimonaEnricher(config).fetch(Subject(person.insz, POP.today, employer=current.employer))
    assert record.status == "found" and record.data["active_on_reference_date"] and record.data["with_applicant_employer"]
    assert DimonaEnricher(config).fetch(Subject(people["none"], POP.today)).status == "no_data"
    down = _start(Faults(down=True))
    try:
        resilient = Resilient(DimonaEnricher(SourceConfig(down.url, private_key_pem=KEY)),
                              RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.0)), sleep=lambda s: None)
        with pytest.raises(SourceUnavailable):
            resilient.fetch(Subject(person.insz, POP.today))
    finally:
        down.stop()


# ---- conformance ----

def test_conformance_passes_against_the_simulator(config):
    checks = ADAPTER.conformance(config)
    assert len(checks) >= 10
    assert [c for c in checks if not c.passed] == []


def test_conformance_fails_against_malformed_answers():
    broken = _start(Faults(malformed_rate=1.0))
    try:
        checks = ADAPTER.conformance(SourceConfig(broken.url, timeout_s=2, private_key_pem=KEY))
    finally:
        broken.stop()
    failed = [c for c in checks if not c.passed]
    assert len(failed) >= len(checks) - 1 and all(c.detail for c in failed)


# ---- property tests of the mapping ----

def _canonical(e: Employment) -> dict:
    return {"period_id": e.period_id, "employer": e.employer, "nsso_number": e.nsso_number,
           "start": e.start.isoformat(), "end": e.end.isoformat() if e.end else None,
           "joint_committee": e.joint_committee, "worker_type": e.worker_type, "postcode": e.postcode}


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, 50_000), offset=st.integers(-2_000, 400))
def test_population_maps_to_valid_lossless_record(index, offset):
    insz = POP.sample(1, start=index)[0][0]
    person = POP.person(insz)
    day = POP.today + timedelta(days=offset)
    employer = person.employments[-1].employer if person.employments else None
    record = to_record(Subject(insz, day, employer=employer),
                       [from_rest(rest_period(insz, e)) for e in reversed(person.employments)], 0.0, 0.001)
    assert list(contract.enrichment_validator().iter_errors(record.data)) == []
    assert record.data["periods"] == [_canonical(e) for e in sorted(person.employments,
                                                                           key=lambda e: (e.start, e.period_id))]
    assert record.status == ("found" if person.employments else "no_data")
    assert record.data["active_on_reference_date"] == bool(person.employments_at(day))
    assert record.data["with_applicant_employer"] == any(e.employer == employer for e in person.employments_at(day))


employments = st.builds(
    Employment,
    period_id=st.integers(10**11, 10**12 - 1).map(str),
    employer=st.integers(0, 19_999_999).map(make_enterprise_number),
    nsso_number=st.integers(0, 10**9 - 1).map(lambda n: f"0{n:09d}"),
    start=st.dates(date(2000, 1, 1), date(2030, 12, 31)),
    end=st.none() | st.dates(date(2000, 1, 1), date(2031, 12, 31)),
    joint_committee=st.sampled_from(JOINT_COMMITTEES + ("XXX", "200.01")),
    worker_type=st.sampled_from(("OTH", "STU", "FLX", "IVT", "A17")),
    postcode=st.integers(1000, 9999).map(str),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(employments, max_size=6), day=st.dates(date(2000, 1, 1), date(2031, 12, 31)))
def test_any_rest_periods_map_to_valid_record(items, day):
    insz = POP.sample(1)[0][0]
    periods = [rest_period(insz, e) for e in items]
    assert all(contract.errors("Period", p) == [] for p in periods)
    record = to_record(Subject(insz, day), [from_rest(p) for p in periods], 0.0, 0.0)
    assert list(contract.enrichment_validator().iter_errors(record.data)) == []
    assert sorted(p["period_id"] for p in record.data["periods"]) == sorted(e.period_id for e in items)
    assert record.data["with_applicant_employer"] is False
