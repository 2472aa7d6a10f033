"""ONSS DmfA adapter: the real zeep client against the simulator over HTTP, contract tests both ways
(WSDL types and the published DmfAConsultationRequest/Answer_20224 XSDs, repo copies), error types,
hardened XML, conformance, and property tests of the mapping."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from starlette.responses import Response

from adapters.onss_dmfa import ADAPTER, contract, mapping
from adapters.onss_dmfa.client import DmfAClient, request_payload
from adapters.onss_dmfa.enricher import DmfAEnricher, make_enricher
from adapters.onss_dmfa.simulator import answer_payload, dmfa_noss_number
from adapters.population import JOINT_COMMITTEES, Population, Quarter
from adapters.simulator import FaultInjector, Faults, serve_in_thread
from adapters.soap import SOAP_ENV, parse_xml
from hub.domain.retry import Backoff, RetryPolicy
from hub.messaging.resilience import Resilient
from hub.ports import (
    SimulatorConfig,
    SourceConfig,
    SourceRefused,
    SourceUnavailable,
    Subject,
)

POP = Population()
TODAY = POP.today
LEGAL = "Cooperation agreement single permit, Art. 14"


def _people() -> tuple[str, str]:
    wanted = set(mapping.last_quarters(TODAY))
    worker = next(i for i, _ in POP.sample(200) if any(q.quarter in wanted for q in POP.person(i).quarters))
    nobody = next(i for i, _ in POP.sample(200) if not POP.person(i).quarters)
    return worker, nobody


WORKER, NOBODY = _people()


@pytest.fixture(scope="module")
def sim():
    running = serve_in_thread("dmfa", ADAPTER.make_simulator(SimulatorConfig(POP, Faults())))
    yield running
    running.stop()


@pytest.fixture
def faults(sim):
    yield sim.injector.faults
    sim.injector.faults.update({"error_rate": 0.0, "malformed_rate": 0.0, "timeout_rate": 0.0, "down": False,
                                "hang_s": 30.0})


class Recording(requests.Session):
    """A session that keeps every request body sent and every answer body received."""

    def __init__(self):
        super().__init__()
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    def send(self, request, **kwargs):
        self.sent.append(request.body if isinstance(request.body, bytes) else (request.body or "").encode())
        response = super().send(request, **kwargs)
        self.received.append(response.content)
        return response


def _body(data: bytes) -> etree._Element:
    return parse_xml(data).find(f"{{{SOAP_ENV}}}Body")[0]


def _subject(insz: str) -> Subject:
    return Subject(insz, TODAY, ticket="t-1")


def _expected(insz: str) -> list[dict]:
    wanted = set(mapping.last_quarters(TODAY))
    return mapping.sort_lines([{"quarter": q.quarter, "employer": q.employer,
                                "nsso_number": "0" + str(dmfa_noss_number(q.nsso_number)).zfill(9),
                                "joint_committee": q.joint_committee, "days": q.days, "hours": q.hours,
                                "gross_pay_cents": q.gross_pay_cents}
                               for q in POP.person(insz).quarters if q.quarter in wanted])


# ---- contract tests, both ways ----

def test_request_and_answer_follow_wsdl_and_published_xsds(sim):
    session = Recording()
    answer = DmfAClient(SourceConfig(sim.url), session).consult(
        WORKER, mapping.last_quarters(TODAY), legal_context=LEGAL, ticket="t-1")
    assert answer.status == "DATA_FOUND"
    request, response = _body(session.sent[-1]), _body(session.received[-1])
    contract.check_body(request)
    contract.check_body(response)
    payload = request.find(f"{{{contract.WSDL_NS}}}request")[0]
    assert payload.tag == "DmfAConsultationRequest"
    assert not contract.xsd_errors(contract.REQUEST_XSD, payload)
    published = response.find(f"{{{contract.WSDL_NS}}}answer")[0]
    assert published.tag == "DmfAConsultationAnswer"
    assert not contract.xsd_errors(contract.ANSWER_XSD, published)
    assert len(published.findall("Form")) == len(_expected(WORKER))


def test_no_data_answer_follows_wsdl(sim):
    session = Recording()
    answer = DmfAClient(SourceConfig(sim.url), session).consult(NOBODY, ["2026Q3"], legal_context=LEGAL)
    assert (answer.status, answer.payload) == ("NO_DATA_FOUND", None)
    response = _body(session.received[-1])
    contract.check_body(response)
    assert response.find(f"{{{contract.WSDL_NS}}}answer") is None


def test_request_payload_for_one_employer_is_valid():
    payload = request_payload(WORKER, ["2026Q3", "2025Q4"], employer="0206731645")
    assert not contract.xsd_errors(contract.REQUEST_XSD, payload)
    assert [f.findtext("EmployerDeclarationId/Quarter") for f in payload] == ["20263", "20254"]


def test_wsdl_is_served(sim):
    r = requests.get(sim.url + contract.SERVICE_PATH, params={"wsdl": ""}, timeout=5)
    assert r.status_code == 200 and b"consultDmfA" in r.content and sim.url.encode() in r.content


# ---- the enricher ----

def test_enricher_found(sim):
    enricher = ADAPTER.make_enricher(SourceConfig(sim.url))
    record = enricher.fetch(_subject(WORKER))
    assert (record.source, record.contract, record.contract_version, record.status) == \
        ("onss.dmfa", "dmfa-consultation", "20224", "found")
    assert not contract.enrichment_errors(record.data)
    assert record.data["quarters"] == _expected(WORKER)
    assert enricher.applies(_subject(WORKER))


def test_enricher_no_data(sim):
    record = make_enricher(SourceConfig(sim.url)).fetch(_subject(NOBODY))
    assert (record.status, record.data) == ("no_data", {"quarters": []})


def test_enricher_behind_resilient(sim, faults):
    faults.update({"error_rate": 1.0})
    wrapped = Resilient(make_enricher(SourceConfig(sim.url)), retry=RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.05, cap_s=1.0)), sleep=lambda s: None)
    with pytest.raises(SourceUnavailable):
        wrapped.fetch(_subject(WORKER))
    faults.update({"error_rate": 0.0})
    assert wrapped.fetch(_subject(WORKER)).status == "found"


# ---- errors are types ----

def test_server_fault_is_unavailable(sim, faults):
    faults.update({"error_rate": 1.0})
    with pytest.raises(SourceUnavailable, match="server fault"):
        make_enricher(SourceConfig(sim.url)).fetch(_subject(WORKER))


def test_client_fault_is_refused(sim):
    client = DmfAClient(SourceConfig(sim.url))
    with pytest.raises(SourceRefused, match="refused"):
        client.consult(WORKER, ["2026Q3"], legal_context="x" * 65)


def test_malformed_answer_is_unavailable(sim, faults):
    faults.update({"malformed_rate": 1.0})
    with pytest.raises(SourceUnavailable, match="malformed"):
        make_enricher(SourceConfig(sim.url)).fetch(_subject(WORKER))


def test_timeout_is_unavailable(sim, faults):
    faults.update({"timeout_rate": 1.0, "hang_s": 2.0})
    with pytest.raises(SourceUnavailable):
        make_enricher(SourceConfig(sim.url, timeout_s=0.3)).fetch(_subject(WORKER))


def test_connection_refused_is_unavailable():
    from adapters.simulator import free_port
    with pytest.raises(SourceUnavailable, match="unreachable"):
        make_enricher(SourceConfig(f"http://127.0.0.1:{free_port()}", timeout_s=1)).fetch(_subject(WORKER))


def _serve_bytes(body: bytes, status: int = 200):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await Response(body, status_code=status, media_type="text/xml")(scope, receive, send)
    return serve_in_thread("dmfa-raw", FaultInjector(app))


def test_doctype_answer_is_refused_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    ns = contract.WSDL_NS
    xxe = (f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'
           f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><tns:consultDmfAResponse xmlns:tns="{ns}">'
           f'<tns:legalContext>&x;</tns:legalContext></tns:consultDmfAResponse></soapenv:Body></soapenv:Envelope>')
    running = _serve_bytes(xxe.encode())
    try:
        with pytest.raises(SourceUnavailable) as caught:
            DmfAClient(SourceConfig(running.url)).consult(WORKER, ["2026Q3"], legal_context=LEGAL)
        assert "TOP-SECRET-MARKER" not in str(caught.value)
        assert "DOCTYPE" in str(caught.value) or "DTD" in str(caught.value)
    finally:
        running.stop()


def test_answer_invalid_against_published_xsd_is_unavailable(sim):
    """A DATA_FOUND answer whose payload breaks DmfAConsultationAnswer_20224.xsd."""
    session = Recording()
    DmfAClient(SourceConfig(sim.url), session).consult(WORKER, ["2026Q3", "2026Q2"], legal_context=LEGAL)
    good = session.received[-1]
    bad = good.replace(b"<Identification>DMFAREQ</Identification>", b"<Identification>WRONG</Identification>", 1)
    running = _serve_bytes(bad)
    try:
        with pytest.raises(SourceUnavailable, match="published XSD"):
            DmfAClient(SourceConfig(running.url)).consult(WORKER, ["2026Q3"], legal_context=LEGAL)
    finally:
        running.stop()


def test_http_404_is_refused_and_503_unavailable():
    for status, error in ((404, SourceRefused), (503, SourceUnavailable)):
        running = _serve_bytes(b"", status)
        try:
            with pytest.raises(error):
                DmfAClient(SourceConfig(running.url)).consult(WORKER, ["2026Q3"], legal_context=LEGAL)
        finally:
            running.stop()


# ---- the simulator refuses unsafe or invalid requests ----

@pytest.mark.parametrize("mutate", [
    lambda b: b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + re.sub(rb"^<\?xml[^>]*\?>", b"", b),
    lambda b: b[:-30],
    lambda b: b.replace(b"DMFAREQ", b"DMFAXXX"),
])
def test_simulator_answers_client_fault(sim, mutate):
    session = Recording()
    DmfAClient(SourceConfig(sim.url), session).consult(WORKER, ["2026Q3"], legal_context=LEGAL)
    sent = session.sent[-1]
    r = requests.post(sim.url + contract.SERVICE_PATH, data=mutate(sent),
                      headers={"Content-Type": "text/xml"}, timeout=5)
    assert r.status_code == 500
    assert parse_xml(r.content).findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultcode") == "soapenv:Client"


# ---- conformance and registration ----

def test_conformance_passes_against_simulator(sim):
    checks = ADAPTER.conformance(SourceConfig(sim.url))
    assert 6 <= len(checks) <= 12
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_adapter_registration():
    assert (ADAPTER.name, ADAPTER.protocol) == ("onss.dmfa", "SOAP")
    for name in ADAPTER.contracts:
        assert contract.path(name).is_file()
    assert isinstance(DmfAEnricher.name, str)


# ---- property tests of the mapping ----

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=20_000))
def test_any_population_person_maps_to_valid_lossless_record(i):
    insz, _ = POP.sample(1, start=i)[0]
    person = POP.person(insz)
    payload = answer_payload(insz, list(person.quarters), "ref")
    if person.quarters:
        assert not contract.xsd_errors(contract.ANSWER_XSD, payload)
    record = mapping.to_record(_subject(insz), mapping.from_answer(payload, insz), 1.0)
    assert not contract.enrichment_errors(record.data)
    assert record.data["quarters"] == _expected(insz)
    assert record.status == ("found" if record.data["quarters"] else "no_data")


quarters = st.builds(
    Quarter,
    quarter=st.sampled_from(mapping.last_quarters(TODAY)),
    employer=st.sampled_from(POP.employer_pool()[:50]),
    nsso_number=st.integers(min_value=100_006, max_value=199_999_934).map(lambda n: str(n).zfill(10)),
    joint_committee=st.sampled_from(JOINT_COMMITTEES + ("200.01", "124.01.02")),
    days=st.integers(min_value=0, max_value=92),
    hours=st.integers(min_value=0, max_value=99_999).map(lambda h: h / 100),
    gross_pay_cents=st.integers(min_value=0, max_value=99_999_999_999))


@settings(max_examples=60, deadline=None)
@given(st.lists(quarters, max_size=6, unique_by=lambda q: (q.quarter, q.employer)))
def test_mapping_is_lossless_on_kept_fields(lines):
    insz = WORKER
    payload = answer_payload(insz, lines, "ref")
    if lines:
        assert not contract.xsd_errors(contract.ANSWER_XSD, payload)
    got = mapping.record_data(mapping.from_answer(payload, insz), mapping.last_quarters(TODAY))
    assert not contract.enrichment_errors(got)
    want = mapping.sort_lines([{"quarter": q.quarter, "employer": q.employer, "nsso_number": q.nsso_number,
                                "joint_committee": q.joint_committee, "days": q.days, "hours": q.hours,
                                "gross_pay_cents": q.gross_pay_cents} for q in lines])
    assert got["quarters"] == want


@given(st.dates(min_value=date(2004, 1, 1), max_value=date(2099, 12, 31)))
def test_last_quarters_are_the_four_before_the_reference_quarter(day):
    labels = mapping.last_quarters(day)
    assert len(set(labels)) == 4 and labels == sorted(labels, reverse=True)
    first_of_quarter = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    assert labels[0] == mapping.quarter_label(
        f"{(first_of_quarter - timedelta(days=1)).year}{((first_of_quarter - timedelta(days=1)).month - 1) // 3 + 1}")
