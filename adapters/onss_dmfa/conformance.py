"""Conformance of ANY DmfA consultation endpoint to dmfa-consultation-v1.wsdl and the published
DmfAConsultationRequest/Answer_20224 XSDs: what the hub's client relies on.

Only assumes the synthetic population of seed 2026 (the people of `Population().sample()`).
"""
from __future__ import annotations

from datetime import date
from typing import Callable

import httpx
from lxml import etree

from hub.ports import Check, SourceConfig, Subject
from adapters.common import reachability, run_check, with_and_without
from adapters.onss_dmfa import contract, mapping
from adapters.onss_dmfa.client import DmfAClient, endpoint, request_payload
from adapters.onss_dmfa.enricher import DmfAEnricher
from adapters.population import Population
from adapters.soap import SOAP_ENV, envelope, parse_xml

LEGAL = "Cooperation agreement single permit, Art. 14"
NS = contract.WSDL_NS


def _people(pop: Population) -> tuple[str, str]:
    """(a worker with DmfA quarters, a worker without any) among the first sampled people."""
    quarters = set(mapping.last_quarters(pop.today))
    return with_and_without(pop.sample(200), lambda insz: any(q.quarter in quarters for q in pop.person(insz).quarters))


def _raw(insz: str, legal: str | None = LEGAL, payload: etree._Element | None = None) -> bytes:
    body = etree.Element(f"{{{NS}}}consultDmfARequest", nsmap={"tns": NS})
    if legal is not None:
        etree.SubElement(body, f"{{{NS}}}legalContext").text = legal
    customer = etree.SubElement(body, f"{{{NS}}}informationCustomer")
    etree.SubElement(customer, f"{{{NS}}}ticket").text = "conformance"
    etree.SubElement(customer, f"{{{NS}}}timestampSent").text = "2026-11-01T10:00:00+00:00"
    ident = etree.SubElement(customer, f"{{{NS}}}customerIdentification")
    etree.SubElement(ident, f"{{{NS}}}cbeNumber").text = "0206731645"
    etree.SubElement(body, f"{{{NS}}}request").append(
        payload if payload is not None else request_payload(insz, mapping.last_quarters(date(2026, 11, 1))))
    return envelope(body)


def conformance(config: SourceConfig) -> list[Check]:
    if dead := reachability(config):   # a dead URL: one failed check, not every check on the same cause
        return dead
    pop = Population()
    worker, nobody = _people(pop)
    url = endpoint(config.url)
    checks: list[Check] = []

    def check(name: str, fn: Callable[[], str | None]) -> None:
        run_check(checks, name, fn)

    def client_fault(data: bytes) -> str:
        r = http.post(url, content=data, headers={"Content-Type": "text/xml; charset=utf-8",
                                                  "SOAPAction": f'"{NS}:consultDmfA"'})
        root = parse_xml(r.content)
        code = root.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultcode") or ""
        assert code.endswith("Client"), f"HTTP {r.status_code}, fault code {code!r}, expected a Client fault"
        return f"HTTP {r.status_code}, {code}"

    with httpx.Client(timeout=config.timeout_s) as http:
        client = DmfAClient(config)

        def wsdl() -> str:
            r = http.get(url, params={"wsdl": ""})
            assert r.status_code == 200, f"?wsdl answered {r.status_code}"
            assert b"consultDmfA" in r.content, "the WSDL has no consultDmfA operation"
            return "WSDL served"

        def happy() -> str:
            answer = client.consult(worker, mapping.last_quarters(pop.today), legal_context=LEGAL, ticket="conf-1")
            assert answer.status == "DATA_FOUND", f"status {answer.status}"
            assert answer.ticket == "conf-1" and answer.legal_context == LEGAL, "ticket or legal context not repeated"
            found = contract.xsd_errors(contract.ANSWER_XSD, answer.payload)
            assert not found, f"answer vs published XSD: {found[:3]}"
            return f"{len(answer.payload)} declaration(s) for {worker}"

        def content() -> str:
            answer = client.consult(worker, mapping.last_quarters(pop.today), legal_context=LEGAL)
            lines = mapping.from_answer(answer.payload, worker)
            known = {(q.quarter, q.employer, q.days, q.gross_pay_cents) for q in pop.person(worker).quarters}
            got = {(x["quarter"], x["employer"], x["days"], x["gross_pay_cents"]) for x in lines}
            assert got == known, f"declarations {sorted(got)} differ from the population's {sorted(known)}"
            return f"{len(got)} line(s) match"

        def no_data() -> str:
            answer = client.consult(nobody, mapping.last_quarters(pop.today), legal_context=LEGAL)
            assert answer.status == "NO_DATA_FOUND" and answer.payload is None, f"status {answer.status}"
            return nobody

        def record() -> str:
            subject = Subject(worker, pop.today, ticket="conf-2")
            rec = DmfAEnricher(client).fetch(subject)
            found = contract.enrichment_errors(rec.data)
            assert rec.status == "found" and not found, f"{rec.status}, {found[:3]}"
            return f"{len(rec.data['quarters'])} quarter line(s)"

        def one_employer() -> str:
            employer = pop.person(worker).quarters[0].employer
            answer = client.consult(worker, mapping.last_quarters(pop.today), employer=employer, legal_context=LEGAL)
            lines = mapping.from_answer(answer.payload, worker)
            assert lines and all(x["employer"] == employer for x in lines), "lines of other employers came back"
            return f"{len(lines)} line(s) for {employer}"

        bad = request_payload(worker, ["2026Q3"])
        bad.find("Form/Identification").text = "DMFAXXX"
        check("wsdl", wsdl)
        check("consult.happy-path-valid-against-published-answer-xsd", happy)
        check("consult.population-content", content)
        check("consult.no-data", no_data)
        check("consult.one-employer", one_employer)
        check("consult.enrichment-record-valid", record)
        check("consult.invalid-published-request-client-fault", lambda: client_fault(_raw(worker, payload=bad)))
        check("consult.missing-legal-context-client-fault", lambda: client_fault(_raw(worker, legal=None)))
        check("consult.legal-context-over-64-client-fault", lambda: client_fault(_raw(worker, legal="x" * 65)))
        check("consult.malformed-xml-client-fault", lambda: client_fault(_raw(worker)[:-40]))
        check("consult.doctype-refused", lambda: client_fault(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
            + _raw(worker).split(b"?>", 1)[1]))
        client.close()
    return checks
