"""Examples for newcomers: `wib-hub contracts example`, `wib-hub flows example` and
GET /v1/contracts/{name}/example give valid, synthetic documents of every message contract and flow."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hub.domain import samples
from hub.domain.contracts import MessageContract
from hub.interfaces.api.authorities import MessageIn
from hub.interfaces.cli.main import app
from hub.registry import default_contracts_dir, load

MESSAGES = sorted(p.name.removesuffix(".schema.json") for p in (default_contracts_dir() / "messages").glob("*.schema.json"))
SEEDS = (0, 1, 2, 17, 4242, 10**6)
runner = CliRunner()


@pytest.fixture(scope="module")
def registry():
    return load(None).registry


def contract(registry, name: str) -> MessageContract:
    return registry.contracts[name]


def bound_fields_left_out(c: MessageContract, document: dict) -> None:
    """Optional authority fields (x-bound-to) are the hub's to fill in: the examples leave them out."""
    for field in c.bound_fields:
        node: object = document
        for token in field.tokens[:-1]:
            node = node.get(token, {}) if isinstance(node, dict) else {}
        required = field.tokens[-1] in (c.schema.get("required", []) if len(field.tokens) == 1 else [])
        assert required or field.tokens[-1] not in node, f"{c.name}: {field.pointer} should be left to the hub"


# --- the domain: every message contract has an example, valid for every seed ------------------------

def test_every_message_contract_has_an_example(registry):
    assert len(MESSAGES) == 14
    assert set(MESSAGES) == set(registry.contracts) == set(samples.EXAMPLE_PAYLOADS)


@pytest.mark.parametrize("name", MESSAGES)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_example_validates_against_its_contract(registry, name, seed):
    document = samples.example(name, seed)
    c = contract(registry, name)
    c.validate(document)
    bound_fields_left_out(c, document)


def test_the_default_is_fixed_and_a_seed_gives_another_person():
    assert samples.example("application") == samples.example("application", 0)
    assert samples.example("application") == samples.sample_application()
    one, two = samples.example("application", 1), samples.example("application", 2)
    assert one == samples.example("application", 1)
    assert one["worker"]["insz"] != two["worker"]["insz"] != samples.WORKER_INSZ
    assert one["worker"]["first_name"] != two["worker"]["first_name"]
    assert one["identity_documents"][0]["sha256"] != two["identity_documents"][0]["sha256"]
    assert samples.example("single-act", 3)["applicant"]["first_name"] == samples.synthetic_application(3)["worker"]["first_name"]


def test_an_example_is_a_fresh_document():
    document = samples.example("admissibility-decision")
    document["decision"] = "changed"
    assert samples.example("admissibility-decision")["decision"] == "admissible"


@pytest.mark.parametrize("flow_id", sorted(samples.FLOW_SAMPLES))
@pytest.mark.parametrize("seed", (0, 5, 10**6))
def test_every_flow_example_is_accepted_by_the_flow(registry, flow_id, seed):
    flow = registry.flow(flow_id)
    payload = samples.flow_example(flow_id, seed, "WIB-TEST-7")
    assert registry.check_message(flow, payload) <= flow.data_categories
    bound_fields_left_out(registry.contract_for(flow), payload)


# --- the CLI ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MESSAGES)
def test_contracts_example_prints_only_the_json(registry, name):
    result = runner.invoke(app, ["contracts", "example", name])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document == samples.example(name)
    contract(registry, name).validate(document)
    assert result.stdout.startswith("{\n  ")          # indented


