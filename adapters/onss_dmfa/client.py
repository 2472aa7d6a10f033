"""The DmfA consultation client: zeep on dmfa-consultation-v1.wsdl, through `adapters.soap.soap_client`.

The published request (DmfAConsultationRequest_20224.xsd) is built here and checked before it is
sent; the published answer is checked against DmfAConsultationAnswer_20224.xsd when it comes back.
Errors are types: `SourceUnavailable` (timeout, connection, 5xx, soapenv:Server fault, malformed or
invalid answer, DOCTYPE/entities) and `SourceRefused` (soapenv:Client fault, 4xx but 401/429).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlparse

import requests
import zeep
import zeep.exceptions
from lxml import etree

from hub.ports import SourceConfig, SourceRefused, SourceUnavailable
from adapters.onss_dmfa import contract
from adapters.onss_dmfa.mapping import quarter_code
from adapters.soap import soap_client

CUSTOMER_CBE = "0206731645"   # ONSS, processor of the single-permit platform, asks as CBSS customer


@dataclass(frozen=True)
class DmfAAnswer:
    status: str                        # DATA_FOUND | NO_DATA_FOUND | NO_RESULT
    ticket: str
    legal_context: str
    payload: etree._Element | None     # the published DmfAConsultationAnswer, when data was found


def endpoint(url: str) -> str:
    """A bare base URL gets the service path; a URL with a path is the service address itself."""
    return url.rstrip("/") + contract.SERVICE_PATH if urlparse(url).path in ("", "/") else url


def _form_header(form: etree._Element, now: datetime) -> None:
    for tag, text in (("Identification", "DMFAREQ"), ("FormCreationDate", now.date().isoformat()),
                      ("FormCreationHour", now.strftime("%H:%M:%S.") + f"{now.microsecond // 1000:03d}"),
                      ("AttestationStatus", "0"), ("TypeForm", "RE")):
        etree.SubElement(form, tag).text = text


def request_payload(insz: str, quarters: list[str], employer: str | None = None,
                    now: datetime | None = None) -> etree._Element:
    """A published `DmfAConsultationRequest`: one Form per quarter, for one worker; CompanyID 0 asks
    about every employer (usage documented in the WSDL)."""
    now = now or datetime.now(timezone.utc)
    root = etree.Element("DmfAConsultationRequest")
    for label in quarters:
        form = etree.SubElement(root, "Form")
        _form_header(form, now)
        decl = etree.SubElement(form, "EmployerDeclarationId")
        for tag, text in (("Quarter", str(quarter_code(label))), ("NOSSRegistrationNbr", "0"),
                          ("Trusteeship", "0"), ("CompanyID", employer or "0")):
            etree.SubElement(decl, tag).text = text
        person = etree.SubElement(decl, "NaturalPerson")
        etree.SubElement(person, "NaturalPersonSequenceNbr").text = "1"
        etree.SubElement(person, "INSS").text = insz
    return root


class DmfAClient:
    """One DmfA consultation endpoint. `session` is injectable (tests point it at a simulator)."""

    def __init__(self, config: SourceConfig, session: requests.Session | None = None):
        self.config = config
        self.zeep = soap_client(contract.path(contract.WSDL_FILE), endpoint(config.url), session, config.timeout_s)
        self.service = self.zeep.service

    def consult(self, insz: str, quarters: list[str], *, employer: str | None = None,
                legal_context: str, ticket: str = "") -> DmfAAnswer:
        payload = request_payload(insz, quarters, employer)
        contract.check_xml(contract.REQUEST_XSD, payload)   # our own bug if it fails: not a source error
        ticket = (ticket or str(uuid.uuid4()))[:36]
        customer = {"ticket": ticket, "timestampSent": datetime.now(timezone.utc),
                    "customerIdentification": {"cbeNumber": CUSTOMER_CBE}}
        try:
            result = self.service.consultDmfA(legalContext=legal_context, informationCustomer=customer,
                                                   request={"_value_1": payload})
        except zeep.exceptions.Fault as err:
            code = str(err.code or "")
            if code.endswith("Client"):
                raise SourceRefused(f"DmfA refused the request: {err.message}") from err
            raise SourceUnavailable(f"DmfA server fault: {err.message}") from err
        except zeep.exceptions.TransportError as err:
            if 400 <= err.status_code < 500 and err.status_code not in (401, 429):
                raise SourceRefused(f"DmfA answered HTTP {err.status_code}") from err
            what = "a malformed body" if err.status_code < 400 else "an error"
            raise SourceUnavailable(f"DmfA answered {what} (HTTP {err.status_code})") from err
        except requests.RequestException as err:
            raise SourceUnavailable(f"DmfA unreachable: {type(err).__name__}") from err
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as err:
            # DTDForbidden, EntitiesForbidden, XMLSyntaxError, a body that is not the contract's
            raise SourceUnavailable(f"DmfA answered a malformed body: {type(err).__name__}: {err}") from err
        return self._answer(result)

    @staticmethod
    def _answer(result) -> DmfAAnswer:
        try:
            status = result.status.value
            holder = result.answer
            payload = None if holder is None else getattr(holder, "_value_1", holder)
            if isinstance(payload, list):
                payload = payload[0] if payload else None
            answer = DmfAAnswer(status, result.informationCustomer.ticket, result.legalContext, payload)
        except (AttributeError, IndexError, TypeError) as err:
            raise SourceUnavailable(f"DmfA answer without {err}") from err
        if status == "DATA_FOUND":
            if not isinstance(payload, etree._Element):
                raise SourceUnavailable("DmfA answered DATA_FOUND without a DmfAConsultationAnswer")
            try:
                contract.check_xml(contract.ANSWER_XSD, payload)
            except contract.ContractViolation as err:
                raise SourceUnavailable(f"DmfA answer not valid against the published XSD: {err}") from err
        return answer

    def close(self) -> None:
        self.zeep.transport.session.close()
