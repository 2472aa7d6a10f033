"""Message contracts: JSON Schema 2020-12 files with a data category on every personal field.

A contract says what a message may contain (`validate`) and, through its `x-data-category`
annotations (Art. 12–18), which categories of personal data each field holds, so that the hub can
log them (`categories`) and deliver to each recipient only what it needs to know (`project`,
Art. 11). The walk plan for both is compiled once from the schema when the contract is loaded.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from hub.domain.categories import DATA_CATEGORIES
from hub.domain.errors import ContractViolation, RegistryError
from hub.domain.formats import FORMAT_CHECKER

__all__ = ["MessageContract", "CONTRACT_SUFFIX", "describe_error"]


CONTRACT_SUFFIX = ".schema.json"
CATEGORY_KEY = "x-data-category"
VERSION_KEY = "x-contract-version"
ID_PREFIX = "https://contracts.wib-hub.example/messages/"
MAX_REPORTED_ERRORS = 500

_VERSION = re.compile(r"[0-9]+\.[0-9]+")

# --- the walk plan -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Node:
    """One place in a payload: its effective category, and what lies under it."""

    category: str | None
    properties: Mapping[str, _Node] | None
    items: _Node | None
    uniform: bool  # nothing under this node has another effective category


_DROP = object()
# Keywords that would let data in by a road the walk plan does not follow.
_UNSUPPORTED = ("patternProperties", "prefixItems", "unevaluatedProperties", "unevaluatedItems",
                "additionalItems", "dependentSchemas")
# Keywords whose subschemas only constrain: with closed objects they cannot admit extra data.
_CONSTRAINT_ONLY = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "contains", "propertyNames")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class _PlanCompiler:
    """Compiles a schema into a tree of _Node, checking what the hub relies on on the way."""

    def __init__(self, schema: dict, file: str):
        self.root, self.file = schema, file

    def fail(self, pointer: str, message: str) -> RegistryError:
        return RegistryError(self.file, pointer or "/", message)

    def resolve(self, ref: Any, pointer: str) -> tuple[dict, str]:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise self.fail(pointer + "/$ref", "only local references to #/$defs/… are allowed")
        target: Any = self.root
        for token in ref[2:].split("/"):
            if not isinstance(target, dict) or _unescape(token) not in target:
                raise self.fail(pointer + "/$ref", f"unresolvable reference {ref}")
            target = target[_unescape(token)]
        if not isinstance(target, dict):
            raise self.fail(pointer + "/$ref", f"reference {ref} is not a schema")
        return target, ref[1:]

    def expand(self, subs: list[tuple[Any, str]], seen: frozenset[str]) -> tuple[list[tuple[dict, str]], frozenset[str]]:
        """Each description of a place, then the $ref targets it pulls in (nearest first), and `seen` grown by them."""
        out: list[tuple[dict, str]] = []
        targets: set[str] = set()
        for schema, pointer in subs:
            if not isinstance(schema, dict):
                raise self.fail(pointer, "boolean schemas are not allowed: say what the field holds")
            out.append((schema, pointer))
            chain: set[str] = set()
            while "$ref" in schema:
                schema, target = self.resolve(schema["$ref"], pointer)
                if target in seen or target in chain:
                    raise self.fail(pointer + "/$ref", "recursive references are not supported in message contracts")
                chain.add(target)
                out.append((schema, target))
                pointer = target
            targets |= chain
        return out, seen | targets

    def check_constraint_only(self, schema: Any, pointer: str) -> None:
        if isinstance(schema, dict):
            if CATEGORY_KEY in schema:
                raise self.fail(pointer + "/" + CATEGORY_KEY,
                                "data categories belong on properties and items, not inside allOf/anyOf/oneOf/not/if/then/else")
            for key, sub in schema.items():
                if key not in ("const", "enum", "default", "examples"):
                    self.check_constraint_only(sub, f"{pointer}/{_escape(key)}")
        elif isinstance(schema, list):
            for i, sub in enumerate(schema):
                self.check_constraint_only(sub, f"{pointer}/{i}")

    def node(self, subs: list[tuple[Any, str]], inherited: str | None, seen: frozenset[str] = frozenset()) -> _Node:
        """The plan for one place in a payload, described by `subs` (several when beside a $ref)."""
        facets, seen = self.expand(subs, seen)
        pointer = subs[0][1]
        category, annotated, types, closed = inherited, False, set(), False
        properties: dict[str, list[tuple[Any, str]]] = {}
        items: list[tuple[Any, str]] = []
        for facet, at in facets:
            for key in _UNSUPPORTED:
                if key in facet:
                    raise self.fail(f"{at}/{key}", f"'{key}' is not supported in message contracts")
            for key in _CONSTRAINT_ONLY:
                if key in facet:
                    self.check_constraint_only(facet[key], f"{at}/{key}")
            if CATEGORY_KEY in facet and not annotated:  # the nearest annotation overrides the others
                category, annotated = facet[CATEGORY_KEY], True
            declared = facet.get("type")
            types.update([declared] if isinstance(declared, str) else declared or [])
            if "const" in facet or "enum" in facet:
                types.add("constant")
            if "additionalProperties" in facet:
                if facet["additionalProperties"] is not False:
                    raise self.fail(f"{at}/additionalProperties",
                                    "must be false: a payload may not carry unannotated extra fields")
                closed = True
            for name, sub in (facet.get("properties") or {}).items():
                properties.setdefault(name, []).append((sub, f"{at}/properties/{_escape(name)}"))
            if "items" in facet:
                items.append((facet["items"], f"{at}/items"))
        if not types:
            raise self.fail(pointer, "declare a 'type' (or const/enum) so the field cannot hold just anything")
        if ("object" in types or properties) and not closed:
            raise self.fail(pointer, 'an object must set "additionalProperties": false')
        if "array" in types and not items:
            raise self.fail(pointer, "an array must say what its 'items' are")
        children = {name: self.node(described, category, seen) for name, described in properties.items()}
        item_node = self.node(items, category, seen) if items else None
        uniform = all(c.uniform and c.category == category for c in children.values())
        if item_node is not None:
            uniform = uniform and item_node.uniform and item_node.category == category
        is_object = "object" in types or bool(properties)
        return _Node(category, children if is_object else None, item_node, uniform)


def _check_category_values(schema: Any, file: str, pointer: str = "") -> None:
    """Every x-data-category anywhere in the file names a known category (unused $defs included)."""
    if isinstance(schema, dict):
        if CATEGORY_KEY in schema and schema[CATEGORY_KEY] not in DATA_CATEGORIES:
            raise RegistryError(file, f"{pointer}/{CATEGORY_KEY}",
                                f"unknown data category {schema[CATEGORY_KEY]!r}; known: {', '.join(sorted(DATA_CATEGORIES))}")
        for key, sub in schema.items():
            if key not in ("const", "enum", "default", "examples"):
                _check_category_values(sub, file, f"{pointer}/{_escape(key)}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            _check_category_values(sub, file, f"{pointer}/{i}")


def _declared_categories(node: _Node) -> frozenset[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n.category is not None:
            out.add(n.category)
        if n.properties:
            stack.extend(n.properties.values())
        if n.items is not None:
            stack.append(n.items)
    return frozenset(out)


# --- walking payloads ----------------------------------------------------------------------------

def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def _holds_data(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_data(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_data(v) for v in value)
    return value is not None


def _collect(node: _Node, value: Any, out: set[str]) -> None:
    if node.uniform:
        if node.category is not None and node.category not in out and _holds_data(value):
            out.add(node.category)
        return
    if isinstance(value, dict) and node.properties is not None:
        for key, sub in value.items():
            child = node.properties.get(key)
            if child is not None:
                _collect(child, sub, out)
    elif isinstance(value, list) and node.items is not None:
        for sub in value:
            _collect(node.items, sub, out)
    elif value is not None and not isinstance(value, (dict, list)) and node.category is not None:
        out.add(node.category)


def _project(node: _Node, value: Any, allowed: frozenset[str] | set[str]) -> Any:
    visible = node.category is None or node.category in allowed
    if node.uniform:
        return _json_copy(value) if visible else _DROP
    if isinstance(value, dict) and node.properties is not None:
        out = {}
        for key, sub in value.items():
            child = node.properties.get(key)
            if child is not None:
                kept = _project(child, sub, allowed)
                if kept is not _DROP:
                    out[key] = kept
        return out if out or visible else _DROP
    if isinstance(value, list) and node.items is not None:
        kept_items = [kept for kept in (_project(node.items, sub, allowed) for sub in value) if kept is not _DROP]
        return kept_items if kept_items or visible else _DROP
    if visible and not isinstance(value, (dict, list)):
        return value
    return _DROP


# --- errors --------------------------------------------------------------------------------------

def _pointer(path: Iterator[Any] | Any) -> str:
    return "".join("/" + _escape(str(token)) for token in path)


def describe_error(error: ValidationError) -> str:
    """A message about the field, never echoing its value (it may be personal data)."""
    rule, expected = error.validator, error.validator_value
    if rule == "format":
        return f"not a valid {expected}"
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(k)[:64] for k in error.instance if k not in allowed)
        return "unexpected field(s): " + ", ".join(extra[:20])
    if rule == "required":
        return error.message  # "'x' is a required property": names the field, not a value
    if rule == "type":
        return f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}"
    if rule in ("enum", "const"):
        return "not one of the allowed values"
    if rule in ("maxLength", "minLength", "maxItems", "minItems", "maximum", "minimum",
                "exclusiveMaximum", "exclusiveMinimum", "maxProperties", "minProperties", "multipleOf"):
        return f"violates {rule} {expected}"
    if rule == "pattern":
        return "does not match the expected pattern"
    if rule == "uniqueItems":
        return "items must be unique"
    if rule in ("anyOf", "oneOf", "allOf", "not", "if"):
        return "does not satisfy the contract's combined conditions: " + "; ".join(
            sorted({describe_error(e) for e in (error.context or [])})[:5])
    return f"violates {rule}"


# --- the contract --------------------------------------------------------------------------------

class MessageContract:
    """One message contract (contracts/messages/<name>.schema.json), compiled once."""

    __slots__ = ("name", "schema", "version", "id", "source", "declared_categories", "_validator", "_fast",
                 "_plan")

    def __init__(self, name: str, schema: dict, *, source: str | None = None):
        source = source or f"messages/{name}{CONTRACT_SUFFIX}"
        if not isinstance(schema, dict):
            raise RegistryError(source, "/", "a contract is a JSON object")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise RegistryError(source, _pointer(exc.absolute_path) or "/", exc.message) from None
        version = schema.get(VERSION_KEY)
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise RegistryError(source, VERSION_KEY, 'required: the contract version as "<major>.<minor>", e.g. "1.0"')
        expected_id = f"{ID_PREFIX}{name}/{version}"
        if schema.get("$id") != expected_id:
            raise RegistryError(source, "$id", f"must be {expected_id}")
        self.name, self.schema, self.version, self.id, self.source = name, schema, version, expected_id, source
        _check_category_values(schema, source)
        self._plan = _PlanCompiler(schema, source).node([(schema, "")], None)
        self.declared_categories: frozenset[str] = _declared_categories(self._plan)
        self._validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        # The hot path: the same schema compiled to Python code, with the same format checks.
        # jsonschema stays the reference: it writes the error report, and a payload either refuses
        # is refused (tests/test_contracts.py checks the two agree on mutated samples).
        self._fast = fastjsonschema.compile(schema, formats=_FAST_FORMATS, use_default=False)

    def __repr__(self) -> str:
        return f"MessageContract({self.name!r}, version={self.version!r})"

    def validate(self, payload: Any) -> None:
        """Raise ContractViolation listing every error (path, rule, message), sorted by path."""
        try:
            self._fast(payload)
            return
        except fastjsonschema.JsonSchemaException as fast_error:
            first = fast_error
        errors = list(islice(self._validator.iter_errors(payload), MAX_REPORTED_ERRORS))
        if not errors:  # stricter than the reference here: still a refusal, in the same shape
            raise ContractViolation([{"path": _fast_pointer(first), "rule": str(first.rule),
                                      "message": "value does not follow the contract"}])
        detail = sorted(
            ({"path": _pointer(e.absolute_path), "rule": str(e.validator), "message": describe_error(e)} for e in errors),
            key=lambda d: (d["path"], d["rule"], d["message"]),
        )
        raise ContractViolation(detail)

    def categories(self, payload: Any) -> set[str]:
        """The data categories of the fields present in a (validated) payload that hold a value."""
        out: set[str] = set()
        _collect(self._plan, payload, out)
        return out

    def project(self, payload: Any, allowed: set[str] | frozenset[str]) -> dict:
        """Art. 11 need to know: a copy keeping unannotated fields and fields of an allowed category.

        An unannotated object stays even when everything in it was removed; an annotated one whose
        category is not allowed goes, unless something under it is of an allowed category.
        """
        kept = _project(self._plan, payload, allowed)
        return {} if kept is _DROP else kept

    def has_path(self, pointer: str) -> bool:
        """Whether a JSON pointer (e.g. "/worker/insz", "/identity_documents/0") names a field of the contract."""
        return pointer == "" or (pointer.startswith("/") and self._node_at(pointer) is not None)

    def category_at(self, pointer: str) -> str | None:
        """The effective data category of the field at a JSON pointer (None: not personal, or no such field)."""
        node = self._node_at(pointer)
        return node.category if node is not None else None

    def _node_at(self, pointer: str) -> _Node | None:
        node: _Node | None = self._plan
        for token in pointer.split("/")[1:] if pointer else []:
            if node is None:
                return None
            if node.properties is not None:
                node = node.properties.get(_unescape(token))
            elif node.items is not None and token.isdigit():
                node = node.items
            else:
                return None
        return node


def _fast_format(name: str):
    check, raises = FORMAT_CHECKER.checkers[name]

    def fast_check(value: str) -> bool:
        try:
            return bool(check(value))
        except raises:
            return False
    return fast_check


_FAST_FORMATS = {name: _fast_format(name) for name in FORMAT_CHECKER.checkers}


def _fast_pointer(error: "fastjsonschema.JsonSchemaValueException") -> str:
    # fastjsonschema names the place "data.worker.insz"; the hub speaks JSON pointers
    path = (error.name or "data").split(".")[1:]
    return "/" + "/".join(path) if path else ""

