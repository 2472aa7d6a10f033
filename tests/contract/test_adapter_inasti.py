"""INASTI SelfEmployed v2 adapter: contracts, client against the simulator, faults, hostile XML,
conformance (the property tests of the mapping and of SsinType: test_adapter_inasti_properties.py)."""
from __future__ import annotations

import http.server
import threading
import uuid
from datetime import date, timedelta

import pytest
import requests
from lxml import etree
from zeep.plugins import HistoryPlugin

from adapters.inasti import ADAPTER, SelfEmployedEnricher
from adapters.inasti import contract as c
from adapters.inasti import simulator as simmod
from adapters.inasti.client import (
    InvalidAnswer,
    SelfEmployedClient,
    ServerFault,
    SourceFault,
    endpoint,
)
from adapters.inasti.conformance import _request_xml, _wrong_check_digits
from adapters.simulator import Faults, serve_in_thread
from adapters.soap import SOAP_ENV
from hub.domain.retry import Backoff, RetryPolicy
from hub.messaging.resilience import Resilient
from hub.ports import (
    SimulatorConfig,
    SourceConfig,
    SourceRefused,
    SourceUnavailable,
    Subject,
)
from tests.support.inasti import POP, XSD

SAMPLE = [insz for insz, _ in POP.sample(300)]


WITH_CAREER = [i for i in SAMPLE if POP.person(i).self_employed]


WITHOUT = [i for i in SAMPLE if not POP.person(i).self_employed]


DAY = POP.today


@pytest.fixture(scope="module")
def sim():
    running = serve_in_thread("inasti", simmod.make_simulator(SimulatorConfig(POP, Faults())))
    yield running
    running.stop()


@pytest.fixture
def faults(sim):
    yield sim.injector.faults
    sim.injector.faults.update({"down": False, "error_rate": 0.0, "timeout_rate": 0.0, "malformed_rate": 0.0,
                                "hang_s": 30.0})


def body_child(envelope: etree._Element) -> etree._Element:
    return envelope.find(f"{{{SOAP_ENV}}}Body")[0]


def client_for(sim, history=None, timeout_s=5.0, session=None) -> SelfEmployedClient:
    return SelfEmployedClient(endpoint(sim.url), session or requests.Session(), timeout_s,
                              plugins=[history] if history else [])


def test_contract_files_load_and_adapter_declares_them():
    assert ADAPTER.name == "inasti.self-employed" and ADAPTER.protocol == "SOAP"
    for name in ADAPTER.contracts:
        assert (c.CONTRACTS_DIR / name).is_file(), name
    schema = c.enrichment_schema()
    c.enrichment_validator()  # checks the schema itself (Draft 2020-12)
    props = [schema["properties"][k] for k in schema["properties"]]
    props += list(schema["properties"]["career_periods"]["items"]["properties"].values())
    assert all(p["x-data-category"] == "social_security" for p in props)


def test_client_requests_and_simulator_answers_validate_against_xsd(sim):
    history = HistoryPlugin()
    client = client_for(sim, history)
    subject = Subject(WITH_CAREER[0], DAY, self_employed=True, ticket="T-1",
                      legal_context="Cooperation agreement single permit, Art. 14")
    answer = client.consult(subject)
    sent, received = body_child(history.last_sent["envelope"]), body_child(history.last_received["envelope"])
    XSD.validate(sent)
    XSD.validate(received)
    assert sent.tag == c.REQUEST and received.tag == c.RESPONSE
    assert sent.findtext("legalContext") == subject.legal_context
    assert sent.findtext("informationCustomer/ticket") == "T-1"
    assert received.findtext("informationCustomer/ticket") == "T-1"
    assert received.findtext("legalContext") == subject.legal_context
    uuid.UUID(received.findtext("informationCBSS/ticketCBSS"))
    assert answer.body["status"]["value"] == "DATA_FOUND"
    # with a period, and for a person without a career
    client.consult(Subject(WITHOUT[0], DAY), period=(date(2020, 1, 1), DAY))
    sent, received = body_child(history.last_sent["envelope"]), body_child(history.last_received["envelope"])
    XSD.validate(sent)
    XSD.validate(received)
    assert sent.findtext("period/begin") == "2020-01-01"


def test_empty_ticket_becomes_a_uuid(sim):
    history = HistoryPlugin()
    client_for(sim, history).consult(Subject(WITHOUT[1], DAY))
    uuid.UUID(body_child(history.last_sent["envelope"]).findtext("informationCustomer/ticket"))


