"""The INASTI SelfEmployed v2 contracts as validators: the service XSD (with the CBSS common types
v3 it imports) and the canonical enrichment schema (machinery in adapters.contract_files).

Files: contracts/inasti/self-employed-v2.xsd, self-employed-v2.wsdl, contracts/cbss/common-types-v3.xsd
and contracts/enrichment/inasti.self-employed.schema.json. The hub writes these itself: INASTI
publishes no schema for the service (reference README, "Not published").
"""
from __future__ import annotations

from typing import Any

import xmlschema
from lxml import etree

from adapters.contract_files import CONTRACTS_DIR, ContractViolation, JsonSchemaContract, path, xsd
from hub.domain.formats import FORMAT_CHECKER

WSDL_FILE = "inasti/self-employed-v2.wsdl"
XSD_FILE = "inasti/self-employed-v2.xsd"
COMMON_XSD_FILE = "cbss/common-types-v3.xsd"
ENRICHMENT_FILE = "enrichment/inasti.self-employed.schema.json"

NS = "urn:wib-hub:inasti:self-employed:v2"
COMMON_NS = "http://kszbcss.fgov.be/types/common/v3"
REQUEST = f"{{{NS}}}consultSelfEmployedCareerRequest"
RESPONSE = f"{{{NS}}}consultSelfEmployedCareerResponse"
FAULT = f"{{{NS}}}consultSelfEmployedCareerFault"

# Where the service answers, relative to the source's base URL. The simulator serves the WSDL at
# SERVICE_PATH?wsdl and the two XSDs at the same paths relative to it as in contracts/, so that
# the relative schemaLocation imports resolve over HTTP too.
SERVICE_PATH = "/inasti/self-employed-v2"
SERVED_FILES = {"/inasti/self-employed-v2.xsd": XSD_FILE, "/cbss/common-types-v3.xsd": COMMON_XSD_FILE}

ENRICHMENT = JsonSchemaContract(ENRICHMENT_FILE, FORMAT_CHECKER, check_schema=True)
enrichment_schema = ENRICHMENT.schema
enrichment_validator = ENRICHMENT.validator


def schema() -> xmlschema.XMLSchema:
    """The service XSD with its imports (loaded from disk, never from the network)."""
    return xsd(XSD_FILE)


def validate_element(element: etree._Element) -> None:
    """Raise ContractViolation unless `element` (a request, answer or fault detail) is valid."""
    if element.tag not in (REQUEST, RESPONSE, FAULT):
        raise ContractViolation(f"unexpected element {element.tag}")
    errors = list(schema().iter_errors(element))
    if errors:
        raise ContractViolation(f"{etree.QName(element).localname}: {errors[0].reason} at {errors[0].path}")


def is_valid_element(element: etree._Element) -> bool:
    try:
        validate_element(element)
    except ContractViolation:
        return False
    return True


def ssin_type() -> Any:
    """common:SsinType as xmlschema compiled it (for tests of the pattern)."""
    return schema().maps.types[f"{{{COMMON_NS}}}SsinType"]


__all__ = ["COMMON_NS", "COMMON_XSD_FILE", "CONTRACTS_DIR", "ENRICHMENT", "ENRICHMENT_FILE", "FAULT", "NS", "REQUEST",
           "RESPONSE", "SERVED_FILES", "SERVICE_PATH", "WSDL_FILE", "XSD_FILE", "ContractViolation",
           "enrichment_schema", "enrichment_validator", "is_valid_element", "path", "schema", "ssin_type",
           "validate_element"]
