"""The OpenAPI document partners build against: FastAPI's, completed from the registry.

- The message contracts of contracts/messages/ are component schemas (their `$defs` hoisted beside
  them as `<Contract><Def>`), so the document and the hub validate against the same JSON Schema.
- `POST /v1/messages` takes one envelope whose `payload` depends on `flow`: its request body is a
  `oneOf` of one variant per flow a party can send (`<Flow>Message`: `flow` a constant, `payload`
  the flow's contract), with a discriminator on `flow`. One operation rather than one per flow,
  because the flows are data (a flow added to contracts/flows/ appears here with no code change
  and no new URL), and a generated client still gets one typed variant per flow.
- Operations that read their body themselves (the application, a document to validate) name its
  schema with `openapi_extra={"x-body-schema": …}`; it becomes their request body here.
- Every operation declares the problems it can answer: its own (`responses=problem_responses(…)`
  on the route) and those the edge answers for any route — 400 for a bad parameter or body, 401
  and 429 where a token is needed, 413 and 415 where there is a body, 431 for headers. FastAPI's
  default 422 (which the hub never answers: its validation errors are 400 problems) is removed.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hub.domain.flows import Registry
from hub.domain.parties import PLATFORM
from hub.interfaces.api.problems import MEDIA_TYPE, Problem, declared

BODY_SCHEMA = "x-body-schema"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch")


def install_openapi(app: FastAPI, registry: Registry) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, registry)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def contract_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{camel(name)}"}


def message_ref(flow_id: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{camel(flow_id)}Message"}


def build(app: FastAPI, registry: Registry) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["Problem"].pop("$defs", {}))
    for name, contract in sorted(registry.contracts.items()):
        schemas.update(contract_components(name, contract.schema))
    schemas.update(message_variants(registry))
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _complete(item[method])
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    scheme = doc["components"].get("securitySchemes", {}).get("HTTPBearer")
    if scheme is not None:
        scheme["bearerFormat"] = "JWT"
    return doc


def contract_components(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One contract as components: the schema under its CamelCase name, each `$def` beside it."""
    base = camel(name)
    body = copy.deepcopy(schema)
    defs = body.pop("$defs", {})
    body.pop("$schema", None)
    body["x-contract-id"] = body.pop("$id", None)
    out = {base: _rewrite(body, base)}
    for def_name, def_schema in defs.items():
        out[base + camel(def_name)] = _rewrite(def_schema, base)
    return out


def _rewrite(node: Any, base: str) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, base) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:   # contracts refer to their own $defs only
            out["$ref"] = f"#/components/schemas/{base}{camel(ref.split('#/$defs/', 1)[1])}"
        return out
    if isinstance(node, list):
        return [_rewrite(v, base) for v in node]
    return node


def sendable(registry: Registry) -> list[Any]:
    """The flows a party can send (the hub's own, e.g. clock reminders, are not sent through the API)."""
    return [f for f in registry.flows.values() if any(s != PLATFORM for s in f.senders)]


def message_variants(registry: Registry) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    flows = sendable(registry)
    for flow in flows:
        variants[f"{camel(flow.id)}Message"] = {
            "title": f"{flow.id}: {flow.title}",
            "type": "object",
            "additionalProperties": False,
            "required": ["flow", "payload"],
            "properties": {
                "flow": {"const": flow.id, "type": "string"},
                "payload": contract_ref(flow.message),
                **_ENVELOPE,
            },
        }
    variants["Message"] = {
        "title": "A message on a flow of the protocol agreement",
        "oneOf": [message_ref(f.id) for f in flows],
        "discriminator": {"propertyName": "flow", "mapping": {f.id: message_ref(f.id)["$ref"] for f in flows}},
    }
    return variants


_ENVELOPE = {
    "recipients": {"type": "array", "maxItems": 32, "items": {"type": "string", "maxLength": 64},
                   "description": "left out: the flow's recipients for the dossier"},
    "dossier_id": {"type": ["string", "null"], "maxLength": 36},
    "correlation_id": {"type": ["string", "null"], "maxLength": 64},
    "message_id": {"type": ["string", "null"], "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$",
                   "description": "the sender's own id: a retry with the same id is not processed twice"},
}


def _complete(op: dict[str, Any]) -> None:
    body_schema = op.pop(BODY_SCHEMA, None)
    if body_schema is not None:
        content = op.setdefault("requestBody", {"required": True}).setdefault("content", {})
        media = next(iter(content), "application/json")
        content.setdefault(media, {})["schema"] = body_schema
    responses = op.setdefault("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if validation.get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    common = {431, 503}   # 503: the store may be away, whatever the route
    if op.get("parameters") or op.get("requestBody"):
        common.add(400)
    if op.get("requestBody"):
        common |= {413, 415} if "application/json" in op["requestBody"].get("content", {}) else {413}
    if op.get("security"):
        common |= {401, 429}
    for status, response in declared(sorted(common)).items():
        responses.setdefault(status, response)
    for response in responses.values():
        for media, content in list(response.get("content", {}).items()):
            if content.get("schema", {}).get("$ref", "").endswith("/Problem") and media != MEDIA_TYPE:
                response["content"] = {MEDIA_TYPE: content}
