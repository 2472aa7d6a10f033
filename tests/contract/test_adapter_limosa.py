"""ONSS Limosa adapter: the real httpx + private_key_jwt client against the simulator over HTTP,
contract tests both ways (limosa-v1.openapi.yaml), HTTP edge cases with respx, conformance, and
property tests of the mapping."""
from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oauth import generate_key
from adapters.onss_limosa import ADAPTER, contract, mapping
from adapters.onss_limosa.client import LimosaClient
from adapters.onss_limosa.enricher import LimosaEnricher, make_enricher
from adapters.onss_limosa.simulator import declaration
from adapters.population import COUNTRIES, SECTORS, Population, Posting
from adapters.simulator import Faults, serve_in_thread
from hub.ports import (
    SimulatorConfig,
    SourceConfig,
    SourceRefused,
    SourceUnavailable,
    Subject,
)

POP = Population()
TODAY = POP.today
PRIVATE, PUBLIC = generate_key()
POSTED = next(i for i, _ in POP.sample(300) if POP.person(i).postings)
PLAIN = next(i for i, _ in POP.sample(300) if not POP.person(i).postings)
FAKE = "http://limosa.test"


@pytest.fixture(scope="module")
def sim():
    running = serve_in_thread("limosa", ADAPTER.make_simulator(SimulatorConfig(POP, Faults(), {"wib-hub": PUBLIC})))
    yield running
    running.stop()


@pytest.fixture
def faults(sim):
    yield sim.injector.faults
    sim.injector.faults.update({"error_rate": 0.0, "malformed_rate": 0.0, "timeout_rate": 0.0, "down": False})


def _config(url: str, **kw) -> SourceConfig:
    return SourceConfig(url, private_key_pem=PRIVATE, **kw)


def _subject(insz: str, posted: bool = True) -> Subject:
    return Subject(insz, TODAY, posted=posted)


def _expected(insz: str) -> list[dict]:
    return sorted(({"declaration_id": p.declaration_id, "employer_country": p.employer_country,
                    "foreign_employer": p.foreign_employer, "belgian_client": p.belgian_client,
                    "start": p.start.isoformat(), "end": p.end.isoformat(), "sector": p.sector,
                    "places_of_work": list(p.workplace_postcodes)} for p in POP.person(insz).postings),
                  key=lambda x: (x["start"], x["declaration_id"]))


# ---- contract tests, both ways, against the simulator ----

def test_requests_and_answers_follow_the_contract(sim):
    seen: list[httpx.Response] = []
    http = httpx.Client(timeout=5, event_hooks={"response": [lambda r: seen.append(r)]})
    client = LimosaClient(_config(sim.url), http)
    decls = client.by_ssin(POSTED)
    one = client.get(decls[0]["id"])
    by_client = client.by_employer(decls[0]["belgianClient"]["enterpriseNumber"])
    assert one == decls[0] and decls[0]["id"] in {d["id"] for d in by_client}
    params = {p["name"]: p["schema"] for p in contract.openapi()["paths"]["/declarations"]["get"]["parameters"]}
    api = [r for r in seen if r.request.url.path.startswith(contract.BASE_PATH)]
    assert len(api) == 3
    for r in api:
        r.read()
        assert r.status_code == 200
        assert r.request.headers["authorization"].startswith("Bearer ")
        if r.request.url.path.endswith("/declarations"):
            for name, value in r.request.url.params.items():
                assert name in params
                assert not contract.errors(params[name]["$ref"].rsplit("/", 1)[1], value)
            assert not contract.errors("DeclarationList", r.json())
        else:
            assert not contract.errors("Declaration", r.json())
    token = [r for r in seen if r.request.url.path == contract.TOKEN_PATH]
    assert len(token) == 1, "the bearer token is reused"
    form = dict(parse_qsl(token[0].request.content.decode()))
    assert form["grant_type"] == "client_credentials" and form["scope"] == contract.SCOPE
    assert form["client_assertion_type"].endswith("jwt-bearer")


