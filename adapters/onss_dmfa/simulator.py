"""The DmfA consultation simulator: a SOAP endpoint (dmfa-consultation-v1.wsdl) over the synthetic
population, answering with the published DmfAConsultationAnswer_20224 payload.

`POST /soap/DmfAConsultation` answers `consultDmfA`; `GET /soap/DmfAConsultation?wsdl` serves the
WSDL. Requests are parsed hardened (no DOCTYPE, no entities) and validated against the WSDL types
and the published request XSD: anything else is a `soapenv:Client` fault. Injected errors are
`soapenv:Server` faults (FaultInjector).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.ports import SimulatorConfig
from adapters.onss_dmfa import contract
from adapters.onss_dmfa.mapping import quarter_code
from adapters.population import Person, Quarter
from adapters.simulator import FaultInjector
from adapters.soap import UnsafeXml, envelope, fault, parse_request

NS = contract.WSDL_NS
XML = "text/xml; charset=utf-8"
NOSS_MIN, NOSS_MAX = 100_006, 199_999_934   # NOSSRegistrationNbr in DmfAConsultationAnswer_20224.xsd


def dmfa_noss_number(nsso_number: str) -> int:
    """The `NOSSRegistrationNbr` the simulator declares for a population registration number.

    The published answer XSD only accepts 100006–199999934; population numbers outside that range
    are folded into it deterministically (the canonical record then carries the folded number).
    """
    value = int(nsso_number)
    return value if NOSS_MIN <= value <= NOSS_MAX else NOSS_MIN + value % (NOSS_MAX - NOSS_MIN + 1)


def _sub(parent: etree._Element, tag: str, text: Any = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _quarter_bounds(label: str) -> tuple[date, date]:
    year, q = int(label[:4]), int(label[5])
    first = date(year, 3 * q - 2, 1)
    last = date(year + (q == 4), (3 * q) % 12 + 1, 1) - timedelta(days=1)
    return first, last


def _form_header(form: etree._Element, now: datetime) -> None:
    _sub(form, "Identification", "DMFAREQ")
    _sub(form, "FormCreationDate", now.date().isoformat())
    _sub(form, "FormCreationHour", now.strftime("%H:%M:%S.") + f"{now.microsecond // 1000:03d}")
    _sub(form, "AttestationStatus", 0)
    _sub(form, "TypeForm", "RE")


def answer_payload(insz: str, lines: list[Quarter], reference: str, now: datetime | None = None) -> etree._Element:
    """A published `DmfAConsultationAnswer`: one Form per (quarter, employer) line of the worker."""
    now = now or datetime.now(timezone.utc)
    root = etree.Element("DmfAConsultationAnswer")
    for n, line in enumerate(lines, start=1):
        form = _sub(root, "Form")
        _form_header(form, now)
        _form_header(_sub(form, "HandledOriginalForm"), now)
        ref = _sub(form, "HandledReference")
        _sub(ref, "ReferenceType", 1)
        _sub(ref, "ReferenceOrigin", 1)
        _sub(ref, "ReferenceNbr", reference[:20] or "1")
        decl = _sub(form, "EmployerDeclarationConsult")
        _sub(decl, "Quarter", quarter_code(line.quarter))
        _sub(decl, "NOSSRegistrationNbr", dmfa_noss_number(line.nsso_number))
        _sub(decl, "Trusteeship", 0)
        _sub(decl, "CompanyID", line.employer)
        _sub(decl, "ResultCodeResearch", 0)
        person = _sub(decl, "NaturalPersonConsult")
        _sub(person, "NaturalPersonSequenceNbr", 1)
        _sub(person, "INSS", insz)
        _sub(person, "ResultCodeResearch", 0)
        record = _sub(person, "WorkerRecordConsult")
        first, last = _quarter_bounds(line.quarter)
        for tag, value in (("EmployerClass", "000"), ("WorkerCode", "495"), ("NOSSQuarterStartingDate", first),
                           ("NOSSQuarterEndingDate", last), ("Border", 0),
                           ("WorkerRecordPID", 10_000_000_000 + n), ("WorkerRecordVersionNbr", 1),
                           ("CodeSubjected", 0), ("Action", 0)):
            _sub(record, tag, value)
        occ = _sub(record, "OccupationConsultation")
        for tag, value in (("OccupationSequenceNbr", 1), ("JointCommissionNbr", line.joint_committee),
                           ("WorkingDaysSystem", 500), ("ContractType", 0), ("Retired", 0),
                           ("OccupationVersionNbr", 1), ("Action", 0)):
            _sub(occ, tag, value)
        svc = _sub(occ, "ServiceAction")
        for tag, value in (("ServiceSequenceNbr", 1), ("ServiceCode", "001"), ("ServiceNbrDays", line.days * 100),
                           ("ServiceNbrHours", round(line.hours * 100)), ("Action", 0)):
            _sub(svc, tag, value)
        rem = _sub(occ, "RemunAction")
        for tag, value in (("RemunSequenceNbr", 1), ("RemunCode", "001"), ("RemunAmount", line.gross_pay_cents),
                           ("Action", 0)):
            _sub(rem, tag, value)
    return root


def lines_for(person: Person, asked: list[tuple[str, str]]) -> list[Quarter]:
    """The person's DmfA lines for the asked (quarter label, CompanyID or "0" for any employer)."""
    out = []
    for label, company in asked:
        out += [q for q in person.quarters if q.quarter == label
                and (int(company) == 0 or int(q.employer) == int(company)) and q not in out]
    return out


