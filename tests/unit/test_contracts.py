"""Message contracts: loading, validation with all errors, data categories and need-to-know projection."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hub.domain.categories import DATA_CATEGORIES
from hub.domain.contracts import MessageContract
from hub.domain.errors import ContractViolation, RegistryError
from hub.domain.samples import (
    SAMPLE_PAYLOADS,
    WORKER_INSZ,
    sample_application,
    sample_negative_decision_notice,
    sample_payload,
)
from hub.registry import default_contracts_dir
from hub.registry.contracts import load_contracts

MESSAGES = default_contracts_dir() / "messages"
REQUIRED_CONTRACTS = {
    "application", "additional-documents-requested", "additional-documents", "admissibility-decision",
    "residence-decision", "work-decision", "single-act", "authorisation-notice", "negative-decision-notice",
}
# What a region receives of an application (Art. 11, 15, 17 §1).
REGION = frozenset({"identification", "contact", "residence_status", "employment", "financial", "administrative"})


@pytest.fixture(scope="module")
def contracts() -> dict[str, MessageContract]:
    return load_contracts(MESSAGES)


@pytest.fixture(scope="module")
def application(contracts) -> MessageContract:
    return contracts["application"]


def violations(contract: MessageContract, payload) -> list[dict]:
    with pytest.raises(ContractViolation) as exc:
        contract.validate(payload)
    return exc.value.detail


# --- loading -------------------------------------------------------------------------------------

def test_every_contract_loads_with_version_and_id(contracts):
    assert REQUIRED_CONTRACTS <= set(contracts)
    assert set(contracts) == {p.name.removesuffix(".schema.json") for p in MESSAGES.glob("*.schema.json")}
    for name, contract in contracts.items():
        assert contract.name == name
        assert contract.version in ("1.0", "1.1")      # 1.1: authority fields bound to the sender (x-bound-to)
        assert contract.schema["$id"] == f"https://contracts.wib-hub.example/messages/{name}/{contract.version}"
        assert contract.declared_categories <= DATA_CATEGORIES


def test_application_declares_every_category_of_the_form(application):
    assert application.declared_categories == DATA_CATEGORIES - {"social_security"}


def test_every_object_is_closed_and_every_string_and_array_bounded():
    constraint_only = {"enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"}

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                assert node.get("additionalProperties") is False or "$ref" in node, where
            if node.get("type") == "string" and "enum" not in node and "const" not in node:
                assert "maxLength" in node, where
            if node.get("type") == "array":
                assert "maxItems" in node, where
            for key, sub in node.items():
                if key not in constraint_only:  # branches only constrain: they admit no data
                    walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}/{i}")

    for path in MESSAGES.glob("*.schema.json"):
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)


@pytest.mark.parametrize("name", sorted(SAMPLE_PAYLOADS))
def test_sample_payloads_validate(contracts, name):
    contracts[name].validate(sample_payload(name, "WIB-TEST-1"))


# --- validation ----------------------------------------------------------------------------------

def test_bad_insz_checksum_is_a_format_error_at_its_path(application):
    payload = sample_application()
    good = payload["worker"]["insz"]
    payload["worker"]["insz"] = good[:9] + f"{(int(good[9:]) % 97) + 1:02d}"
    detail = violations(application, payload)
    assert detail == [{"path": "/worker/insz", "rule": "format", "message": "not a valid insz"}]
    assert payload["worker"]["insz"] not in json.dumps(detail)  # errors never echo personal data


def test_extra_fields_are_refused(application):
    payload = sample_application(smuggled="x")
    payload["worker"]["religion"] = "y"
    detail = violations(application, payload)
    assert [(d["path"], d["rule"]) for d in detail] == [("", "additionalProperties"), ("/worker", "additionalProperties")]
    assert "smuggled" in detail[0]["message"] and "religion" in detail[1]["message"]


def test_all_errors_are_listed_sorted_by_path(application):
    payload = sample_application()
    payload["worker"]["nationality"] = "Canada"
    payload["worker"]["birth_date"] = "2026-02-30"
    payload["employment"]["employer"]["enterprise_number"] = "0123456748"
    payload["employment"]["gross_monthly_pay"] = "a lot"
    payload["medical_documents"][0]["document_type"] = "passport_copy"
    del payload["category"]
    detail = violations(application, payload)
    assert [(d["path"], d["rule"]) for d in detail] == [
        ("", "required"),
        ("/employment/employer/enterprise_number", "format"),
        ("/employment/gross_monthly_pay", "type"),
        ("/medical_documents/0/document_type", "enum"),
        ("/worker/birth_date", "format"),
        ("/worker/nationality", "maxLength"),
        ("/worker/nationality", "pattern"),
    ]
    assert "'category' is a required property" == detail[0]["message"]


def test_formats(application):
    ok = sample_application(submitted_at="2026-02-02T09:30:00Z")
    ok["employment"]["employer"]["enterprise_number"] = "0123.456.749"
    application.validate(ok)
    for field, value in [("submitted_at", "2026-02-02T09:30:00"), ("submitted_at", "2026-02-02"),
                         ("submitted_at", "2026-13-02T09:30:00Z")]:
        assert violations(application, sample_application(**{field: value}))[0]["rule"] == "format"
    bad_mail = sample_application()
    bad_mail["contact"]["email"] = "not-an-address"
    assert violations(application, bad_mail) == [
        {"path": "/contact/email", "rule": "format", "message": "not a valid email"}]


def test_single_permit_needs_employment_and_a_consistent_kind(application):
    assert ("", "required") in {(d["path"], d["rule"]) for d in violations(application, sample_application(employment=None))}
    detail = violations(application, sample_application(application_kind="work_permit"))
    assert {d["path"] for d in detail} == {"/application_kind"}
    detail = violations(application, sample_application(application_kind="professional_card"))
    assert "/category" in {d["path"] for d in detail}


def test_an_employer_without_enterprise_number_asks_for_registration(application):
    payload = sample_application()
    del payload["employment"]["employer"]["enterprise_number"]
    assert violations(application, payload)[0]["path"] == "/employment/employer"
    payload["employment"]["employer"]["enterprise_registration_requested"] = True
    application.validate(payload)


def test_document_contents_are_bounded_and_base64(application):
    payload = sample_application()
    payload["identity_documents"][0]["content_base64"] = "not base64!"
    assert violations(application, payload)[0] == {
        "path": "/identity_documents/0/content_base64", "rule": "pattern",
        "message": "does not match the expected pattern"}
    assert application.schema["$defs"]["document"]["properties"]["content_base64"]["maxLength"] <= 10_000_000


def test_non_object_payloads_are_refused(contracts):
    for payload in (None, [], "x", 3):
        assert violations(contracts["admissibility-decision"], payload)[0]["rule"] == "type"


def test_decisions_cannot_carry_grounds(contracts):
    for name in ("residence-decision", "work-decision"):
        payload = sample_payload(name, "D1")
        payload["grounds_summary"] = "reasons reserved for the person (Art. 24)"
        assert violations(contracts[name], payload)[0]["rule"] == "additionalProperties"


def test_decision_kind_and_outcome_agree(contracts):
    payload = sample_payload("residence-decision", "D1")
    payload["outcome"] = "refused"
    assert violations(contracts["residence-decision"], payload)[0]["path"] == "/outcome"


# --- categories and projection -------------------------------------------------------------------

def test_categories_of_a_full_application(application):
    assert application.categories(sample_application()) == DATA_CATEGORIES - {"social_security"}


def test_categories_follow_the_fields_present(application):
    payload = sample_application(medical_documents=None, criminal_record_documents=None, fee_paid=None,
                                 administrative_documents=None)
    payload["employment"].pop("gross_monthly_pay")
    assert application.categories(payload) == {"identification", "contact", "residence_status", "employment"}
    assert "health" not in application.categories(sample_application(medical_documents=[]))


def test_region_projection_drops_health_and_criminal_record(application):
    payload = sample_application()
    original = copy.deepcopy(payload)
    projected = application.project(payload, REGION)
    assert "medical_documents" not in projected and "criminal_record_documents" not in projected
    for kept in ("worker", "contact", "residence", "employment", "identity_documents", "employment_documents",
                 "administrative_documents", "fee_paid", "application_kind", "category", "competent_region"):
        assert projected[kept] == payload[kept]
    assert application.categories(projected) == set(REGION)
    projected["worker"]["first_name"] = "changed"
    assert payload == original  # a copy, not a view


def test_projection_honours_overrides_inside_objects(application):
    payload = sample_application()
    projected = application.project(payload, {"identification", "employment"})
    assert projected["worker"]["insz"] == WORKER_INSZ
    assert "passport_number" not in projected["worker"]           # residence_status inside identification
    assert "gross_monthly_pay" not in projected["employment"]     # financial inside employment
    assert projected["employment"]["employer"] == payload["employment"]["employer"]
    # An annotated object of a category not allowed survives only for what it holds of an allowed one.
    only_pay = application.project(payload, {"financial"})
    assert only_pay["employment"] == {"gross_monthly_pay": payload["employment"]["gross_monthly_pay"]}
    assert "worker" not in only_pay and "contact" not in only_pay


def test_projection_on_nothing_keeps_only_non_personal_fields(application):
    projected = application.project(sample_application(), frozenset())
    assert projected == {"application_kind": "single_permit", "category": "single_permit",
                         "competent_region": "flanders", "portal_reference": "WIB-PORTAL-000001",
                         "submitted_at": "2026-02-02T09:30:00+01:00"}


def test_negative_decision_notice_carries_no_personal_category(contracts):
    notice = contracts["negative-decision-notice"]
    payload = sample_negative_decision_notice("D1")
    assert notice.categories(payload) <= {"administrative"}
    assert notice.declared_categories == {"administrative"}
    assert set(notice.schema["properties"]) == {"dossier_id", "negative_decision_taken", "decided_by", "decided_at"}
    assert notice.project(payload, frozenset()) == {"dossier_id": "D1", "decided_by": "dvz"}


def test_category_at_and_has_path(application):
    assert application.category_at("/worker/insz") == "identification"
    assert application.category_at("/worker/passport_number") == "residence_status"
    assert application.category_at("/medical_documents/0/content_base64") == "health"
    assert application.category_at("/employment/employer/seat_address/street") == "employment"
    assert application.category_at("/competent_region") is None
    assert application.has_path("/application_kind") and not application.has_path("/nope")


# --- what the loader refuses ---------------------------------------------------------------------

def _schema(**properties) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://contracts.wib-hub.example/messages/probe/1.0",
        "x-contract-version": "1.0",
        "type": "object", "additionalProperties": False,
        "properties": properties or {"dossier_id": {"type": "string", "maxLength": 10}},
    }


def _load_one(tmp_path: Path, schema: dict, name: str = "probe") -> dict[str, MessageContract]:
    messages = tmp_path / "messages"
    messages.mkdir(exist_ok=True)
    (messages / f"{name}.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    return load_contracts(messages)


def test_a_minimal_contract_loads(tmp_path):
    assert _load_one(tmp_path, _schema())["probe"].declared_categories == frozenset()


@pytest.mark.parametrize("mutate, field, words", [
    (lambda s: s["properties"].update(x={"type": "string", "maxLength": 3, "x-data-category": "religion"}),
     "/properties/x/x-data-category", "unknown data category"),
    (lambda s: s.pop("x-contract-version"), "x-contract-version", "required"),
    (lambda s: s.update({"$id": "https://contracts.wib-hub.example/messages/other/1.0"}), "$id", "must be"),
    (lambda s: s["properties"].update(x={"type": "strng"}), "/properties/x/type", ""),
    (lambda s: s.pop("additionalProperties"), "/", "additionalProperties"),
    (lambda s: s["properties"].update(x={"type": "object", "properties": {}}), "/properties/x", "additionalProperties"),
    (lambda s: s["properties"].update(x={"description": "anything"}), "/properties/x", "type"),
    (lambda s: s["properties"].update(x={"type": "array"}), "/properties/x", "items"),
    (lambda s: s["properties"].update(x={"$ref": "other.json#/x"}), "/properties/x/$ref", "local"),
    (lambda s: s["properties"].update(x={"type": "object", "additionalProperties": False,
                                         "patternProperties": {"^a": {"type": "string"}}}),
     "/properties/x/patternProperties", "not supported"),
    (lambda s: s.update(anyOf=[{"properties": {"x": {"x-data-category": "health"}}}]),
     "/anyOf/0/properties/x/x-data-category", "belong on properties"),
])
def test_the_loader_refuses(tmp_path, mutate, field, words):
    schema = _schema()
    mutate(schema)
    with pytest.raises(RegistryError) as exc:
        _load_one(tmp_path, schema)
    assert exc.value.file == "messages/probe.schema.json"
    assert exc.value.field == field
    assert words in exc.value.message


def test_recursive_refs_are_refused(tmp_path):
    schema = _schema(node={"$ref": "#/$defs/node"})
    schema["$defs"] = {"node": {"type": "object", "additionalProperties": False,
                                "properties": {"child": {"$ref": "#/$defs/node"}}}}
    with pytest.raises(RegistryError, match="recursive"):
        _load_one(tmp_path, schema)


def test_unreadable_json_names_the_file(tmp_path):
    messages = tmp_path / "messages"
    messages.mkdir()
    (messages / "broken.schema.json").write_text("{", encoding="utf-8")
    with pytest.raises(RegistryError) as exc:
        load_contracts(messages)
    assert exc.value.file == "messages/broken.schema.json"


def test_categories_on_a_ref_and_its_override(tmp_path):
    schema = _schema(
        person={"$ref": "#/$defs/person", "x-data-category": "identification"},
        other={"$ref": "#/$defs/person"},
    )
    schema["$defs"] = {"person": {"type": "object", "additionalProperties": False, "x-data-category": "contact",
                                  "properties": {"name": {"type": "string", "maxLength": 9},
                                                 "pay": {"type": "number", "x-data-category": "financial"}}}}
    contract = _load_one(tmp_path, schema)["probe"]
    payload = {"person": {"name": "a", "pay": 1}, "other": {"name": "b"}}
    contract.validate(payload)
    assert contract.categories(payload) == {"identification", "financial", "contact"}
    assert contract.project(payload, {"identification"}) == {"person": {"name": "a"}}
    assert contract.project(payload, {"contact", "financial"}) == {"person": {"pay": 1}, "other": {"name": "b"}}


# ── the fast validator agrees with the reference one ─────────────────────────────────────────────

def _mutations(value, path=()):
    """Small wrong versions of a valid payload: a key dropped or added, a value of the wrong kind."""
    if isinstance(value, dict):
        for key in value:
            yield path + (key,), "drop"
            yield from _mutations(value[key], path + (key,))
        yield path + ("unexpected_field",), 1
    elif isinstance(value, list):
        yield path, {}
        yield path, [None]
        for i, item in enumerate(value[:2]):
            yield from _mutations(item, path + (i,))
    else:
        for wrong in ({}, [], None, 12345, True, "", "x" * 3000, "2026-13-45", "not-a-number"):
            if wrong != value:
                yield path, wrong


def _apply_mutation(payload, path, change):
    out = copy.deepcopy(payload)
    target = out
    for step in path[:-1]:
        target = target[step]
    if change == "drop":
        del target[path[-1]]
    elif path:
        target[path[-1]] = change
    else:
        return change
    return out


@pytest.mark.parametrize("name", sorted(SAMPLE_PAYLOADS))
def test_fast_validator_agrees_with_reference(contracts, name):
    contract = contracts[name]
    base = sample_payload(name, "WIB-2026-000042")
    disagreements = []
    for path, change in _mutations(base):
        candidate = _apply_mutation(base, path, change)
        reference = contract._validator.is_valid(candidate)
        try:
            contract._fast(candidate)
            fast = True
        except Exception:  # noqa: BLE001 - any refusal counts
            fast = False
        if reference != fast:
            disagreements.append(("/".join(map(str, path)), repr(change)[:30], reference, fast))
    assert not disagreements, disagreements[:10]
