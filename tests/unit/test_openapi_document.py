"""/openapi.json is the contract partners build against: complete, resolvable, and the same JSON
Schema the hub validates with."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from hub.domain import samples
from hub.interfaces.api.openapi import camel, sendable

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def doc(module_hub):
    return module_hub.http.get("/openapi.json").json()


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory):
    import uuid

    from tests.support import sqlite_store, start_hub
    tmp = tmp_path_factory.mktemp("openapi")
    yield from start_hub(tmp / "data", sqlite_store(tmp / "hub.db"), f"memory://{uuid.uuid4().hex}")


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_reference_resolves(doc):
    schemas = doc["components"]["schemas"]
    for ref in set(refs(doc)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, f"{ref} is not in the document"


def test_every_operation_that_takes_a_body_declares_it(doc):
    takes_body = {("post", p) for _, p, _ in operations(doc)} - {
        ("post", "/v1/inbox/{delivery_id}/ack"), ("post", "/v1/dossiers/{dossier_id}/enrichment")}
    for method, path, op in operations(doc):
        if (method, path) in takes_body:
            content = op.get("requestBody", {}).get("content")
            assert content, f"{method} {path} declares no request body"
            for media in content.values():
                assert media.get("schema"), f"{method} {path}: {media} has no schema"


def test_every_operation_declares_its_answers_as_models_and_problems(doc):
    for method, path, op in operations(doc):
        responses = op["responses"]
        assert "422" not in responses or "application/problem+json" in responses["422"]["content"], path
        success = [s for s in responses if s.startswith("2")]
        assert success, f"{method} {path} declares no success"
        for status in success:
            content = responses[status].get("content", {})
            assert content and all(m.get("schema") for m in content.values()), f"{method} {path} {status}"
        assert "431" in responses
        if op.get("security"):
            assert {"401", "429"} <= set(responses), f"{method} {path}"
        if op.get("parameters") or op.get("requestBody"):
            assert "400" in responses, f"{method} {path}"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {status}"
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}


def test_fastapis_validation_error_shape_is_gone(doc):
    assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])


def _validator(doc, name):
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=registry)


def test_the_message_contracts_are_component_schemas(doc, module_hub):
    schemas = doc["components"]["schemas"]
    for name, contract in module_hub.hub.registry.contracts.items():
        component = schemas[camel(name)]
        assert component["x-contract-id"] == contract.schema["$id"]
        assert component["properties"].keys() == contract.schema["properties"].keys()
    application = doc["paths"]["/v1/applications"]["post"]["requestBody"]["content"]["application/json"]
    assert application["schema"] == {"$ref": "#/components/schemas/Application"}


def test_the_document_validates_what_the_hub_validates(doc):
    check = _validator(doc, "Application")
    good = samples.synthetic_application(3)
    assert not list(check.iter_errors(good))
    bad = json.loads(json.dumps(good))
    del bad["worker"]["last_name"]
    assert list(check.iter_errors(bad))


def test_a_message_is_a_oneof_keyed_by_flow(doc, module_hub):
    message = doc["components"]["schemas"]["Message"]
    flows = {f.id for f in sendable(module_hub.hub.registry)}
    assert set(message["discriminator"]["mapping"]) == flows and len(message["oneOf"]) == len(flows)
    assert "platform.clock-reminder" not in flows      # the hub's own: not sent through the API
    body = doc["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Message"}
    check = _validator(doc, "Message")
    sent = {"flow": "single-permit.application-submitted", "payload": samples.synthetic_application(4)}
    assert not list(check.iter_errors(sent))
    assert list(check.iter_errors({**sent, "flow": "single-permit.admissible-to-dvz"}))


def test_docs_pages_load_their_assets_from_the_hub(module_hub):
    for page in ("/docs", "/redoc"):
        r = module_hub.http.get(page)
        assert r.status_code == 200 and "cdn." not in r.text and "https://" not in r.text.split("<body")[0]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert module_hub.http.get(f"/docs/assets/{asset}").status_code == 200


def test_a_loaded_contract_is_the_published_file(module_hub):
    from hub.registry import default_contracts_dir
    for name, contract in module_hub.hub.registry.contracts.items():
        published = json.loads((default_contracts_dir() / "messages" / f"{name}.schema.json").read_text())
        assert contract.schema == published, name          # compiling it changed nothing


def test_every_operation_has_a_stable_name_for_generated_clients(doc):
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    for op_id in ids:           # lowerCamelCase, chosen per route: not FastAPI's name_path_method
        assert op_id[0].islower() and op_id.isalnum(), op_id
