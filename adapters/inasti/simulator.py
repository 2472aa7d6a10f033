"""A simulator of the INASTI SelfEmployed v2 service behind the CBSS (contracts/inasti/self-employed-v2.wsdl).

POST <SERVICE_PATH>: the SOAP operation consultSelfEmployedCareer, answered from the synthetic
population (`Person.self_employed`, `social_insurance_fund`, `contributions_paid`). The answer
repeats informationCustomer and legalContext and adds informationCBSS. A request that is not a
valid SOAP envelope, not valid against the XSD, or whose SSIN fails the mod 97 check gets a SOAP
Client fault; injected errors (`Faults`) get a Server fault; both carry a CBSSFaultType detail.
GET <SERVICE_PATH>?wsdl serves the WSDL (soap:address set to the URL asked), and the two XSDs are
served at the same relative paths as in contracts/, so the WSDL's imports resolve over HTTP.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.ports import SimulatorConfig
from adapters.population import Person, Population
from adapters.simulator import FaultInjector
from adapters.soap import MAX_SOAP_BYTES, envelope, fault, parse_request
from hub.domain.identifiers import is_valid_insz

from . import contract as c

XML = "text/xml; charset=utf-8"
AUTHOR = "INASTI"
_WSDL_LOCATION = b"http://localhost" + c.SERVICE_PATH.encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, name)
    if text is not None:
        child.text = text
    return child


def information_cbss(parent: etree._Element, received: str) -> None:
    info = _sub(parent, "informationCBSS")
    _sub(info, "ticketCBSS", str(uuid.uuid4()))
    _sub(info, "timestampReceive", received)
    _sub(info, "timestampReply", _now())


def fault_detail(reason_code: str, diagnostic: str, customer: etree._Element | None = None,
                 received: str | None = None) -> etree._Element:
    """A consultSelfEmployedCareerFault (CBSSFaultType), valid against the XSD."""
    detail = etree.Element(c.FAULT, nsmap={"se": c.NS})
    if customer is not None:
        detail.append(_copy(customer))
    information_cbss(detail, received or _now())
    d = _sub(detail, "detail")
    _sub(d, "severity", "FATAL")
    _sub(d, "reasonCode", reason_code)
    _sub(d, "diagnostic", diagnostic)
    _sub(d, "authorCode", AUTHOR)
    return detail


def server_fault_body() -> bytes:
    """What an injected error (or an outage) answers: a Server fault, the service is unavailable."""
    return fault("soapenv:Server", "Service temporarily unavailable",
                 fault_detail("SERVICE_UNAVAILABLE", "The register is temporarily unavailable; try again later."))


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def careers(person: Person, begin: date | None = None, end: date | None = None) -> list:
    """The person's self-employed periods, those overlapping [begin, end] when a period is asked."""
    out = []
    for p in person.self_employed:
        if begin is not None and end is not None and not (p.start <= end and (p.end is None or p.end >= begin)):
            continue
        out.append(p)
    return sorted(out, key=lambda p: p.start)


def answer(request: etree._Element, population: Population, received: str) -> etree._Element:
    """The consultSelfEmployedCareerResponse to a valid request."""
    ssin = request.findtext("ssin")
    period = request.find("period")
    begin = end = None
    if period is not None:
        begin, end = date.fromisoformat(period.findtext("begin")), date.fromisoformat(period.findtext("end"))
    person = population.person(ssin)
    periods = careers(person, begin, end)
    response = etree.Element(c.RESPONSE, nsmap={"se": c.NS})
    response.append(_copy(request.find("informationCustomer")))
    information_cbss(response, received)
    _sub(response, "legalContext", request.findtext("legalContext"))
    status = _sub(response, "status")
    if not periods:
        _sub(status, "value", "NO_DATA_FOUND")
        _sub(status, "code", "NO_CAREER")
        _sub(status, "description", "No period in the general register of the self-employed")
        return response
    _sub(status, "value", "DATA_FOUND")
    _sub(status, "code", "OK")
    response.append(result_element(person, periods))
    return response


def result_element(person: Person, periods: list | None = None) -> etree._Element:
    """SelfEmployedResultType of a person with at least one period (all of them by default)."""
    result = etree.Element("result")
    _sub(result, "ssin", person.insz)
    career = _sub(result, "careerPeriods")
    for p in person.self_employed if periods is None else periods:
        cp = _sub(career, "careerPeriod")
        _sub(cp, "begin", p.start.isoformat())
        if p.end is not None:
            _sub(cp, "end", p.end.isoformat())
        _sub(cp, "occupation", p.kind)
        _sub(cp, "kind", p.status)
    if person.social_insurance_fund is not None:
        _sub(_sub(result, "socialInsuranceFund"), "name", person.social_insurance_fund)
    if person.contributions_paid is not None:
        _sub(result, "contributionsPaid", "true" if person.contributions_paid else "false")
    return result


def _client_fault(reason: str, code: str, customer: etree._Element | None, received: str) -> Response:
    body = fault("soapenv:Client", reason, fault_detail(code, reason, customer, received))
    return Response(body, status_code=500, media_type=XML)


def make_app(population: Population) -> Starlette:
    wsdl = c.path(c.WSDL_FILE).read_bytes()
    files = {p: c.path(f).read_bytes() for p, f in c.SERVED_FILES.items()}

    async def service(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" not in {k.lower() for k in request.query_params}:
                return Response(b"GET ?wsdl for the service description", status_code=404, media_type="text/plain")
            here = str(request.url.replace(query="")).encode()
            return Response(wsdl.replace(_WSDL_LOCATION, here), media_type=XML)
        received = _now()
        body = await request.body()
        if len(body) > MAX_SOAP_BYTES:
            return _client_fault("Request too large", "REQUEST_TOO_LARGE", None, received)
        try:
            element = parse_request(body)
        except ValueError as err:  # malformed XML, DOCTYPE/entity, not an envelope
            return _client_fault(f"Not a valid SOAP request: {err}", "INVALID_ENVELOPE", None, received)
        customer = element.find("informationCustomer")
        if element.tag != c.REQUEST:
            return _client_fault(f"Unknown operation element {element.tag}", "UNKNOWN_OPERATION", None, received)
        try:
            c.validate_element(element)
        except c.ContractViolation as err:
            return _client_fault(f"Request not valid against the contract: {err}", "INVALID_REQUEST", None, received)
        if not is_valid_insz(element.findtext("ssin")):
            return _client_fault("The SSIN check digits are wrong", "INVALID_SSIN", customer, received)
        period = element.find("period")
        if period is not None and period.findtext("begin") > period.findtext("end"):
            return _client_fault("The period ends before it begins", "INVALID_PERIOD", customer, received)
        return Response(envelope(answer(element, population, received)), media_type=XML)

    def static(content: bytes):
        async def serve(request: Request) -> Response:
            return Response(content, media_type=XML)
        return serve

    routes = [Route(c.SERVICE_PATH, service, methods=["GET", "POST"])]
    routes += [Route(p, static(content), methods=["GET"]) for p, content in files.items()]
    return Starlette(routes=routes)


def make_simulator(config: SimulatorConfig) -> FaultInjector:
    return FaultInjector(make_app(config.population), config.faults, fault_body=server_fault_body, fault_type=XML)
