"""The Limosa contracts as validators: limosa-v1.openapi.yaml components (jsonschema, Draft 2020-12)
and the canonical contracts/enrichment/onss.limosa.schema.json."""
from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
REST_FILE = "onss/limosa/limosa-v1.openapi.yaml"
ENRICHMENT_FILE = "enrichment/onss.limosa.schema.json"
BASE_PATH = "/REST/limosa/v1"
TOKEN_PATH = "/REST/oauth/v5/token"
SCOPE = "scope:limosa:declaration:consult"
_URI = "urn:wib-hub:contracts:onss:limosa-v1"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


class ContractViolation(ValueError):
    """A body that does not follow the Limosa contract."""


def path(name: str) -> Path:
    return CONTRACTS_DIR / name


@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    return yaml.safe_load(path(REST_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(component: str) -> Draft202012Validator:
    doc = openapi()
    if component not in doc["components"]["schemas"]:
        raise KeyError(f"no schema {component} in {REST_FILE}")
    registry = Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{component}"}, registry=registry,
                                format_checker=FORMATS)


def errors(component: str, instance: Any) -> list[str]:
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator(component).iter_errors(instance)]


def check(component: str, instance: Any) -> None:
    found = errors(component, instance)
    if found:
        raise ContractViolation(f"{component}: " + "; ".join(found[:5]))


@lru_cache(maxsize=1)
def enrichment_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(path(ENRICHMENT_FILE).read_text(encoding="utf-8")), format_checker=FORMATS)


def enrichment_errors(data: Any) -> list[str]:
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in enrichment_validator().iter_errors(data)]
