"""The adapters' contract files under contracts/ as validators: OpenAPI components and JSON Schemas
(jsonschema, Draft 2020-12) and XSDs (xmlschema, loaded from disk only)."""
from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import fastjsonschema
import xmlschema
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


class ContractViolation(ValueError):
    """A body that does not follow its contract."""


def path(name: str) -> Path:
    return CONTRACTS_DIR / name


def pointer_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Every way `instance` breaks the validator's schema, as '/json/pointer: message' lines."""
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def raise_if(label: str, found: list[str]) -> None:
    """Raise ContractViolation('label: first five problems') if anything was found."""
    if found:
        raise ContractViolation(f"{label}: " + "; ".join(found[:5]))


class OpenApiContract:
    """An OpenAPI 3.1 document: one validator per `components/schemas` entry, with the `$ref`s
    resolved in the whole document."""

    def __init__(self, file: str, uri: str, formats: FormatChecker = FORMATS):
        self.file, self.uri, self.formats = file, uri, formats
        self._document: dict[str, Any] | None = None
        self._validators: dict[str, Draft202012Validator] = {}
        self._compiled: dict[str, Callable[[Any], Any]] = {}

    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = yaml.safe_load(path(self.file).read_text(encoding="utf-8"))
        return self._document

    def _schemas(self, component: str) -> dict[str, Any]:
        doc = self.document()
        if component not in doc["components"]["schemas"]:
            raise KeyError(f"no schema {component} in {self.file}")
        return doc

    def validator(self, component: str) -> Draft202012Validator:
        """A validator for one `components/schemas` entry, `$ref`s resolved in the whole document."""
        if component not in self._validators:
            doc = self._schemas(component)
            registry = Registry().with_resource(self.uri, Resource.from_contents(doc, default_specification=DRAFT202012))
            self._validators[component] = Draft202012Validator(
                {"$ref": f"{self.uri}#/components/schemas/{component}"}, registry=registry,
                format_checker=self.formats)
        return self._validators[component]

    def errors(self, component: str, instance: Any) -> list[str]:
        """Every way `instance` breaks the named component schema, as '/path: message' lines."""
        return pointer_errors(self.validator(component), instance)

    def check(self, component: str, instance: Any) -> None:
        """Raise ContractViolation unless `instance` validates against the named component schema."""
        raise_if(component, self.errors(component, instance))

    def fast_errors(self, component: str, instance: Any) -> list[str]:
        """As `errors`, on the hot path: a compiled validator (fastjsonschema) for the answer, and the
        detailed jsonschema report only when it fails."""
        if component not in self._compiled:
            doc = self._schemas(component)
            self._compiled[component] = fastjsonschema.compile(
                {"$ref": f"#/components/schemas/{component}", "components": doc["components"]})
        try:
            self._compiled[component](instance)
            return []
        except fastjsonschema.JsonSchemaException:
            return self.errors(component, instance) or ["not valid against the contract"]


class JsonSchemaContract:
    """A JSON Schema file (Draft 2020-12), such as a canonical enrichment schema."""

    def __init__(self, file: str, formats: FormatChecker = FORMATS, *, check_schema: bool = False):
        self.file, self.formats, self.check_schema = file, formats, check_schema
        self._schema: dict[str, Any] | None = None
        self._validator: Draft202012Validator | None = None

    def schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = json.loads(path(self.file).read_text(encoding="utf-8"))
        return self._schema

    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            if self.check_schema:
                Draft202012Validator.check_schema(self.schema())
            self._validator = Draft202012Validator(self.schema(), format_checker=self.formats)
        return self._validator

    def errors(self, data: Any) -> list[str]:
        return pointer_errors(self.validator(), data)


@lru_cache(maxsize=None)
def xsd(name: str) -> xmlschema.XMLSchema:
    """The XSD `name` with its imports (loaded from disk, never from the network)."""
    return xmlschema.XMLSchema(str(path(name)), allow="local")


def schema_errors(schema: xmlschema.XMLSchema, element: etree._Element) -> list[str]:
    return [str(e.reason or e) for e in schema.iter_errors(element)]


def xsd_errors(name: str, element: etree._Element) -> list[str]:
    """Every way `element` breaks the XSD `name`."""
    return schema_errors(xsd(name), element)


def check_xml(name: str, element: etree._Element) -> None:
    """Raise ContractViolation unless `element` is valid against the XSD `name`."""
    raise_if(Path(name).name, xsd_errors(name, element))


__all__ = ["CONTRACTS_DIR", "FORMATS", "ContractViolation", "JsonSchemaContract", "OpenApiContract", "check_xml",
           "path", "pointer_errors", "raise_if", "schema_errors", "xsd", "xsd_errors"]