def test_simulator_refuses_without_token_and_bad_queries(sim):
    r = httpx.get(sim.url + contract.BASE_PATH + "/declarations", params={"ssin": POSTED})
    assert r.status_code == 401 and not contract.errors("Problem", r.json())
    client = LimosaClient(_config(sim.url))
    for params in ({"ssin": "1"}, {"employer": "2123"}, {"ssin": POSTED, "employer": "0206731645"}):
        with pytest.raises(SourceRefused):
            client._get("/declarations", params)
    with pytest.raises(SourceRefused):
        client.get("not-an-id")
    assert client.get("L1-0000000000") is None


def test_unregistered_client_cannot_get_a_token(sim):
    other, _ = generate_key()
    with pytest.raises(SourceUnavailable, match="token"):
        LimosaClient(SourceConfig(sim.url, private_key_pem=other)).by_ssin(POSTED)


# ---- the enricher ----

def test_enricher_found(sim):
    enricher = ADAPTER.make_enricher(_config(sim.url))
    record = enricher.fetch(_subject(POSTED))
    assert (record.source, record.contract, record.contract_version, record.status) == \
        ("onss.limosa", "limosa", "v1", "found")
    assert not contract.enrichment_errors(record.data)
    assert record.data["declarations"] == _expected(POSTED)
    p = POP.person(POSTED).postings[0]
    assert record.data["posted_on_reference_date"] == (p.start <= TODAY <= p.end)


def test_enricher_no_data_and_applies(sim):
    enricher = make_enricher(_config(sim.url))
    record = enricher.fetch(_subject(PLAIN))
    assert (record.status, record.data) == ("no_data", {"declarations": [], "posted_on_reference_date": False})
    assert enricher.applies(_subject(PLAIN, posted=True))
    assert not enricher.applies(_subject(PLAIN, posted=False))


def test_simulator_faults_are_unavailable(sim, faults):
    enricher = make_enricher(_config(sim.url))
    enricher.client.by_ssin(POSTED)                    # token first: faults hit the API call
    faults.update({"error_rate": 1.0})
    with pytest.raises(SourceUnavailable, match="503"):
        enricher.fetch(_subject(POSTED))
    faults.update({"error_rate": 0.0, "malformed_rate": 1.0})
    with pytest.raises(SourceUnavailable, match="malformed"):
        enricher.fetch(_subject(POSTED))


# ---- HTTP edge cases (respx) ----

def _token_route(router: respx.Router):
    return router.post(FAKE + contract.TOKEN_PATH).mock(side_effect=[
        httpx.Response(200, json={"access_token": f"tok-{n}", "expires_in": 300}) for n in range(1, 5)])


def _list_route(router: respx.Router):
    return router.get(FAKE + contract.BASE_PATH + "/declarations")


def _client() -> LimosaClient:
    return LimosaClient(_config(FAKE, timeout_s=1))


def test_timeout_is_unavailable():
    with respx.mock(assert_all_called=False) as router:
        _token_route(router)
        _list_route(router).mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(SourceUnavailable, match="timed out"):
            _client().by_ssin(POSTED)


def test_5xx_is_unavailable():
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(502, json={"title": "Bad gateway", "status": 502}))
        with pytest.raises(SourceUnavailable, match="502"):
            _client().by_ssin(POSTED)


def test_401_then_refresh_replays_once():
    body = {"declarations": [declaration(POSTED, p) for p in POP.person(POSTED).postings]}
    with respx.mock() as router:
        tokens = _token_route(router)
        api = _list_route(router).mock(side_effect=[httpx.Response(401, json={"title": "x", "status": 401}),
                                                    httpx.Response(200, json=body)])
        assert _client().by_ssin(POSTED) == body["declarations"]
        assert tokens.call_count == 2 and api.call_count == 2
        assert api.calls[0].request.headers["authorization"] == "Bearer tok-1"
        assert api.calls[1].request.headers["authorization"] == "Bearer tok-2"


def test_401_twice_is_unavailable():
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(401, json={"title": "x", "status": 401}))
        with pytest.raises(SourceUnavailable, match="401"):
            _client().by_ssin(POSTED)


def test_malformed_json_is_unavailable():
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(200, content=b'{"declarations": [',
                                                             headers={"content-type": "application/json"}))
        with pytest.raises(SourceUnavailable, match="malformed JSON"):
            _client().by_ssin(POSTED)


