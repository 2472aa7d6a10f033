"""The Limosa contracts as validators: limosa-v1.openapi.yaml components and the canonical
contracts/enrichment/onss.limosa.schema.json (machinery in adapters.contract_files)."""
from __future__ import annotations

from adapters.contract_files import CONTRACTS_DIR, FORMATS, ContractViolation, JsonSchemaContract, OpenApiContract, path

REST_FILE = "onss/limosa/limosa-v1.openapi.yaml"
ENRICHMENT_FILE = "enrichment/onss.limosa.schema.json"
BASE_PATH = "/REST/limosa/v1"
TOKEN_PATH = "/REST/oauth/v5/token"
SCOPE = "scope:limosa:declaration:consult"

REST = OpenApiContract(REST_FILE, "urn:wib-hub:contracts:onss:limosa-v1")
ENRICHMENT = JsonSchemaContract(ENRICHMENT_FILE)

openapi = REST.document
validator = REST.validator
errors = REST.errors
check = REST.check
enrichment_validator = ENRICHMENT.validator
enrichment_errors = ENRICHMENT.errors

__all__ = ["BASE_PATH", "CONTRACTS_DIR", "ENRICHMENT", "ENRICHMENT_FILE", "FORMATS", "REST", "REST_FILE", "SCOPE",
           "TOKEN_PATH", "ContractViolation", "check", "enrichment_errors", "enrichment_validator", "errors",
           "openapi", "path", "validator"]
