"""Conformance suite for any SelfEmployed v2 endpoint (contracts/inasti/self-employed-v2.wsdl).

Runs against a base URL (SourceConfig.url; the service answers at SERVICE_PATH under it). It
assumes nothing of our simulator beyond the synthetic population of seed 2026: people drawn with
`Population().sample()` are known, with or without a self-employed career. Each check is one
`Check`; an exception inside a check fails that check only.
"""
from __future__ import annotations

import uuid
from datetime import date
from typing import Callable

import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from hub.ports import Check, SourceConfig, Subject
from adapters.common import reachability
from adapters.population import Population
from adapters.soap import SOAP_ENV, parse_xml

from . import contract as c
from .client import SelfEmployedClient, SourceFault, endpoint
from .mapping import career_data, to_record

SAMPLE = 400
# fetching the WSDL from the endpoint must follow its schemaLocation imports; DTDs and entities stay off
WSDL_SETTINGS = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                              forbid_external=False)


class CheckFailed(AssertionError):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _people(population: Population) -> tuple[list[str], list[str]]:
    sample = [insz for insz, _ in population.sample(SAMPLE)]
    with_career = [i for i in sample if population.person(i).self_employed]
    without = [i for i in sample if not population.person(i).self_employed]
    return with_career, without


def _raw(session: requests.Session, url: str, body: bytes, timeout_s: float) -> tuple[int, etree._Element]:
    """POST a hand-made request; the answer's SOAP Body child (parsed without DTDs or entities)."""
    response = session.post(url, data=body, timeout=timeout_s, headers={
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": '"urn:wib-hub:inasti:self-employed:v2:consultSelfEmployedCareer"'})
    root = parse_xml(response.content)
    body_el = root.find(f"{{{SOAP_ENV}}}Body")
    _expect(body_el is not None and len(body_el) > 0, "answer without a SOAP Body")
    return response.status_code, body_el[0]


def _request_xml(ssin: str, period: str = "", customer: str = "") -> bytes:
    customer = customer or ("<informationCustomer><ticket>conformance</ticket>"
                            "<timestampSent>2026-11-01T10:00:00Z</timestampSent>"
                            "<customerIdentification><cbeNumber>0206731645</cbeNumber></customerIdentification>"
                            "</informationCustomer>")
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
            f'<se:consultSelfEmployedCareerRequest xmlns:se="{c.NS}">{customer}'
            f"<legalContext>Cooperation agreement single permit, Art. 14</legalContext>"
            f"<ssin>{ssin}</ssin>{period}</se:consultSelfEmployedCareerRequest>"
            "</soapenv:Body></soapenv:Envelope>").encode()


def _wrong_check_digits(insz: str) -> str:
    """The same SSIN with check digits that are wrong in both centuries (still matching SsinType)."""
    valid = {97 - int(insz[:9]) % 97, 97 - int("2" + insz[:9]) % 97}
    return insz[:9] + f"{min(set(range(1, 98)) - valid):02d}"


def _client_fault(status: int, element: etree._Element) -> None:
    _expect(status == 500, f"HTTP {status}, expected 500 for a SOAP fault")
    _expect(element.tag == f"{{{SOAP_ENV}}}Fault", f"{element.tag} instead of a SOAP Fault")
    _expect((element.findtext("faultcode") or "").endswith("Client"), f"faultcode {element.findtext('faultcode')}")
    detail = element.find("detail")
    _expect(detail is not None and len(detail) == 1, "fault without a CBSSFaultType detail")
    c.validate_element(detail[0])


def conformance(config: SourceConfig) -> list[Check]:
    if dead := reachability(config):   # a dead URL: one failed check, not every check on the same cause
        return dead
    url = endpoint(config.url)
    session = requests.Session()
    population = Population()
    with_career, without = _people(population)
    day = population.today
    captured: list[etree._Element] = []

    class Capture(zeep.Plugin):
        def ingress(self, envelope, http_headers, operation):
            captured.append(envelope)
            return envelope, http_headers

    client = SelfEmployedClient(url, session, config.timeout_s, plugins=[Capture()])

    def wsdl_served() -> str:
        remote = zeep.Client(url + "?wsdl", transport=Transport(session=session, timeout=config.timeout_s),
                             settings=WSDL_SETTINGS)
        ops = {op for b in remote.wsdl.bindings.values() for op in b._operations}
        _expect("consultSelfEmployedCareer" in ops, f"operations {sorted(ops)}")
        return "WSDL and imported schemas load; operation consultSelfEmployedCareer present"

    def data_found() -> str:
        _expect(bool(with_career), "no self-employed person in the sample")
        insz = with_career[0]
        ticket = str(uuid.uuid4())
        answer = client.consult(Subject(insz, day, self_employed=True, ticket=ticket))
        c.validate_element(captured[-1].find(f"{{{SOAP_ENV}}}Body")[0])
        _expect(answer.body["status"]["value"] == "DATA_FOUND", f"status {answer.body['status']}")
        _expect(answer.body["informationCustomer"]["ticket"] == ticket, "informationCustomer.ticket not repeated")
        _expect(bool(answer.body["legalContext"]), "legalContext not repeated")
        uuid.UUID(answer.body["informationCBSS"]["ticketCBSS"])
        record = to_record(answer.body, insz, answer.retrieved_at, answer.elapsed_ms)
        errors = [e.message for e in c.enrichment_validator().iter_errors(record.data)]
        _expect(not errors, f"record not valid against the enrichment schema: {errors[:1]}")
        return f"{insz}: {len(record.data['career_periods'])} period(s)"

    def consistent_with_population() -> str:
        checked = 0
        for insz in with_career[:5]:
            answer = client.consult(Subject(insz, day, self_employed=True))
            person = population.person(insz)
            got = career_data(answer.body["result"])
            want = [(p.start.isoformat(), p.end and p.end.isoformat(), p.kind, p.status)
                    for p in sorted(person.self_employed, key=lambda p: p.start)]
            _expect([(p["start"], p["end"], p["occupation"], p["kind"]) for p in got["career_periods"]] == want,
                    f"{insz}: career differs from the population")
            _expect(got["social_insurance_fund"] == person.social_insurance_fund, f"{insz}: fund differs")
            checked += 1
        return f"{checked} people match the seed-2026 population"

    def no_data_found() -> str:
        insz = without[0]
        answer = client.consult(Subject(insz, day, self_employed=True))
        c.validate_element(captured[-1].find(f"{{{SOAP_ENV}}}Body")[0])
        record = to_record(answer.body, insz, answer.retrieved_at, answer.elapsed_ms)
        _expect(record.status == "no_data", f"status {answer.body['status']['value']}")
        _expect("result" not in answer.body or answer.body["result"] is None, "NO_DATA_FOUND with a result")
        return f"{insz}: NO_DATA_FOUND"

    def period_filter() -> str:
        insz = with_career[0]
        first = min(p.start for p in population.person(insz).self_employed)
        answer = client.consult(Subject(insz, day), period=(first, day))
        _expect(answer.body["status"]["value"] == "DATA_FOUND", "period covering the career: no data")
        before = client.consult(Subject(insz, day), period=(date(1990, 1, 1), date(1990, 12, 31)))
        _expect(before.body["status"]["value"] == "NO_DATA_FOUND", "period before the career: data found")
        return "periods outside the asked period are left out"

    def bad_check_digit_refused() -> str:
        bad = _wrong_check_digits(without[0])
        try:
            client.consult(Subject(bad, day))
        except SourceFault as err:
            return f"Client fault {err.reason_code}"
        raise CheckFailed("an SSIN with wrong check digits was answered")

    def invalid_request_refused() -> str:
        status, element = _raw(session, url, _request_xml("ABC"), config.timeout_s)
        _client_fault(status, element)
        return "SSIN not matching SsinType: Client fault with CBSSFaultType detail"

    def inverted_period_refused() -> str:
        period = "<period><begin>2026-06-30</begin><end>2026-01-01</end></period>"
        status, element = _raw(session, url, _request_xml(without[0], period), config.timeout_s)
        _client_fault(status, element)
        return "begin after end: Client fault"

    def malformed_request_refused() -> str:
        status, element = _raw(session, url, b"<soapenv:Envelope xmlns:soapenv=", config.timeout_s)
        _client_fault(status, element)
        return "malformed XML: Client fault"

    def entities_not_resolved() -> str:
        xxe = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">'
               b'<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">]>'
               + _request_xml(without[0]).replace(b"conformance</ticket>", b"&e;&l2;</ticket>"))
        status, element = _raw(session, url, xxe, config.timeout_s)
        _client_fault(status, element)
        _expect(b"lollol" not in etree.tostring(element), "an entity was expanded")
        return "DOCTYPE/entities refused with a Client fault"

    checks: list[tuple[str, Callable[[], str]]] = [
        ("wsdl served with resolvable imports", wsdl_served),
        ("DATA_FOUND answer valid against the contract", data_found),
        ("answers consistent with the seed-2026 population", consistent_with_population),
        ("NO_DATA_FOUND for a person without a career", no_data_found),
        ("period restricts the career", period_filter),
        ("SSIN with wrong check digits refused", bad_check_digit_refused),
        ("request invalid against the XSD refused", invalid_request_refused),
        ("inverted period refused", inverted_period_refused),
        ("malformed request refused", malformed_request_refused),
        ("DOCTYPE and entities in a request refused", entities_not_resolved),
    ]
    out = []
    for name, check in checks:
        try:
            out.append(Check(name, True, check()))
        except Exception as err:  # noqa: BLE001 - every failure is reported, none stops the run
            out.append(Check(name, False, f"{type(err).__name__}: {err}"))
    session.close()
    return out
