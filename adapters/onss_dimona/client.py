"""Dimona clients: the REST API v2 (httpx, OAuth2 `private_key_jwt`) and the SOAP personnel-file
consultation (zeep), both mapping trouble onto `SourceUnavailable` / `SourceRefused`.

Contracts: contracts/onss/dimona/dimona-rest-v2.openapi.yaml; personnel-file-consultation-v1.wsdl
carrying PersonnelFileConsultationRequest_20231.xsd / PersonnelFileConsultationAnswer_20223.xsd.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

import httpx
import requests
import zeep
import zeep.exceptions
from lxml import etree

from hub.ports import SourceConfig, SourceRefused, SourceUnavailable
from hub.domain.errors import MalformedMessage
from hub.domain.values import strict_loads
from adapters.common import http_client
from adapters.oauth import PrivateKeyJwt, TokenError
from adapters.soap import soap_client

from . import contract

BASE = "/REST/dimona/v2"
TOKEN_PATH = "/REST/oauth/v5/token"
SOAP_PATH = "/soap/PersonnelFileConsultation"
SCOPE = "scope:dimona:declaration:consult"
BULK_LIMIT = 500
DEFAULT_LEGAL_CONTEXT = "Cooperation agreement single permit, Art. 14"
NOSS_MAX = 199_999_934                       # NOSSRegistrationNbr in the published XSD: 9 digits


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class DimonaClient:
    """REST client. `http` may be injected (tests point it at a simulator); it is reused with
    keep-alive for every call, so a batch costs one connection pool and one token."""

    def __init__(self, config: SourceConfig, http: httpx.Client | None = None, *, validate: bool = True):
        self.config = config
        root = config.url.rstrip("/")
        self.base = root + BASE
        self.http = http or http_client(config)
        self.auth = (PrivateKeyJwt(config.client_id, config.private_key_pem, root + TOKEN_PATH, [SCOPE])
                     if config.private_key_pem else None)
        self.validate = validate             # check answers against the contract (transient if not)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None, component: str | None = None,
              not_found_is_none: bool = False) -> Any:
        kwargs: dict[str, Any] = {"auth": self.auth} if self.auth else {}
        if body is not None:
            kwargs["json"] = body
        try:
            response = self.http.request(method, self.base + path, timeout=self.config.timeout_s, **kwargs)
        except httpx.TimeoutException as err:
            raise SourceUnavailable(f"onss.dimona: timeout on {path}") from err
        except httpx.TransportError as err:
            raise SourceUnavailable(f"onss.dimona: {type(err).__name__} on {path}") from err
        except TokenError as err:
            if re.search(r"answered 4\d\d", str(err)) and "429" not in str(err):
                raise SourceRefused(f"onss.dimona: {err}") from err
            raise SourceUnavailable(f"onss.dimona: {err}") from err
        status = response.status_code
        if status == 404 and not_found_is_none:
            return None
        if status in (401, 429) or status >= 500:
            raise SourceUnavailable(f"onss.dimona: {method} {path} answered {status}")
        if status >= 400:
            raise SourceRefused(f"onss.dimona: {method} {path} answered {status}: {_problem(response)}")
        if status != 200:
            raise SourceUnavailable(f"onss.dimona: {method} {path} answered unexpected {status}")
        try:
            answer = strict_loads(response.content)
        except MalformedMessage as err:     # not JSON, or a value the hub does not take (NaN, NUL, …)
            raise SourceUnavailable(f"onss.dimona: malformed JSON from {path}: {err.code}") from err
        if self.validate and component:
            found = contract.fast_errors(component, answer)
            if found:
                raise SourceUnavailable(f"onss.dimona: answer not valid against {component}: {found[:3]}")
        return answer

    # ---- requests, as the contract describes them ----
    @staticmethod
    def search_body(ssin: str, reference_date: date | None = None, employer: dict | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"ssin": ssin}
        if employer:
            body["employer"] = employer
        if reference_date:
            body["referenceDate"] = reference_date.isoformat()
        return body

    @staticmethod
    def bulk_body(ssins: list[str], reference_date: date | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"ssins": ssins}
        if reference_date:
            body["referenceDate"] = reference_date.isoformat()
        return body

    # ---- operations ----
    def periods_for(self, ssin: str, reference_date: date | None = None,
                    employer: dict | None = None) -> list[dict[str, Any]]:
        """The REST periods of one worker (`POST /periods/search`, single form)."""
        answer = self._call("POST", "/periods/search", self.search_body(ssin, reference_date, employer),
                            "PeriodSearchResult")
        items = _items(answer)
        return next((i["periods"] for i in items if i.get("ssin") == ssin), [])

    def periods_for_many(self, ssins: Iterable[str], reference_date: date | None = None) -> dict[str, list[dict]]:
        """INSZ → REST periods, by the processor's bulk consultation in chunks of 500."""
        wanted = list(dict.fromkeys(ssins))
        out: dict[str, list[dict]] = {}
        for chunk in _chunks(wanted, BULK_LIMIT):
            answer = self._call("POST", "/periods/search", self.bulk_body(chunk, reference_date),
                                "PeriodSearchResult")
            got = {i["ssin"]: i["periods"] for i in _items(answer)}
            missing = [s for s in chunk if s not in got]
            if missing:
                raise SourceUnavailable(f"onss.dimona: bulk answer lacks {len(missing)} of {len(chunk)} workers")
            out.update((s, got[s]) for s in chunk)
        return out

    def period(self, period_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/periods/{period_id}", None, "Period", not_found_is_none=True)

    def declaration(self, declaration_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/declarations/{declaration_id}", None, "Declaration", not_found_is_none=True)

    def declarations_for(self, ssin: str) -> list[dict[str, Any]]:
        return self._call("POST", "/declarations/search", {"ssin": ssin}, "DeclarationList")["items"]


def _items(answer: Any) -> list[dict[str, Any]]:
    try:
        items = answer["items"]
        if not isinstance(items, list) or not all(isinstance(i, dict) and "periods" in i for i in items):
            raise TypeError("items")
        return items
    except (KeyError, TypeError) as err:
        raise SourceUnavailable("onss.dimona: search answer without items") from err


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or body)[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


# ---- SOAP: the employer's personnel file ----

def published_noss(nsso_number: str | None) -> int:
    """The hub's ONSS number ("0" + 9 digits) as the published `NOSSRegistrationNbr` (9 digits);
    None when only the enterprise number (`CompanyID`) is known, sent as 0."""
    if nsso_number is None:
        return 0
    value = int(nsso_number)
    if not nsso_number.startswith("0") or len(nsso_number) != 10 or value > NOSS_MAX:
        raise contract.ContractViolation(f"ONSS number {nsso_number} outside NOSSRegistrationNbr (≤ {NOSS_MAX})")
    return value


def personnel_file_request(company_id: str, nsso_number: str | None, ticket: str, *, start: date | None = None,
                           end: date | None = None, now: datetime | None = None) -> etree._Element:
    """A published `PersonnelFileConsultationRequest` (PersonnelFileConsultationRequest_20231.xsd)."""
    now = now or datetime.now(timezone.utc)
    root = etree.Element("PersonnelFileConsultationRequest")
    form = etree.SubElement(root, "Form")
    values = [("Identification", "PFREQ"), ("FormCreationDate", now.date().isoformat()),
              ("FormCreationHour", now.strftime("%H:%M:%S.") + f"{now.microsecond // 1000:03d}"),
              ("AttestationStatus", "0"), ("TypeForm", "RE")]
    for tag, value in values:
        etree.SubElement(form, tag).text = value
    ref = etree.SubElement(form, "Reference")
    for tag, value in (("ReferenceType", "1"), ("ReferenceOrigin", "1"), ("ReferenceNbr", ticket[:20] or "0")):
        etree.SubElement(ref, tag).text = value
    employer = etree.SubElement(form, "EmployerId")
    etree.SubElement(employer, "NOSSRegistrationNbr").text = str(published_noss(nsso_number))
    etree.SubElement(employer, "CompanyID").text = company_id
    if start or end:
        period = etree.SubElement(form, "ReferencePeriod")
        if start:
            etree.SubElement(period, "RefStartingDate").text = start.isoformat()
        if end:
            etree.SubElement(period, "RefEndingDate").text = end.isoformat()
    contract.check_xml(contract.REQUEST_XSD, root)
    return root


class PersonnelFileClient:
    """SOAP client (zeep, hardened settings) of the personnel-file consultation; `session` may be injected."""

    def __init__(self, config: SourceConfig, session: requests.Session | None = None, *,
                 customer_cbe: str = "0206731645"):
        self.client = soap_client(contract.path(contract.WSDL_FILE), config.url.rstrip("/") + SOAP_PATH, session,
                                  config.timeout_s)
        self.service = self.client.service
        self.customer_cbe = customer_cbe       # ONSS, the processor, as the CBSS customer

    def arguments(self, payload: etree._Element, ticket: str, legal_context: str) -> dict[str, Any]:
        return {"legalContext": legal_context[:64],
                "informationCustomer": {"ticket": ticket[:36] or "0", "timestampSent": datetime.now(timezone.utc),
                                        "customerIdentification": {"cbeNumber": self.customer_cbe}},
                "request": {"_value_1": payload}}

    def message(self, payload: etree._Element, ticket: str = "t", legal_context: str = DEFAULT_LEGAL_CONTEXT):
        """The SOAP envelope that `consult` would send (for contract tests)."""
        return self.client.create_message(self.service, "consultPersonnelFile",
                                          **self.arguments(payload, ticket, legal_context))

    def consult(self, company_id: str, nsso_number: str | None, *, ticket: str, start: date | None = None,
                end: date | None = None, legal_context: str = DEFAULT_LEGAL_CONTEXT) -> etree._Element | None:
        """The published answer for the employer's personnel file, or None when ONSS has no data."""
        payload = personnel_file_request(company_id, nsso_number, ticket, start=start, end=end)
        try:
            result = self.service.consultPersonnelFile(**self.arguments(payload, ticket, legal_context))
        except zeep.exceptions.Fault as err:
            if (err.code or "").split(":")[-1] == "Client":
                raise SourceRefused(f"onss.dimona personnel file: {err.message}") from err
            raise SourceUnavailable(f"onss.dimona personnel file: {err.message}") from err
        except zeep.exceptions.TransportError as err:
            if 400 <= err.status_code < 500 and err.status_code not in (401, 429):
                raise SourceRefused(f"onss.dimona personnel file: HTTP {err.status_code}") from err
            raise SourceUnavailable(f"onss.dimona personnel file: HTTP {err.status_code}") from err
        except requests.RequestException as err:
            raise SourceUnavailable(f"onss.dimona personnel file: {type(err).__name__}") from err
        except (zeep.exceptions.Error, etree.XMLSyntaxError, ValueError) as err:
            raise SourceUnavailable(f"onss.dimona personnel file: malformed answer ({err})") from err
        if result is None or result.status is None:
            raise SourceUnavailable("onss.dimona personnel file: answer without status")
        if result.status.value != "DATA_FOUND" or result.answer is None:
            return None
        answer = result.answer._value_1
        if not isinstance(answer, etree._Element) or contract.xsd_errors(contract.ANSWER_XSD, answer):
            raise SourceUnavailable("onss.dimona personnel file: answer not valid against "
                                    "PersonnelFileConsultationAnswer_20223.xsd")
        return answer
