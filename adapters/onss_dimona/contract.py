"""The Dimona contracts as validators: the REST OpenAPI components, the published ONSS personnel-file
XSDs and the canonical enrichment schema (machinery in adapters.contract_files).

Files: contracts/onss/dimona/dimona-rest-v2.openapi.yaml, PersonnelFileConsultationRequest_20231.xsd,
PersonnelFileConsultationAnswer_20223.xsd, personnel-file-consultation-v1.wsdl and
contracts/enrichment/onss.dimona.schema.json.
"""
from __future__ import annotations

from adapters.contract_files import (CONTRACTS_DIR, FORMATS, ContractViolation, JsonSchemaContract,
                                     OpenApiContract, check_xml, path, xsd, xsd_errors)

REST_FILE = "onss/dimona/dimona-rest-v2.openapi.yaml"
WSDL_FILE = "onss/dimona/personnel-file-consultation-v1.wsdl"
REQUEST_XSD = "onss/dimona/PersonnelFileConsultationRequest_20231.xsd"
ANSWER_XSD = "onss/dimona/PersonnelFileConsultationAnswer_20223.xsd"
ENRICHMENT_FILE = "enrichment/onss.dimona.schema.json"
WSDL_NS = "urn:wib-hub:onss:dimona:personnel-file-consultation:v1"
WSDL_ADDRESS = "https://dimona.wib-hub.example/soap/PersonnelFileConsultation"   # placeholder in the WSDL

REST = OpenApiContract(REST_FILE, "urn:wib-hub:contracts:onss:dimona-rest-v2")
ENRICHMENT = JsonSchemaContract(ENRICHMENT_FILE)

openapi = REST.document
validator = REST.validator
errors = REST.errors
fast_errors = REST.fast_errors
check = REST.check
enrichment_validator = ENRICHMENT.validator

__all__ = ["ANSWER_XSD", "CONTRACTS_DIR", "ENRICHMENT", "ENRICHMENT_FILE", "FORMATS", "REQUEST_XSD", "REST",
           "REST_FILE", "WSDL_ADDRESS", "WSDL_FILE", "WSDL_NS", "ContractViolation", "check", "check_xml",
           "enrichment_validator", "errors", "fast_errors", "openapi", "path", "validator", "xsd", "xsd_errors"]
