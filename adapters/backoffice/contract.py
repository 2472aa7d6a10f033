"""The back-office contract (contracts/backoffice/backoffice-v1.openapi.yaml) as validators.

OpenAPI 3.1 schemas are JSON Schema 2020-12: each component is validated with jsonschema against
the whole document, so `$ref`s between components resolve.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT_FILE = "backoffice/backoffice-v1.openapi.yaml"
CONTRACT_NAME = "backoffice-v1"
CONTRACT_VERSION = "1"
_URI = "urn:wib-hub:contracts:backoffice-v1"
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


class ContractViolation(ValueError):
    """A body that does not follow the back-office contract."""


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


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    return yaml.safe_load((CONTRACTS_DIR / CONTRACT_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(component: str) -> Draft202012Validator:
    doc = document()
    if component not in doc["components"]["schemas"]:
        raise KeyError(f"no schema {component} in {CONTRACT_FILE}")
    registry = Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{component}"}, registry=registry,
                                format_checker=_FORMATS)


def errors(component: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the named component schema, as 'path: message' lines."""
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator(component).iter_errors(instance)]


def check(component: str, instance: Any) -> None:
    """Raise ContractViolation unless `instance` validates against the named component schema."""
    found = errors(component, instance)
    if found:
        raise ContractViolation(f"{component}: " + "; ".join(found[:5]))


def limit_bounds() -> tuple[int, int]:
    """The bounds of the `limit` query parameter of GET /events."""
    for p in document()["paths"]["/events"]["get"]["parameters"]:
        if p["name"] == "limit":
            return p["schema"]["minimum"], p["schema"]["maximum"]
    raise KeyError("limit")