def test_every_simulator_answer_validates(sim):
    session = requests.Session()
    for insz in SAMPLE[:60]:
        response = session.post(endpoint(sim.url), data=_request_xml(insz))
        assert response.status_code == 200
        XSD.validate(body_child(etree.fromstring(response.content)))
    for bad in ("ABC", _wrong_check_digits(SAMPLE[0])):
        response = session.post(endpoint(sim.url), data=_request_xml(bad))
        fault = body_child(etree.fromstring(response.content))
        assert response.status_code == 500 and fault.findtext("faultcode") == "soapenv:Client"
        XSD.validate(fault.find("detail")[0])
    XSD.validate(etree.fromstring(simmod.server_fault_body()).find(".//detail")[0])


def test_wsdl_and_schemas_served(sim):
    wsdl = requests.get(endpoint(sim.url) + "?wsdl")
    assert wsdl.status_code == 200 and endpoint(sim.url).encode() in wsdl.content
    for served, name in c.SERVED_FILES.items():
        assert requests.get(sim.url + served).content == c.path(name).read_bytes()
    assert requests.get(endpoint(sim.url)).status_code == 404


def test_data_found_record(sim):
    enricher = ADAPTER.make_enricher(SourceConfig(sim.url))
    assert isinstance(enricher, SelfEmployedEnricher)
    insz = WITH_CAREER[0]
    person = POP.person(insz)
    record = enricher.fetch(Subject(insz, DAY, self_employed=True))
    assert (record.source, record.contract, record.contract_version, record.status) == \
        ("inasti.self-employed", "self-employed", "v2", "found")
    c.enrichment_validator().validate(record.data)
    assert record.data["social_insurance_fund"] == person.social_insurance_fund
    assert record.data["contributions_paid"] == person.contributions_paid
    assert [(p["start"], p["occupation"], p["kind"]) for p in record.data["career_periods"]] == \
        [(p.start.isoformat(), p.kind, p.status) for p in person.self_employed]
    assert record.elapsed_ms > 0 and record.to_json()["status"] == "found"


def test_no_data_found_record(sim):
    enricher = ADAPTER.make_enricher(SourceConfig(sim.url))
    record = enricher.fetch(Subject(WITHOUT[0], DAY, self_employed=True))
    assert record.status == "no_data"
    assert record.data == {"career_periods": [], "social_insurance_fund": None, "contributions_paid": None}
    c.enrichment_validator().validate(record.data)


def test_applies_only_to_self_employed():
    enricher = ADAPTER.make_enricher(SourceConfig("http://127.0.0.1:9"))
    assert enricher.applies(Subject(WITH_CAREER[0], DAY, self_employed=True))
    assert not enricher.applies(Subject(WITH_CAREER[0], DAY))


def test_server_fault_is_unavailable(sim, faults):
    faults.update({"error_rate": 1.0})
    with pytest.raises(ServerFault) as err:
        client_for(sim).consult(Subject(WITH_CAREER[0], DAY))
    assert isinstance(err.value, SourceUnavailable) and err.value.reason_code == "SERVICE_UNAVAILABLE"


def test_client_fault_is_refused(sim):
    with pytest.raises(SourceFault) as err:
        client_for(sim).consult(Subject(_wrong_check_digits(WITHOUT[0]), DAY))
    assert isinstance(err.value, SourceRefused) and err.value.reason_code == "INVALID_SSIN"
    with pytest.raises(SourceFault):
        client_for(sim).consult(Subject(WITHOUT[0], DAY), period=(DAY, DAY - timedelta(days=1)))


def test_request_invalid_against_xsd_is_refused_before_sending(sim):
    sent = []

    class Counting(requests.Session):
        def send(self, request, **kwargs):
            sent.append(request)
            return super().send(request, **kwargs)

    with pytest.raises(SourceRefused):
        client_for(sim, session=Counting()).consult(Subject("12345", DAY))
    with pytest.raises(SourceRefused):
        client_for(sim, session=Counting()).consult(Subject(WITHOUT[0], DAY, legal_context="x" * 65))
    assert sent == []


def test_malformed_answer_is_unavailable(sim, faults):
    faults.update({"malformed_rate": 1.0})
    with pytest.raises(SourceUnavailable):
        client_for(sim).consult(Subject(WITH_CAREER[0], DAY))


def test_timeout_is_unavailable(sim, faults):
    faults.update({"timeout_rate": 1.0, "hang_s": 1.0})
    with pytest.raises(SourceUnavailable, match="timeout"):
        client_for(sim, timeout_s=0.2).consult(Subject(WITH_CAREER[0], DAY))


