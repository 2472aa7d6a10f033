"""Message contracts: JSON Schema 2020-12 files with a data category on every personal field.

A contract says what a message may contain (`validate`) and, through its `x-data-category`
annotations (Art. 12–18), which categories of personal data each field holds, so that the hub can
log them (`categories`) and deliver to each recipient only what it needs to know (`project`,
Art. 11). The walk plan for both is compiled once from the schema when the contract is loaded.

A field that names an authority carries an `x-bound-to` annotation (BINDINGS): what the hub knows
of the message that the field must equal — the authenticated sender, or the dossier's competent
region. The bound fields are found once, when the contract is compiled (`bound_fields`); `bind`
checks a payload against them and fills in the ones left out. Which fields name a party, and so
must be bound, is `party_fields` (the registry refuses a contract with an unbound one).
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from hub.domain.categories import DATA_CATEGORIES
from hub.domain.errors import ContractViolation, NotAuthorised, RegistryError
from hub.domain.formats import FORMAT_CHECKER

__all__ = ["MessageContract", "CONTRACT_SUFFIX", "describe_error", "BINDINGS", "BOUND_KEY", "BoundField",
           "ScalarField", "party_fields"]


CONTRACT_SUFFIX = ".schema.json"
CATEGORY_KEY = "x-data-category"
BOUND_KEY = "x-bound-to"
VERSION_KEY = "x-contract-version"
ID_PREFIX = "https://contracts.wib-hub.example/messages/"
MAX_REPORTED_ERRORS = 500

_VERSION = re.compile(r"[0-9]+\.[0-9]+")

# What an `x-bound-to` field is bound to (contracts/README.md). A value the sender states must equal
# it; a field left out is filled in with it by the hub (the hub sets what it can derive).
BINDINGS: Mapping[str, str] = {
    "sender": "the authenticated sender of the message: a party speaks only for itself",
    "dossier.region": "the competent region of the dossier, by its contract name (flanders, wallonia, brussels, "
                      "german_speaking); on a flow that creates the dossier, the region the dossier is given",
}

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


@dataclass(frozen=True, slots=True)
class ScalarField:
    """A place in a payload that holds one value (not an object or an array), as the schema says it:
    what `party_fields` needs to tell whether it names a party."""

    pointer: str                    # in the payload, e.g. "/deciding_authority" ("-" for any array item)
    schema_pointer: str             # where the schema describes it, e.g. "/properties/deciding_authority"
    name: str | None                # its property name (None: an array's items)
    values: tuple[Any, ...]         # its enum / const values
    patterns: tuple[str, ...]
    descriptions: tuple[str, ...]
    binding: str | None             # its x-bound-to, if any
    in_array: bool


@dataclass(frozen=True, slots=True)
class BoundField:
    """A field with `x-bound-to`: the path to it, computed once, and what it is bound to."""

    pointer: str                    # JSON pointer into the payload, e.g. "/requested_by"
    tokens: tuple[str, ...]         # the same, as property names
    binding: str                    # a key of BINDINGS
    schema_pointer: str             # where the annotation is (for the registry's messages)
    accepts: Callable[[Any], bool]  # whether the contract admits a value there (the registry's load-time checks)


class _PlanCompiler:
    """Compiles a schema into a tree of _Node, checking what the hub relies on on the way."""

    def __init__(self, schema: dict, file: str):
        self.root, self.file = schema, file
        self.scalars: list[ScalarField] = []
        self.bound: list[BoundField] = []

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
            if BOUND_KEY in schema:
                raise self.fail(pointer + "/" + BOUND_KEY,
                                "x-bound-to belongs on properties, not inside allOf/anyOf/oneOf/not/if/then/else")
            for key, sub in schema.items():
                if key not in ("const", "enum", "default", "examples"):
                    self.check_constraint_only(sub, f"{pointer}/{_escape(key)}")
        elif isinstance(schema, list):
            for i, sub in enumerate(schema):
                self.check_constraint_only(sub, f"{pointer}/{i}")

    def node(self, subs: list[tuple[Any, str]], inherited: str | None, seen: frozenset[str] = frozenset(),
             where: tuple[str, ...] = (), prop: str | None = None, in_array: bool = False) -> _Node:
        """The plan for one place in a payload, described by `subs` (several when beside a $ref);
        `where` is the place in the payload (property names, "-" for an array's items)."""
        facets, seen = self.expand(subs, seen)
        pointer = subs[0][1]
        category, annotated, types, closed = inherited, False, set(), False
        binding: tuple[str, str] | None = None     # (value, schema pointer) of the nearest x-bound-to
        values: list[Any] = []
        patterns: list[str] = []
        descriptions: list[str] = []
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
            if BOUND_KEY in facet and binding is None:    # likewise
                binding = (facet[BOUND_KEY], f"{at}/{BOUND_KEY}")
            if "const" in facet:
                values.append(facet["const"])
            if isinstance(facet.get("enum"), list):
                values.extend(facet["enum"])
            if isinstance(facet.get("pattern"), str):
                patterns.append(facet["pattern"])
            if isinstance(facet.get("description"), str):
                descriptions.append(facet["description"])
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
        is_object = "object" in types or bool(properties)
        scalar = not is_object and "array" not in types
        if scalar:
            self.scalars.append(ScalarField("".join("/" + _escape(t) for t in where), pointer, prop, tuple(values),
                                            tuple(patterns), tuple(descriptions),
                                            binding[0] if binding else None, in_array))
        if binding is not None:
            self.bind(binding, subs, where, scalar, types, category, in_array)
        children = {key: self.node(described, category, seen, where + (key,), key, in_array)
                    for key, described in properties.items()}
        item_node = self.node(items, category, seen, where + ("-",), None, True) if items else None
        uniform = all(c.uniform and c.category == category for c in children.values())
        if item_node is not None:
            uniform = uniform and item_node.uniform and item_node.category == category
        return _Node(category, children if is_object else None, item_node, uniform)

    def bind(self, binding: tuple[str, str], subs: list[tuple[Any, str]], where: tuple[str, ...], scalar: bool,
             types: set[str], category: str | None, in_array: bool) -> None:
        """Record a field with x-bound-to, checking that the hub can check it and fill it in."""
        value, at = binding
        if value not in BINDINGS:   # also caught by _check_vocabulary; here for a clear order of faults
            raise self.fail(at, f"unknown x-bound-to {value!r}; known: {', '.join(BINDINGS)}")
        if not where:
            raise self.fail(at, "x-bound-to goes on a field of the payload, not on the payload itself")
        if not scalar or not types <= {"string", "constant"}:
            raise self.fail(at, "x-bound-to goes on a string field (it holds a party id or a region name)")
        if in_array:
            raise self.fail(at, "x-bound-to is not supported inside an array: one bound value per field")
        if category is not None:
            raise self.fail(at, f"a bound field names an authority, not a person: it may not carry (or sit under) "
                                f"a data category ({category!r})")
        # The field's own schema, its references resolved against the contract's $defs: the registry
        # asks it whether the values the hub would fill in are ones the contract admits.
        # (A copy: fastjsonschema rewrites the contract's references in place when it compiles it.)
        checker = Draft202012Validator(copy.deepcopy({"$defs": self.root.get("$defs", {}),
                                                      "allOf": [sub for sub, _ in subs]}),
                                       format_checker=FORMAT_CHECKER)
        self.bound.append(BoundField("".join("/" + _escape(t) for t in where), where, value, at, checker.is_valid))


def _check_vocabulary(schema: Any, file: str, pointer: str = "") -> None:
    """Every x-data-category and x-bound-to anywhere in the file is one of the known values
    (unused $defs included)."""
    if isinstance(schema, dict):
        for key, known, what in ((CATEGORY_KEY, DATA_CATEGORIES, "data category"), (BOUND_KEY, BINDINGS, "x-bound-to")):
            if key in schema and schema[key] not in known:
                raise RegistryError(file, f"{pointer}/{key}",
                                    f"unknown {what} {schema[key]!r}; known: {', '.join(sorted(known))}")
        for key, sub in schema.items():
            if key not in ("const", "enum", "default", "examples"):
                _check_vocabulary(sub, file, f"{pointer}/{_escape(key)}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            _check_vocabulary(sub, file, f"{pointer}/{i}")


# --- which fields name a party ------------------------------------------------------------------

# Property names that say the field names an authority or a party, whatever its values look like.
AUTHORITY_NAMES = frozenset({"sender", "recipient", "authority", "party", "requester", "decider"})
AUTHORITY_SUFFIXES = ("_authority", "_party", "_by")
_PARTY_WORDS = re.compile(r"\bparty[ _-]?ids?\b", re.IGNORECASE)
# The shape of a party id (contracts/parties.yaml, hub.registry.flows).
PARTY_ID_PATTERN = r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$"


def party_fields(fields: Collection[ScalarField], party_names: Collection[str]) -> list[tuple[ScalarField, str]]:
    """The fields that name a party, each with the reason: what the registry requires to be bound.

    A field (a single value anywhere in the payload: a property at any depth, through $ref into
    $defs, or an array's items) names a party when

    1. its property name is an authority's: one of AUTHORITY_NAMES, or ending in _authority, _party
       or _by (deciding_authority, requested_by, decided_by, informed_by, …); or
    2. one of its enum / const values is in `party_names` — the party ids of contracts/parties.yaml
       and the contracts' names of the regional authorities (flanders, …: hub.domain.flows.REGION_PARTIES); or
    3. its description says it holds a party id ("A party id of contracts/parties.yaml"); or
    4. its pattern is the shape of a party id (PARTY_ID_PATTERN), or names a party — a party id, or
       the first part of a dotted one (`^dvz$`, `^region\\.[a-z-]+$`) — and admits one.

    Only single values are looked at: a field's name, values, description and pattern are all the
    schema says about what it holds. What such a field must be bound to is the contract's to say.
    """
    names = {str(n) for n in party_names}
    words = names | {n.split(".", 1)[0] for n in names if "." in n}
    found = []
    for f in fields:
        reason = None
        if f.name is not None and (f.name in AUTHORITY_NAMES or f.name.endswith(AUTHORITY_SUFFIXES)):
            reason = f"its name {f.name!r} is an authority's"
        elif hit := sorted(str(v) for v in f.values if isinstance(v, str) and v in names):
            reason = f"its allowed values name parties ({', '.join(hit[:3])})"
        elif any(_PARTY_WORDS.search(d) for d in f.descriptions):
            reason = "its description says it holds a party id"
        elif any(_pattern_names_a_party(p, words, names) for p in f.patterns):
            reason = "its pattern names a party"
        if reason is not None:
            found.append((f, reason))
    return found


def _pattern_names_a_party(pattern: str, words: set[str], names: set[str]) -> bool:
    if pattern == PARTY_ID_PATTERN:
        return True
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    text = re.sub(r"\\(.)", r"\1", pattern)   # ^region\.[a-z-]+$ → ^region.[a-z-]+$
    literal = any(re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", text) for w in words)
    return literal and any(compiled.search(n) for n in names)


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

    __slots__ = ("name", "schema", "version", "id", "source", "declared_categories", "bound_fields",
                 "scalar_fields", "_validator", "_fast", "_plan")

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
        _check_vocabulary(schema, source)
        compiler = _PlanCompiler(schema, source)
        self._plan = compiler.node([(schema, "")], None)
        self.declared_categories: frozenset[str] = _declared_categories(self._plan)
        # x-bound-to: the bound fields' paths, found once here; `bind` only follows them
        self.bound_fields: tuple[BoundField, ...] = tuple(compiler.bound)
        self.scalar_fields: tuple[ScalarField, ...] = tuple(compiler.scalars)
        self._validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        # The hot path: the same schema compiled to Python code, with the same format checks.
        # jsonschema stays the reference: it writes the error report, and a payload either refuses
        # is refused (tests/test_contracts.py checks the two agree on mutated samples).
        # (on a copy: fastjsonschema rewrites every $ref of the schema it is given to an absolute URI,
        # and `schema` is the contract as published — the catalogue and /openapi.json show it)
        self._fast = fastjsonschema.compile(copy.deepcopy(schema), formats=_FAST_FORMATS, use_default=False)

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

    def bind(self, payload: dict, values: Mapping[str, str]) -> dict:
        """Check the bound fields (x-bound-to) of a validated payload against what the hub knows.

        `values` gives, per binding, the value its fields must hold (e.g. {"sender": "region.flanders"});
        a binding not in it does not apply to this message (dossier.region on a flow that creates the
        dossier). A field that holds another value is refused (NotAuthorised, code not_your_authority),
        naming the field, never its value. A field left out is filled in, where the object that holds it
        is present: the answer is then a new payload (the one given is not changed), else the same one.
        """
        wrong: list[dict[str, str]] = []
        fills: list[tuple[BoundField, str]] = []
        for f in self.bound_fields:
            expected = values.get(f.binding)
            if expected is None:
                continue
            holder: Any = payload
            for token in f.tokens[:-1]:
                holder = holder.get(token) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                continue
            if f.tokens[-1] not in holder:
                fills.append((f, expected))
            elif holder[f.tokens[-1]] != expected:
                wrong.append({"path": f.pointer, "rule": BOUND_KEY,
                              "message": f"must name {_WHAT_IT_NAMES[f.binding]} (x-bound-to: {f.binding})"})
        if wrong:
            raise NotAuthorised(wrong, code="not_your_authority")
        for f, expected in fills:
            payload = _with(payload, f.tokens, expected)
        return payload

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


_WHAT_IT_NAMES = {"sender": "the authenticated sender", "dossier.region": "the competent region of the dossier"}


def _with(payload: dict, tokens: tuple[str, ...], value: Any) -> dict:
    """A copy of `payload` with `value` at `tokens`: the objects on the way are copied, nothing else."""
    top = dict(payload)
    holder = top
    for token in tokens[:-1]:
        holder[token] = dict(holder[token])
        holder = holder[token]
    holder[tokens[-1]] = value
    return top


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

