"""The DmfA consultation contracts as validators.

Files: contracts/onss/dmfa/dmfa-consultation-v1.wsdl (the SOAP body: legal context, customer
information, status), the published ONSS DmfAConsultationRequest_20224.xsd and
DmfAConsultationAnswer_20224.xsd (the payloads, carried unchanged) and the canonical
contracts/enrichment/onss.dmfa.schema.json.
"""
from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import xmlschema
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
WSDL_FILE = "onss/dmfa/dmfa-consultation-v1.wsdl"
REQUEST_XSD = "onss/dmfa/DmfAConsultationRequest_20224.xsd"
ANSWER_XSD = "onss/dmfa/DmfAConsultationAnswer_20224.xsd"
ENRICHMENT_FILE = "enrichment/onss.dmfa.schema.json"
WSDL_NS = "urn:wib-hub:onss:dmfa:dmfa-consultation:v1"
WSDL_XS = "http://www.w3.org/2001/XMLSchema"
SERVICE_PATH = "/soap/DmfAConsultation"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


class ContractViolation(ValueError):
    """A body that does not follow its DmfA contract."""


def path(name: str) -> Path:
    return CONTRACTS_DIR / name


@lru_cache(maxsize=None)
def xsd(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(path(name)))


@lru_cache(maxsize=1)
def wrapper_schema() -> xmlschema.XMLSchema:
    """The schema embedded in the WSDL's `types` (the body elements around the published payloads)."""
    wsdl = etree.parse(str(path(WSDL_FILE)))
    schema = wsdl.find(f".//{{{WSDL_XS}}}schema")
    return xmlschema.XMLSchema(etree.tostring(schema).decode())


def _errors(schema: xmlschema.XMLSchema, element: etree._Element) -> list[str]:
    return [str(e.reason or e) for e in schema.iter_errors(element)]


def xsd_errors(name: str, element: etree._Element) -> list[str]:
    """Every way `element` breaks the published XSD `name` (REQUEST_XSD or ANSWER_XSD)."""
    return _errors(xsd(name), element)


def wrapper_errors(element: etree._Element) -> list[str]:
    """Every way a body element (consultDmfARequest/Response) breaks the WSDL types."""
    return _errors(wrapper_schema(), element)


def check_xml(name: str, element: etree._Element) -> None:
    found = xsd_errors(name, element)
    if found:
        raise ContractViolation(f"{Path(name).name}: " + "; ".join(found[:5]))


def check_body(element: etree._Element) -> None:
    """A whole body element: the WSDL wrapper, and the published payload it carries, if any."""
    found = wrapper_errors(element)
    for slot, name in (("request", REQUEST_XSD), ("answer", ANSWER_XSD)):
        holder = element.find(f"{{{WSDL_NS}}}{slot}")
        if holder is not None and len(holder):
            found += xsd_errors(name, holder[0])
    if found:
        raise ContractViolation(f"{etree.QName(element).localname}: " + "; ".join(found[:5]))


@lru_cache(maxsize=1)
def enrichment_validator() -> Draft202012Validator:
    schema = json.loads(path(ENRICHMENT_FILE).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FORMATS)


def enrichment_errors(data: Any) -> list[str]:
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in enrichment_validator().iter_errors(data)]