def test_connection_refused_is_unavailable():
    with pytest.raises(SourceUnavailable):
        SelfEmployedClient(endpoint("http://127.0.0.1:9"), timeout_s=0.5).consult(Subject(WITHOUT[0], DAY))


def test_resilient_does_not_retry_a_refusal(sim):
    calls = []

    class Counting(SelfEmployedEnricher):
        def fetch(self, subject):
            calls.append(subject)
            return super().fetch(subject)

    resilient = Resilient(Counting(client_for(sim)), RetryPolicy(max_attempts=3, backoff=Backoff(base_s=0)), sleep=lambda s: None)
    with pytest.raises(SourceRefused):
        resilient.fetch(Subject(_wrong_check_digits(WITHOUT[0]), DAY))
    assert len(calls) == 1 and resilient.breaker.state == "closed"


class Canned(requests.adapters.BaseAdapter):
    def __init__(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8"):
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code, response._content = self.status, self.body
        response.headers["Content-Type"] = self.content_type
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


def canned_client(status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> SelfEmployedClient:
    session = requests.Session()
    session.mount("http://", Canned(status, body, content_type))
    return SelfEmployedClient("http://source.invalid/inasti/self-employed-v2", session)


def valid_answer(insz: str) -> bytes:
    request = etree.fromstring(_request_xml(insz)).find(f".//{c.REQUEST}")
    return simmod.envelope(simmod.answer(request, POP, "2026-11-01T10:00:00Z"))


@pytest.fixture
def hits():
    """A local HTTP server counting requests: an entity resolved over the network would show up here."""
    count = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            count.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"SECRET-MARKER")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], count
    server.shutdown()


@pytest.mark.parametrize("kind", ["xxe-file", "xxe-http", "billion-laughs", "doctype-only"])
def test_doctype_and_entities_in_answer_are_refused(kind, hits, tmp_path):
    port, count = hits
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER")
    good = valid_answer(WITH_CAREER[0]).split(b"?>", 1)[1]
    dtd = {
        "xxe-file": f'<!ENTITY e SYSTEM "file://{secret}">',
        "xxe-http": f'<!ENTITY e SYSTEM "http://127.0.0.1:{port}/x">',
        "billion-laughs": '<!ENTITY l "lol">' + "".join(
            f'<!ENTITY e{"" if i == 9 else i} "{("&l;" if i == 0 else f"&e{i - 1};") * 10}">' for i in range(10)),
        "doctype-only": "",
    }[kind]
    body = f'<?xml version="1.0"?><!DOCTYPE soapenv:Envelope [{dtd}]>'.encode() + \
        good.replace(b"<legalContext>", b"<legalContext>&e;" if dtd else b"<legalContext>", 1)
    with pytest.raises(InvalidAnswer) as err:
        canned_client(200, body).consult(Subject(WITH_CAREER[0], DAY))
    assert isinstance(err.value, SourceUnavailable)
    assert "SECRET-MARKER" not in str(err.value) and "lollol" not in str(err.value)
    assert count == []


@pytest.mark.parametrize("status,body,content_type", [
    (200, b"<soapenv:Envelope", "text/xml"),                                  # truncated
    (200, b"not xml at all", "text/plain"),
    (502, b"<html>Bad gateway</html>", "text/html"),
    (200, f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><x/></e:Body></e:Envelope>'.encode(), "text/xml"),
])
def test_unusable_answers_are_unavailable(status, body, content_type):
    with pytest.raises(SourceUnavailable):
        canned_client(status, body, content_type).consult(Subject(WITH_CAREER[0], DAY))


def test_answer_invalid_against_contract_is_unavailable():
    body = valid_answer(WITH_CAREER[0]).replace(b"<kind>", b"<kind>self", 1)  # "selfactive": not in the enum
    with pytest.raises(InvalidAnswer):
        canned_client(200, body).consult(Subject(WITH_CAREER[0], DAY))


def test_answer_about_someone_else_is_unavailable():
    body = valid_answer(WITH_CAREER[1])
    enricher = SelfEmployedEnricher(canned_client(200, body))
    with pytest.raises(SourceUnavailable):
        enricher.fetch(Subject(WITH_CAREER[0], DAY, self_employed=True))


def test_conformance_passes_against_the_simulator(sim):
    checks = ADAPTER.conformance(SourceConfig(sim.url))
    assert len(checks) >= 6
    assert [ch for ch in checks if not ch.passed] == []


def test_conformance_reports_a_down_source(sim, faults):
    faults.update({"down": True})
    checks = ADAPTER.conformance(SourceConfig(sim.url, timeout_s=2))
    assert not any(ch.passed for ch in checks if "DATA_FOUND" in ch.name)
