"""The catalogue of external contracts (contracts/catalogue.yaml) and a validator for each.

Integration engineers check a document against any contract the hub speaks with a source system
(published ONSS XSDs, the WSDLs and OpenAPI files the hub writes, the enrichment record schemas)
or its own message contracts. Problems name the place (JSON pointer or XPath), the line, the rule
(JSON Schema keyword or XSD facet) and a message. Untrusted XML is parsed without DTDs, entities or
network access (hub/safexml.py, as for the SOAP sources).
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from json.decoder import scanstring
from pathlib import Path
from typing import Any

import xmlschema
import yaml
from jsonschema import Draft202012Validator
from lxml import etree

from hub.domain.contracts import CONTRACT_SUFFIX, VERSION_KEY, describe_error
from hub.domain.formats import FORMAT_CHECKER
from hub.domain.errors import HubError, RegistryError
from hub.registry.files import default_contracts_dir
from hub.ports.safexml import UnsafeXml, parse_untrusted, safe_parser

__all__ = ["Entry", "Problem", "Catalogue", "load_catalogue", "UnknownContract",
           "ContractFileMissing", "UnsafeDocument", "CATALOGUE_FILE"]

CATALOGUE_FILE = "catalogue.yaml"
MAX_PROBLEMS = 200
MAX_XML_BYTES = 10 * 1024 * 1024
SOAP_ENVELOPES = ("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
_BUILTIN_NS = ("{http://www.w3.org/", "{http://schemas.xmlsoap.org/")
_FIELDS = ("name", "system", "protocol", "version", "file", "root", "used_for", "adapter")


class UnknownContract(HubError):
    status, code = 404, "unknown_contract"


class ContractFileMissing(HubError):
    """The catalogue lists a file that is not (yet) in contracts/."""

    status, code = 503, "contract_file_missing"


UnsafeDocument = UnsafeXml  # XXE, billion laughs, or over the size bound


@dataclass(frozen=True)
class Problem:
    path: str                 # JSON pointer, or XPath for XML
    line: int | None
    rule: str                 # JSON Schema keyword, or XSD facet/component
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Entry:
    name: str
    system: str
    protocol: str
    version: str
    file: str
    root: str | None
    used_for: str
    adapter: str | None
    path: Path

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def kind(self) -> str:
        """xsd | wsdl | openapi | jsonschema, from the file name."""
        name = self.file.lower()
        if name.endswith(".xsd"):
            return "xsd"
        if name.endswith(".wsdl"):
            return "wsdl"
        if name.endswith((".openapi.yaml", ".openapi.yml", ".openapi.json")):
            return "openapi"
        return "jsonschema"

    @property
    def syntax(self) -> str:
        return "xml" if self.kind in ("xsd", "wsdl") else "json"

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in _FIELDS}, "kind": self.kind, "exists": self.exists}


def parse_untrusted_xml(data: bytes) -> etree._Element:
    return parse_untrusted(data, MAX_XML_BYTES)


# --- the catalogue ---------------------------------------------------------------------------------

class Catalogue:
    """Every catalogued contract by name; validators are compiled on first use and kept."""

    def __init__(self, entries: dict[str, Entry]):
        self.entries = entries
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __iter__(self):
        return iter(self.entries.values())

    def missing(self) -> list[Entry]:
        """Listed files not present in contracts/ (reported, never fatal at load)."""
        return [e for e in self.entries.values() if not e.exists]

    def lookup(self, name: str) -> tuple[Entry, str | None]:
        """`name` or `name#Component` (OpenAPI: a schema under components/schemas)."""
        base, _, component = name.partition("#")
        entry = self.entries.get(base)
        if entry is None:
            raise UnknownContract(f"no contract named {base!r} in the catalogue; see `wib-hub contracts list`")
        if component and entry.kind != "openapi":
            raise UnknownContract(f"{base!r} is not an OpenAPI contract: '#{component}' does not apply")
        return entry, component or None

    def validate(self, name: str, data: bytes, filename: str | None = None,
                 media_type: str | None = None, *, parse_json: Callable[[str], Any] | None = None) -> list[Problem]:
        """The problems of `data` against contract `name` (empty: valid). A JSON document is read
        with `parse_json` when given (the API passes its strict loader, whose refusals propagate),
        else json.loads; either way a document nested past what can be read or checked, or holding
        a number Python will not convert, is a problem, never a crash."""
        entry, component = self.lookup(name)
        if not entry.exists:
            raise ContractFileMissing(f"{entry.name}: contracts/{entry.file} is listed in the catalogue "
                                      "but does not exist")
        syntax = _syntax_of(data, filename, media_type)
        if syntax != entry.syntax:
            return [Problem("", None, "media-type", f"{entry.name} is a {entry.syntax.upper()} contract, "
                                                    f"the document is {syntax.upper()}")]
        if syntax == "xml":
            return self._validate_xml(entry, data)
        return self._validate_json(entry, component, data, parse_json or json.loads)

    # --- compiled validators ---

    def _compiled_for(self, entry: Entry, component: str | None = None) -> Any:
        key = f"{entry.name}#{component or ''}"
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = _compile(entry, component)
            return self._compiled[key]

    def _validate_json(self, entry: Entry, component: str | None, data: bytes,
                       parse_json: Callable[[str], Any]) -> list[Problem]:
        if entry.kind == "openapi":
            component = component or entry.root
            if not component:
                components = ", ".join(sorted(self.components(entry)))
                raise UnknownContract(f"{entry.name} has no default component: name one as "
                                      f"'{entry.name}#<Component>' ({components})")
            if component not in self.components(entry):
                raise UnknownContract(f"{entry.name} has no component {component!r}")
        validator: Draft202012Validator = self._compiled_for(entry, component)
        try:
            text = data.decode("utf-8")
            instance = parse_json(text)
        except UnicodeDecodeError as err:
            return [Problem("", None, "encoding", f"not UTF-8: {err.reason}")]
        except json.JSONDecodeError as err:
            return [Problem("", err.lineno, "syntax", f"not JSON: {err.msg} (column {err.colno})")]
        except RecursionError:
            return [Problem("", None, "depth", "the document nests too deeply to be read")]
        except ValueError as err:   # e.g. an integer of more digits than Python converts
            return [Problem("", None, "syntax", f"not JSON: {str(err)[:200]}")]
        try:
            errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        except RecursionError:
            return [Problem("", None, "depth", "the document nests too deeply to be checked")]
        if not errors:
            return []
        lines = _json_lines(text)
        out = []
        for err in errors[:MAX_PROBLEMS]:
            pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in err.absolute_path)
            out.append(Problem(pointer, lines.get(pointer), str(err.validator), describe_error(err)))
        return out

    def _validate_xml(self, entry: Entry, data: bytes) -> list[Problem]:
        schema: xmlschema.XMLSchemaBase = self._compiled_for(entry)
        try:
            root = parse_untrusted_xml(data)
        except etree.XMLSyntaxError as err:
            return [Problem("", err.lineno, "well-formedness", f"not well-formed XML: {err.msg}")]
        target = root
        if etree.QName(root).namespace in SOAP_ENVELOPES:
            body = root.find(f"{{{etree.QName(root).namespace}}}Body")
            if body is None or len(body) == 0:
                return [Problem(f"/{root.tag}", root.sourceline, "soap", "a SOAP envelope without a Body element")]
            target = body[0]
        if entry.kind == "xsd" and entry.root and target.tag != entry.root:
            return [Problem(f"/{target.tag}", target.sourceline, "root",
                            f"the document element must be {entry.root}, not {target.tag}")]
        if target.tag not in schema.maps.elements:
            known = ", ".join(sorted(t for t in schema.maps.elements if not t.startswith(_BUILTIN_NS))[:20])
            return [Problem(f"/{target.tag}", target.sourceline, "element",
                            f"{target.tag} is not an element of {entry.name} (known: {known})")]
        return [Problem(err.path or "", err.sourceline, _xsd_rule(err.validator), err.reason or str(err))
                for _, err in zip(range(MAX_PROBLEMS), schema.iter_errors(target))]

    # --- summaries (for `contracts show`) ---

    def components(self, entry: Entry) -> dict[str, Any]:
        if entry.kind != "openapi":
            return {}
        key = f"{entry.name}#components"
        if key not in self._compiled:
            self._compiled[key] = (_read_structured(entry.path).get("components") or {}).get("schemas") or {}
        return self._compiled[key]

    def summary(self, entry: Entry) -> dict[str, list[str]]:
        """Global elements (XSD), operations and elements (WSDL), operations and components (OpenAPI)."""
        if not entry.exists:
            return {}
        if entry.kind == "openapi":
            doc = _read_structured(entry.path)
            ops = [f"{method.upper()} {path}  ({op.get('operationId', '')})"
                   for path, item in (doc.get("paths") or {}).items()
                   for method, op in (item or {}).items() if isinstance(op, dict) and method != "parameters"]
            return {"operations": ops, "components": sorted(self.components(entry))}
        if entry.kind in ("xsd", "wsdl"):
            tree = etree.parse(str(entry.path), safe_parser()).getroot()
            out = {"elements": sorted({str(e.get("name")) for e in tree.iter(f"{{{XS}}}element")
                                       if e.getparent() is not None and e.getparent().tag == f"{{{XS}}}schema"})}
            if entry.kind == "wsdl":
                out["operations"] = sorted({str(op.get("name")) for op in tree.iter(f"{{{WSDL}}}operation")})
            return out
        schema = _read_structured(entry.path)
        return {"properties": sorted((schema.get("properties") or {}).keys())}


def _compile(entry: Entry, component: str | None) -> Any:
    if entry.kind == "xsd":
        return xmlschema.XMLSchema(str(entry.path))
    if entry.kind == "wsdl":
        tree = etree.parse(str(entry.path), safe_parser()).getroot()
        schemas = [etree.tostring(s, encoding="unicode") for s in tree.iter(f"{{{XS}}}schema")]
        if not schemas:
            raise RegistryError(entry.file, "wsdl:types", "the WSDL declares no schema")
        base = entry.path.parent.as_uri() + "/"
        return xmlschema.XMLSchema(schemas if len(schemas) > 1 else schemas[0], base_url=base)
    doc = _read_structured(entry.path)
    if entry.kind == "openapi":
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "components": doc.get("components") or {}, "$ref": f"#/components/schemas/{component}"}
    else:
        schema = doc
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def _read_structured(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RegistryError(path.name, "/", "not a mapping")
    return data


def _syntax_of(data: bytes, filename: str | None, media_type: str | None) -> str:
    if media_type:
        mt = media_type.split(";")[0].strip().lower()
        if "xml" in mt:
            return "xml"
        if "json" in mt:
            return "json"
    if filename:
        suffix = Path(filename).suffix.lower()
        if suffix in (".xml", ".xsd", ".wsdl", ".soap"):
            return "xml"
        if suffix == ".json":
            return "json"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "xml" if head == b"<" else "json"


def _xsd_rule(validator: Any) -> str:
    """The XSD facet or component that was broken: pattern, maxLength, enumeration, sequence, type…"""
    elem = getattr(validator, "elem", None)
    if isinstance(validator, xmlschema.validators.XsdFacet) and elem is not None:
        return etree.QName(elem.tag).localname if hasattr(elem, "tag") else type(validator).__name__
    if isinstance(validator, xmlschema.validators.XsdGroup):
        return getattr(validator, "model", None) or "content"
    if isinstance(validator, xmlschema.validators.XsdElement):
        return "element"
    if isinstance(validator, xmlschema.validators.XsdAttribute):
        return "attribute"
    if isinstance(validator, xmlschema.validators.XsdType):
        return "type"
    return type(validator).__name__ if validator is not None else "xsd"


def _json_lines(text: str) -> dict[str, int]:
    """Best effort: the line where each value of a (valid) JSON document starts, by JSON pointer."""
    scan, out = json.JSONDecoder().scan_once, {}
    ws = re.compile(r"[ \t\r\n]*")

    def skip(i: int) -> int:
        return ws.match(text, i).end()  # type: ignore[union-attr]

    def value(i: int, ptr: str) -> int:
        i = skip(i)
        out[ptr] = text.count("\n", 0, i) + 1
        if text[i] == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, i = scanstring(text, skip(i) + 1)
                i = skip(i) + 1  # the colon
                i = skip(value(i, ptr + "/" + key.replace("~", "~0").replace("/", "~1")))
                if text[i] == "}":
                    return i + 1
                i += 1
        if text[i] == "[":
            i, n = skip(i + 1), 0
            if text[i] == "]":
                return i + 1
            while True:
                i = skip(value(i, f"{ptr}/{n}"))
                n += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        return scan(text, i)[1]

    try:
        value(0, "")
    except (RecursionError, IndexError, ValueError, StopIteration):
        pass
    return out


def load_catalogue(contracts_dir: Path | None = None) -> Catalogue:
    """contracts/catalogue.yaml plus every contracts/messages/*.schema.json as messages.<name>."""
    root = Path(contracts_dir or default_contracts_dir())
    try:
        raw = yaml.safe_load((root / CATALOGUE_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RegistryError(CATALOGUE_FILE, "/", f"not readable: {err}") from None
    items = raw.get("contracts") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise RegistryError(CATALOGUE_FILE, "contracts", "must be a list of entries")
    entries: dict[str, Entry] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(k in item for k in ("name", "system", "protocol", "file")):
            raise RegistryError(CATALOGUE_FILE, f"contracts/{i}", "needs name, system, protocol and file")
        if item["name"] in entries or "#" in item["name"]:
            raise RegistryError(CATALOGUE_FILE, f"contracts/{i}/name", f"duplicate or invalid name {item['name']!r}")
        if Path(item["file"]).is_absolute() or ".." in Path(item["file"]).parts:
            raise RegistryError(CATALOGUE_FILE, f"contracts/{i}/file", "must be a path under contracts/")
        entries[item["name"]] = Entry(
            name=item["name"], system=item["system"], protocol=item["protocol"], version=str(item.get("version", "")),
            file=item["file"], root=item.get("root"), used_for=item.get("used_for", ""),
            adapter=item.get("adapter"), path=root / item["file"])
    for path in sorted((root / "messages").glob("*" + CONTRACT_SUFFIX)):
        name = "messages." + path.name[: -len(CONTRACT_SUFFIX)]
        try:
            version = str(json.loads(path.read_text(encoding="utf-8")).get(VERSION_KEY, ""))
        except (OSError, ValueError, AttributeError):
            version = ""
        entries[name] = Entry(name=name, system="wib-hub", protocol="JSON", version=version,
                              file=f"messages/{path.name}", root=None, used_for="hub message (flow payload)",
                              adapter=None, path=path)
    return Catalogue(entries)
