"""The DmfA consultation contracts as validators (machinery in adapters.contract_files).

Files: contracts/onss/dmfa/dmfa-consultation-v1.wsdl (the SOAP body: legal context, customer
information, status), the published ONSS DmfAConsultationRequest_20224.xsd and
DmfAConsultationAnswer_20224.xsd (the payloads, carried unchanged) and the canonical
contracts/enrichment/onss.dmfa.schema.json.
"""
from __future__ import annotations

from functools import lru_cache

import xmlschema
from lxml import etree

from adapters.contract_files import (CONTRACTS_DIR, FORMATS, ContractViolation, JsonSchemaContract, check_xml,
                                     path, raise_if, schema_errors, xsd, xsd_errors)

WSDL_FILE = "onss/dmfa/dmfa-consultation-v1.wsdl"
REQUEST_XSD = "onss/dmfa/DmfAConsultationRequest_20224.xsd"
ANSWER_XSD = "onss/dmfa/DmfAConsultationAnswer_20224.xsd"
ENRICHMENT_FILE = "enrichment/onss.dmfa.schema.json"
WSDL_NS = "urn:wib-hub:onss:dmfa:dmfa-consultation:v1"
WSDL_XS = "http://www.w3.org/2001/XMLSchema"
SERVICE_PATH = "/soap/DmfAConsultation"

ENRICHMENT = JsonSchemaContract(ENRICHMENT_FILE)
enrichment_validator = ENRICHMENT.validator
enrichment_errors = ENRICHMENT.errors


@lru_cache(maxsize=1)
def wrapper_schema() -> xmlschema.XMLSchema:
    """The schema embedded in the WSDL's `types` (the body elements around the published payloads)."""
    wsdl = etree.parse(str(path(WSDL_FILE)))
    schema = wsdl.find(f".//{{{WSDL_XS}}}schema")
    return xmlschema.XMLSchema(etree.tostring(schema).decode())


def wrapper_errors(element: etree._Element) -> list[str]:
    """Every way a body element (consultDmfARequest/Response) breaks the WSDL types."""
    return schema_errors(wrapper_schema(), element)


def check_body(element: etree._Element) -> None:
    """A whole body element: the WSDL wrapper, and the published payload it carries, if any."""
    found = wrapper_errors(element)
    for slot, name in (("request", REQUEST_XSD), ("answer", ANSWER_XSD)):
        holder = element.find(f"{{{WSDL_NS}}}{slot}")
        if holder is not None and len(holder):
            found += xsd_errors(name, holder[0])
    raise_if(etree.QName(element).localname, found)


__all__ = ["ANSWER_XSD", "CONTRACTS_DIR", "ENRICHMENT", "ENRICHMENT_FILE", "FORMATS", "REQUEST_XSD", "SERVICE_PATH",
           "WSDL_FILE", "WSDL_NS", "WSDL_XS", "ContractViolation", "check_body", "check_xml", "enrichment_errors",
           "enrichment_validator", "path", "wrapper_errors", "wrapper_schema", "xsd", "xsd_errors"]