def test_contracts_example_with_a_seed_and_a_dossier(registry):
    result = runner.invoke(app, ["contracts", "example", "work-decision", "--seed", "9", "--dossier", "WIB-2026-000042"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dossier_id"] == "WIB-2026-000042"
    contract(registry, "work-decision").validate(document)
    seeded = json.loads(runner.invoke(app, ["contracts", "example", "application", "--seed", "9"]).stdout)
    assert seeded == samples.example("application", 9) != samples.example("application")


def test_contracts_example_refuses_an_unknown_name_in_one_line():
    result = runner.invoke(app, ["contracts", "example", "teleport-request"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "teleport-request" in lines[0] and "application" in lines[0] and "admissibility-decision" in lines[0]


def test_contracts_example_refuses_a_seed_out_of_range():
    assert runner.invoke(app, ["contracts", "example", "application", "--seed", "-1"]).exit_code == 2
    assert runner.invoke(app, ["contracts", "example", "application", "--seed", str(10**6 + 1)]).exit_code == 2


@pytest.mark.parametrize("flow_id", sorted(samples.FLOW_SAMPLES))
def test_flows_example_prints_the_body_and_says_who_sends_it_where(registry, flow_id):
    flow = registry.flow(flow_id)
    result = runner.invoke(app, ["flows", "example", flow_id, "--seed", "3"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    comment = result.stderr.strip().splitlines()
    assert len(comment) == 1 and comment[0].startswith("#")
    assert all(sender in comment[0] for sender in flow.senders)
    if flow.creates_dossier:
        assert "POST /v1/applications" in comment[0]
        payload = body
    else:
        assert "POST /v1/messages" in comment[0]
        envelope = MessageIn.model_validate(body)
        assert envelope.flow == flow_id and envelope.dossier_id == samples.DOSSIER_ID
        payload = envelope.payload
        assert payload.get("dossier_id", samples.DOSSIER_ID) == samples.DOSSIER_ID
    assert payload == samples.flow_example(flow_id, 3)
    registry.check_message(flow, payload)


def test_flows_example_with_a_dossier():
    result = runner.invoke(app, ["flows", "example", "single-permit.admissible-to-dvz", "--dossier", "WIB-2026-000777"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["dossier_id"] == body["payload"]["dossier_id"] == "WIB-2026-000777"
    assert "placeholder" not in result.stderr


def test_flows_example_refuses_an_unknown_flow_in_one_line():
    result = runner.invoke(app, ["flows", "example", "single-permit.teleport"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "single-permit.teleport" in lines[0] and "single-permit.work-decision" in lines[0]


# --- through the hub ------------------------------------------------------------------------------

def cli_json(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("seed", ("0", "11"))
def test_the_application_example_is_taken_from_the_portal(local_hub, seed):
    application = cli_json("flows", "example", "single-permit.application-submitted", "--seed", seed)
    r = local_hub.post("portal", "/v1/applications", application)
    assert r.status_code == 202, r.text
    assert r.json()["dossier_id"]


def test_a_message_example_is_taken_from_an_allowed_sender(local_hub):
    """The envelope as printed, with the dossier of an application, is taken on /v1/messages."""
    r = local_hub.post("portal", "/v1/applications", cli_json("contracts", "example", "application"))
    assert r.status_code == 202, r.text
    dossier_id = r.json()["dossier_id"]
    for flow_id in ("single-permit.additional-documents-requested", "single-permit.admissible-to-dvz"):
        envelope = cli_json("flows", "example", flow_id, "--dossier", dossier_id)
        r = local_hub.post("region.flanders", "/v1/messages", envelope)
        assert r.status_code == 202, (flow_id, r.text)


# --- the API --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MESSAGES)
def test_the_api_answers_a_valid_example(local_hub, registry, name):
    r = local_hub.get("region.flanders", f"/v1/contracts/{name}/example")
    assert r.status_code == 200, r.text
    assert r.json() == samples.example(name)
    contract(registry, name).validate(r.json())


def test_the_api_example_takes_a_seed(local_hub, registry):
    r = local_hub.get("portal", "/v1/contracts/application/example", params={"seed": 31})
    assert r.status_code == 200, r.text
    assert r.json() == samples.example("application", 31)
    contract(registry, "application").validate(r.json())
    for bad in ("-1", str(10**6 + 1), "x"):
        r = local_hub.get("portal", "/v1/contracts/application/example", params={"seed": bad})
        assert r.status_code == 400, (bad, r.text)


def test_the_api_refuses_an_unknown_contract(local_hub):
    r = local_hub.get("dvz", "/v1/contracts/teleport-request/example")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["error"] == "unknown_contract" and problem["status"] == 404
    assert problem["type"].endswith(":unknown_contract")
    assert "teleport-request" in problem["detail"] and "admissibility-decision" in problem["detail"]


def test_the_api_needs_a_token(local_hub):
    assert local_hub.http.get("/v1/contracts/application/example").status_code == 401


def test_openapi_lists_the_operation(local_hub):
    doc = local_hub.http.get("/openapi.json").json()
    op = doc["paths"]["/v1/contracts/{name}/example"]["get"]
    assert op["operationId"] == "getContractExample"
    assert {"200", "404"} <= set(op["responses"])
    assert op["responses"]["404"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    assert [p["name"] for p in op["parameters"]] == ["name", "seed"]
