"""A zeep client of the INASTI SelfEmployed v2 service via the CBSS (contracts/inasti/self-employed-v2.wsdl).

The WSDL and XSDs are loaded from the hub's own contracts/ (a pinned contract; no WSDL fetched
from the network at run time). Every request is validated against the XSD before it leaves and
every answer (or fault detail) when it arrives, in a zeep plugin. Errors are typed: transient
trouble (timeout, connection, 5xx without a SOAP fault, Server fault, malformed or invalid body,
DOCTYPE/entities in the answer) raises SourceUnavailable; a Client fault raises SourceRefused.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Sequence

import requests
import zeep
from lxml import etree
from zeep.exceptions import Error as ZeepError, Fault, TransportError
from zeep.helpers import serialize_object
from zeep.plugins import Plugin

from hub.ports import SourceRefused, SourceUnavailable, Subject
from adapters.soap import SOAP_ENV, UnsafeXml, soap_client

from . import contract as c

ONSS_CBE = "0206731645"   # the ONSS, processor for the single-permit platform, as CBSS customer


class InvalidAnswer(SourceUnavailable):
    """The answer is not valid XML, carries a DOCTYPE/entities, or does not follow the contract."""


class SourceFault(SourceRefused):
    """A SOAP Client fault: the source refused the request. `reason_code` from the CBSSFaultType detail."""

    def __init__(self, message: str, reason_code: str | None = None):
        super().__init__(message)
        self.reason_code = reason_code


class ServerFault(SourceUnavailable):
    """A SOAP Server fault: the source (or the CBSS) failed; try again later."""

    def __init__(self, message: str, reason_code: str | None = None):
        super().__init__(message)
        self.reason_code = reason_code


class RequestViolation(c.ContractViolation):
    """The request we built does not follow the contract (never sent)."""


class AnswerViolation(c.ContractViolation):
    """The answer does not follow the contract."""


class ContractPlugin(Plugin):
    """Validates the body of every request and answer against self-employed-v2.xsd."""

    def egress(self, envelope, http_headers, operation, binding_options):
        try:
            c.validate_element(_body_child(envelope))
        except c.ContractViolation as err:
            raise RequestViolation(str(err)) from err
        return envelope, http_headers

    def ingress(self, envelope, http_headers, operation):
        try:
            child = _body_child(envelope)
            if child.tag == f"{{{SOAP_ENV}}}Fault":
                detail = child.find("detail")
                if detail is not None and len(detail) and detail[0].tag == c.FAULT:
                    c.validate_element(detail[0])
            else:
                c.validate_element(child)
        except c.ContractViolation as err:
            raise AnswerViolation(str(err)) from err
        return envelope, http_headers


def _body_child(envelope: etree._Element) -> etree._Element:
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise c.ContractViolation("SOAP envelope without a body")
    return body[0]


def make_zeep_client(url: str, session: requests.Session | None = None, timeout_s: float = 5.0,
                     plugins: Sequence[Plugin] = ()) -> zeep.Client:
    """A hardened zeep client (settings of adapters.soap) for the local WSDL, bound to `url`."""
    return soap_client(c.path(c.WSDL_FILE), url, session, timeout_s, [ContractPlugin(), *plugins])


def endpoint(base_url: str) -> str:
    """The service address under a source base URL (SourceConfig.url)."""
    return base_url.rstrip("/") + c.SERVICE_PATH


@dataclass
class Answer:
    """A consultSelfEmployedCareerResponse as plain dicts, and how long the call took."""

    body: dict[str, Any]
    elapsed_ms: float
    retrieved_at: datetime


class SelfEmployedClient:
    """consultSelfEmployedCareer for one person (cooperation agreement on the single permit, Art. 14)."""

    def __init__(self, url: str, session: requests.Session | None = None, timeout_s: float = 5.0,
                 cbe_number: str = ONSS_CBE, plugins: Sequence[Plugin] = ()):
        self.url, self.cbe_number = url, cbe_number
        self.zeep = make_zeep_client(url, session, timeout_s, plugins)

    def request(self, subject: Subject, period: tuple[date, date] | None = None) -> dict[str, Any]:
        """The request parameters: ticket from the subject (a UUID when empty), legal context, SSIN."""
        params: dict[str, Any] = {
            "informationCustomer": {"ticket": subject.ticket or str(uuid.uuid4()),
                                    "timestampSent": datetime.now(timezone.utc),
                                    "customerIdentification": {"cbeNumber": self.cbe_number}},
            "legalContext": subject.legal_context,
            "ssin": subject.insz,
        }
        if period is not None:
            params["period"] = {"begin": period[0], "end": period[1]}
        return params

    def consult(self, subject: Subject, period: tuple[date, date] | None = None) -> Answer:
        params = self.request(subject, period)
        started, retrieved_at = time.perf_counter(), datetime.now(timezone.utc)
        try:
            result = self.zeep.service.consultSelfEmployedCareer(**params)
        except RequestViolation as err:
            raise SourceRefused(f"request not valid against the contract: {err}") from err
        except AnswerViolation as err:
            raise InvalidAnswer(f"answer not valid against the contract: {err}") from err
        except Fault as err:
            raise _fault(err) from err
        except requests.Timeout as err:
            raise SourceUnavailable(f"timeout after {self.zeep.transport.operation_timeout}s") from err
        except requests.RequestException as err:
            raise SourceUnavailable(f"cannot reach the source: {type(err).__name__}") from err
        except UnsafeXml as err:
            raise InvalidAnswer(f"unsafe answer: {err}") from err
        except TransportError as err:
            if err.status_code == 200:
                raise InvalidAnswer("HTTP 200 with a body that is not XML") from err
            raise SourceUnavailable(f"HTTP {err.status_code}: not a SOAP answer") from err
        except (ZeepError, etree.LxmlError, ValueError) as err:  # DTD/entities forbidden, malformed XML
            raise InvalidAnswer(f"unusable answer: {type(err).__name__}: {err}") from err
        elapsed = (time.perf_counter() - started) * 1000
        return Answer(serialize_object(result, target_cls=dict), elapsed, retrieved_at)


def _fault(err: Fault) -> Exception:
    code = (err.code or "").rsplit(":", 1)[-1]
    reason = None
    if err.detail is not None:
        found = err.detail.find(f"{{{c.NS}}}consultSelfEmployedCareerFault/detail/reasonCode")
        reason = found.text if found is not None else None
    message = f"SOAP {code or 'unknown'} fault: {err.message} ({reason or 'no reason code'})"
    if code == "Client":
        return SourceFault(message, reason)
    return ServerFault(message, reason)
