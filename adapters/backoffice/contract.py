"""The back-office contract (contracts/backoffice/backoffice-v1.openapi.yaml) as validators.

OpenAPI 3.1 schemas are JSON Schema 2020-12: each component is validated against the whole
document, so `$ref`s between components resolve (machinery in adapters.contract_files).
"""
from __future__ import annotations

from datetime import datetime

from jsonschema import FormatChecker

from adapters.contract_files import CONTRACTS_DIR, ContractViolation, OpenApiContract

CONTRACT_FILE = "backoffice/backoffice-v1.openapi.yaml"
CONTRACT_NAME = "backoffice-v1"
CONTRACT_VERSION = "1"

_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 date-time with an offset (`datetime.fromisoformat` plus the 'T' and zone checks)."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        return False
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    return parsed.tzinfo is not None


CONTRACT = OpenApiContract(CONTRACT_FILE, "urn:wib-hub:contracts:backoffice-v1", _FORMATS)
document = CONTRACT.document
validator = CONTRACT.validator
errors = CONTRACT.errors
check = CONTRACT.check


def limit_bounds() -> tuple[int, int]:
    """The bounds of the `limit` query parameter of GET /events."""
    for p in document()["paths"]["/events"]["get"]["parameters"]:
        if p["name"] == "limit":
            return p["schema"]["minimum"], p["schema"]["maximum"]
    raise KeyError("limit")


__all__ = ["CONTRACT", "CONTRACTS_DIR", "CONTRACT_FILE", "CONTRACT_NAME", "CONTRACT_VERSION", "ContractViolation",
           "check", "document", "errors", "limit_bounds", "validator"]