def _client_fault(reason: str) -> Response:
    return Response(fault("soapenv:Client", reason), status_code=500, media_type=XML)


def make_app(config: SimulatorConfig) -> Starlette:
    population = config.population

    async def wsdl(request: Request) -> Response:
        if "wsdl" not in request.query_params:
            return Response(status_code=405)
        text = contract.path(contract.WSDL_FILE).read_text(encoding="utf-8")
        text = text.replace("http://localhost/soap/DmfAConsultation", str(request.url.replace(query="")))
        return Response(text, media_type=XML)

    async def consult(request: Request) -> Response:
        try:
            body = parse_request(await request.body())
        except UnsafeXml as err:
            return _client_fault(f"unsafe XML refused: {err}")
        except ValueError as err:
            return _client_fault(str(err))
        if body.tag != f"{{{NS}}}consultDmfARequest":
            return _client_fault(f"unknown operation {body.tag}")
        try:
            contract.check_body(body)
        except contract.ContractViolation as err:
            return _client_fault(f"invalid request: {err}")
        payload = body.find(f"{{{NS}}}request")[0]
        asked, insz = [], None
        for decl in payload.iterfind("Form/EmployerDeclarationId"):
            label = decl.findtext("Quarter").strip()
            asked.append((f"{label[:4]}Q{label[4]}", decl.findtext("CompanyID").strip()))
            for person in decl.iterfind("NaturalPerson/INSS"):
                if insz not in (None, person.text.strip().zfill(11)):
                    return _client_fault("one worker per consultation")
                insz = person.text.strip().zfill(11)
        if insz is None:
            return _client_fault("a NaturalPerson (INSS) is required")
        lines = lines_for(population.person(insz), asked)
        customer = body.find(f"{{{NS}}}informationCustomer")
        now = datetime.now(timezone.utc)
        out = etree.Element(f"{{{NS}}}consultDmfAResponse", nsmap={"tns": NS})
        out.append(customer)
        cbss = etree.SubElement(out, f"{{{NS}}}informationCBSS")
        etree.SubElement(cbss, f"{{{NS}}}ticketCBSS").text = str(uuid.uuid4())
        etree.SubElement(cbss, f"{{{NS}}}timestampReceive").text = now.isoformat()
        etree.SubElement(cbss, f"{{{NS}}}timestampReply").text = datetime.now(timezone.utc).isoformat()
        out.append(body.find(f"{{{NS}}}legalContext"))
        status = etree.SubElement(out, f"{{{NS}}}status")
        etree.SubElement(status, f"{{{NS}}}value").text = "DATA_FOUND" if lines else "NO_DATA_FOUND"
        etree.SubElement(status, f"{{{NS}}}code").text = "MSG00000" if lines else "MSG00001"
        if lines:
            ticket = customer.findtext(f"{{{NS}}}ticket") or ""
            etree.SubElement(out, f"{{{NS}}}answer").append(answer_payload(insz, lines, ticket, now))
        return Response(envelope(out), media_type=XML)

    return Starlette(routes=[Route(contract.SERVICE_PATH, consult, methods=["POST"]),
                             Route(contract.SERVICE_PATH, wsdl, methods=["GET"])])


def make_simulator(config: SimulatorConfig) -> FaultInjector:
    return FaultInjector(make_app(config), config.faults,
                         fault_body=lambda: fault("soapenv:Server", "DmfA consultation temporarily unavailable"),
                         fault_type=XML)
