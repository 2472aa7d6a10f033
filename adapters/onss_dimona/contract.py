"""The Dimona contracts as validators: the REST OpenAPI components (jsonschema, Draft 2020-12), the
published ONSS personnel-file XSDs (xmlschema) and the canonical enrichment schema.

Files: contracts/onss/dimona/dimona-rest-v2.openapi.yaml, PersonnelFileConsultationRequest_20231.xsd,
PersonnelFileConsultationAnswer_20223.xsd, personnel-file-consultation-v1.wsdl and
contracts/enrichment/onss.dimona.schema.json.
"""
from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema
import xmlschema
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
REST_FILE = "onss/dimona/dimona-rest-v2.openapi.yaml"
WSDL_FILE = "onss/dimona/personnel-file-consultation-v1.wsdl"
REQUEST_XSD = "onss/dimona/PersonnelFileConsultationRequest_20231.xsd"
ANSWER_XSD = "onss/dimona/PersonnelFileConsultationAnswer_20223.xsd"
ENRICHMENT_FILE = "enrichment/onss.dimona.schema.json"
WSDL_NS = "urn:wib-hub:onss:dimona:personnel-file-consultation:v1"
WSDL_ADDRESS = "https://dimona.wib-hub.example/soap/PersonnelFileConsultation"   # placeholder in the WSDL
_URI = "urn:wib-hub:contracts:onss:dimona-rest-v2"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


class ContractViolation(ValueError):
    """A body that does not follow its Dimona contract."""


def path(name: str) -> Path:
    return CONTRACTS_DIR / name


@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    return yaml.safe_load(path(REST_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(component: str) -> Draft202012Validator:
    """A validator for one `components/schemas` entry, `$ref`s resolved in the whole document."""
    doc = openapi()
    if component not in doc["components"]["schemas"]:
        raise KeyError(f"no schema {component} in {REST_FILE}")
    registry = Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{component}"}, registry=registry,
                                format_checker=FORMATS)


def errors(component: str, instance: Any) -> list[str]:
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator(component).iter_errors(instance)]


@lru_cache(maxsize=None)
def _compiled(component: str):
    doc = openapi()
    if component not in doc["components"]["schemas"]:
        raise KeyError(f"no schema {component} in {REST_FILE}")
    return fastjsonschema.compile({"$ref": f"#/components/schemas/{component}", "components": doc["components"]})


def fast_errors(component: str, instance: Any) -> list[str]:
    """As `errors`, on the hot path: a compiled validator (fastjsonschema) for the answer, and the
    detailed jsonschema report only when it fails."""
    try:
        _compiled(component)(instance)
        return []
    except fastjsonschema.JsonSchemaException:
        return errors(component, instance) or ["not valid against the contract"]


def check(component: str, instance: Any) -> None:
    found = errors(component, instance)
    if found:
        raise ContractViolation(f"{component}: " + "; ".join(found[:5]))


@lru_cache(maxsize=1)
def enrichment_validator() -> Draft202012Validator:
    schema = json.loads(path(ENRICHMENT_FILE).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FORMATS)


@lru_cache(maxsize=None)
def xsd(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(path(name)))


def xsd_errors(name: str, element: etree._Element) -> list[str]:
    """Every way `element` breaks the published XSD `name` (REQUEST_XSD or ANSWER_XSD)."""
    return [str(e.reason or e) for e in xsd(name).iter_errors(element)]


def check_xml(name: str, element: etree._Element) -> None:
    found = xsd_errors(name, element)
    if found:
        raise ContractViolation(f"{Path(name).name}: " + "; ".join(found[:5]))
