"""Dimona simulator: the consultation part of the Dimona REST API v2, its OAuth2 token endpoint, and
the SOAP personnel-file consultation, all answered from the synthetic population.

REST follows contracts/onss/dimona/dimona-rest-v2.openapi.yaml; SOAP follows
personnel-file-consultation-v1.wsdl with the published ONSS payloads. An employer's personnel file
holds the periods of the people among the first `PERSONNEL_FILE_SAMPLE` of `Population.sample`
who worked for it. Declaration ids are synthetic: the period id followed by "0" (its Dimona-In).
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.ports import SimulatorConfig
from adapters.oauth import TokenService
from adapters.population import Employment, Population
from adapters.simulator import FaultInjector
from adapters.soap import UnsafeXml, envelope, fault, parse_request
from hub.domain.identifiers import is_valid_insz

from . import contract

BASE = "/REST/dimona/v2"
TOKEN_PATH = "/REST/oauth/v5/token"
SOAP_PATH = "/soap/PersonnelFileConsultation"
SCOPE = "scope:dimona:declaration:consult"
PERSONNEL_FILE_SAMPLE = 2000
PUBLISHED_JOINT_COMMITTEES = frozenset({"124", "140", "144", "145", "149", "302", "320", "322"})
NS = contract.WSDL_NS


def rest_period(insz: str, e: Employment) -> dict[str, Any]:
    """One population employment as a REST `Period`."""
    return {"id": e.period_id, "employer": {"employerId": e.nsso_number, "enterpriseNumber": e.employer},
            "worker": {"ssin": insz}, "startDate": e.start.isoformat(),
            "endDate": e.end.isoformat() if e.end else None,
            "features": {"jointCommissionNumber": e.joint_committee, "workerType": e.worker_type},
            "placeOfWork": {"postCode": e.postcode}}


def _runs_on(e: Employment, day: date) -> bool:
    return e.start <= day and (e.end is None or e.end >= day)


@lru_cache(maxsize=4)
def _sample_index(population: Population) -> tuple[dict[str, list[tuple[str, Employment]]], dict[str, tuple[str, Employment]]]:
    """employer → [(INSZ, employment)] and period id → (INSZ, employment) over the sampled people."""
    by_employer: dict[str, list[tuple[str, Employment]]] = {}
    by_period: dict[str, tuple[str, Employment]] = {}
    for insz, _ in population.sample(PERSONNEL_FILE_SAMPLE):
        for e in population.person(insz).employments:
            by_employer.setdefault(e.employer, []).append((insz, e))
            by_period[e.period_id] = (insz, e)
    return by_employer, by_period


def problem(status: int, title: str, detail: str = "", anomalies: list[dict] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"title": title, "status": status}
    if detail:
        body["detail"] = detail
    if anomalies:
        body["anomalies"] = anomalies
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class DimonaSimulator:
    def __init__(self, config: SimulatorConfig):
        self.population: Population = config.population
        self.tokens = TokenService(audience="")
        for client_id, public in config.clients.items():
            self.tokens.register(client_id, public, [SCOPE])
        self.periods: dict[str, tuple[str, Employment]] = {}   # every period served so far
        self._lock = threading.Lock()

    # ---- OAuth2 ----
    async def token(self, request: Request) -> Response:
        self.tokens.audience = f"{request.url.scheme}://{request.url.netloc}{TOKEN_PATH}"
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        status, body = self.tokens.issue(form)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    def _denied(self, request: Request) -> Response | None:
        status = self.tokens.check(request.headers.get("authorization"), SCOPE)
        if status == 401:
            return problem(401, "Unauthorized", "a valid bearer token is required")
        if status == 403:
            return problem(403, "Forbidden", f"the token lacks {SCOPE}")
        return None

    async def _body(self, request: Request, component: str) -> tuple[Any, Response | None]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None, problem(400, "Bad request", "the body is not JSON")
        found = contract.errors(component, body)
        bad = [s for s in ([body.get("ssin")] if isinstance(body, dict) and "ssin" in body
                           else (body.get("ssins") or []) if isinstance(body, dict) else [])
               if isinstance(s, str) and not is_valid_insz(s)]
        if found or bad:
            anomalies = [{"errorId": "00024-001", "labelFr": f"INSZ invalide: {s}", "labelNl": f"Ongeldig INSZ: {s}"}
                         for s in bad[:20]]
            return None, problem(400, "Bad request", "; ".join(found[:5]) or "invalid INSZ", anomalies)
        return body, None

    def _employments(self, insz: str) -> tuple[Employment, ...]:
        employments = self.population.person(insz).employments
        with self._lock:
            for e in employments:
                self.periods[e.period_id] = (insz, e)
        return employments

    def _periods_of(self, insz: str, reference: date | None, employer: dict | None) -> list[dict[str, Any]]:
        out = []
        for e in self._employments(insz):
            if reference and not _runs_on(e, reference):
                continue
            if employer and (employer.get("employerId", e.nsso_number) != e.nsso_number
                             or employer.get("enterpriseNumber", e.employer) != e.employer):
                continue
            out.append(rest_period(insz, e))
        return out

    # ---- REST ----
    async def search_periods(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body, bad = await self._body(request, "PeriodSearch")
        if bad is not None:
            return bad
        reference = date.fromisoformat(body["referenceDate"]) if "referenceDate" in body else None
        ssins = body["ssins"] if "ssins" in body else [body["ssin"]]
        items = [{"ssin": s, "periods": self._periods_of(s, reference, body.get("employer"))} for s in ssins]
        return JSONResponse({"items": items})

    def _find(self, period_id: str) -> tuple[str, Employment] | None:
        with self._lock:
            found = self.periods.get(period_id)
        return found or _sample_index(self.population)[1].get(period_id)

    async def get_period(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        period_id = request.path_params["period_id"]
        if contract.errors("PeriodId", period_id):
            return problem(400, "Bad request", "a period id has 12 digits")
        found = self._find(period_id)
        if found is None:
            return problem(404, "Not found", f"no Dimona period {period_id}")
        return JSONResponse(rest_period(*found))

    def _declaration(self, insz: str, e: Employment) -> dict[str, Any]:
        dimona_in: dict[str, Any] = {"startDate": e.start.isoformat(),
                                     "features": {"jointCommissionNumber": e.joint_committee, "workerType": e.worker_type}}
        return {"declarationId": e.period_id + "0", "declarationStatus": {"result": "A", "period": {"id": e.period_id}},
                "employer": {"employerId": e.nsso_number, "enterpriseNumber": e.employer},
                "worker": {"ssin": insz}, "dimonaIn": dimona_in}

    async def search_declarations(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body, bad = await self._body(request, "DeclarationSearch")
        if bad is not None:
            return bad
        periods = self._periods_of(body["ssin"], None, body.get("employer"))
        found = [self._find(p["id"]) for p in periods]
        return JSONResponse({"items": [self._declaration(*f) for f in found if f]})

    async def get_declaration(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        declaration_id = request.path_params["declaration_id"]
        found = self._find(declaration_id[:-1]) if len(declaration_id) == 13 and declaration_id.endswith("0") else None
        if found is None:
            return problem(404, "Not found", f"no processed declaration {declaration_id}")
        return JSONResponse(self._declaration(*found))

    # ---- SOAP ----
    async def soap(self, request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" not in {k.lower() for k in request.query_params}:
                return Response(status_code=404)
            location = f"{request.url.scheme}://{request.url.netloc}{SOAP_PATH}"
            wsdl = contract.path(contract.WSDL_FILE).read_text(encoding="utf-8")
            wsdl = wsdl.replace(contract.WSDL_ADDRESS, location)
            return Response(wsdl, media_type="text/xml")
        try:
            wrapper = parse_request(await request.body())
        except (UnsafeXml, ValueError) as err:
            return _fault("soapenv:Client", f"bad request: {err}")
        payload = wrapper.find(f"{{{NS}}}request/PersonnelFileConsultationRequest")
        legal = (wrapper.findtext(f"{{{NS}}}legalContext") or "").strip()
        info = wrapper.find(f"{{{NS}}}informationCustomer")
        if wrapper.tag != f"{{{NS}}}consultPersonnelFileRequest" or payload is None or info is None:
            return _fault("soapenv:Client", "expected consultPersonnelFileRequest with a published request")
        if not 0 < len(legal) <= 64:
            return _fault("soapenv:Client", "legalContext is required (at most 64 characters)")
        found = contract.xsd_errors(contract.REQUEST_XSD, payload)
        if found:
            return _fault("soapenv:Client", "request not valid against PersonnelFileConsultationRequest_20231.xsd: "
                          + "; ".join(found[:3]))
        answer, count = self._personnel_file(payload)
        return Response(envelope(_response(info, legal, answer, count)), media_type="text/xml; charset=utf-8")

    def _personnel_file(self, request: etree._Element) -> tuple[etree._Element, int]:
        form = request.find("Form")
        company = form.findtext("EmployerId/CompanyID").strip().zfill(10)
        start = form.findtext("ReferencePeriod/RefStartingDate")
        end = form.findtext("ReferencePeriod/RefEndingDate")
        lo = date.fromisoformat(start) if start else date.min
        hi = date.fromisoformat(end) if end else date.max
        people = [(i, e) for i, e in _sample_index(self.population)[0].get(company, [])
                  if e.start <= hi and (e.end is None or e.end >= lo)]
        now = datetime.now(timezone.utc)
        a = etree.Element("PersonnelFileConsultationAnswer")
        f = etree.SubElement(a, "Form")
        _form_head(f, "PFANS", "FA", now)
        _form_head(etree.SubElement(f, "HandledOriginalForm"), "PFREQ", "RE", None, form)
        ref = etree.SubElement(f, "HandledReference")
        _sub(ref, "ReferenceType", "1")
        _sub(ref, "ReferenceOrigin", "1")
        _sub(ref, "ReferenceNbr", form.findtext("Reference/ReferenceNbr") or "NONE")
        c = etree.SubElement(f, "PersonnelFileConsult")
        employer_id = form.find("EmployerId")[0]
        _sub(c, employer_id.tag, employer_id.text.strip())
        _sub(c, "CompanyID", company)
        if start:
            _sub(c, "RefStartingDate", start)
        if end:
            _sub(c, "RefEndingDate", end)
        _sub(c, "ResultCodeResearch", "0" if people else "1")
        for insz, e in people:
            p = etree.SubElement(c, "DimonaPeriod")
            for tag, value in (("DimonaPeriodId", e.period_id), ("IsLocked", "0"), ("IsCancelled", "0"),
                               ("StartingDate", e.start.isoformat()),
                               ("EndingDate", e.end.isoformat() if e.end else None),
                               ("LastUpdateDate", e.start.isoformat()), ("LastUpdateHour", "08:00:00.000")):
                if value is not None:
                    _sub(p, tag, value)
            _sub(etree.SubElement(p, "NaturalPerson"), "INSS", insz)
            features = etree.SubElement(p, "DimonaFeatures")
            if e.joint_committee in PUBLISHED_JOINT_COMMITTEES:
                _sub(features, "JointCommissionNbr", e.joint_committee)
            _sub(features, "WorkerType", e.worker_type)
        return a, len(people)


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def _form_head(parent: etree._Element, identification: str, type_form: str, now: datetime | None,
               original: etree._Element | None = None) -> None:
    if original is not None:
        values = [original.findtext(t) for t in ("FormCreationDate", "FormCreationHour")]
    else:
        values = [now.date().isoformat(), now.strftime("%H:%M:%S.") + f"{now.microsecond // 1000:03d}"]
    for tag, value in (("Identification", identification), ("FormCreationDate", values[0]),
                       ("FormCreationHour", values[1]), ("AttestationStatus", "0"), ("TypeForm", type_form)):
        _sub(parent, tag, value)


def _response(info: etree._Element, legal: str, answer: etree._Element, count: int) -> etree._Element:
    q = lambda tag: f"{{{NS}}}{tag}"  # noqa: E731
    now = datetime.now(timezone.utc).isoformat()
    r = etree.Element(q("consultPersonnelFileResponse"), nsmap={"pfc": NS})
    r.append(info)
    cbss = etree.SubElement(r, q("informationCBSS"))
    for tag, value in (("ticketCBSS", str(uuid.uuid4())), ("timestampReceive", now), ("timestampReply", now)):
        _sub(cbss, q(tag), value)
    _sub(r, q("legalContext"), legal)
    status = etree.SubElement(r, q("status"))
    _sub(status, q("value"), "DATA_FOUND" if count else "NO_DATA_FOUND")
    _sub(status, q("code"), "MSG00000" if count else "MSG00100")
    if count:
        etree.SubElement(r, q("answer")).append(answer)
    return r


def _fault(code: str, reason: str) -> Response:
    return Response(fault(code, reason), status_code=500, media_type="text/xml; charset=utf-8")


def make_simulator(config: SimulatorConfig) -> FaultInjector:
    """The Dimona simulator (REST + token + SOAP) behind fault injection."""
    sim = DimonaSimulator(config)
    app = Starlette(routes=[
        Route(TOKEN_PATH, sim.token, methods=["POST"]),
        Route(f"{BASE}/periods/search", sim.search_periods, methods=["POST"]),
        Route(f"{BASE}/periods/{{period_id}}", sim.get_period, methods=["GET"]),
        Route(f"{BASE}/declarations/search", sim.search_declarations, methods=["POST"]),
        Route(f"{BASE}/declarations/{{declaration_id}}", sim.get_declaration, methods=["GET"]),
        Route(SOAP_PATH, sim.soap, methods=["GET", "POST"]),
    ])
    app.state.simulator = sim
    return FaultInjector(app, config.faults, fault_for=_soap_fault_on_soap_path)


def _soap_fault_on_soap_path(scope: dict) -> tuple[bytes, str] | None:
    """Injected failures on the SOAP endpoint answer a SOAP Server fault, as a SOAP service would."""
    if scope["path"].startswith("/soap/"):
        return fault("soapenv:Server", "service unavailable"), "text/xml; charset=utf-8"
    return None