@pytest.mark.parametrize("body", [b'{"declarations": [], "n": NaN}', b'{"declarations": [{"ssin": "\\ud800"}]}',
                                  b'{"declarations": [], "declarations": []}', b'{"declarations": [], "n": 1e400}'])
def test_a_value_the_hub_does_not_take_is_unavailable(body):
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(200, content=body,
                                                             headers={"content-type": "application/json"}))
        with pytest.raises(SourceUnavailable, match="malformed JSON"):
            _client().by_ssin(POSTED)


def test_answer_off_contract_is_unavailable():
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(200, json={"declarations": [{"id": "L1-1"}]}))
        with pytest.raises(SourceUnavailable, match="DeclarationList"):
            _client().by_ssin(POSTED)


@pytest.mark.parametrize("status,error", [(400, SourceRefused), (403, SourceRefused), (404, SourceRefused),
                                          (429, SourceUnavailable)])
def test_4xx(status, error):
    with respx.mock() as router:
        _token_route(router)
        _list_route(router).mock(return_value=httpx.Response(status, json={"title": "x", "status": status}))
        with pytest.raises(error):
            _client().by_ssin(POSTED)


def test_connect_error_is_unavailable():
    with respx.mock() as router:
        router.post(FAKE + contract.TOKEN_PATH).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(SourceUnavailable):
            _client().by_ssin(POSTED)


# ---- conformance and registration ----

def test_conformance_passes_against_simulator(sim):
    checks = ADAPTER.conformance(_config(sim.url))
    assert 6 <= len(checks) <= 12
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_adapter_registration():
    assert (ADAPTER.name, ADAPTER.protocol) == ("onss.limosa", "REST")
    for name in ADAPTER.contracts:
        assert contract.path(name).is_file()
    assert LimosaEnricher.contract == "limosa"


# ---- property tests of the mapping ----

@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=20_000), st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 1, 1)))
def test_any_population_person_maps_to_valid_lossless_record(i, day):
    insz, _ = POP.sample(1, start=i)[0]
    declarations = [declaration(insz, p) for p in POP.person(insz).postings]
    for d in declarations:
        assert not contract.errors("Declaration", d)
    record = mapping.to_record(Subject(insz, day, posted=True), declarations, 1.0)
    assert not contract.enrichment_errors(record.data)
    assert record.data["declarations"] == _expected(insz)
    assert record.data["posted_on_reference_date"] == any(
        p.start <= day <= p.end for p in POP.person(insz).postings)


postings = st.builds(
    Posting,
    declaration_id=st.integers(min_value=10**9, max_value=10**10 - 1).map(lambda n: f"L1-{n}"),
    foreign_employer=st.text(min_size=1, max_size=40).filter(str.strip),
    employer_country=st.sampled_from(COUNTRIES),
    belgian_client=st.sampled_from(POP.employer_pool()[:50]),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    end=st.just(date(2030, 12, 31)),
    sector=st.sampled_from(SECTORS),
    workplace_postcodes=st.lists(st.integers(min_value=1000, max_value=9999).map(str), min_size=1, max_size=20)
    .map(tuple))


@settings(max_examples=80, deadline=None)
@given(st.lists(postings, max_size=5, unique_by=lambda p: p.declaration_id),
       st.integers(min_value=0, max_value=400))
def test_mapping_is_lossless_on_kept_fields(items, length):
    items = [Posting(**{**p.__dict__, "end": p.start + timedelta(days=length)}) for p in items]
    declarations = [declaration(POSTED, p) for p in items]
    for d in declarations:
        assert not contract.errors("Declaration", d)
    data = mapping.record_data(declarations, TODAY)
    assert not contract.enrichment_errors(data)
    assert {x["declaration_id"]: x["places_of_work"] for x in data["declarations"]} == \
        {p.declaration_id: list(p.workplace_postcodes) for p in items}
    back = {x["declaration_id"]: (x["employer_country"], x["foreign_employer"], x["belgian_client"],
                                  date.fromisoformat(x["start"]), date.fromisoformat(x["end"]), x["sector"])
            for x in data["declarations"]}
    assert back == {p.declaration_id: (p.employer_country, p.foreign_employer, p.belgian_client, p.start, p.end,
                                       p.sector) for p in items}
